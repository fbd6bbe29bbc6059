"""Audit a Spark DataFrame: exact counts from Spark aggregations, rows from a stratified sample.

When the audited data outgrows one machine, the figures that decide the fairness requirements
do not need every row on the driver: the group confusion counts are additive, so one Spark
group-by gives them exactly, and the rates, intervals and verdicts then come from the very
same code as for pandas (:mod:`lea_ai_audit.stats`). The checks that need rows (AUC and
calibration, explanations, drift, schema, leakage) run on a stratified sample in which every
group, however small, is present.

What is exact and what is sampled
---------------------------------
Exact (computed over every row by Spark):

- the confusion counts per group of every sensitive attribute and of their intersection, hence
  every rate of ``fairness.group_metrics``, ``fairness.disparity`` and
  ``performance.*`` (accuracy, precision, recall), with their intervals and verdicts;
- the number of rows, group sizes, positives and positive decisions, whether every decision
  is the same;
- missing values per column, overall and per group of each sensitive attribute
  (``ctx.population["null_counts"]``, ``["null_counts_by_group"]``);
- exact duplicate rows (``count - count distinct``), the mean score per group;
- a digest of the data (see :func:`build_context`).

Sampled (from the stratified sample, stated in ``ctx.population["sampled"]``): AUC and
calibration, explanations, drift, schema validation, leakage and the identifier scan, and any
check that reads ``ctx.data`` directly.

The sample
----------
One ``sampleBy`` on the finest stratum (the intersection of every sensitive attribute): each
stratum ``s`` of ``n_s`` rows is kept with probability
``min(1, max(sample_rows * n_s / N, min_per_group) / n_s)``, so it contributes about
``min(n_s, max(proportional share, min_per_group))`` rows; a stratum of at most
``min_per_group`` rows is taken whole. ``ctx.stratified_sample`` and ``ctx.sample_weights``
of the returned context use the exact stratum sizes of the whole data, so a sample drawn from
it by a check is representative of the whole data, not of the over-sampled small strata.
The sample is reproducible for the same ``seed`` and the same partitioning of the data.

Examples
--------
>>> from pyspark.sql import SparkSession                                   # doctest: +SKIP
>>> spark = SparkSession.builder.master("local[2]").getOrCreate()          # doctest: +SKIP
>>> sdf = spark.read.parquet("cases.parquet")                              # doctest: +SKIP
>>> from lea_ai_audit.spark import audit_spark                             # doctest: +SKIP
>>> report = audit_spark(sdf, target="reoffended", sensitive=["ethnicity", "sex"],
...                      prediction="flagged", score="risk")               # doctest: +SKIP
>>> report.data["n_rows"], report.data["population"]["sample_rows"]       # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import errors as E
from .context import (
    DEFAULT_THRESHOLD,
    MISSING_GROUP,
    AuditContext,
    _as_list,
    _check_group_count,
    _check_score_scale,
    _check_threshold,
    _threshold_unused_with_prediction,
)
from .runner import Audit
from .stats import ConfusionCounts

if TYPE_CHECKING:
    from .results import AuditReport
    from .runner import ProgressFn

__all__ = ["SparkAuditContext", "audit_spark", "build_context", "is_spark_frame",
           "report_data_info", "sample_frame"]

#: name of the temporary stratum-key column (never in the audited data)
KEY_COL = "__lea_audit_stratum__"
_KEY_SEP = "\u0001"
_KEY_NULL = "\u0002"  # not NUL: Py4J does not carry NUL through sampleBy's fractions
#: seed of the row hash behind the data digest
DIGEST_SEED = 42
DIGEST_METHOD = ("spark-xxhash64-v1: SHA-256 over the column names and Spark types, the row "
                 "count, and the sum (exact, decimal) and XOR of xxhash64(seed 42) over every "
                 "row, each row hashed as (value, is-null) for every column in order; "
                 "independent of row order and partitioning; not comparable with the pandas "
                 "digest")
#: an aggregation that returns more cells than this is refused (a continuous target, ...)
MAX_CELLS = 2_000_000

SAMPLED = ["AUC and calibration (fairness.calibration, the AUC of performance)",
           "explanations (explain.*)", "drift (data.drift)", "schema validation (data.schema)",
           "leakage (data.leakage)", "identifier scan", "any check that reads the rows "
           "(ctx.data) rather than the exact figures in ctx.population"]
EXACT = ["confusion counts per group of every sensitive attribute and their intersection "
         "(every rate, interval and verdict of fairness.group_metrics, fairness.disparity, "
         "performance)", "rows, group sizes, positives, positive decisions",
         "missing values per column, overall and per group", "exact duplicate rows",
         "mean score per group", "data digest"]


# -- detection ---------------------------------------------------------------------------------
def is_spark_frame(obj: Any) -> bool:
    """True if ``obj`` is a PySpark DataFrame (classic or Spark Connect).

    PySpark is imported only when ``obj``'s type comes from a ``pyspark`` module, so the test
    costs nothing for pandas data.

    Examples
    --------
    >>> import pandas as pd
    >>> is_spark_frame(pd.DataFrame({"a": [1]}))
    False
    """
    module = getattr(type(obj), "__module__", "") or ""
    if not module.startswith("pyspark"):
        return False
    try:
        from pyspark.sql import DataFrame
    except ImportError:  # pragma: no cover - a pyspark type without pyspark.sql
        return False
    if isinstance(obj, DataFrame):
        return True
    try:  # Spark Connect frames are a separate class in some versions
        from pyspark.sql.connect.dataframe import DataFrame as ConnectFrame
    except Exception:
        return False
    return isinstance(obj, ConnectFrame)


# -- helpers -----------------------------------------------------------------------------------
def _col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


@contextlib.contextmanager
def _arrow(spark: Any) -> Iterator[None]:
    """Arrow transfer for toPandas while inside (when pyarrow is installed), then restored."""
    key = "spark.sql.execution.arrow.pyspark.enabled"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        yield
        return
    try:
        before = spark.conf.get(key, None)
        spark.conf.set(key, "true")
    except Exception:  # a restricted session: transfer without arrow
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def _session(sdf: Any) -> Any:
    spark = getattr(sdf, "sparkSession", None)
    if spark is None:  # pragma: no cover - very old pyspark
        spark = sdf.sql_ctx.sparkSession
    return spark


def _is_float(dtype: Any) -> bool:
    from pyspark.sql.types import DoubleType, FloatType

    return isinstance(dtype, (DoubleType, FloatType))


def _hashable(sdf: Any) -> list[Any]:
    """Columns of ``sdf`` as expressions Spark can hash and compare (maps as JSON text)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    out = []
    for f in sdf.schema.fields:
        c = _col(f.name)
        out.append(F.to_json(c) if isinstance(f.dataType, MapType) else c)
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _shown(values: Sequence[Any], k: int = 6) -> str:
    vals = sorted({repr(v) for v in values})
    return ", ".join(vals[:k]) + (", ..." if len(vals) > k else "")


