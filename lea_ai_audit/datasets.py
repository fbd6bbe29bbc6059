"""Synthetic police case-triage data with a known, adjustable injected bias.

Each row is a case: features an officer's triage tool might use (prior contacts, age, offence
type, months since the last contact, district, ...), sensitive attributes that are **not**
model inputs (ethnicity, sex, age band), and two outcomes:

``reoffended``
    the verified outcome (did the person reoffend within two years). It depends on the
    features only: at ``bias=0`` no group differs in its risk once the features are known.
``rearrested``
    the historical police record the model is trained on. With ``bias > 0`` minority groups
    are over-policed: a share ``bias / 2`` of their members who did **not** reoffend were
    re-arrested anyway, and their recorded prior contacts are inflated. ``district`` is a
    proxy of ethnicity, so a model trained on the record learns the bias through it without
    ever seeing ethnicity.

Auditing such a model against ``reoffended`` shows the injected disparity (higher false
positive rates for the minority groups); at ``bias=0`` it shows none.

Examples
--------
>>> from lea_ai_audit.datasets import make_police_triage
>>> df = make_police_triage(n_rows=1000, bias=0.6, seed=3)
>>> sorted(df["ethnicity"].unique())
['majority', 'minority_a', 'minority_b']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["DEFAULT_BIAS", "FEATURES", "DemoData", "make_demo", "make_police_triage"]

DEFAULT_BIAS = 0.6
FEATURES = ["age", "prior_contacts", "prior_convictions", "offence_type",
            "months_since_last_contact", "district", "employment"]
SENSITIVE = ["ethnicity", "sex", "age_band"]

_ETHNICITY = (["majority", "minority_a", "minority_b"], [0.70, 0.20, 0.10])
# districts D01-D08 are mostly majority, D09-D10 minority_a, D11-D12 minority_b
_HOME = {"majority": np.arange(0, 8), "minority_a": np.array([8, 9]),
         "minority_b": np.array([10, 11])}
_OFFENCES = (["violent", "property", "drugs", "public_order", "traffic"],
             [0.18, 0.32, 0.20, 0.18, 0.12], [0.45, 0.25, 0.30, 0.05, -0.45])


def make_police_triage(n_rows: int = 20_000, *, bias: float = DEFAULT_BIAS, seed: int = 0
                       ) -> pd.DataFrame:
    """Generate synthetic case-triage data with an injected bias of strength ``bias``.

    Parameters
    ----------
    n_rows : int
        Number of cases.
    bias : float in [0, 1]
        Strength of the over-policing of minority groups in the historical record
        (``rearrested`` and ``prior_contacts``). 0 means no bias.
    seed : int
        Seed of the random generator; equal seeds give equal data.

    Returns
    -------
    DataFrame
        One row per case, see the module documentation for the columns.
    """
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 10:
        raise InputError(f"n_rows must be a whole number of at least 10, got {n_rows!r}",
                         "pass --rows 1000 or more for meaningful group figures")
    if not 0.0 <= float(bias) <= 1.0:
        raise InputError(f"bias must be between 0 and 1, got {bias}",
                         "pass --bias 0 for none, 0.6 (the default) for a strong bias")
    rng = np.random.default_rng(seed)
    n = int(n_rows)
    eth_names, eth_p = _ETHNICITY
    eth_idx = rng.choice(len(eth_names), size=n, p=eth_p)
    ethnicity = np.asarray(eth_names, dtype=object)[eth_idx]
    sex = np.where(rng.random(n) < 0.78, "male", "female").astype(object)
    age = np.clip(np.round(rng.normal(33, 11, n)), 16, 80).astype(int)
    age_band = np.select([age < 25, age < 45], ["under 25", "25-44"], "45 and over").astype(object)

    # district: 80% live in their group's home districts, the rest anywhere
    district = rng.integers(0, 12, n)
    home = rng.random(n) < 0.8
    for i, name in enumerate(eth_names):
        sel = home & (eth_idx == i)
        district[sel] = rng.choice(_HOME[name], size=int(sel.sum()))
    district_label = np.char.add("D", np.char.zfill(district.astype(str), 2)).astype(object)

    off_names, off_p, off_effect = _OFFENCES
    off_idx = rng.choice(len(off_names), size=n, p=off_p)
    propensity = rng.gamma(2.0, 0.6, n)  # latent criminal propensity, same in every group
    prior_contacts = rng.poisson(0.4 + 1.6 * propensity)
    prior_convictions = rng.binomial(prior_contacts, 0.35)
    months = np.round(rng.exponential(14, n) / (0.6 + 0.5 * propensity), 1)
    employment = rng.choice(["employed", "unemployed", "student", "retired"], size=n,
                            p=[0.55, 0.30, 0.10, 0.05]).astype(object)
    # the true risk depends on behaviour, not on age, sex, ethnicity or district
    logit = (-2.6 + 1.5 * propensity + 0.15 * prior_convictions
             + np.asarray(off_effect)[off_idx] - 0.02 * months
             + np.where(employment == "unemployed", 0.15, 0.0))
    reoffended = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)

    minority = eth_idx > 0
    extra_contacts = rng.poisson(1.5 * bias, n) * minority
    wrongly_rearrested = minority & (reoffended == 0) & (rng.random(n) < bias / 2)
    rearrested = (reoffended.astype(bool) | wrongly_rearrested).astype(np.int8)

    return pd.DataFrame({
        "case_id": [f"C{seed:03d}-{i:07d}" for i in range(n)],
        "age": age,
        "prior_contacts": prior_contacts + extra_contacts,
        "prior_convictions": prior_convictions,
        "offence_type": np.asarray(off_names, dtype=object)[off_idx],
        "months_since_last_contact": months,
        "district": district_label,
        "employment": employment,
        "ethnicity": ethnicity,
        "sex": sex,
        "age_band": age_band,
        "rearrested": rearrested,
        "reoffended": reoffended,
    })


@dataclass(frozen=True)
class DemoData:
    """What the demo audits: a fitted model, its training rows and the scored audit rows."""

    model: Any
    train: pd.DataFrame
    test: pd.DataFrame
    bias: float
    seed: int


def make_demo_model(seed: int = 0) -> Any:
    """The demo's model: a scikit-learn Pipeline (scaling, one-hot, logistic regression)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["age", "prior_contacts", "prior_convictions", "months_since_last_contact"]
    categorical = ["offence_type", "district", "employment"]
    pre = ColumnTransformer([("num", StandardScaler(), numeric),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    return Pipeline([("prep", pre), ("clf", LogisticRegression(max_iter=1000, C=1.0))])


def make_demo(n_rows: int = 20_000, *, bias: float = DEFAULT_BIAS, seed: int = 0,
              test_share: float = 0.5) -> DemoData:
    """Data, a model trained on the (biased) historical record, and the scored audit rows.

    The test rows get two extra columns, as a vendor's tool would deliver them: ``risk``
    (the model's probability of re-arrest) and ``flagged`` (its 0/1 decision).

    Examples
    --------
    >>> from lea_ai_audit.datasets import make_demo
    >>> demo = make_demo(n_rows=2000, bias=0.6, seed=1)
    >>> {"risk", "flagged"} <= set(demo.test.columns)
    True
    """
    df = make_police_triage(n_rows, bias=bias, seed=seed)
    rng = np.random.default_rng(seed + 1)
    is_test = rng.random(len(df)) < test_share
    train, test = df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
    model = make_demo_model(seed).fit(train[FEATURES], train["rearrested"])
    test = test.copy()
    test["risk"] = np.round(model.predict_proba(test[FEATURES])[:, 1], 6)
    test["flagged"] = model.predict(test[FEATURES]).astype(np.int8)
    return DemoData(model=model, train=train, test=test, bias=float(bias), seed=int(seed))
