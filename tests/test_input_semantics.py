"""Inputs that used to be silently mis-read are a typed error or an explicit, documented mode.

- one decision rule, ``score >= threshold`` (a tie is flagged), for ``score=`` and for a model
  whose ``predict()`` is the cut of ``predict_proba`` at 0.5; a model with its own rule keeps
  its ``predict()``;
- a threshold that is not a finite number, that decides nothing, or that does not fit the
  scores (0-100 scores with the default 0.5; above 1 for probabilities);
- infinite and NaN scores, a regressor, ``predict()`` labels of another type, NaN decisions;
- a multi-class target; a sensitive attribute with one group, or a distinct value per row.

Each case goes through the Python API (the exception's type and message) and, for a few, the
command line as a user calls it (a subprocess: exit code 2, one line ``error: what — fix``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from lea_ai_audit import audit
from lea_ai_audit import errors as E
from lea_ai_audit.context import (
    DEFAULT_THRESHOLD,
    ID_LIKE_MIN_ROWS,
    ID_LIKE_SHARE,
    AuditContext,
)

N = 200


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    """200 cases: feature x, outcome y (0/1), group g (a/b), probability p, score s (0-100),
    decision f."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=N), "g": rng.choice(["a", "b"], N)})
    df["y"] = (df.x + rng.normal(size=N) > 0).astype(int)
    df.loc[:19, "x"] = 0.0  # 20 cases whose score is exactly the cut-off of 0.5
    df["p"] = 1.0 / (1.0 + np.exp(-df.x))
    df["s"] = np.round(df.p * 100)
    df["f"] = (df.p >= 0.5).astype(int)  # a tool's exported decisions
    return df


@pytest.fixture(scope="module")
def tied_model(cases: pd.DataFrame) -> LogisticRegression:
    """A logistic regression with decision x: predict_proba is exactly 0.5 where x == 0."""
    model = LogisticRegression().fit(cases[["x"]], cases.y)
    model.coef_[:] = 1.0
    model.intercept_[:] = 0.0
    return model


def build(df: pd.DataFrame, **kw) -> AuditContext:
    kw.setdefault("target", "y")
    kw.setdefault("sensitive", "g")
    return AuditContext.build(df, **kw)


# -- one threshold rule ------------------------------------------------------------------------
def test_score_column_ties_are_flagged() -> None:
    df = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0], "risk": [0.2, 0.5, 0.9, 0.5, 0.49999, 0.7],
                       "g": ["a", "a", "a", "b", "b", "b"]})
    ctx = build(df, score="risk")
    assert ctx.y_pred.tolist() == [0, 1, 1, 1, 0, 1]  # by hand: risk >= 0.5
    assert ctx.describe()["prediction_source"] == "score >= 0.5"
    assert ctx.describe()["decision_rule"] == "flagged when score column 'risk' >= 0.5"
    at_07 = build(df, score="risk", threshold=0.7)
    assert at_07.y_pred.tolist() == [0, 0, 1, 0, 0, 1]  # 0.7 itself is flagged


def test_model_and_its_exported_probabilities_agree_on_ties(cases: pd.DataFrame,
                                                           tied_model: LogisticRegression
                                                           ) -> None:
    proba = tied_model.predict_proba(cases[["x"]])[:, 1]
    tie = proba == 0.5
    assert tie.sum() == 20  # the data really holds exact ties
    # scikit-learn's own predict() puts an exact 0.5 on class 0 (decision_function > 0)
    assert (tied_model.predict(cases[["x"]])[tie] == 0).all()
    by_model = build(cases, model=tied_model, features=["x"])
    exported = cases.assign(proba=proba)
    by_score = build(exported, score="proba")
    want = (proba >= 0.5).astype(np.int8)  # the one rule, by hand
    assert np.array_equal(by_model.y_pred, want)
    assert np.array_equal(by_score.y_pred, want)
    assert by_model.y_pred[tie].tolist() == [1] * 20
    assert by_model.describe()["prediction_source"] == "model"
    assert by_model.describe()["decision_rule"] == (
        "flagged when the model's probability of 1 >= 0.5")
    # the same rule at another threshold: the model's probabilities cut at 0.3
    m03 = build(cases, model=tied_model, features=["x"], threshold=0.3)
    s03 = build(exported, score="proba", threshold=0.3)
    assert np.array_equal(m03.y_pred, (proba >= 0.3).astype(np.int8))
    assert np.array_equal(m03.y_pred, s03.y_pred)