def sample_frame(sdf: Any, *, rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A simple random sample of about ``rows`` rows of a Spark DataFrame, as pandas.

    Used for a reference (training) data set given as a Spark frame. Returns the sample and
    ``{"n_rows": N, "sample_rows": n, "sample_seed": seed, "fraction": f}``.

    Examples
    --------
    >>> ref_pdf, info = sample_frame(ref_sdf, rows=100_000, seed=0)  # doctest: +SKIP
    """
    if int(rows) < 1:
        raise E.InputError(f"rows must be at least 1, got {rows}", "pass a positive sample size")
    n = int(sdf.count())
    if n == 0:
        raise E.DataError("the reference data has no rows", "pass the training data")
    fraction = min(1.0, int(rows) / n)
    part = sdf if fraction >= 1.0 else sdf.sample(withReplacement=False, fraction=fraction,
                                                  seed=int(seed))
    with _arrow(_session(sdf)):
        pdf = part.toPandas()
    return pdf, {"n_rows": n, "sample_rows": int(pdf.shape[0]), "sample_seed": int(seed),
                 "fraction": fraction}


# -- the context -------------------------------------------------------------------------------
class SparkAuditContext(AuditContext):
    """An :class:`~lea_ai_audit.context.AuditContext` over a sample of a Spark DataFrame.

    Its confusion counts are those of the whole data; ``data``, ``y_true``, ``y_pred`` and
    ``scores`` are the stratified sample's. ``population`` holds the exact figures of the whole
    data (see :func:`build_context`). Samples drawn with :meth:`stratified_sample` and
    weighted with :meth:`sample_weights` represent the whole data.
    """

    def __init__(self) -> None:
        super().__init__()
        self.population: dict[str, Any] = {}
        self._full_strata_sizes: np.ndarray | None = None

    def stratified_sample(self, size: int, *, min_per_group: int = 50,
                          seed: int | None = None) -> np.ndarray:
        """Sorted row positions (in the sample) of a sample stratified on :attr:`strata`.

        As :meth:`AuditContext.stratified_sample`, with each stratum's proportional share
        taken from its size in the *whole* data; limited by the rows the Spark sample holds.
        """
        full = self._full_strata_sizes
        if full is None:
            return super().stratified_sample(size, min_per_group=min_per_group, seed=seed)
        seed = self.seed if seed is None else int(seed)
        key = (int(size), int(min_per_group), seed)
        hit = self._samples.get(key)
        if hit is not None:
            return hit
        g = self.strata
        avail = np.bincount(g.codes, minlength=g.n_groups)
        total = int(full.sum())
        if size >= total:
            idx = np.arange(self.n)
        else:
            want = np.maximum(np.round(size * full / total), min_per_group)
            take = np.minimum(np.minimum(avail, full), want).astype(np.int64)
            rng = np.random.default_rng(seed)
            order = np.lexsort((rng.random(self.n), g.codes))
            starts = np.concatenate(([0], np.cumsum(avail)[:-1]))
            rank = np.arange(self.n) - np.repeat(starts, avail)
            idx = np.sort(order[rank < np.repeat(take, avail)])
        idx.setflags(write=False)
        self._samples[key] = idx
        return idx

    def sample_weights(self, idx: np.ndarray) -> np.ndarray:
        """Weights that make rows ``idx`` of the sample represent the whole data
        (rows of the stratum in the whole data / rows of it in ``idx``)."""
        full = self._full_strata_sizes
        if full is None:
            return super().sample_weights(idx)
        g = self.strata
        taken = np.bincount(g.codes[idx], minlength=g.n_groups)
        w = full / np.maximum(taken, 1)
        return w[g.codes[idx]]


@dataclass
class _Aggregate:
    """What one Spark aggregation returned, per cell (stratum key, outcome, decision)."""

    keys: list[str]
    y: list[Any]
    p: list[Any]
    n: np.ndarray
    score_sum: np.ndarray | None
    score_min: float | None  # over every row with a score (None: no score column)
    score_max: float | None
    score_inf: int  # rows whose score is +-inf
    nulls: np.ndarray  # cells x columns
    columns: list[str]
    hash_sum: Decimal
    hash_xor: int


def _aggregate(sdf: Any, *, key: Any, target: str, pred: Any, score: str | None) -> _Aggregate:
    from pyspark.sql import functions as F

    fields = sdf.schema.fields
    hashed = []
    for f, c in zip(fields, _hashable(sdf), strict=True):
        hashed.extend([c, _col(f.name).isNull()])
    row_hash = F.xxhash64(*hashed)  # seed 42 is xxhash64's fixed seed in Spark
    aggs = [F.count(F.lit(1)).alias("__n"),
            F.sum(row_hash.cast("decimal(38,0)")).alias("__hsum"),
            F.bit_xor(row_hash).alias("__hxor")]
    if score is not None:
        sc = _col(score).cast("double")
        aggs += [F.sum(sc).alias("__ssum"), F.min(sc).alias("__smin"), F.max(sc).alias("__smax"),
                 F.sum(((sc == float("inf")) | (sc == float("-inf"))).cast("long"))
                 .alias("__sinf")]
    for i, f in enumerate(fields):
        c = _col(f.name)
        cond = c.isNull() | F.isnan(c) if _is_float(f.dataType) else c.isNull()
        aggs.append(F.sum(cond.cast("long")).alias(f"__na{i}"))
    grouped = (sdf.groupBy(key.alias(KEY_COL), _col(target).alias("__y"), pred.alias("__p"))
               .agg(*aggs))
    rows = grouped.limit(MAX_CELLS + 1).collect()
    if len(rows) > MAX_CELLS:
        raise E.DataError(f"the outcome, decisions and sensitive attributes take more than "
                          f"{MAX_CELLS} combinations of values",
                          "pass a 0/1 target and 0/1 decisions, and sensitive attributes with "
                          "a few groups each")
    k = len(fields)
    nulls = np.array([[int(r[f"__na{i}"] or 0) for i in range(k)] for r in rows],
                     dtype=np.int64).reshape(len(rows), k)
    hxor = 0
    for r in rows:
        hxor ^= int(r["__hxor"]) & 0xFFFFFFFFFFFFFFFF
    return _Aggregate(
        keys=[r[KEY_COL] for r in rows], y=[r["__y"] for r in rows], p=[r["__p"] for r in rows],
        n=np.array([int(r["__n"]) for r in rows], dtype=np.int64),
        score_sum=(np.array([float(r["__ssum"] or 0.0) for r in rows]) if score else None),
        score_min=_extreme([r["__smin"] for r in rows], min) if score else None,
        score_max=_extreme([r["__smax"] for r in rows], max) if score else None,
        score_inf=sum(int(r["__sinf"] or 0) for r in rows) if score else 0,
        nulls=nulls, columns=[f.name for f in fields],
        hash_sum=sum((Decimal(r["__hsum"]) for r in rows), Decimal(0)), hash_xor=hxor)


def _extreme(values: Sequence[Any], pick: Any) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(pick(vals)) if vals else None


def _check_groups(agg: _Aggregate, sens: Sequence[str], n_rows: int) -> None:
    """Each sensitive attribute's groups in the whole data (from the aggregation's stratum
    keys), checked as for pandas: more than one group, and not an identifier."""
    for i, attr in enumerate(sens):
        values = {k if len(sens) == 1 else k.split(_KEY_SEP)[i] for k in agg.keys}
        labels = sorted(MISSING_GROUP if v == _KEY_NULL else v for v in values)
        _check_group_count(attr, labels, n_rows)


def _encode_target(agg: _Aggregate, positive: Any) -> np.ndarray:
    return np.array([1 if v == positive else 0 for v in agg.y], dtype=np.int64)


def _check_target(agg: _Aggregate, target: str) -> None:
    na = int(sum(n for v, n in zip(agg.y, agg.n, strict=True) if _missing(v)))
    if na:
        raise E.DataError(f"target column {target!r} has {na} missing value(s)",
                          E.MISSING_VALUES_FIX)
    values = {v for v in agg.y}
    if len(values) > 2:
        raise E.DataError(E.NOT_BINARY.format(role="target", name=target,
                                              found=f"values {_shown(values)}"),
                          E.MULTICLASS_FIX)
    if len(values) < 2:
        raise E.DataError(f"target column {target!r} holds one class only",
                          "audit data with both outcomes; error rates need both")


def _encode_decision(agg: _Aggregate, ctx: AuditContext, prediction: str | None) -> np.ndarray:
    role, name = ("prediction", prediction) if prediction else ("score", ctx.score_col)
    na = int(sum(n for v, n in zip(agg.p, agg.n, strict=True) if _missing(v)))
    if na:
        raise E.DataError(f"{role} column {name!r} has {na} missing value(s)",
                          E.MISSING_VALUES_FIX)
    if prediction is None:  # score >= threshold, computed by Spark
        return np.array([1 if bool(v) else 0 for v in agg.p], dtype=np.int64)
    col = ctx.data[prediction]
    values = set(agg.p)
    if pd.api.types.is_bool_dtype(col) or all(isinstance(v, bool) for v in values):
        return np.array([1 if bool(v) else 0 for v in agg.p], dtype=np.int64)
    if pd.api.types.is_numeric_dtype(col):
        if not values <= {0, 1}:
            raise E.DataError(E.NOT_BINARY.format(role="prediction", name=prediction,
                                                  found=f"values {_shown(values)}"),
                              E.NOT_BINARY_FIX)
        return np.array([1 if v == 1 else 0 for v in agg.p], dtype=np.int64)
    if len(values) > 2:
        raise E.DataError(E.NOT_BINARY.format(role="prediction", name=prediction,
                                              found=f"{len(values)} distinct values"),
                          "audit one outcome at a time: recode it as positive vs the rest")
    return np.array([1 if v == ctx.positive_label else 0 for v in agg.p], dtype=np.int64)


def _digest(sdf: Any, n_rows: int, agg: _Aggregate) -> str:
    payload = {"method": "spark-xxhash64-v1",
               "columns": [[f.name, f.dataType.simpleString()] for f in sdf.schema.fields],
               "rows": n_rows, "sum": str(agg.hash_sum), "xor": agg.hash_xor}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_context(
    sdf: Any,
    *,
    target: str,
    sensitive: str | Sequence[str],
    model: Any = None,
    prediction: str | None = None,
    score: str | None = None,
    reference: Any = None,
    reference_groups: Mapping[str, Any] | None = None,
    features: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    positive_label: Any = None,
    seed: int = 0,
    sample_rows: int = 200_000,
    min_per_group: int = 200,
    reference_rows: int | None = None,
    **kwargs: Any,
) -> SparkAuditContext:
    """Build an audit context from a Spark DataFrame (prediction and score audits only).

    Runs one Spark aggregation over every row, grouped by (the stratum of the sensitive
    attributes, outcome, decision): row counts, missing values per column, the sum of the
    scores and the row hashes of the digest; then counts the distinct rows (duplicates) and
    draws one stratified sample (``sampleBy``), collected with ``toPandas`` (Arrow when
    pyarrow is installed). The context is built on the sample with
    :meth:`AuditContext.build`, then given the exact confusion counts of the whole data.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        The cases to audit, with the outcome, the sensitive attributes and the tool's
        decisions and/or scores. Cache it first (``sdf.cache()``) if reading it is costly:
        it is scanned three times.
    target, sensitive, prediction, score, reference_groups, features, threshold, \
