"""robustness.perturbation against analytic flip rates and hand-built models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin

from lea_ai_audit import audit
from lea_ai_audit.checks.robustness import Perturbation, perturb_categories
from lea_ai_audit.context import AuditContext


class Threshold(ClassifierMixin, BaseEstimator):
    """Positive when column ``col`` is above ``cut`` (or, for text, equals ``cut``)."""

    def __init__(self, col: str = "x", cut: object = 0.0) -> None:
        self.col = col
        self.cut = cut

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        v = X[self.col]
        if isinstance(self.cut, str):
            return (v == self.cut).astype(int).to_numpy()
        return (v > self.cut).astype(int).to_numpy()


def _frame(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.uniform(-1, 1, n),
        "kind": rng.choice(["a", "b"], n),
        "count": rng.integers(0, 4, n),
        "group": rng.choice(["g1", "g2"], n, p=[0.7, 0.3]),
        "y": rng.integers(0, 2, n),
    })


def _ctx(df: pd.DataFrame, model) -> AuditContext:
    return AuditContext.build(df, target="y", sensitive=["group"], model=model,
                              features=["x", "kind", "count"])


def test_noise_flip_rate_matches_the_analytic_value():
    # x ~ U(-1, 1), decision x > 0, noise sd s = 0.05 * sd(x): P(flip) = E[Phi(-|x| / s)]
    df = _frame()
    model = Threshold("x", 0.0).fit(df[["x", "kind", "count"]], df["y"])
    res = Perturbation(sample_size=20_000, change_share=0.0).run(_ctx(df, model))
    s = 0.05 * df["x"].std(ddof=0)
    grid = np.linspace(0, 1, 200_001)
    want = np.trapezoid(stats.norm.cdf(-grid / s), grid)  # (1/1) * integral over |x| in [0, 1]
    got = res.metrics["flip_rate/noise"]
    se = np.sqrt(want * (1 - want) / len(df))
    assert abs(got - want) < 4 * se, (got, want)
    assert res.status.value == "pass"


def test_categorical_change_flips_a_model_that_reads_only_that_label():
    df = _frame(4000)
    model = Threshold("kind", "a").fit(df[["x", "kind", "count"]], df["y"])
    res = Perturbation(sample_size=4000, change_share=1.0, max_levels=2).run(_ctx(df, model))
    # every case has one categorical input changed; 'kind' is one of the two ('count' has 4
    # levels > max_levels=2, so it is numeric here): the flips are exactly the rows whose
    # 'kind' changed, and with two labels a change always flips the decision
    assert res.metrics["categorical_inputs"] == 1
    assert res.metrics["flip_rate/categorical"] == pytest.approx(1.0)
    assert res.status.value == "fail"
    assert "categorical" in res.message


def test_flips_in_one_group_only_are_found_in_that_group():
    df = _frame(10_000)
    df.loc[df["group"] == "g2", "x"] = 50.0 + df.loc[df["group"] == "g2", "x"]  # far from 0
    model = Threshold("x", 0.0).fit(df[["x", "kind", "count"]], df["y"])
    res = Perturbation(sample_size=10_000, noise=0.5, change_share=0.0).run(_ctx(df, model))
    assert res.metrics["flip_rate/noise/group/g2"] == 0.0
    assert res.metrics["flip_rate/noise/group/g1"] > 0.05
    assert res.status.value == "fail" and "group=g1" in res.message
    assert "group=g2" not in res.message


def test_integer_neighbour_changes_stay_in_range():
    df = _frame(3000)
    out, changed = perturb_categories(df[["count"]], ["count"], 1.0, np.random.default_rng(1))
    assert changed.all()
    assert out["count"].between(0, 3).all()
    assert (np.abs(out["count"] - df["count"]) == 1).all()
    assert out["count"].dtype == df["count"].dtype


def test_no_model_is_skipped_with_the_reason():
    df = _frame(500)
    df["p"] = (df["x"] > 0).astype(int)
    ctx = AuditContext.build(df, target="y", sensitive=["group"], prediction="p")
    res = Perturbation().run(ctx)
    assert res.status.value == "skipped" and "no model" in res.message


def test_runs_in_the_default_policy_on_the_demo():
    from lea_ai_audit.datasets import FEATURES, make_demo

    demo = make_demo(6000, seed=3)
    rep = audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"],
                model=demo.model, features=FEATURES, checks=["robustness"])
    (res,) = rep.checks
    assert res.check_id == "robustness.perturbation"
    assert res.status.value in ("pass", "warn")
    assert res.metrics["sample_size"] > 0 and res.metrics["seed"] == 0
    rows = rep.table("flip rates")
    assert {r["grouping"] for r in rows} == {"all", "ethnicity", "sex"}
