"""Data protection and data quality (Council 13083/1/20 §27; AI Act Art. 10; GDPR Art. 5(1)(c)).

``data.protection``
    Columns that look like direct identifiers — personal names, dates of birth, national ID,
    phone numbers, e-mail addresses, free-text case notes, unique record numbers — each flagged
    with its evidence (what in the column name and what share of its values matched); and
    sensitive attributes that the model uses as inputs. The evidence never repeats the
    personal data: only column names, counts and shares.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import CheckResult, Evidence, Status
from . import Check, register

if TYPE_CHECKING:
    import pandas as pd

    from ..context import AuditContext

#: column-name patterns (matched on the lower-cased name split into words) -> kind
NAME_HINTS: list[tuple[str, re.Pattern[str]]] = [
    ("person name", re.compile(r"^(name|first|last|firstname|lastname|first_name|last_name|"
                               r"surname|forename|given_name|family_name|full_name|fullname|"
                               r"middle_name|maiden_name)$")),
    ("date of birth", re.compile(r"(^|_)(dob|birth|birthdate|date_of_birth|birth_date|"
                                 r"geburtsdatum)($|_)")),
    ("national ID", re.compile(r"(^|_)(ssn|nin|national_id|nationalid|passport|id_card|"
                               r"idcard|social_security|tax_id|personal_number|bsn|nir)($|_)")),
    ("phone number", re.compile(r"(^|_)(phone|mobile|tel|telephone|cell|msisdn)($|_)")),
    ("e-mail address", re.compile(r"(^|_)(e_?mail|mail_address)($|_)")),
    ("postal address", re.compile(r"(^|_)(address|street|addr|home_address)($|_)")),
    ("free text", re.compile(r"(^|_)(notes?|narrative|comments?|remarks?|free_?text|"
                             r"description|statement)($|_)")),
]

#: kinds that are listed in the evidence but are not findings by themselves
LINKABLE = ("record number (links to a person)",)

_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_PHONE = re.compile(r"^\+?[\d][\d ()./-]{6,18}\d$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{4})")
_PERSON = re.compile(r"^[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’-]+( [A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’.-]+){0,3}$")


def _words(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _value_kinds(values: pd.Series) -> dict[str, float]:
    """Share of the sampled text values that match each identifier pattern."""
    s = values.astype(str).str.strip()
    n = len(s)
    if n == 0:
        return {}
    dates = s.str.match(_DATE)
    shares = {
        "e-mail address": float(s.str.match(_EMAIL).mean()),
        "phone number": float((s.str.match(_PHONE) & ~dates).mean()),
        "national ID": float(s.str.match(_SSN).mean()),
        "date": float(dates.mean()),
        "person name": float(s.str.match(_PERSON).mean()),
    }
    lengths = s.str.len()
    shares["free text"] = float(((lengths > 40) & s.str.contains(" ")).mean())
    return shares


def scan_identifiers(df: pd.DataFrame, *, exclude: set[str] | None = None, sample: int = 2000,
                     seed: int = 0) -> list[dict[str, Any]]:
    """Columns of ``df`` that look like direct identifiers, with the evidence for each.

    Returns one dict per flagged column: ``column``, ``kind``, ``by_name`` (the column name
    matched), ``value_share`` (share of sampled non-empty values matching the kind's pattern,
    or None), ``distinct_share`` and ``non_null``. Values themselves are never returned.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"name": ["ann lee", "bo ray"] * 30, "age": range(60)})
    >>> [f["kind"] for f in scan_identifiers(df)]
    ['person name']
    """
    import pandas as pd

    found = []
    rng = np.random.default_rng(seed)
    for col in df.columns:
        if exclude and col in exclude:
            continue
        series = df[col]
        key = _words(str(col))
        by_name = next((kind for kind, pat in NAME_HINTS if pat.search(key)), None)
        non_null = series.dropna()
        nn = len(non_null)
        distinct = float(non_null.nunique() / nn) if nn else 0.0
        textual = not (pd.api.types.is_numeric_dtype(series)
                       or pd.api.types.is_bool_dtype(series))
        shares: dict[str, float] = {}
        if textual and nn:
            take = non_null if nn <= sample else non_null.iloc[
                np.sort(rng.choice(nn, sample, replace=False))]
            shares = _value_kinds(take)
        kind, share = by_name, None
        if kind is not None:
            share = shares.get("date" if kind == "date of birth" else kind)
        else:
            # by the values alone: a pattern that most values follow
            for cand in ("e-mail address", "national ID", "phone number", "free text"):
                if shares.get(cand, 0.0) >= 0.8 and (cand != "free text" or distinct > 0.5):
                    kind, share = cand, shares[cand]
                    break
            if kind is None and shares.get("person name", 0.0) >= 0.9 \
                    and distinct >= 0.25 and non_null.nunique() >= 20:
                kind, share = "person name", shares["person name"]
            if kind is None and textual and nn >= 50 and distinct >= 0.95 \
                    and shares.get("date", 0.0) < 0.5 \
                    and non_null.astype(str).str.contains(r"\d").mean() >= 0.9:
                kind, share = "record number (links to a person)", distinct
        if kind is not None:
            found.append({"column": str(col), "kind": kind, "by_name": by_name is not None,
                          "value_share": None if share is None else round(share, 4),
                          "distinct_share": round(distinct, 4), "non_null": nn})
    return found


@register
class DataProtection(Check):
    """Direct identifiers in the audited data, and sensitive attributes used as model inputs.

    Parameters
    ----------
    allow : list of str
        Columns known and accepted (e.g. a pseudonymous case id the force needs); they are
        still listed, as accepted.
    sample : int
        Values per column examined for patterns (a random sample, seeded by the audit).
    """

    id = "data.protection"
    title = "No direct identifiers; sensitive attributes not used as inputs"

    def __init__(self, *, allow: list[str] | None = None, sample: int = 2000) -> None:
        self.allow = allow
        self.sample = sample

    def validate(self) -> None:
        if self.allow is not None and not all(isinstance(a, str) for a in self.allow):
            raise ValueError("allow must be a list of column names")
        if int(self.sample) < 10:
            raise ValueError(f"sample must be at least 10, got {self.sample}")

    def run(self, ctx: AuditContext) -> CheckResult:
        exclude = {ctx.target, *(c for c in (ctx.prediction_col, ctx.score_col) if c)}
        found = scan_identifiers(ctx.data, exclude=exclude, sample=int(self.sample),
                                 seed=ctx.seed)
        allowed = set(self.allow or [])
        # a record number links to a person only through another register: listed, not a finding
        flagged = [f for f in found if f["column"] not in allowed and f["kind"] not in LINKABLE]
        as_inputs = [s for s in ctx.sensitive if s in set(ctx.features or [])]
        rows = [[f["column"], f["kind"], "name" if f["by_name"] else "values",
                 f["value_share"], f["distinct_share"], f["non_null"],
                 "accepted" if f["column"] in allowed
                 else "noted" if f["kind"] in LINKABLE else "flagged"] for f in found]
        rows += [[s, "sensitive attribute used as a model input", "features", None, None, None,
                  "flagged"] for s in as_inputs]
        in_model = [f["column"] for f in flagged if f["column"] in set(ctx.features or [])]
        metrics = {"identifier_columns": len(flagged), "sensitive_inputs": len(as_inputs),
                   "identifier_inputs": len(in_model)}
        evidence = [Evidence.table(
            "identifiers", ["column", "kind", "matched by", "value_share", "distinct_share",
                            "non_null", "verdict"], rows,
            "columns that look like direct identifiers: matched by the column name and/or a "
            "pattern followed by the sampled values (value_share: share of sampled non-empty "
            "values that match; distinct_share: distinct values / non-empty values). The values "
            "themselves are not copied into the report.")]
        problems = []
        if flagged:
            problems.append("direct identifiers in the data: " + ", ".join(
                f"{f['column']} ({f['kind']})" for f in flagged[:8])
                + (f" and {len(flagged) - 8} more" if len(flagged) > 8 else "")
                + " — remove or pseudonymise them before the data is used or shared")
        if in_model:
            problems.append("the model uses identifier column(s) as input: " + ", ".join(in_model))
        if as_inputs:
            problems.append("sensitive attribute(s) used as model input(s): "
                            + ", ".join(as_inputs))
        if problems:
            return self.result(Status.FAIL, "; ".join(problems), metrics=metrics,
                               evidence=evidence)
        note = (f" ({len(found)} column(s) noted or accepted: "
                + ", ".join(f["column"] for f in found[:5]) + ")") if found else ""
        return self.result(Status.PASS, "no direct identifiers found and no sensitive attribute "
                                        f"among the model's inputs{note}", metrics=metrics,
                           evidence=evidence)
