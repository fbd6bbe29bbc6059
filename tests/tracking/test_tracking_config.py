"""One tracking configuration for every MLflow call, model loading included.

The order is the flag (``--tracking-uri``), ``MLFLOW_TRACKING_URI``, ``tracking-uri`` in the
project's lea-audit.yaml, the local store in ``LEA_AUDIT_HOME``; a ``models:/`` model is read
from the same store as the audit is logged to, and nothing lands in the working directory (a
failed load used to leave MLflow's own ``mlflow.db`` and ``mlruns/`` there). Real SQLite
registries in ``tmp_path``; the model is the demo's, logged in the skops format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lea_ai_audit import cli, tracking
from lea_ai_audit.datasets import make_demo
from lea_ai_audit.models import load_model


def _registry(folder: Path, name: str) -> str:
    """A SQLite store in ``folder`` holding the demo model as ``NAME`` version 1."""
    import mlflow
    import mlflow.sklearn

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    demo = make_demo(2000, bias=0.0, seed=5)
    with tracking.use_tracking_uri(uri):
        exp = tracking._experiment_id(tracking._client(uri), uri, "models")
        with mlflow.start_run(experiment_id=exp):
            mlflow.sklearn.log_model(demo.model, name="model", registered_model_name=name,
                                     serialization_format="skops",
                                     pip_requirements=["scikit-learn"])
    return uri


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two registries (the right one holds `triage`, the other `other`) and the cases."""
    right = _registry(tmp_path_factory.mktemp("right"), "triage")
    wrong = _registry(tmp_path_factory.mktemp("wrong"), "other")
    cases = tmp_path_factory.mktemp("data") / "cases.csv"
    make_demo(2000, bias=0.0, seed=6).test.drop(columns=["risk", "flagged"]).to_csv(
        cases, index=False)
    return {"right": right, "wrong": wrong, "cases": cases}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (as a CI job's checkout), the process inside it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _argv(stores: dict, out: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(stores["cases"]), "--target", "reoffended", "--sensitive",
            "sex", "--checks", "performance", "-q", "--out", str(out), "--model",
            "models:/triage/1", *extra]


def _runs(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("lea-ai-audit")
    return client.search_runs([exp.experiment_id]) if exp is not None else []


def test_the_flag_loads_the_model_and_logs_the_audit_to_one_store(stores, workdir, tmp_path,
                                                                   capsys) -> None:
    import mlflow

    before = mlflow.get_tracking_uri()
    out = tmp_path / "out"
    assert cli.main(_argv(stores, out, "--tracking-uri", stores["right"])) in (0, 1)
    side = json.loads((out / "mlflow.json").read_text())
    assert side["tracking_uri"] == stores["right"]
    assert [r.info.run_id for r in _runs(stores["right"])] == [side["run_id"]]
    assert list(workdir.iterdir()) == []  # no mlflow.db, no mlruns/
    assert mlflow.get_tracking_uri() == before  # MLflow's globals as they were
    capsys.readouterr()


def test_the_config_file_names_the_store(stores, workdir, tmp_path, capsys) -> None:
    (workdir / "lea-audit.yaml").write_text(f"run:\n  tracking-uri: {stores['right']}\n")
    out = tmp_path / "out"
    assert cli.main(_argv(stores, out)) in (0, 1), capsys.readouterr().err
    assert json.loads((out / "mlflow.json").read_text())["tracking_uri"] == stores["right"]
    assert sorted(p.name for p in workdir.iterdir()) == ["lea-audit.yaml"]


def test_mlflow_tracking_uri_wins_over_the_config_file(stores, workdir, tmp_path,
                                                       monkeypatch, capsys) -> None:
    (workdir / "lea-audit.yaml").write_text(f"run:\n  tracking-uri: {stores['wrong']}\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["right"])
    out = tmp_path / "out"
    assert cli.main(_argv(stores, out)) in (0, 1), capsys.readouterr().err
    assert json.loads((out / "mlflow.json").read_text())["tracking_uri"] == stores["right"]
    # and the flag wins over both: `triage` is not in the wrong store, so the load fails
    out2 = tmp_path / "out2"
    assert cli.main(_argv(stores, out2, "--tracking-uri", stores["wrong"])) == 2
    err = capsys.readouterr().err
    assert "models:/triage/1" in err and "wrong" in err and not out2.exists()


def test_a_failed_load_writes_nothing_in_the_working_directory(stores, workdir, tmp_path,
                                                               capsys) -> None:
    """No flag, no variable, no file: the local store in LEA_AUDIT_HOME is asked (and does
    not have the model): exit 2 with the one-line error, nothing in the working directory."""
    out = tmp_path / "out"
    assert cli.main(_argv(stores, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot load the MLflow model"), err
    assert str(tracking.home_dir()) in err[0] and " — " in err[0]
    assert list(workdir.iterdir()) == [] and not out.exists()


def test_load_model_takes_the_tracking_uri(stores, workdir) -> None:
    import mlflow

    before = mlflow.get_tracking_uri()
    model, info = load_model("models:/triage/1", tracking_uri=stores["right"])
    assert hasattr(model, "predict_proba") and info["serialization_format"] == "skops"
    assert mlflow.get_tracking_uri() == before
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(("env", "want"), [({}, "true"),
                                           ({"MLFLOW_DISABLE_TELEMETRY": "false"}, "false"),
                                           ({"DO_NOT_TRACK": "false"}, None)])
def test_the_cli_turns_mlflow_telemetry_off_unless_the_user_chose(env, want, tmp_path) -> None:
    """MLflow 3 reports usage to its maintainers by default; `lea-audit` turns that off in its
    own process, and a choice the user made in the environment stands."""
    import os
    import subprocess
    import sys

    code = ("import os\nfrom lea_ai_audit.cli import main\n"
            f"main(['sync', {str(tmp_path / 'none')!r}])\n"
            "print('TELEMETRY', os.environ.get('MLFLOW_DISABLE_TELEMETRY'))\n")
    base = {k: v for k, v in os.environ.items()
            if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, text=True,
                         capture_output=True, timeout=120)
    assert f"TELEMETRY {want}" in out.stdout, out.stdout + out.stderr
