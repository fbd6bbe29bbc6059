"""The audit() entry point: models, vendor scores, subsets, isolation of failing checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _compare import assert_same_metrics
from sklearn.linear_model import LogisticRegression

from lea_ai_audit import Audit, AuditReport, Status, audit
from lea_ai_audit.checks import Check, register
from lea_ai_audit.datasets import FEATURES, make_demo
from lea_ai_audit.errors import DataError, InputError, ModelError
from lea_ai_audit.results import CheckResult


@pytest.fixture(scope="module")
def demo():
    return make_demo(6000, bias=0.6, seed=3)


def test_model_predictions_computed_once_and_match_the_model(demo) -> None:
    calls = {"predict": 0, "predict_proba": 0}
    full = {"predict": 0, "predict_proba": 0}  # calls on the audited rows as they are
    model = demo.model
    audited = demo.test[FEATURES]

    class Counting:
        classes_ = model.classes_
        feature_names_in_ = model.feature_names_in_
        n_features_in_ = model.n_features_in_

        def predict(self, X):
            calls["predict"] += 1
            full["predict"] += X.reset_index(drop=True).equals(audited)
            return model.predict(X)

        def predict_proba(self, X):
            calls["predict_proba"] += 1
            full["predict_proba"] += X.reset_index(drop=True).equals(audited)
            return model.predict_proba(X)

        def __sklearn_is_fitted__(self):
            return True

    rep = audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"], model=Counting(),
                checks=["fairness", "performance"])
    assert calls == {"predict": 1, "predict_proba": 1}
    # the whole policy: checks that ask the model about perturbed rows call it again, but the
    # audited rows themselves are predicted once
    audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"], model=Counting())
    assert full == {"predict": 2, "predict_proba": 2}  # once per audit
    perf = next(c for c in rep.checks if c.check_id == "performance.metrics")
    from sklearn.metrics import accuracy_score, roc_auc_score
    y = demo.test.reoffended
    assert perf.metrics["accuracy"] == pytest.approx(accuracy_score(y, model.predict(
        demo.test[FEATURES])))
    assert perf.metrics["auc"] == pytest.approx(roc_auc_score(
        y, model.predict_proba(demo.test[FEATURES])[:, 1]))


@pytest.mark.parametrize("kind", ["lightgbm", "pipeline", "threshold-0.3", "subclass"])
def test_decisions_are_the_models_own_predict(demo, kind) -> None:
    """Labels taken from predict_proba (argmax families) equal predict(); models whose predict
    is not the most probable class (a tuned threshold, an unknown subclass) are asked."""
    from sklearn.model_selection import FixedThresholdClassifier

    X, y = demo.train[FEATURES], demo.train.reoffended
    if kind == "lightgbm":
        import lightgbm as lgb

        num = [f for f in FEATURES if pd.api.types.is_numeric_dtype(X[f])]
        X = X[num]
        model = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, y)
    elif kind == "pipeline":
        model = demo.model
    elif kind == "threshold-0.3":
        model = FixedThresholdClassifier(demo.model, threshold=0.3).fit(X, y)
    else:
        class Shifted(LogisticRegression):  # predict differs from argmax(predict_proba)
            def predict(self, X):
                return (self.predict_proba(X)[:, 1] >= 0.2).astype(int)

        num = [f for f in FEATURES if pd.api.types.is_numeric_dtype(X[f])]
        X = X[num]
        model = Shifted(max_iter=500).fit(X, y)
    from lea_ai_audit.context import AuditContext

    ctx = AuditContext.build(demo.test, target="reoffended", sensitive=["sex"], model=model,
                             features=list(X.columns))
    want = (np.asarray(model.predict(demo.test[list(X.columns)])) == 1).astype(np.int8)
    assert np.array_equal(ctx.y_pred, want)
    if kind in ("threshold-0.3", "subclass"):  # these differ from the argmax somewhere
        argmax = model.predict_proba(demo.test[list(X.columns)]).argmax(axis=1)
        assert (argmax != want).any()


def test_vendor_scores_equal_the_model_audit(demo) -> None:
    """Auditing the model and auditing its exported decisions give the same fairness figures."""
    kw = dict(target="reoffended", sensitive=["ethnicity", "sex"], checks=["fairness.disparity"])
    by_model = audit(demo.test, model=demo.model, **kw)
    by_columns = audit(demo.test, prediction="flagged", score="risk", **kw)
    for a, b in zip(by_model.checks, by_columns.checks, strict=True):
        assert a.status is b.status
        assert_same_metrics(b.metrics, a.metrics, abs=1e-9)


def test_score_only_uses_threshold(demo) -> None:
    rep = audit(demo.test, target="reoffended", sensitive="sex", score="risk", threshold=0.3,
                checks=["performance"])
    expected = (demo.test.risk >= 0.3).astype(int)
    assert rep.subject["prediction_source"] == "score >= 0.3"
    from sklearn.metrics import recall_score
    assert rep.checks[0].metrics["recall"] == pytest.approx(
        recall_score(demo.test.reoffended, expected))


def test_checks_subset_by_prefix(demo) -> None:
    rep = audit(demo.test, target="reoffended", sensitive=["sex"], prediction="flagged",
                checks=["fairness"])
    assert rep.checks and all(c.check_id.startswith("fairness") for c in rep.checks)


def test_audit_object_reuse_equals_function(demo) -> None:
    a = Audit(target="reoffended", sensitive=["ethnicity"], prediction="flagged", seed=4,
              checks=["fairness.disparity"])
    r1, r2 = a.run(demo.test), audit(demo.test, target="reoffended", sensitive=["ethnicity"],
                                     prediction="flagged", seed=4, checks=["fairness.disparity"])
    assert [c.metrics for c in r1.checks] == [c.metrics for c in r2.checks]
    assert r1.data["sha256"] == r2.data["sha256"]


def test_pipeline_on_string_labels(demo) -> None:
    df = demo.test.copy()
    df["outcome"] = np.where(df.reoffended == 1, "yes", "no")
    model = LogisticRegression(max_iter=500).fit(df[["age", "prior_contacts"]], df.outcome)
    with pytest.raises(DataError, match="positive_label"):
        audit(df, target="outcome", sensitive=["sex"], model=model)
    rep = audit(df, target="outcome", sensitive=["sex"], model=model, positive_label="yes",
                checks=["performance"])
    expected = (model.predict(df[["age", "prior_contacts"]]) == "yes")
    from sklearn.metrics import precision_score
    assert rep.checks[0].metrics["precision"] == pytest.approx(
        precision_score(df.reoffended, expected))


def test_unfitted_model_is_refused(demo) -> None:
    with pytest.raises(ModelError, match="not fitted"):
        audit(demo.test, target="reoffended", sensitive=["sex"], model=LogisticRegression())


def test_model_and_columns_together_refused(demo) -> None:
    with pytest.raises(InputError, match="either"):
        audit(demo.test, target="reoffended", sensitive=["sex"], model=demo.model,
              prediction="flagged")


def test_model_with_missing_features(demo) -> None:
    with pytest.raises(ModelError, match="prior_contacts"):
        audit(demo.test.drop(columns=["prior_contacts"]), target="reoffended",
              sensitive=["sex"], model=demo.model)


def test_a_crashing_check_is_an_error_result_not_a_crash(demo, tmp_path) -> None:
    @register
    class Boom(Check):
        id = "test.boom"
        title = "always raises"

        def run(self, ctx) -> CheckResult:
            raise RuntimeError("kaboom")

    pack = tmp_path / "p.yaml"
    pack.write_text("""