def test_tree_leaves_at_one_half_follow_the_rule() -> None:
    """A tree whose leaf holds one positive and one negative: probability 0.5, predict() 0."""
    X = pd.DataFrame({"x": [0, 0, 1, 1, 2, 2] * 5})
    y = pd.Series([0, 1, 0, 0, 1, 1] * 5)
    df = X.assign(y=y, g=["a", "b"] * 15)
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    proba = tree.predict_proba(X)[:, 1]
    assert set(proba.tolist()) == {0.0, 0.5, 1.0}
    assert tree.predict(X)[proba == 0.5].tolist() == [0] * 10
    ctx = build(df, model=tree, features=["x"])
    assert ctx.y_pred.tolist() == (proba >= 0.5).astype(int).tolist()
    assert np.array_equal(ctx.y_pred, build(df.assign(p=proba), score="p").y_pred)


def test_a_model_with_its_own_rule_keeps_its_predict(cases: pd.DataFrame) -> None:
    base = LogisticRegression().fit(cases[["x"]], cases.y)
    tuned = FixedThresholdClassifier(base, threshold=0.3).fit(cases[["x"]], cases.y)
    ctx = build(cases, model=tuned, features=["x"])
    own = (tuned.predict(cases[["x"]]) == 1).astype(np.int8)
    assert np.array_equal(ctx.y_pred, own)
    assert not np.array_equal(own, (ctx.scores >= 0.5).astype(np.int8))
    assert ctx.decision_rule == "the model's own predict()"
    with pytest.raises(E.InputError) as info:  # a threshold it would ignore: refused
        build(cases, model=tuned, features=["x"], threshold=0.3)
    assert "threshold 0.3 is not used" in str(info.value)
    assert "own predict()" in str(info.value) and "score=" in info.value.fix


def test_a_model_without_probabilities_keeps_its_predict(cases: pd.DataFrame) -> None:
    svm = LinearSVC().fit(cases[["x"]], cases.y)
    ctx = build(cases, model=svm, features=["x"])
    assert np.array_equal(ctx.y_pred, svm.predict(cases[["x"]]).astype(np.int8))
    assert ctx.scores is not None and ctx.scores.min() < 0  # decision_function, not a probability
    with pytest.raises(E.InputError, match=r"threshold 0\.2 is not used: .*LinearSVC"):
        build(cases, model=svm, features=["x"], threshold=0.2)


def test_threshold_that_decides_nothing_is_refused(cases: pd.DataFrame) -> None:
    df = cases.assign(flagged=(cases.p >= 0.5).astype(int))
    with pytest.raises(E.InputError) as info:
        build(df, prediction="flagged", score="p", threshold=0.3)
    assert str(info.value).startswith("threshold 0.3 is not used: the decisions are prediction "
                                      "column 'flagged' — ")
    ctx = build(df, prediction="flagged", score="p")  # the default: nothing to refuse
    assert ctx.decision_rule == "the decisions in prediction column 'flagged'"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_threshold(cases: pd.DataFrame, tied_model, bad: float) -> None:
    for kw in ({"score": "p"}, {"model": tied_model, "features": ["x"]},
               {"prediction": "f", "score": "p"}):
        with pytest.raises(E.InputError) as info:
            build(cases, threshold=bad, **kw)
        assert type(info.value) is E.InputError
        assert f"threshold {bad} is not a finite number" in str(info.value)
        assert "--threshold" in info.value.fix


