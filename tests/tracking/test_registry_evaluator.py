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


def test_mlflow_evaluate_runs_the_audit(entry_point, mlflow_server: str, demo_data, tmp_path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "evaluate-test")
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
    client = MlflowClient(mlflow_server)
    logged = client.get_run(run.info.run_id).data
    assert logged.tags["lea.status"] == direct.status.value
    assert logged.metrics["declared-performance/auc"] == pytest.approx(
        direct.result("declared-performance").metrics["auc"])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "lea_ai_audit")}
    assert {"lea_ai_audit/report.json", "lea_ai_audit/card.html"} <= names
    path = client.download_artifacts(run.info.run_id, "lea_ai_audit/report.json", str(tmp_path))
    rep = AuditReport.from_json(Path(path).read_bytes())
    assert rep.result("fpr-parity").metrics == direct.result("fpr-parity").metrics
    assert json.loads(Path(path).read_text())["status"] == direct.status.value


def test_mlflow_evaluate_without_sensitive_says_what_to_do(entry_point, mlflow_server: str,
                                                           demo_data, monkeypatch) -> None:
    import mlflow

    from lea_ai_audit.errors import InputError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    # the deprecated spelling mlflow.evaluate reaches the same plugin
    with mlflow.start_run(), pytest.raises(InputError, match="sensitive"), \
            pytest.warns(FutureWarning, match="deprecated"):
        mlflow.evaluate(data=demo_data.test, targets="reoffended", predictions="flagged",
                        model_type="classifier", evaluators=["lea_ai_audit"],
                        evaluator_config={"lea_ai_audit": {}})
