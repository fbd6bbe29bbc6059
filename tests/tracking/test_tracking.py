"""MLflow logging against real stores: the local sqlite default and a real `mlflow server` on
127.0.0.1 over HTTP; an unreachable server keeps the report and `lea-audit sync` uploads it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lea_ai_audit.results import AuditReport
from lea_ai_audit.tracking import PENDING_FILE, RUN_FILE, log_report, metric_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(LEA_AUDIT_TRACKING="on", **extra)
    return env


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lea_ai_audit.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server on 127.0.0.1, stopped by its process id at the end."""
    d = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{d / 'server.db'}",
         "--artifacts-destination", str(d / "artifacts"), "--workers", "1"],
        cwd=d, stdout=subprocess.DEVNULL, stderr=open(d / "server.log", "w"),  # noqa: SIM115
        start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited: " + (d / "server.log").read_text()[-2000:])
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("mlflow server did not start in 90 s")
    yield uri
    os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers, by process group id
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _check_run(uri: str, directory: Path) -> None:
    run_id = json.loads((directory / RUN_FILE).read_text())["run_id"]
    report = AuditReport.load(directory)
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.data.tags["lea.status"] == report.status.value
    assert run.data.tags["lea.report_id"] == report.report_id
    assert run.data.tags["lea.report_digest"] == report.digest()
    assert run.data.tags["lea.data_sha256"] == report.data["sha256"]
    assert run.data.params["policy"] == report.policy["id"]
    fpr = report.result("fpr-parity")
    for k, v in fpr.metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert run.data.metrics[metric_name(f"fpr-parity/{k}")] == pytest.approx(v)
    arts = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run_id)}
    assert "report.json" in arts


def test_demo_logs_to_the_local_sqlite_store_by_default(tmp_path):
    r = _cli(["demo", "--rows", "3000", "--out", "d", "-q"], tmp_path, _env())
    assert r.returncode in (0, 1), r.stderr
    assert (tmp_path / "mlflow.db").exists()
    assert "mlflow: run " in r.stdout
    _check_run(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "d")


def test_logs_over_http_to_a_real_server(server, tmp_path):
    r = _cli(["demo", "--rows", "3000", "--out", "d", "-q", "--tracking-uri", server],
             tmp_path, _env())
    assert r.returncode in (0, 1), r.stderr
    assert f"in {server}" in r.stdout
    _check_run(server, tmp_path / "d")
    assert not (tmp_path / "mlflow.db").exists()


def test_unreachable_server_keeps_the_report_and_sync_uploads_it(server, tmp_path):
    dead = f"http://127.0.0.1:{_free_port()}"
    r = _cli(["demo", "--rows", "3000", "--out", "d", "-q", "--tracking-uri", dead],
             tmp_path, _env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                            MLFLOW_HTTP_REQUEST_TIMEOUT="3"))
    assert r.returncode in (0, 1), r.stderr  # the audit's own verdict, not a crash
    assert "mlflow: NOT logged" in r.stdout and "lea-audit sync" in r.stdout
    report = AuditReport.load(tmp_path / "d")  # kept, complete
    pending = json.loads((tmp_path / "d" / PENDING_FILE).read_text())
    assert pending["report_id"] == report.report_id and pending["tracking_uri"] == dead
    s = _cli(["sync", str(tmp_path), "--tracking-uri", server], tmp_path, _env())
    assert s.returncode == 0, s.stdout + s.stderr
    assert not (tmp_path / "d" / PENDING_FILE).exists()
    _check_run(server, tmp_path / "d")
    again = _cli(["sync", str(tmp_path), "--tracking-uri", server], tmp_path, _env())
    assert "nothing to upload" in again.stdout


def test_nested_under_the_active_run(tmp_path, monkeypatch):
    import mlflow

    from lea_ai_audit import audit
    from lea_ai_audit.datasets import make_demo

    uri = f"sqlite:///{tmp_path / 'nested.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    demo = make_demo(3000, seed=1)
    rep = audit(demo.test, target="reoffended", sensitive=["ethnicity"], prediction="flagged",
                checks=["fairness"])
    rep.save(tmp_path / "a")
    with mlflow.start_run() as parent:
        res = log_report(tmp_path / "a")
    assert res.ok
    run = MlflowClient(tracking_uri=uri).get_run(res.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id


@pytest.mark.parametrize("raw,want", [("fpr/ethnicity/<b>x</b>", "fpr/ethnicity/_b_x_/b_"),
                                      ("a" * 300, "a" * 250), ("ok-name.1 /x", "ok-name.1 /x")])
def test_metric_names_are_legal(raw, want):
    assert metric_name(raw) == want
