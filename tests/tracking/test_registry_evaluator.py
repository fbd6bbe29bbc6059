"""``lea-audit gate --model-uri`` on a real model registry, and the ``mlflow.models.evaluate``
plugin found through its entry point."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lea_ai_audit import audit
from lea_ai_audit.cli import main
from lea_ai_audit.datasets import FEATURES, make_demo
from lea_ai_audit.results import AuditReport

ENTRY_POINT = "lea_ai_audit = lea_ai_audit.evaluator:LeaAuditEvaluator"


@pytest.fixture(scope="module")
def registry(mlflow_server: str, demo_data):
    """Model 'triage' registered twice (versions 1 and 2) on the test server."""
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "registry-test")
        for _ in range(2):
            with mlflow.start_run():
                mlflow.sklearn.log_model(demo_data.model, name="model",
                                         registered_model_name="triage",
                                         serialization_format="cloudpickle")
    return mlflow_server


def _report(tmp: Path, *, bias: float, model_uri: str) -> Path:
    demo = make_demo(4000, bias=bias, seed=1)
    audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"], model=demo.model,
          features=FEATURES, data_source={"model_uri": model_uri}, out=tmp, track=False)
    return tmp


def _gate(report: Path, uri: str, server: str, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["gate", str(report), "-q", "--model-uri", uri, "--tracking-uri", server])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _alias_version(client: MlflowClient) -> str | None:
    try:
        return str(client.get_model_version_by_alias("triage", "audited").version)
    except Exception:
        return None


def test_gate_tags_the_version_and_sets_the_alias_only_when_open(registry: str, tmp_path,
                                                                 capsys) -> None:
    client = MlflowClient(registry)
    fair = _report(tmp_path / "fair", bias=0.0, model_uri="models:/triage/1")
    biased2 = _report(tmp_path / "biased2", bias=0.6, model_uri="models:/triage/2")

    rc, out, _ = _gate(fair, "models:/triage/1", registry, capsys)
    assert rc == 0, out
    assert "alias 'audited' set" in out
    assert _alias_version(client) == "1"
    tags = client.get_model_version("triage", "1").tags
    rep = AuditReport.load(fair)
    assert tags["lea.audit.gate"] == "open"
    assert tags["lea.audit.report_id"] == rep.report_id
    assert tags["lea.audit.report_sha256"] == rep.digest()
    assert tags["lea.audit.status"] == rep.status.value

    rc, out, _ = _gate(biased2, "models:/triage/2", registry, capsys)
    assert rc == 1
    v2 = client.get_model_version("triage", "2").tags
    assert v2["lea.audit.gate"] == "closed" and v2["lea.audit.status"] == "fail"
    assert "fpr-parity failed" in v2["lea.audit.reasons"]
    assert _alias_version(client) == "1"  # not moved to the failing version

    # a report for version 1 gated against version 2: the gate stays closed
    rc, out, err = _gate(fair, "models:/triage/2", registry, capsys)
    assert rc == 1
    assert "audited models:/triage/1, not models:/triage/2" in err
    assert _alias_version(client) == "1"

    # version 1 re-audited and failing: its alias is withdrawn
    biased1 = _report(tmp_path / "biased1", bias=0.6, model_uri="models:/triage/1")
    rc, out, _ = _gate(biased1, "models:/triage/1", registry, capsys)
    assert rc == 1 and "removed" in out
    assert _alias_version(client) is None
    assert client.get_model_version("triage", "1").tags["lea.audit.gate"] == "closed"


def test_gate_bad_model_uri_is_one_line_error(registry: str, tmp_path, capsys) -> None:
    fair = _report(tmp_path / "fair", bias=0.0, model_uri="models:/triage/1")
    rc, _, err = _gate(fair, "triage-v1", registry, capsys)
    assert rc == 2 and err.startswith("error: model URI 'triage-v1'") and err.count("\n") == 1
    rc, _, err = _gate(fair, "models:/triage/99", registry, capsys)
    assert rc == 2 and "could not be recorded on models:/triage/99" in err


# -- the evaluator plugin ----------------------------------------------------------------------
@pytest.fixture()
def entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The plugin registered the way pip does it: an entry point in a dist-info on sys.path.

    These are the lines pyproject.toml gives the installed package ([project.entry-points]).
    """
    dist = tmp_path / "site" / "lea_ai_audit_plugin_test-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lea-ai-audit-plugin-test\n"
                                   "Version: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[mlflow.model_evaluator]\n{ENTRY_POINT}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry

    _model_evaluation_registry.register_entrypoints()
    yield _model_evaluation_registry
    _model_evaluation_registry._registry.pop("lea_ai_audit", None)


