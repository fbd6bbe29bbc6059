"""Data quality and data protection (Council 13083/1/20 §27; AI Act Art. 10; GDPR Art. 5(1)(c)).

``data.schema``
    The audited data against the schema of the training (reference) data — types, ranges,
    allowed categories, nullability — inferred with pandera, or a schema the user supplied
    (which overrides the inferred one). Validation is lazy: every failure is reported with its
    count and example values. The schema is saved with the report as pandera YAML.
``data.quality_by_group``
    Missing values per column, overall and per group of each sensitive attribute (missingness
    concentrated in one group is a finding); exact duplicate rows; constant columns; label
    balance; each group's share of the data against a declared reference population.
``data.protection``
    Columns that look like direct identifiers — personal names, dates of birth, national ID,
    phone numbers, e-mail addresses, free-text case notes, unique record numbers — each flagged
    with its evidence (what in the column name and what share of its values matched); and
    sensitive attributes that the model uses as inputs. The evidence never repeats the
    personal data: only column names, counts and shares.
``data.leakage``
    A feature that alone predicts the outcome almost perfectly (single-feature AUC) is a
    finding: it is probably recorded after the fact, or a copy of the outcome.
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
                     seed: int = 0, distinct_cache: dict[str, tuple[int, int]] | None = None
                     ) -> list[dict[str, Any]]:
    """Columns of ``df`` that look like direct identifiers, with the evidence for each.

    Returns one dict per flagged column: ``column``, ``kind``, ``by_name`` (the column name
    matched), ``value_share`` (share of sampled non-empty values matching the kind's pattern,
    or None), ``distinct_share`` and ``non_null``. Values themselves are never returned.
    ``distinct_cache`` (column -> non-missing and distinct counts) spares a second count.

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
        textual = not (pd.api.types.is_numeric_dtype(series)
                       or pd.api.types.is_bool_dtype(series))
        if not textual and by_name is None:
            continue  # numbers are judged by their name only (values cannot reveal a person)
        non_null = series.dropna()
        nn = len(non_null)
        hit = distinct_cache.get(str(col)) if distinct_cache is not None else None
        if hit is None or hit[0] != nn:
            hit = (nn, int(non_null.nunique()))
            if distinct_cache is not None:
                distinct_cache[str(col)] = hit
        n_distinct = hit[1]
        distinct = float(n_distinct / nn) if nn else 0.0
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
                    and distinct >= 0.25 and n_distinct >= 20:
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