@pytest.mark.parametrize("bad", ["0.3", True, None])
def test_threshold_not_a_number(cases: pd.DataFrame, bad) -> None:
    with pytest.raises(E.InputError, match="threshold must be a number"):
        build(cases, score="p", threshold=bad)


@pytest.mark.parametrize(("threshold", "effect"), [(5, "no case would be flagged"),
                                                   (1.5, "no case would be flagged"),
                                                   (-1, "every case would be flagged")])
def test_threshold_outside_0_1_for_probabilities(cases: pd.DataFrame, tied_model,
                                                 threshold: float, effect: str) -> None:
    with pytest.raises(E.InputError) as info:
        build(cases, score="p", threshold=threshold)
    msg = str(info.value)
    assert f"threshold {threshold:g} is outside [0, 1]" in msg
    assert "'p'" in msg and effect in msg and "between 0 and 1" in info.value.fix
    with pytest.raises(E.InputError, match=r"the model's scores \(predict_proba\)"):
        build(cases, model=tied_model, features=["x"], threshold=threshold)


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_threshold_at_the_ends_of_0_1_is_accepted(cases: pd.DataFrame, threshold: float) -> None:
    ctx = build(cases, score="p", threshold=threshold)
    assert np.array_equal(ctx.y_pred, (cases.p >= threshold).to_numpy().astype(np.int8))


def test_scores_0_100_need_their_own_threshold(cases: pd.DataFrame) -> None:
    with pytest.raises(E.DataError) as info:
        build(cases, score="s")
    msg = str(info.value)
    assert "the scores in column 's' range from" in msg and "outside [0, 1]" in msg
    assert "(threshold=, --threshold" in info.value.fix
    ctx = build(cases, score="s", threshold=50)  # an explicit cut-off on their scale is fine
    assert np.array_equal(ctx.y_pred, (cases.s >= 50).to_numpy().astype(np.int8))
    assert ctx.y_pred.mean() < 0.9  # the default would have flagged almost every case
    assert ctx.describe()["prediction_source"] == "score >= 50"
    # with a prediction column the scores decide nothing: their scale is not refused
    build(cases.assign(f=(cases.s >= 50).astype(int)), prediction="f", score="s")


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_score_names_the_row(cases: pd.DataFrame, bad: float) -> None:
    df = cases.copy()
    df.loc[17, "p"] = bad
    for kw in ({"score": "p"}, {"score": "p", "prediction": "f"}):
        with pytest.raises(E.DataError) as info:
            build(df, **kw)
        assert str(info.value) == (f"score column 'p' has 1 infinite value(s) (first at row 17)"
                                   f" — {E.NOT_FINITE_FIX}")


def test_nan_score_names_the_row(cases: pd.DataFrame) -> None:
    df = cases.copy()
    df.loc[[23, 40], "p"] = np.nan
    with pytest.raises(E.DataError) as info:
        build(df, score="p")
    assert "score column 'p' has 2 missing value(s) (first at row 23)" in str(info.value)


def test_model_nan_or_infinite_scores_are_refused(cases: pd.DataFrame) -> None:
    class Broken(LogisticRegression):
        def predict_proba(self, X):
            out = super().predict_proba(X)
            out[5] = np.nan
            return out

    model = Broken().fit(cases[["x"]], cases.y)
    with pytest.raises(E.ModelError, match=r"returned 1 NaN score\(s\) \(first at row 5\)"):
        build(cases, model=model, features=["x"])


# -- what predict() returns --------------------------------------------------------------------
def test_regressor_is_refused(cases: pd.DataFrame) -> None:
    reg = LinearRegression().fit(cases[["x"]], cases.y)
    with pytest.raises(E.ModelError) as info:
        build(cases, model=reg, features=["x"])
    msg = str(info.value)
    assert "which are not the target's labels (0, 1): continuous values" in msg
    assert "regressor" in info.value.fix and "score=" in info.value.fix