positive_label, seed
        As for :func:`lea_ai_audit.audit`. A decision is the ``prediction`` column, else
        ``score >= threshold`` (a score exactly at the threshold is flagged), with the checks
        of :meth:`AuditContext.build` over every row: a finite threshold that fits the
        scores (0.5 is for probabilities), no infinite scores, each sensitive attribute with
        more than one group and not an identifier.
    model : None
        Must be None: a model is not run on Spark data (predict with Spark first, e.g. with
        ``mlflow.pyfunc.spark_udf``, and audit the prediction column).
    reference : pandas or Spark DataFrame, optional
        Reference (training) data; a Spark frame is sampled to about ``reference_rows`` rows.
    sample_rows : int
        Approximate size of the stratified sample the row-based checks use.
    min_per_group : int
        Rows kept at least in every stratum (all of a smaller stratum's rows).
    reference_rows : int, optional
        Rows sampled from a Spark reference (default ``sample_rows``).
    **kwargs
        Passed to :meth:`AuditContext.build` (``attestations``, ``model_file``,
        ``decisions``, ``schema``, ``metadata``).

    Returns
    -------
    SparkAuditContext
        With ``population = {"engine": "spark", "n_rows", "sample_rows",
        "sample_rows_requested", "min_per_group", "sample_seed", "strata_fractions",
        "group_sizes", "positives", "predicted_positive", "null_counts",
        "null_counts_by_group", "duplicate_rows", "mean_score_by_group", "digest",
        "digest_method", "exact", "sampled", "reference"}``.

    Raises
    ------
    lea_ai_audit.errors.InputError
        A model with Spark data, missing columns, missing or non-binary labels.

    Examples
    --------
    >>> ctx = build_context(sdf, target="reoffended", sensitive=["ethnicity", "sex"],
    ...                     prediction="flagged")                           # doctest: +SKIP
    >>> ctx.population["n_rows"], ctx.counts(ctx.strata).n.sum()            # doctest: +SKIP
    """
    if not is_spark_frame(sdf):
        raise E.InputError(f"build_context needs a Spark DataFrame, got {type(sdf).__name__}",
                           "pass pandas data to lea_ai_audit.audit instead")
    if model is not None:
        raise E.InputError("a model cannot be run on Spark data: Spark audits take the tool's "
                           "predictions and scores",
                           "predict with Spark first (e.g. mlflow.pyfunc.spark_udf) and pass "
                           "prediction= / score= columns, or pass a pandas DataFrame")
    if int(sample_rows) < 1 or int(min_per_group) < 1:
        raise E.InputError(f"sample_rows and min_per_group must be positive, got "
                           f"{sample_rows} and {min_per_group}", "pass positive sizes")
    columns = list(sdf.columns)
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise E.DataError(f"the data has two columns named {dup!r}", "rename or drop one")
    if KEY_COL in columns:
        raise E.DataError(f"the data has a column named {KEY_COL!r}, which the audit uses",
                          "rename it")
    sens = _as_list(sensitive)
    if not sens:
        raise E.InputError("no sensitive attribute given",
                           "pass sensitive=[...] (--sensitive), e.g. ethnicity and sex")
    if prediction is None and score is None:
        raise E.InputError("nothing to audit: no predictions or scores",
                           "pass prediction= / score= columns (--prediction-col / --score-col)")
    threshold = _check_threshold(threshold)
    if prediction is not None:
        _threshold_unused_with_prediction(threshold, prediction)
    for role, name in [("target", target), *[("sensitive", s) for s in sens],
                       ("prediction", prediction), ("score", score)]:
        if name is not None and name not in columns:
            raise E.ColumnNotFoundError(role, name, columns)
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    types = {f.name: f.dataType for f in sdf.schema.fields}
    if score is not None and (not isinstance(types[score], NumericType)
                              or isinstance(types[score], BooleanType)):
        raise E.DataError(f"score column {score!r} is not numeric",
                          "pass the risk score as numbers (higher = more risk)")

    # 1. one aggregation over every row
    parts = [F.coalesce(_col(s).cast("string"), F.lit(_KEY_NULL)) for s in sens]
    key = parts[0] if len(parts) == 1 else F.concat_ws(_KEY_SEP, *parts)
    pred = _col(prediction) if prediction is not None else (_col(score) >= threshold)
    agg = _aggregate(sdf, key=key, target=target, pred=pred, score=score)
    _check_target(agg, target)
    n_rows = int(agg.n.sum())
    null_total = dict(zip(agg.columns, agg.nulls.sum(axis=0).tolist(), strict=True))
    if score is not None and null_total[score]:
        raise E.DataError(f"score column {score!r} has {null_total[score]} missing value(s)",
                          E.MISSING_VALUES_FIX)
    if score is not None and agg.score_inf:
        raise E.DataError(f"score column {score!r} has {agg.score_inf} infinite value(s)",
                          E.NOT_FINITE_FIX)
    if prediction is None and agg.score_min is not None and agg.score_max is not None:
        _check_score_scale(agg.score_min, agg.score_max, threshold,
                           what=f"the scores in column {score!r}")
    _check_groups(agg, sens, n_rows)
    n_distinct = int(sdf.select(*_hashable(sdf)).distinct().count())

    # 2. the stratified sample
    key_sizes = pd.Series(agg.n).groupby(pd.Series(agg.keys)).sum()
    base = int(sample_rows) / n_rows
    want = np.maximum(base * key_sizes.to_numpy(), int(min_per_group))
    fractions = np.minimum(1.0, want / key_sizes.to_numpy())
    spark = _session(sdf)
    keyed = sdf.withColumn(KEY_COL, key)
    if np.all(fractions >= 1.0):
        part = keyed
    else:
        part = keyed.sampleBy(KEY_COL, {k: float(f) for k, f in
                                        zip(key_sizes.index, fractions, strict=True)},
                              seed=int(seed))
    with _arrow(spark):
        sample = part.toPandas()
    sample_keys = sample.pop(KEY_COL).to_numpy()
    if sample.shape[0] == 0:
        raise E.DataError("the sample of the Spark data is empty", "raise sample_rows=")

    ref_info = None
    if is_spark_frame(reference):
        reference, ref_info = sample_frame(
            reference, rows=int(reference_rows or sample_rows), seed=int(seed))

    # 3. the context on the sample, given the exact counts of the whole data
    ctx = SparkAuditContext.build(
        sample, target=target, sensitive=sens, prediction=prediction, score=score,
        reference=reference, reference_groups=reference_groups, features=features,
        threshold=threshold, positive_label=positive_label, seed=seed, **kwargs)
    y = _encode_target(agg, ctx.positive_label)
    if len(set(y.tolist())) < 2:
        raise E.DataError(f"the target values {_shown(set(agg.y))} do not match the positive "
                          f"label {ctx.positive_label!r}", "pass positive_label=")
    p = _encode_decision(agg, ctx, prediction)

    kuniq, kcodes = np.unique(sample_keys.astype(str), return_inverse=True)
    cell = pd.Index(kuniq).get_indexer(pd.Index(agg.keys))
    if (cell < 0).any():
        lost = sorted({agg.keys[i] for i in np.flatnonzero(cell < 0)})
        shown = "; ".join(t.replace(_KEY_SEP, " & ").replace(_KEY_NULL, MISSING_GROUP)
                          for t in lost[:5])
        raise E.DataError(f"{len(lost)} group(s) of the data are missing from the sample: "
                          f"{shown}", "raise min_per_group= (each stratum keeps at least that "
                          "many rows); if it persists, report it as a bug")
    groupings = ctx.groupings()
    key_code: dict[str, np.ndarray] = {}  # grouping -> group code of each sampled key
    for g in groupings:
        lo = np.full(len(kuniq), np.iinfo(np.int64).max)
        hi = np.full(len(kuniq), -1)
        np.minimum.at(lo, kcodes, g.codes)
        np.maximum.at(hi, kcodes, g.codes)
        if not np.array_equal(lo, hi):  # pragma: no cover - a key names one group
            raise E.DataError(f"the stratum keys do not match the groups of {g.name}",
                              "report it as a bug, with the types of the sensitive columns")
        key_code[g.name] = lo
    code_of = {name: codes[cell] for name, codes in key_code.items()}  # per aggregated cell

    tp, fp, fn, tn = ((y == 1) & (p == 1), (y == 0) & (p == 1), (y == 1) & (p == 0),
                      (y == 0) & (p == 0))
    new_groupings = []
    sizes: dict[str, dict[str, int]] = {}
    full_n: dict[str, np.ndarray] = {}
    for g in groupings:
        codes, G = code_of[g.name], g.n_groups

        def add(mask: np.ndarray, codes: np.ndarray = codes, G: int = G) -> np.ndarray:
            return np.bincount(codes, weights=agg.n * mask, minlength=G).astype(np.int64)

        counts = ConfusionCounts(add(tp), add(fp), add(fn), add(tn))
        ctx._counts[g.name] = counts
        full_n[g.name] = counts.n
        if g.reference_source == "largest":  # the largest group of the whole data
            g = dataclasses.replace(g, reference=int(np.argmax(counts.n)))
        elif g.is_intersection and g.cells is not None:  # follows its attributes' references
            from .context import intersection_reference

            parts = [x for x in new_groupings if x.name in g.attributes]
            ref, source = intersection_reference(parts, g.cells, counts.n)
            g = dataclasses.replace(g, reference=ref, reference_source=source)
        new_groupings.append(g)
        sizes[g.name] = dict(zip(g.labels, counts.n.tolist(), strict=True))
    ctx._groupings = new_groupings
    overall = ConfusionCounts(*(np.array([int((agg.n * m).sum())], dtype=np.int64)
                                for m in (tp, fp, fn, tn)))
    ctx.__dict__["overall_counts"] = overall
    pred_pos = int(overall.pred_pos[0])
    ctx.__dict__["constant_decision"] = (1 if pred_pos == n_rows else 0 if pred_pos == 0
                                         else None)
    digest = _digest(sdf, n_rows, agg)
    ctx.__dict__["data_digest"] = digest
    ctx._full_strata_sizes = full_n[ctx.strata.name].astype(np.int64)

    by_group: dict[str, dict[str, dict[str, int]]] = {}
    with_na = [j for j, c in enumerate(agg.columns) if null_total[c]]
    for g in ctx.groupings(intersections=False):
        per = {}
        for j in with_na:
            k = np.bincount(code_of[g.name], weights=agg.nulls[:, j], minlength=g.n_groups)
            per[agg.columns[j]] = dict(zip(g.labels, k.astype(np.int64).tolist(), strict=True))
        by_group[g.name] = per
    mean_score: dict[str, dict[str, float]] | None = None
    if agg.score_sum is not None:
        mean_score = {}
        for g in groupings:
            s = np.bincount(code_of[g.name], weights=agg.score_sum, minlength=g.n_groups)
            mean_score[g.name] = dict(zip(g.labels, (s / np.maximum(full_n[g.name], 1)).tolist(),
                                          strict=True))
    strata = ctx.strata
    at = pd.Index(kuniq).get_indexer(key_sizes.index)
    frac_by_label = {strata.labels[int(key_code[strata.name][i])]: float(f)
                     for i, f in zip(at, fractions, strict=True)}
    ctx.population = {
        "engine": "spark",
        "spark_version": getattr(spark, "version", None),
        "n_rows": n_rows,
        "n_columns": len(agg.columns),
        "sample_rows": int(sample.shape[0]),
        "sample_rows_requested": int(sample_rows),
        "min_per_group": int(min_per_group),
        "sample_seed": int(seed),
        "strata_fractions": frac_by_label,
        "group_sizes": sizes,
        "positives": int(overall.pos[0]),
        "predicted_positive": pred_pos,
        "null_counts": {c: int(v) for c, v in null_total.items()},
        "null_counts_by_group": by_group,
        "duplicate_rows": n_rows - n_distinct,
        "mean_score_by_group": mean_score,
        "digest": digest,
        "digest_method": DIGEST_METHOD,
        "exact": list(EXACT),
        "sampled": list(SAMPLED) if sample.shape[0] < n_rows else [],
        "reference": ref_info,
    }
    return ctx


def report_data_info(ctx: AuditContext) -> dict[str, Any]:
    """The entries of a report's ``data`` section that the whole Spark data decides.

    Merge them over what the runner computed from the sample::

        data_info.update(report_data_info(ctx))

    Empty for a pandas context.
    """
    pop = getattr(ctx, "population", None)
    if not pop:
        return {}
    out: dict[str, Any] = {
        "n_rows": pop["n_rows"], "n_columns": pop["n_columns"], "sha256": pop["digest"],
        "positives": pop["positives"], "predicted_positive": pop["predicted_positive"],
        "engine": "spark",
        "population": {k: v for k, v in pop.items() if k not in ("engine",)},
    }
    if pop.get("reference"):
        ref = pop["reference"]
        out["reference"] = {"n_rows": ref["n_rows"], "sample_rows": ref["sample_rows"],
                            "sample_seed": ref["sample_seed"]}
    return out


# -- the audit ---------------------------------------------------------------------------------
@dataclass
class SparkAudit(Audit):
    """:class:`~lea_ai_audit.runner.Audit` for Spark DataFrames (see :func:`audit_spark`)."""

    sample_rows: int = 200_000
    min_per_group: int = 200
    reference_rows: int | None = None

    def context(self, data: Any, *, reference: Any = None) -> AuditContext:
        if not is_spark_frame(data):
            return super().context(data, reference=reference)
        ctx = build_context(
            data, target=self.target, sensitive=self.sensitive, model=self.model,
            prediction=self.prediction, score=self.score, reference=reference,
            reference_groups=self.reference_groups, features=self.features,
            threshold=self.threshold, positive_label=self.positive_label, seed=self.seed,
            sample_rows=self.sample_rows, min_per_group=self.min_per_group,
            reference_rows=self.reference_rows, attestations=self.attestations,
            model_file=self.model_file, decisions=self.decisions, schema=self.schema,
            metadata=self.metadata, declared_population=self.declared_population)
        self._last_ctx = ctx
        return ctx

    def _run(self, data: Any, *, reference: Any = None,
             progress: ProgressFn | None = None) -> AuditReport:
        ref_info = None
        if is_spark_frame(reference):  # sampled here: the runner reads reference.shape
            reference, ref_info = sample_frame(
                reference, rows=int(self.reference_rows or self.sample_rows), seed=self.seed)
        self._last_ctx = None
        report = super()._run(data, reference=reference, progress=progress)
        ctx = self._last_ctx
        self._last_ctx = None
        if ctx is None:
            return report
        if ref_info is not None:
            ctx.population["reference"] = ref_info
        info = {**report.data, **report_data_info(ctx)}
        return dataclasses.replace(report, data=info)


def audit_spark(sdf: Any, *, reference: Any = None, sample_rows: int = 200_000,
                min_per_group: int = 200, reference_rows: int | None = None,
                progress: ProgressFn | None = None, out: Any = None, ledger: Any = None,
                **audit_kwargs: Any) -> AuditReport:
    """Audit the predictions and scores in a Spark DataFrame against a policy pack.

    Takes the arguments of :func:`lea_ai_audit.audit` (except ``model``) and the sampling
    parameters of :func:`build_context`. The report's ``data`` section holds the figures of
    the whole data (``n_rows``, ``positives``, ``sha256`` = the Spark digest) and, under
    ``population``, the exact missing values, duplicates and group sizes, the sample's size
    and seed, and what was sampled.

    Examples
    --------
    >>> report = audit_spark(sdf, target="reoffended", sensitive=["ethnicity", "sex"],
    ...                      prediction="flagged", track=False)           # doctest: +SKIP
    >>> report.data["engine"], report.data["n_rows"]                      # doctest: +SKIP
    ('spark', 1000000)
    """
    return SparkAudit(sample_rows=sample_rows, min_per_group=min_per_group,
                      reference_rows=reference_rows, **audit_kwargs).run(
                          sdf, reference=reference, progress=progress, out=out,
                          ledger=ledger)