def test_evaluator_plugin_found_by_entry_point(entry_point) -> None:
    assert entry_point.is_registered("lea_ai_audit")
    ev = entry_point.get_evaluator("lea_ai_audit")
    assert type(ev).__name__ == "LeaAuditEvaluator"
    assert ev.can_evaluate(model_type="classifier", evaluator_config={})
    assert not ev.can_evaluate(model_type="regressor", evaluator_config={})


# the checks the model-based tests run: every kind that needs the model or the training data
MODEL_CHECKS = ["explain.global_importance", "explain.local", "explain.additivity", "robustness",
                "data.drift", "fairness.disparity"]
NEEDS_MODEL = ("global-explanation", "per-decision-explanations", "explanation-additivity",
               "robustness")


def _metrics(rep: AuditReport, requirement: str) -> dict:
    """A result's metrics as the report writes them (NaN as null), to compare two reports."""
    return rep.result(requirement).to_dict()["metrics"]


def _same_results(got: AuditReport, want: AuditReport) -> None:
    assert [c.requirement_id for c in got.checks] == [c.requirement_id for c in want.checks]
    for c in want.checks:
        assert got.result(c.requirement_id).status == c.status, c.requirement_id
        assert _metrics(got, c.requirement_id) == _metrics(want, c.requirement_id), \
            c.requirement_id


def _logged_report(client: MlflowClient, run_id: str, tmp_path: Path) -> AuditReport:
    path = client.download_artifacts(run_id, "lea_ai_audit/report.json", str(tmp_path))
    return AuditReport.from_json(Path(path).read_bytes())


@pytest.fixture()
def tracking(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "evaluate-test")
    return MlflowClient(mlflow_server)


@pytest.fixture(scope="module")
def logged_model(mlflow_server: str, demo_data) -> tuple[str, str]:
    """(model URI, runs:/ URI of the training data as Parquet), logged in one run."""
    import tempfile

    import mlflow

    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as tmp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "evaluate-models")
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(demo_data.model, name="model",
                                            serialization_format="cloudpickle",
                                            pip_requirements=["scikit-learn"],  # not inferred
                                            input_example=demo_data.train[FEATURES].head(3))
            demo_data.train.to_parquet(Path(tmp) / "train.parquet")
            mlflow.log_artifact(str(Path(tmp) / "train.parquet"))
    return info.model_uri, f"runs:/{run.info.run_id}/train.parquet"


def test_evaluator_finds_the_model_and_its_inputs(demo_data) -> None:
    """The model's inputs: the config's, else the signature's, else feature_names_in_."""
    from types import SimpleNamespace

    import numpy as np
    from mlflow.types import ColSpec, Schema

    from lea_ai_audit.evaluator import _model_features, _sklearn_like

    signed = SimpleNamespace(metadata=SimpleNamespace(
        get_input_schema=lambda: Schema([ColSpec("double", "b"), ColSpec("double", "a")])))
    unsigned = SimpleNamespace(metadata=SimpleNamespace(get_input_schema=lambda: None))
    raw = SimpleNamespace(feature_names_in_=np.array(["a", "c"]))
    assert _model_features({"features": ["x"]}, signed, raw)[0] == ["x"]
    assert _model_features({}, signed, raw) == (["b", "a"], "the model's signature")
    assert _model_features({}, unsigned, raw) == (["a", "c"], "the model's feature_names_in_")
    assert _model_features({}, unsigned, SimpleNamespace()) == (None, "")
    assert _sklearn_like(demo_data.model)
    booster = SimpleNamespace(predict=lambda X: X)  # predict only, as xgboost's Booster
    assert not _sklearn_like(booster) and not _sklearn_like(None)