class _Rule:
    """Not a scikit-learn estimator: a bare predict()."""

    def __init__(self, out):
        self.out = out

    def predict(self, X):
        return self.out(X)


def test_predict_labels_of_another_type_are_refused(cases: pd.DataFrame) -> None:
    model = _Rule(lambda X: np.where(X.x > 0, "1", "0"))
    with pytest.raises(E.ModelError) as info:
        build(cases, model=model, features=["x"])
    assert str(info.value).startswith("the model's predict() returns '0', '1', which are not "
                                      "the target's labels (0, 1) — the model's labels are text "
                                      "where the target holds numbers")
    # the same model trained on text labels: its classes name the mismatch
    text = LogisticRegression().fit(cases[["x"]], cases.y.astype(str))
    with pytest.raises(E.ModelError, match=r"labels are text, the target's numbers"):
        build(cases, model=text, features=["x"])


def test_predict_labels_that_are_not_the_targets(cases: pd.DataFrame) -> None:
    model = _Rule(lambda X: np.where(X.x > 0, 2, 0))
    with pytest.raises(E.ModelError, match=r"returns 0, 2, which are not the target's labels"):
        build(cases, model=model, features=["x"])


def test_nan_predictions_are_refused(cases: pd.DataFrame) -> None:
    def out(X):
        r = (X.x > 0).astype(float).to_numpy()
        r[[7, 9]] = np.nan
        return r

    with pytest.raises(E.ModelError) as info:
        build(cases, model=_Rule(out), features=["x"])
    assert str(info.value) == f"{E.MODEL_NAN.format(count=2, row=7)} — {E.MODEL_NAN_FIX}"


def test_a_bare_predict_with_the_targets_labels_is_audited(cases: pd.DataFrame) -> None:
    ctx = build(cases, model=_Rule(lambda X: (X.x > 0).astype(int).to_numpy()), features=["x"])
    assert np.array_equal(ctx.y_pred, (cases.x > 0).to_numpy().astype(np.int8))


# -- the target --------------------------------------------------------------------------------
def test_multiclass_target_is_refused_naming_positive_label(cases: pd.DataFrame) -> None:
    df = cases.assign(y=np.arange(N) % 3)
    with pytest.raises(E.DataError) as info:
        build(df, score="p")
    assert "target column 'y' must hold two values, found values 0, 1, 2" in str(info.value)
    assert info.value.fix == E.MULTICLASS_FIX and "--positive-label" in info.value.fix
    with pytest.raises(E.DataError) as info:  # a declared positive class: still refused
        build(df, score="p", positive_label=2)
    assert "recode it as 0/1 yourself (1 = 2, 0 = the other values)" in info.value.fix


# -- sensitive attributes ----------------------------------------------------------------------
def test_sensitive_attribute_with_one_group(cases: pd.DataFrame) -> None:
    with pytest.raises(E.DataError) as info:
        build(cases.assign(sex="m"), score="p", sensitive=["g", "sex"])
    assert str(info.value) == (f"sensitive column 'sex' holds one group only ('m'): nothing "
                               f"can be compared — {E.ONE_GROUP_FIX}")
    with pytest.raises(E.DataError, match=r"'sex' holds one group only \(every value missing\)"):
        build(cases.assign(sex=np.nan), score="p", sensitive=["sex"])


def test_identifier_as_sensitive_attribute(cases: pd.DataFrame) -> None:
    with pytest.raises(E.DataError) as info:
        build(cases.assign(case_id=np.arange(N)), score="p", sensitive=["g", "case_id"])
    assert str(info.value) == (f"sensitive column 'case_id' has {N} distinct values in {N} "
                               f"rows: it looks like an identifier, not a group — "
                               f"{E.ID_LIKE_FIX}")


