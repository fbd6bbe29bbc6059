"""The input rules of tests/test_input_semantics.py on Spark data: the same decision rule
(``score >= threshold``, a tie is flagged) counted by Spark over every row, and the same typed
errors, decided on the whole data (not the sample) by the same helpers as for pandas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit import errors as E
from lea_ai_audit.context import AuditContext

N = 400


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], N), "y": rng.integers(0, 2, N)})
    df["p"] = np.round(rng.uniform(size=N), 2)
    df.loc[:29, "p"] = 0.5  # exact ties at the default cut-off
    df["s"] = np.round(df.p * 100)
    df["f"] = (df.p >= 0.5).astype(int)
    df["case_id"] = np.arange(N)
    return df


def _build(spark: Any, df: pd.DataFrame, **kw: Any) -> Any:
    from lea_ai_audit.spark import build_context

    kw.setdefault("target", "y")
    kw.setdefault("sensitive", ["g"])
    return build_context(spark.createDataFrame(df), sample_rows=100, min_per_group=20, **kw)


def _pandas_error(df: pd.DataFrame, **kw: Any) -> str:
    kw.setdefault("target", "y")
    kw.setdefault("sensitive", ["g"])
    with pytest.raises(E.LeaAuditError) as info:
        AuditContext.build(df, **kw)
    return str(info.value)


def test_ties_are_flagged_on_every_row(spark: Any, cases: pd.DataFrame) -> None:
    ctx = _build(spark, cases, score="p")
    assert ctx.population["predicted_positive"] == int((cases.p >= 0.5).sum())  # by hand
    assert ctx.population["sample_rows"] < N  # the count is not the sample's
    ctx50 = _build(spark, cases, score="s", threshold=50)
    assert ctx50.population["predicted_positive"] == int((cases.s >= 50).sum())


@pytest.mark.parametrize(("kw", "error", "fragment"), [
    pytest.param({"score": "p", "threshold": float("nan")}, E.InputError,
                 "threshold nan is not a finite number", id="threshold-nan"),
    pytest.param({"score": "p", "threshold": 5}, E.InputError,
                 "threshold 5 is outside [0, 1], but the scores in column 'p'", id="threshold-5"),
    pytest.param({"score": "s"}, E.DataError, "the scores in column 's' range from",
                 id="scores-0-100-default-threshold"),
    pytest.param({"prediction": "f", "score": "p", "threshold": 0.3}, E.InputError,
                 "threshold 0.3 is not used", id="threshold-with-prediction"),
    pytest.param({"score": "p", "sensitive": ["g", "one"]}, E.DataError,
                 "sensitive column 'one' holds one group only ('x')", id="one-group"),
    pytest.param({"score": "p", "sensitive": ["case_id"]}, E.DataError,
                 f"sensitive column 'case_id' has {N} distinct values in {N} rows",
                 id="identifier-as-sensitive"),
])
def test_same_typed_errors_as_pandas(spark: Any, cases: pd.DataFrame, kw: dict[str, Any],
                                     error: type, fragment: str) -> None:
    df = cases.assign(one="x")
    with pytest.raises(error) as info:
        _build(spark, df, **kw)
    assert type(info.value) is error
    assert fragment in str(info.value)
    assert str(info.value) == _pandas_error(df, **kw)  # the same helper, the same words


def test_infinite_score_is_refused(spark: Any, cases: pd.DataFrame) -> None:
    df = cases.copy()
    df.loc[[5, 8], "p"] = np.inf
    with pytest.raises(E.DataError) as info:
        _build(spark, df, score="p")
    assert str(info.value) == f"score column 'p' has 2 infinite value(s) — {E.NOT_FINITE_FIX}"