def test_mlflow_evaluate_runs_the_audit(entry_point, tracking: MlflowClient, demo_data,
                                        tmp_path) -> None:
    import mlflow

    df = demo_data.test
    config = {"sensitive": ["ethnicity", "sex"], "score": "risk",
              "checks": ["fairness.disparity", "performance"]}
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(data=df, targets="reoffended", predictions="flagged",
                                        model_type="classifier", evaluators=["lea_ai_audit"],
                                        evaluator_config={"lea_ai_audit": config})
    direct = audit(df, target="reoffended", sensitive=["ethnicity", "sex"],
                   prediction="flagged", score="risk", checks=config["checks"], track=False)
    want = direct.result("fpr-parity").metrics["fpr/ethnicity/minority_a"]
    assert result.metrics["fpr-parity/fpr/ethnicity/minority_a"] == pytest.approx(want)
    assert result.metrics["audit/passed"] == (1.0 if direct.passed else 0.0)
    logged = tracking.get_run(run.info.run_id).data
    assert logged.tags["lea.status"] == direct.status.value
    assert logged.metrics["declared-performance/auc"] == pytest.approx(
        direct.result("declared-performance").metrics["auc"])
    names = {a.path for a in tracking.list_artifacts(run.info.run_id, "lea_ai_audit")}
    assert {"lea_ai_audit/report.json", "lea_ai_audit/card.html"} <= names
    rep = _logged_report(tracking, run.info.run_id, tmp_path)
    _same_results(rep, direct)
    # the user's column names, not placeholders
    assert rep.subject["target"] == "reoffended"
    assert rep.subject["prediction_column"] == "flagged"
    assert rep.subject["score_column"] == "risk"
    assert result.artifacts["lea_ai_audit_report"].content == json.loads(
        rep.to_json())


def test_mlflow_evaluate_with_a_model_runs_every_check(entry_point, tracking: MlflowClient,
                                                       logged_model, demo_data,
                                                       tmp_path) -> None:
    """The model logged with mlflow.sklearn is audited as audit(model=...) audits it."""
    import mlflow
    from mlflow.models.evaluation.artifacts import JsonEvaluationArtifact

    model_uri, _ = logged_model
    df = demo_data.test
    config = {"sensitive": ["ethnicity", "sex"], "reference": demo_data.train, "seed": 0,
              "checks": MODEL_CHECKS}
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(model_uri, data=df, targets="reoffended",
                                        model_type="classifier", evaluators=["lea_ai_audit"],
                                        evaluator_config={"lea_ai_audit": config})
    direct = audit(df, target="reoffended", sensitive=["ethnicity", "sex"],
                   model=demo_data.model, features=FEATURES, reference=demo_data.train,
                   seed=0, checks=MODEL_CHECKS, track=False)
    rep = _logged_report(tracking, run.info.run_id, tmp_path)
    for rid in (*NEEDS_MODEL, "data-drift"):
        assert rep.result(rid).status.value not in ("skipped", "error"), rep.result(rid)
        assert "no model" not in rep.result(rid).message
    _same_results(rep, direct)
    assert rep.subject["target"] == "reoffended"
    assert rep.subject["features"] == FEATURES  # the model's signature
    assert rep.subject["prediction_source"] == "model"
    assert rep.data["reference"]["n_rows"] == len(demo_data.train)
    gi = direct.result("global-explanation").metrics
    key = next(k for k, v in gi.items() if isinstance(v, float))
    assert result.metrics[f"global-explanation/{key}"] == pytest.approx(gi[key])

    arts = result.artifacts
    assert {"lea_ai_audit_report", "lea_ai_audit_card_json", "lea_ai_audit_card_md",
            "lea_ai_audit_card_html"} <= set(arts)
    assert arts["lea_ai_audit_report"].content == json.loads(rep.to_json())
    assert arts["lea_ai_audit_report"].uri.endswith("/lea_ai_audit/report.json")
    # each URI is the file in the run: loaded again from the server, the same content
    again = JsonEvaluationArtifact(uri=arts["lea_ai_audit_report"].uri)
    assert again.content == arts["lea_ai_audit_report"].content
    card = arts["lea_ai_audit_card_json"].content
    assert card["report"]["report_id"] == rep.report_id
    assert card["report"]["sha256"] == rep.digest()
    assert "reoffended" in arts["lea_ai_audit_card_md"].content
    assert arts["lea_ai_audit_card_html"].content.lstrip().lower().startswith("<!doctype html")
    result.save(tmp_path / "saved")  # mlflow's own round trip of the artifacts
    assert (tmp_path / "saved" / "artifacts" / "card.md").is_file()