id: boom
version: "1"
title: t
requirements:
  - {id: boom, clauses: ["AI Act Art. 15"], check: test.boom}
  - {id: boom-advisory, clauses: ["AI Act Art. 15"], check: test.boom, blocking: false}
  - id: fpr
    clauses: ["Council 13083/1/20 §26"]
    check: fairness.disparity
    params: {metric: fpr, max_difference: 0.1}
""")
    rep = audit(demo.test, target="reoffended", sensitive=["sex"], prediction="flagged",
                policy=str(pack))
    boom, advisory, fpr = rep.checks
    assert boom.status is Status.ERROR and "kaboom" in boom.message
    assert boom.evidence_named("traceback").data
    assert advisory.status is Status.ERROR and not advisory.blocking
    assert fpr.status in (Status.PASS, Status.FAIL, Status.WARN)  # the others still ran
    assert rep.status is (Status.FAIL if fpr.status is Status.FAIL else Status.ERROR)
    assert AuditReport.from_json(rep.to_json()) == rep


def test_non_blocking_failure_is_reported_as_warning(demo, tmp_path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text("""
id: advisory
version: "1"
title: t
requirements:
  - id: fpr
    clauses: ["Council 13083/1/20 §26"]
    check: fairness.disparity
    blocking: false
    params: {metric: fpr, max_difference: 0.01, decision_rule: point}
""")
    rep = audit(demo.test, target="reoffended", sensitive=["ethnicity"], prediction="flagged",
                policy=str(pack))
    (r,) = rep.checks
    assert r.raw_status is Status.FAIL and r.status is Status.WARN
    assert rep.status is Status.WARN and rep.passed


def test_sensitive_missing_values_form_their_own_group(demo) -> None:
    df = demo.test.copy()
    df.loc[df.index[:50], "ethnicity"] = None
    rep = audit(df, target="reoffended", sensitive=["ethnicity"], prediction="flagged",
                checks=["fairness.group_metrics"])
    assert rep.checks[0].metrics["n/ethnicity/(missing)"] == 50


def test_attestation_pass_only_when_stated(demo) -> None:
    kw = dict(target="reoffended", sensitive=["sex"], prediction="flagged",
              checks=["oversight.attestation"])
    rep = audit(demo.test, **kw)
    assert rep.checks and all(c.status is Status.WARN for c in rep.checks)
    items = {c.params["item"]: "done, see training register 2026-11" for c in rep.checks}
    rep2 = audit(demo.test, attestations=items, **kw)
    assert all(c.status is Status.PASS for c in rep2.checks)


def test_data_digest_is_content_based(demo) -> None:
    kw = dict(target="reoffended", sensitive=["sex"], prediction="flagged",
              checks=["fairness.group_metrics"])
    a = audit(demo.test, **kw).data["sha256"]
    shuffled_index = demo.test.set_axis(np.arange(len(demo.test))[::-1] + 100)
    assert audit(shuffled_index, **kw).data["sha256"] == a
    changed = demo.test.copy()
    changed.loc[0, "age"] += 1
    assert audit(changed, **kw).data["sha256"] != a


def test_data_must_be_a_frame() -> None:
    with pytest.raises(InputError, match="DataFrame"):
        audit("cases.csv", target="y", sensitive=["s"], prediction="p")
    with pytest.raises(InputError, match="DataFrame"):
        audit({"y": [0, 1]}, target="y", sensitive=["s"], prediction="p")
    with pytest.raises(DataError, match="no rows"):
        audit(pd.DataFrame({"y": [], "s": [], "p": []}), target="y", sensitive=["s"],
              prediction="p")