def test_identifier_rule_boundary(cases: pd.DataFrame) -> None:
    """More distinct values than ID_LIKE_SHARE of the rows, with at least ID_LIKE_MIN_ROWS."""
    assert (ID_LIKE_MIN_ROWS, ID_LIKE_SHARE) == (20, 0.5)
    n_ok = int(N * ID_LIKE_SHARE)
    build(cases.assign(k=np.arange(N) % n_ok), score="p", sensitive="k")  # 100 groups: fine
    with pytest.raises(E.DataError, match=f"'k' has {n_ok + 1} distinct values"):
        build(cases.assign(k=np.arange(N) % (n_ok + 1)), score="p", sensitive="k")
    small = cases.head(ID_LIKE_MIN_ROWS - 1)  # too few rows to tell: allowed
    build(small.assign(k=np.arange(len(small))), score="p", sensitive="k")


def test_too_many_groups_are_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """50,000 groups in 200,000 rows (four cases each, not an identifier by the share rule):
    refused by the group cap with the reason, not audited into a report of empty groups (it
    used to run for more than ten minutes). The cap is LEA_AUDIT_MAX_GROUPS (default 1,000);
    the intersection of several attributes may have ten times as many groups."""
    rng = np.random.default_rng(7)
    n = 200_000
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.random(n),
                       "g": (rng.permutation(n) % 50_000).astype(str),
                       "h": rng.integers(0, 200, n).astype(str),
                       "k": rng.integers(0, 150, n).astype(str)})
    with pytest.raises(E.DataError) as info:
        build(df, score="p", sensitive=["g"])
    assert str(info.value) == (
        "sensitive column 'g' has 50,000 groups, more than the 1,000 a per-group audit is set "
        "for: most would hold too few cases to be evidence, and the audit would take long — "
        + E.TOO_MANY_GROUPS_FIX)
    ctx = build(df, score="p", sensitive=["h"])  # 200 groups: audited
    assert ctx.groupings()[0].n_groups == 200
    cells = len(df.groupby(["h", "k"]))  # the intersection: ~26,000 of the 30,000 cells occur
    assert cells > 10_000
    with pytest.raises(E.DataError, match=f"the intersection h & k has {cells:,} groups, more "
                                          "than the 10,000"):
        build(df, score="p", sensitive=["h", "k"])
    monkeypatch.setenv("LEA_AUDIT_MAX_GROUPS", "3000")  # the user means it
    ctx = build(df, score="p", sensitive=["h", "k"])
    assert ctx.groupings()[-1].n_groups == cells
    monkeypatch.setenv("LEA_AUDIT_MAX_GROUPS", "many")
    with pytest.raises(E.InputError, match="LEA_AUDIT_MAX_GROUPS='many' is not a whole number"):
        build(df, score="p", sensitive=["h"])


# -- the report says which rule decided ----------------------------------------------------------
def test_report_subject_states_the_rule(cases: pd.DataFrame, tied_model) -> None:
    rep = audit(cases, target="y", sensitive="g", model=tied_model, checks=["performance"],
                track=False)
    assert rep.subject["decision_rule"] == "flagged when the model's probability of 1 >= 0.5"
    assert rep.subject["threshold"] == DEFAULT_THRESHOLD
    rep = audit(cases, target="y", sensitive="g", score="s", threshold=50,
                checks=["performance"], track=False)
    assert rep.subject["prediction_source"] == "score >= 50"
    assert rep.subject["decision_rule"] == "flagged when score column 's' >= 50"