def test_mlflow_evaluate_reads_the_reference_from_a_runs_uri(entry_point, tracking, logged_model,
                                                             demo_data, tmp_path) -> None:
    import mlflow

    model_uri, train_uri = logged_model
    checks = ["data.schema", "robustness"]
    with mlflow.start_run() as run:
        mlflow.models.evaluate(model_uri, data=demo_data.test, targets="reoffended",
                               model_type="classifier", evaluators=["lea_ai_audit"],
                               evaluator_config={"lea_ai_audit": {
                                   "sensitive": ["ethnicity", "sex"], "reference": train_uri,
                                   "checks": checks}})
    direct = audit(demo_data.test, target="reoffended", sensitive=["ethnicity", "sex"],
                   model=demo_data.model, features=FEATURES, reference=demo_data.train,
                   checks=checks, track=False)
    rep = _logged_report(tracking, run.info.run_id, tmp_path)
    _same_results(rep, direct)
    assert rep.result("data-schema").status.value not in ("skipped", "error")
    assert "inferred from the reference data" in rep.result("data-schema").message
    assert rep.data["reference"] == direct.data["reference"]  # the same rows, read back


@pytest.mark.parametrize("kind", ["parquet file", "mlflow dataset"])
def test_mlflow_evaluate_reference_from_a_file_or_dataset(entry_point, tracking, demo_data,
                                                          tmp_path, kind: str) -> None:
    import mlflow

    if kind == "parquet file":
        reference = str(tmp_path / "train.parquet")
        demo_data.train.to_parquet(reference)
    else:
        reference = mlflow.data.from_pandas(demo_data.train)
    checks = ["data.schema"]
    with mlflow.start_run() as run:
        mlflow.models.evaluate(data=demo_data.test, targets="reoffended", predictions="flagged",
                               model_type="classifier", evaluators=["lea_ai_audit"],
                               evaluator_config={"lea_ai_audit": {
                                   "sensitive": ["ethnicity", "sex"], "reference": reference,
                                   "features": FEATURES, "checks": checks}})
    direct = audit(demo_data.test, target="reoffended", sensitive=["ethnicity", "sex"],
                   prediction="flagged", features=FEATURES, reference=demo_data.train,
                   checks=checks, track=False)
    rep = _logged_report(tracking, run.info.run_id, tmp_path / "dl")
    _same_results(rep, direct)
    assert rep.data["reference"] == direct.data["reference"]


def test_mlflow_evaluate_a_model_without_an_estimator_audits_its_predictions(
        entry_point, tracking, demo_data, tmp_path) -> None:
    """A pyfunc model with no scikit-learn estimator inside: its predictions, with a warning."""
    import mlflow

    from lea_ai_audit.evaluator import EvaluatorWarning

    model = demo_data.model
    df = demo_data.test
    checks = ["fairness.disparity", "explain.global_importance"]
    with mlflow.start_run() as run, pytest.warns(EvaluatorWarning, match="predictions of the "
                                                 "model.*explanation and robustness"):
        mlflow.models.evaluate(lambda X: model.predict(X[FEATURES]), data=df,
                               targets="reoffended", model_type="classifier",
                               evaluators=["lea_ai_audit"],
                               evaluator_config={"lea_ai_audit": {
                                   "sensitive": ["ethnicity", "sex"], "checks": checks}})
    rep = _logged_report(tracking, run.info.run_id, tmp_path)
    direct = audit(df.assign(prediction=model.predict(df[FEATURES])), target="reoffended",
                   sensitive=["ethnicity", "sex"], prediction="prediction", checks=checks,
                   track=False)
    _same_results(rep, direct)
    assert rep.result("global-explanation").status.value == "skipped"  # said, not silent
    assert rep.subject["prediction_column"] == "prediction"