def _is_constant(col: pd.Series) -> bool:
    """At most one distinct non-missing value (without counting them all: O(n), no hashing)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        values = values[~np.isnan(values)]
        return values.size == 0 or bool(values.min() == values.max())
    non_null = col.dropna()
    if non_null.empty:
        return True
    try:
        return bool((non_null == non_null.iloc[0]).all())
    except (TypeError, ValueError):  # values that do not compare: count them
        return non_null.nunique() <= 1


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
                                 distinct_cache=ctx.distinct,
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


# -- shared helpers ----------------------------------------------------------------------------
def _png(fig: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(text: Any, limit: int = 28) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def _r6(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


# -- data.schema -------------------------------------------------------------------------------
@register
class DataSchema(Check):
    """The audited data against the schema of the training data (pandera, lazy validation).

    The schema comes from, in order: the one the user supplied (``schema=`` / ``--schema``),
    else one inferred from the reference data (``reference=`` / ``--reference``), else one
    inferred from the audited data itself — which describes but cannot test it (WARN).

    Parameters
    ----------
    max_failure_share : float
        Largest share of rows with a failing value that still passes (values a little beyond
        the training range are expected in new data). A missing column always fails.
    max_categories : int
        A text column of the reference with at most this many distinct values gets an
        allowed-categories check.
    max_examples : int
        Distinct failing values shown per failure (none for columns that look like personal
        identifiers).
    """

    id = "data.schema"
    title = "The audited data matches the schema of the training data"

    def __init__(self, *, max_failure_share: float = 0.01, max_categories: int = 50,
                 max_examples: int = 5) -> None:
        self.max_failure_share = max_failure_share
        self.max_categories = max_categories
        self.max_examples = max_examples

    def validate(self) -> None:
        if not 0 <= float(self.max_failure_share) <= 1:
            raise ValueError(f"max_failure_share must be in [0, 1], got {self.max_failure_share}")
        if int(self.max_categories) < 1:
            raise ValueError(f"max_categories must be at least 1, got {self.max_categories}")
        if int(self.max_examples) < 0:
            raise ValueError(f"max_examples must be 0 or more, got {self.max_examples}")

    def run(self, ctx: AuditContext) -> CheckResult:
        from ..schema import infer_schema, load_schema, schema_to_yaml, validate_schema

        if getattr(ctx, "schema", None) is not None:
            schema, origin = load_schema(ctx.schema), "the schema supplied for the audit"
            if ctx.reference is not None:
                origin += " (it overrides the one inferred from the reference data)"
        elif ctx.reference is not None:
            schema = infer_schema(ctx.reference, max_categories=int(self.max_categories),
                                  name="reference")
            origin = f"the schema inferred from the reference data ({len(ctx.reference)} rows)"
        else:
            schema = infer_schema(ctx.data, max_categories=int(self.max_categories),
                                  name="audited data")
            origin = "the schema inferred from the audited data itself"
        # failing values of identifier-like columns are not copied into the report
        names = {c for c in schema.columns if c in ctx.data.columns}
        withhold = {f["column"] for f in scan_identifiers(
            ctx.data, exclude={c for c in ctx.data.columns if c not in names}, sample=500,
            distinct_cache=ctx.distinct,
            seed=ctx.seed)}
        result = validate_schema(ctx.data, schema, max_examples=int(self.max_examples),
                                 withhold=withhold)
        evidence = []
        try:
            evidence.append(Evidence.file(
                "schema", "schema.yaml", schema_to_yaml(schema),
                f"{origin}, as pandera YAML (pandera.io.from_yaml or lea-audit run --schema "
                "read it back)", media_type="application/yaml"))
        except Exception as exc:  # a user schema with custom check functions
            evidence.append(Evidence("schema", "text", f"the schema cannot be written as YAML: "
                                     f"{exc}"))
        evidence.append(Evidence.table(
            "schema_failures", ["column", "kind", "check", "count", "share", "examples"],
            result.rows(),
            f"every failure of a lazy validation of {result.n_rows} rows against {origin}: "
            "count of failing values and up to "
            f"{self.max_examples} distinct examples"
            + (f" (withheld for identifier-like columns: {', '.join(sorted(withhold))})"
               if withhold else "")))
        extra = [c for c in ctx.data.columns if c not in schema.columns]
        if extra:
            evidence.append(Evidence("columns_not_in_schema", "json", extra,
                                     "columns of the audited data the schema does not describe "
                                     "(e.g. the model's outputs)"))
        metrics: dict[str, Any] = {
            "schema_columns": len(schema.columns), "failures": len(result.failures),
            "failing_rows": result.failing_rows, "failing_share": _r6(result.failing_share)}
        for f in result.failures:
            metrics[f"failing_values/{f.column}"] = metrics.get(
                f"failing_values/{f.column}", 0) + f.count
        summary = "; ".join(f"{f.column}: {f.count} {f.kind}" for f in result.failures[:6]) \
            + (f" and {len(result.failures) - 6} more" if len(result.failures) > 6 else "")
        if result.structural:
            return self.result(Status.FAIL, "the data does not have the shape of the training "
                               f"data: {'; '.join(result.structural[:4])} (against {origin})",
                               metrics=metrics, evidence=evidence)
        if result.failing_share > float(self.max_failure_share):
            return self.result(
                Status.FAIL, f"{result.failing_rows} of {result.n_rows} rows "
                f"({result.failing_share:.2%}) break {origin}, more than the "
                f"{float(self.max_failure_share):.2%} tolerated: {summary}",
                metrics=metrics, evidence=evidence)
        if ctx.reference is None and getattr(ctx, "schema", None) is None:
            return self.result(Status.WARN, "no reference data: the schema was inferred from the "
                               "audited data itself, so it describes the data but cannot test "
                               "it — pass the training data (reference=, --reference) or a "
                               "schema (--schema)", metrics=metrics, evidence=evidence)
        if result.failures:
            return self.result(
                Status.PASS, f"{result.failing_rows} of {result.n_rows} rows "
                f"({result.failing_share:.2%}) break {origin}, within the "
                f"{float(self.max_failure_share):.2%} tolerated: {summary}",
                metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, f"all {result.n_rows} rows match {origin} "
                           f"({len(schema.columns)} columns)", metrics=metrics,
                           evidence=evidence)


# -- data.quality_by_group ---------------------------------------------------------------------
def duplicate_rows(df: pd.DataFrame, row_hashes: np.ndarray | None = None) -> int:
    """Number of rows that exactly repeat an earlier row (all columns equal; NaN equals NaN).

    Rows are hashed first (or ``row_hashes``, pandas' ``hash_pandas_object(df, index=False)``,
    are given); only rows whose hash repeats are compared exactly, so the count is exact and
    the cost stays near one hashing pass.

    Examples
    --------
    >>> import pandas as pd
    >>> duplicate_rows(pd.DataFrame({"a": [1, 1, 2, 1], "b": ["x", "x", "y", "x"]}))
    2
    """
    import pandas as pd

    if df.shape[0] < 2 or df.shape[1] == 0:
        return 0
    h = pd.Series(pd.util.hash_pandas_object(df, index=False).to_numpy()
                  if row_hashes is None else row_hashes)
    candidates = h.duplicated(keep=False).to_numpy()
    if not candidates.any():
        return 0
    return int(df.loc[candidates].duplicated().sum())


def _validate_population(population: Any) -> None:
    if population is None:
        return
    if not isinstance(population, dict) or not population:
        raise ValueError("population must map an attribute to {group: share, ...}")
    for attr, shares in population.items():
        if not isinstance(shares, dict) or not shares:
            raise ValueError(f"population[{attr!r}] must map each group to its share")
        for g, v in shares.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"population[{attr!r}][{g!r}] must be a share in [0, 1], "
                                 f"got {v!r}")
        total = sum(float(v) for v in shares.values())
        if total > 1 + 1e-6:
            raise ValueError(f"the shares of population[{attr!r}] add up to {total:.3f} > 1")


@register
class QualityByGroup(Check):
    """Missing values, duplicates, constant columns, label balance and representativeness.

    Parameters
    ----------
    max_missing_difference : float
        A group's share of missing values in a column may exceed that of the rest of the data
        by at most this (absolute); larger and significant is a finding (missingness
        concentrated in one group).
    max_duplicate_share : float
        Largest share of exact duplicate rows tolerated.
    population : dict, optional
        The declared reference population, ``{attribute: {group: share}}`` (e.g. census
        shares of the area the tool serves). Shares may add up to less than 1.
    max_share_difference : float
        A group's share of the data may differ from its declared share by at most this.
    min_class_share : float, optional
        The rarer outcome's share below this is a warning (label imbalance).
    min_group_size, confidence : int, float
        Groups smaller than this are insufficient evidence; the confidence of the intervals.
    """

    id = "data.quality_by_group"
    title = "Complete, representative data: missing values, duplicates and shares by group"

    def __init__(self, *, max_missing_difference: float = 0.05,
                 max_duplicate_share: float = 0.01, population: dict[str, Any] | None = None,
                 max_share_difference: float = 0.05, min_class_share: float | None = None,
                 min_group_size: int = 30, confidence: float = 0.95) -> None:
        self.max_missing_difference = max_missing_difference
        self.max_duplicate_share = max_duplicate_share
        self.population = population
        self.max_share_difference = max_share_difference
        self.min_class_share = min_class_share
        self.min_group_size = min_group_size
        self.confidence = confidence

    def validate(self) -> None:
        for name in ("max_missing_difference", "max_duplicate_share", "max_share_difference"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if self.min_class_share is not None and not 0 <= float(self.min_class_share) <= 0.5:
            raise ValueError(f"min_class_share must be in [0, 0.5], got {self.min_class_share}")
        if int(self.min_group_size) < 1:
            raise ValueError(f"min_group_size must be at least 1, got {self.min_group_size}")
        if not 0.5 <= float(self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        _validate_population(self.population)

    def run(self, ctx: AuditContext) -> CheckResult:
        import pandas as pd

        from ..stats import newcombe_diff_interval

        df = ctx.data
        n = ctx.n
        metrics: dict[str, Any] = {}
        evidence: list[Evidence] = []
        findings: list[str] = []
        notes: list[str] = []
        min_n = int(self.min_group_size)
        # Counted over every row by the engine (Spark: ctx.population) when the rows here are
        # only a sample; missing values and duplicates are additive counts, never sampled.
        exact = getattr(ctx, "population", None)
        exact = exact if isinstance(exact, dict) and "null_counts" in exact else None

        # missing values, overall and per group
        if exact is None:
            na = df.isna()
            na_counts = na.sum()
        else:
            n = int(exact["n_rows"])
            na_counts = pd.Series({str(c): int(exact["null_counts"].get(str(c), 0))
                                   for c in df.columns})
        with_na = [str(c) for c in df.columns if na_counts[c] > 0]
        rows: list[list[Any]] = []
        concentrated: list[tuple[float, str]] = []
        small_groups: set[str] = set()
        heat: dict[str, dict[str, float]] = {}
        for c in with_na:
            metrics[f"missing_share/{c}"] = _r6(na_counts[c] / n)
            rows.append([c, "all", "all", n, int(na_counts[c]), _r6(na_counts[c] / n),
                         None, None, None, ""])
        if with_na:
            na_mat = na[with_na].to_numpy() if exact is None else None
            for g in ctx.groupings(intersections=False):
                if exact is None:
                    sizes = np.bincount(g.codes, minlength=g.n_groups)
                    per = pd.DataFrame(na_mat).groupby(g.codes).sum().reindex(
                        range(g.n_groups), fill_value=0).to_numpy()
                else:
                    sizes = ctx.counts(g).n
                    by = exact["null_counts_by_group"].get(g.name, {})
                    per = np.array([[int(by.get(c, {}).get(label, 0)) for c in with_na]
                                    for label in g.labels], dtype=np.int64)
                for j, c in enumerate(with_na):
                    if c in g.attributes:
                        continue
                    k = per[:, j]
                    total = int(na_counts[c])
                    d, lo, hi = newcombe_diff_interval(k, sizes, total - k, n - sizes,
                                                       float(self.confidence))
                    for i, label in enumerate(g.labels):
                        share = k[i] / sizes[i] if sizes[i] else np.nan
                        heat.setdefault(c, {})[f"{g.name}={label}"] = float(share)
                        metrics[f"missing_share/{c}/{g.name}/{label}"] = _r6(share)
                        small = sizes[i] < min_n or n - sizes[i] < min_n
                        flag = (not small and d[i] > float(self.max_missing_difference)
                                and lo[i] > 0)
                        verdict = "insufficient evidence" if small else \
                            "concentrated" if flag else ""
                        if small:
                            small_groups.add(f"{g.name}={label} ({int(sizes[i])})")
                        if flag:
                            concentrated.append((float(d[i]), f"{c} is missing for "
                                                 f"{share:.1%} of {g.name}={label} vs "
                                                 f"{(total - k[i]) / (n - sizes[i]):.1%} of the "
                                                 "others"))
                        rows.append([c, g.name, label, int(sizes[i]), int(k[i]), _r6(share),
                                     _r6(d[i]), _r6(lo[i]), _r6(hi[i]), verdict])
        evidence.append(Evidence.table(
            "missing_values", ["column", "grouping", "group", "n", "missing", "share",
                               "difference_vs_rest", "ci_low", "ci_high", "verdict"], rows,
            "columns with missing values: share missing overall and per group of each "
            "sensitive attribute; difference to the rest of the data with a "
            f"{float(self.confidence):.0%} Newcombe interval. 'concentrated': the difference "
            f"exceeds {float(self.max_missing_difference):.0%} and is significant."))
        metrics["columns_with_missing"] = len(with_na)
        metrics["missing_concentrated"] = len(concentrated)
        if concentrated:
            concentrated.sort(reverse=True)
            findings.append("missing values concentrated in a group: "
                            + "; ".join(t for _, t in concentrated[:4])
                            + (f" and {len(concentrated) - 4} more" if len(concentrated) > 4
                               else ""))
        if heat:
            evidence.append(self._missing_plot(heat))

        # duplicates
        dups = duplicate_rows(df, ctx.row_hashes if df is ctx.data else None) \
            if exact is None else int(exact["duplicate_rows"])
        metrics["duplicate_rows"] = dups
        metrics["duplicate_share"] = _r6(dups / n)
        if dups / n > float(self.max_duplicate_share):
            findings.append(f"{dups} rows ({dups / n:.2%}) exactly repeat another row "
                            f"(more than the {float(self.max_duplicate_share):.0%} tolerated) — "
                            "check whether cases were recorded twice; without a case number, "
                            "identical rows can also be distinct cases")
        elif dups:
            notes.append(f"{dups} exact duplicate row(s)")

        # constant columns
        constant = [str(c) for c in df.columns if _is_constant(df[c])]
        metrics["constant_columns"] = len(constant)
        if constant:
            notes.append("constant column(s), which carry no information: "
                         + ", ".join(constant[:6]) + (" ..." if len(constant) > 6 else ""))
        evidence.append(Evidence.table(
            "data_summary", ["item", "value"],
            [["rows", n], ["columns", int(df.shape[1])], ["exact duplicate rows", dups],
             ["constant columns", ", ".join(constant) or "none"],
             ["columns with missing values", len(with_na)]],
            "exact duplicates: rows equal in every column to an earlier row"))

        # label balance
        lab_rows = []
        positives = int(ctx.y_true.sum()) if exact is None else int(exact["positives"])
        pos_share = positives / n
        metrics["positive_share"] = _r6(pos_share)
        lab_rows.append(["all", "all", n, positives, _r6(pos_share)])
        for g in ctx.groupings(intersections=False):
            c = ctx.counts(g)
            c_n, c_pos = c.n, c.pos  # properties that add arrays: once, not once per group
            for i, label in enumerate(g.labels):
                share = c_pos[i] / c_n[i] if c_n[i] else np.nan
                metrics[f"positive_share/{g.name}/{label}"] = _r6(share)
                lab_rows.append([g.name, label, int(c_n[i]), int(c_pos[i]), _r6(share)])
        evidence.append(Evidence.table(
            "label_balance", ["grouping", "group", "n", "positives", "positive_share"],
            lab_rows, f"share of the outcome {ctx.target}={ctx.positive_label!r}, overall and "
                      "by group"))
        minority = min(pos_share, 1 - pos_share)
        if self.min_class_share is not None and minority < float(self.min_class_share):
            notes.append(f"the outcome is imbalanced: the rarer class is {minority:.1%} of the "
                         f"rows (below {float(self.min_class_share):.0%})")

        # representativeness against a declared population (the policy's, else the audit's)
        population = self.population or getattr(ctx, "declared_population", None)
        if population:
            rep_rows = []
            for attr, declared in population.items():
                if attr not in df.columns:
                    notes.append(f"a population is declared for {attr!r}, which is not a column "
                                 "of the data")
                    continue
                observed = df[attr].astype(str).where(df[attr].notna(), None) \
                    .value_counts(normalize=True)
                g = next((g for g in ctx.groupings(intersections=False) if g.name == attr),
                         None)
                if exact is not None and g is not None:  # the whole data's group sizes
                    from ..context import MISSING_GROUP

                    sizes = pd.Series(ctx.counts(g).n, index=g.labels, dtype=float)
                    sizes = sizes[sizes.index != MISSING_GROUP]
                    observed = sizes / sizes.sum()
                for group, want in declared.items():
                    have = float(observed.get(str(group), 0.0))
                    diff = have - float(want)
                    bad = abs(diff) > float(self.max_share_difference)
                    metrics[f"share/{attr}/{group}"] = _r6(have)
                    metrics[f"declared_share/{attr}/{group}"] = _r6(float(want))
                    rep_rows.append([attr, str(group), _r6(have), _r6(float(want)), _r6(diff),
                                     "under-represented" if bad and diff < 0
                                     else "over-represented" if bad else ""])
                    if bad:
                        findings.append(f"{attr}={group} is {have:.1%} of the data against "
                                        f"{float(want):.1%} of the declared population")
            evidence.append(Evidence.table(
                "representation", ["attribute", "group", "share", "declared_share",
                                   "difference", "verdict"], rep_rows,
                "each group's share of the audited data against the declared reference "
                f"population; more than {float(self.max_share_difference):.0%} apart is a "
                "finding"))

        if findings:
            return self.result(Status.FAIL, "; ".join(findings)
                               + (f" (also: {'; '.join(notes)})" if notes else ""),
                               metrics=metrics, evidence=evidence)
        if small_groups and with_na:
            notes.insert(0, "insufficient evidence on missing values for small group(s): "
                         + ", ".join(sorted(small_groups)[:6]))
        warn = [t for t in notes if not t.endswith("duplicate row(s)")]
        base = (f"{len(with_na)} column(s) with missing values, none concentrated in a group; "
                if with_na else "no missing values; ") + f"{dups} exact duplicate row(s)"
        if population:
            base += "; every group's share within " \
                    f"{float(self.max_share_difference):.0%} of the declared population"
        if warn:
            return self.result(Status.WARN, "; ".join(warn) + f" ({base})", metrics=metrics,
                               evidence=evidence)
        return self.result(Status.PASS, base, metrics=metrics, evidence=evidence)

    @staticmethod
    def _missing_plot(heat: dict[str, dict[str, float]]) -> Evidence:
        plt = _pyplot()
        cols = sorted(heat, key=lambda c: -max(heat[c].values()))[:15]
        groups = list(dict.fromkeys(g for c in cols for g in heat[c]))[:24]
        mat = np.array([[heat[c].get(g, np.nan) for g in groups] for c in cols])
        fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(groups), 1.2 + 0.4 * len(cols)),
                               dpi=80)
        im = ax.imshow(mat, vmin=0, vmax=max(0.05, float(np.nanmax(mat))), cmap="Reds",
                       aspect="auto")
        ax.set_xticks(range(len(groups)), [_short(g) for g in groups], rotation=60, ha="right",
                      fontsize=8)
        ax.set_yticks(range(len(cols)), [_short(c) for c in cols], fontsize=8)
        for (i, j), v in np.ndenumerate(mat):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=6)
        ax.set_title("share of missing values by group", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
        return Evidence.file("missing_by_group", "missing_by_group.png", _png(fig),
                             "share of missing values per column (rows) and group (columns)",
                             media_type="image/png")


# -- data.leakage ------------------------------------------------------------------------------
def auc_score(score: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC of ``score`` for 0/1 labels ``y`` (Mann–Whitney, ties count one half).

    NaN when ``y`` holds one class only.

    Examples
    --------
    >>> import numpy as np
    >>> auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _encoded(codes: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cross-fitted (2-fold) target encoding: each row gets its category's outcome rate in the
    *other* fold, so a category seen once (an identifier) cannot predict its own outcome."""
    k = int(codes.max()) + 1 if len(codes) else 0
    folds = rng.integers(0, 2, len(codes))
    out = np.empty(len(codes))
    prior = float(y.mean())
    for f in (0, 1):
        train = folds != f
        pos = np.bincount(codes[train], weights=y[train], minlength=k)
        cnt = np.bincount(codes[train], minlength=k)
        rate = (pos + prior) / (cnt + 1.0)  # one pseudo-observation at the prior
        out[~train] = rate[codes[~train]]
    return out