# -- the command line, as a user calls it --------------------------------------------------------
def _lea_audit(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", LEA_AUDIT_TRACKING="off")
    for var in ("COLUMNS", "LINES", "FORCE_COLOR", "PYTHONWARNINGS"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "lea_ai_audit.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=180,
                          check=False)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and " — " in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def cli_files(cases: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio

    d = tmp_path_factory.mktemp("semantics")
    cases.assign(case_id=np.arange(N), sex="m").to_csv(d / "cases.csv", index=False)
    sio.dump(LinearRegression().fit(cases[["x"]], cases.y), d / "regressor.skops")
    return d


CLI_CASES = [
    pytest.param(["--score-col", "p", "--threshold", "nan"], "threshold nan is not a finite",
                 id="threshold-nan"),
    pytest.param(["--score-col", "p", "--threshold", "inf"], "threshold inf is not a finite",
                 id="threshold-inf"),
    pytest.param(["--score-col", "p", "--threshold", "5"], "threshold 5 is outside [0, 1]",
                 id="threshold-5"),
    pytest.param(["--score-col", "p", "--threshold", "-1"], "threshold -1 is outside [0, 1]",
                 id="threshold-negative"),
    pytest.param(["--score-col", "p", "--threshold", "abc"], "invalid float value: 'abc'",
                 id="threshold-not-a-number"),
    pytest.param(["--score-col", "s"], "the scores in column 's' range from 6 to 93",
                 id="scores-0-100-default-threshold"),
    pytest.param(["--prediction-col", "f", "--score-col", "p", "--threshold", "0.3"],
                 "threshold 0.3 is not used", id="threshold-with-prediction"),
    pytest.param(["--score-col", "p", "--sensitive", "sex"],
                 "sensitive column 'sex' holds one group only ('m')", id="one-group"),
    pytest.param(["--score-col", "p", "--sensitive", "case_id"],
                 "sensitive column 'case_id' has 200 distinct values in 200 rows",
                 id="identifier-as-sensitive"),
    pytest.param(["--model", "regressor.skops", "--features", "x"],
                 "which are not the target's labels (0, 1): continuous values",
                 id="regressor-model"),
]


@pytest.mark.parametrize(("extra", "fragment"), CLI_CASES)
def test_cli_refuses_with_one_line(cli_files: Path, extra: list[str], fragment: str) -> None:
    res = _lea_audit("run", "--data", "cases.csv", "--target", "y", "--sensitive", "g",
                     *extra, "--out", "out", "-q", cwd=cli_files)
    assert res.returncode == 2, res.stdout + res.stderr
    line = _one_error_line(res.stderr)
    assert fragment in line
    assert not (cli_files / "out").exists()


def test_cli_explicit_threshold_on_0_100_scores_runs(cli_files: Path, cases: pd.DataFrame
                                                     ) -> None:
    import json

    res = _lea_audit("run", "--data", "cases.csv", "--target", "y", "--sensitive", "g",
                     "--score-col", "s", "--threshold", "50", "--checks", "performance",
                     "--out", "ok", "-q", cwd=cli_files)
    assert res.returncode in (0, 1), res.stderr
    rep = json.loads((cli_files / "ok" / "report.json").read_text(encoding="utf-8"))
    assert rep["subject"]["decision_rule"] == "flagged when score column 's' >= 50"
    assert rep["data"]["predicted_positive"] == int((cases.s >= 50).sum())


@pytest.mark.parametrize(("y_labels", "positive", "flag"), [
    ((1, 2), 2, 2), ((1, 2), 1, 1), ((0, 1), 0, 0), (("low", "high"), "high", "high")])
def test_positive_label_applies_to_the_decision_column(y_labels, positive, flag) -> None:
    """Decisions in the target's own labels are read with its positive label (hand count)."""
    rng = np.random.default_rng(3)
    n = 500
    lab = np.array(y_labels, dtype=object)
    y = lab[rng.integers(0, 2, n)]
    p = np.where(rng.random(n) < 0.8, y, np.where(y == lab[0], lab[1], lab[0]))
    df = pd.DataFrame({"y": list(y), "p": list(p), "g": rng.choice(["a", "b"], n)})
    r = audit(df, target="y", sensitive="g", prediction="p", positive_label=positive,
              checks=["fairness.group_metrics"], track=False)
    assert r.data["positives"] == int((df["y"] == positive).sum())
    assert r.data["predicted_positive"] == int((df["p"] == flag).sum())
    tp = int(((df["y"] == positive) & (df["p"] == flag)).sum())
    rows = [row for row in r.table("group_metrics:g") if row["metric"] == "tpr"]
    assert len(rows) == 2 and sum(row["numerator"] for row in rows) == tp