def test_mlflow_evaluate_refuses_typos_and_colliding_names(entry_point, tracking, logged_model,
                                                           demo_data) -> None:
    import mlflow

    from lea_ai_audit.errors import InputError

    model_uri, _ = logged_model
    df = demo_data.test
    base = {"sensitive": ["ethnicity", "sex"], "checks": ["fairness.disparity"]}

    def run(model, config, **kw):
        with mlflow.start_run():
            mlflow.models.evaluate(model, data=df, targets="reoffended",
                                   model_type="classifier", evaluators=["lea_ai_audit"],
                                   evaluator_config={"lea_ai_audit": config}, **kw)

    with pytest.raises(InputError, match=r"key 'refrence' .*did you mean 'reference'.* use only "
                                         r"sensitive, features, reference"):
        run(model_uri, {**base, "refrence": demo_data.train})
    with pytest.raises(InputError, match=r"reference 'runs:/0123abc/train.parquet' could not "
                                         r"be downloaded \(.*\) — pass the URI of a CSV"):
        run(model_uri, {**base, "reference": "runs:/0123abc/train.parquet"})
    with pytest.raises(InputError, match=r"reference file 'no-such\.csv' does not exist"):
        run(model_uri, {**base, "reference": "no-such.csv"})
    with pytest.raises(InputError, match="names the target 'reoffended' as a model input"):
        run(model_uri, {**base, "features": [*FEATURES, "reoffended"]})
    with pytest.raises(InputError, match="'score' names a score column, but a model"):
        run(model_uri, {**base, "score": "risk"})
    # the model's decisions named like a column of the data
    with pytest.raises(InputError, match="prediction column 'risk' is also a column"), \
            pytest.warns(Warning):
        run(lambda X: demo_data.model.predict(X[FEATURES]), base, predictions="risk")
    with pytest.raises(InputError, match=r"sensitive column 'ethnicty' is not in the evaluation "
                                         r"data \(did you mean 'ethnicity'"):
        run(model_uri, {**base, "sensitive": ["ethnicty"]})


def test_mlflow_evaluate_without_sensitive_says_what_to_do(entry_point, tracking,
                                                           demo_data) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    from lea_ai_audit.errors import InputError
    from lea_ai_audit.evaluator import EvaluatorWarning

    args = {"data": demo_data.test, "targets": "reoffended", "predictions": "flagged",
            "model_type": "classifier"}
    # the deprecated spelling mlflow.evaluate reaches the same plugin
    with mlflow.start_run(), pytest.raises(InputError, match="sensitive"), \
            pytest.warns(FutureWarning, match="deprecated"):
        mlflow.evaluate(**args, evaluators=["lea_ai_audit"],
                        evaluator_config={"lea_ai_audit": {"checks": ["fairness"]}})
    with mlflow.start_run(), pytest.raises(InputError, match="did you mean 'sensitive'"):
        mlflow.models.evaluate(**args, evaluators=["lea_ai_audit"],
                               evaluator_config={"lea_ai_audit": {"sensitve": ["sex"]}})
    # no config at all: the audit is left out, with a warning (mlflow then finds no evaluator)
    with mlflow.start_run(), pytest.warns(EvaluatorWarning, match="did not audit"), \
            pytest.raises(MlflowException, match="could not be evaluated"):
        mlflow.models.evaluate(**args, evaluators=["lea_ai_audit"])


def test_installed_plugin_leaves_mlflow_default_evaluation_working(entry_point, tracking,
                                                                   demo_data) -> None:
    """mlflow runs every registered evaluator when evaluators= is not given: the plugin,
    not asked to audit, must not break the default evaluation."""
    import mlflow

    from lea_ai_audit.evaluator import EvaluatorWarning

    df = demo_data.test[[*FEATURES[:4], "reoffended", "flagged"]]
    for config in (None, {"log_model_explainability": False}):
        with mlflow.start_run(), pytest.warns(EvaluatorWarning, match="did not audit"):
            result = mlflow.models.evaluate(data=df, targets="reoffended",
                                            predictions="flagged", model_type="classifier",
                                            evaluator_config=config)
        assert "accuracy_score" in result.metrics
        assert not any(k.startswith("audit/") for k in result.metrics)