def single_feature_auc(x: pd.Series, y: np.ndarray, *, seed: int = 0,
                       max_levels: int = 50) -> tuple[float, str]:
    """How well one column alone separates the outcome: AUC in either direction (0.5–1).

    Numbers are ranked as they are (missing values lowest); text, categories and numbers with
    at most ``max_levels`` distinct values are also target-encoded out of fold (two folds) so
    that a column whose *categories* give the outcome away is found too. Returns the AUC and
    the method that gave it.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> y = np.array([0, 1] * 50)
    >>> single_feature_auc(pd.Series(np.where(y == 1, "yes", "no")), y)
    (1.0, 'target-encoded (2-fold)')
    """
    import pandas as pd

    y = np.asarray(y, dtype=float)
    best, how = 0.5, "none"
    if pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
        v = x.to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(v).all():
            return 0.5, "all missing"
        v = np.where(np.isnan(v), np.nanmin(v) - 1.0, v)
        a = auc_score(v, y)
        best, how = max(a, 1 - a), "ranked values"
        few = x.nunique(dropna=False) <= max_levels
    else:
        few = True
    if few:
        codes, _ = pd.factorize(x.astype(object).where(x.notna(), "(missing)"), sort=False)
        a = auc_score(_encoded(codes.astype(np.int64), y, np.random.default_rng(seed)), y)
        if max(a, 1 - a) > best:
            best, how = max(a, 1 - a), "target-encoded (2-fold)"
    return float(best), how


@register
class Leakage(Check):
    """A feature that alone predicts the outcome almost perfectly.

    Parameters
    ----------
    max_auc : float
        A column whose single-feature AUC (either direction) reaches this is a finding.
    features : list of str, optional
        Columns to examine (default: the model's inputs; without a model, every column but
        the outcome, the tool's outputs and the sensitive attributes).
    sample : int
        Rows examined (a proportional stratified sample of the audit, seeded).
    """

    id = "data.leakage"
    title = "No feature gives the outcome away (target leakage)"

    def __init__(self, *, max_auc: float = 0.95, features: list[str] | None = None,
                 sample: int = 50_000) -> None:
        self.max_auc = max_auc
        self.features = features
        self.sample = sample

    def validate(self) -> None:
        if not 0.5 < float(self.max_auc) <= 1:
            raise ValueError(f"max_auc must be in (0.5, 1], got {self.max_auc}")
        if self.features is not None and not all(isinstance(f, str) for f in self.features):
            raise ValueError("features must be a list of column names")
        if int(self.sample) < 100:
            raise ValueError(f"sample must be at least 100, got {self.sample}")

    def run(self, ctx: AuditContext) -> CheckResult:
        outputs = {ctx.target, *(c for c in (ctx.prediction_col, ctx.score_col) if c)}
        if self.features is not None:
            feats = [f for f in self.features if f in ctx.data.columns]
            source = "the columns named in the policy"
        elif ctx.features:
            feats = list(ctx.features)
            source = "the model's inputs"
        else:
            feats = [c for c in ctx.data.columns if c not in outputs | set(ctx.sensitive)]
            source = "every column but the outcome, the tool's outputs and the sensitive " \
                     "attributes"
        feats = [f for f in feats if f not in outputs]
        if not feats:
            return self.result(Status.SKIPPED, "no feature columns to examine")
        idx = ctx.stratified_sample(int(self.sample), min_per_group=0)
        y = ctx.y_true[idx]
        sub = ctx.data.iloc[idx]
        rows = []
        for f in feats:
            a, how = single_feature_auc(sub[f], y, seed=ctx.seed)
            rows.append([f, round(a, 4), how, bool(a >= float(self.max_auc))])
        rows.sort(key=lambda r: -r[1])
        metrics: dict[str, Any] = {f"auc/{r[0]}": r[1] for r in rows}
        leaks = [r for r in rows if r[3]]
        metrics["leaking_features"] = len(leaks)
        metrics["max_single_feature_auc"] = rows[0][1]
        evidence = [Evidence.table(
            "single_feature_auc", ["feature", "auc", "method", "leak"], rows,
            f"how well each feature alone separates {ctx.target}: ROC AUC in either direction "
            f"(0.5 = no information, 1 = perfect) on {len(idx)} rows (seed {ctx.seed}); "
            f"{float(self.max_auc):g} or more is a leak. Examined: {source}."),
            self._plot(rows)]
        if leaks:
            return self.result(
                Status.FAIL, "feature(s) that alone predict the outcome almost perfectly — "
                "probably recorded after the outcome or derived from it: "
                + ", ".join(f"{r[0]} (AUC {r[1]:.3f})" for r in leaks[:6]),
                metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, f"no feature alone predicts the outcome (highest "
                           f"single-feature AUC {rows[0][1]:.3f}, {rows[0][0]}; "
                           f"limit {float(self.max_auc):g})", metrics=metrics, evidence=evidence)

    def _plot(self, rows: list[list[Any]]) -> Evidence:
        plt = _pyplot()
        shown = rows[:20][::-1]
        fig, ax = plt.subplots(figsize=(6, 1 + 0.3 * len(shown)), dpi=80)
        ax.barh(range(len(shown)), [r[1] for r in shown],
                color=["#c0392b" if r[3] else "#7f8c8d" for r in shown])
        ax.set_yticks(range(len(shown)), [_short(r[0]) for r in shown], fontsize=8)
        ax.axvline(float(self.max_auc), color="#c0392b", linestyle="--", linewidth=1)
        ax.set_xlim(0.5, 1.0)
        ax.set_xlabel("AUC of the feature alone", fontsize=8)
        ax.set_title("single-feature AUC (dashed: leak threshold)", fontsize=9)
        return Evidence.file("single_feature_auc_plot", "single_feature_auc.png", _png(fig),
                             "single-feature AUC per feature", media_type="image/png")
