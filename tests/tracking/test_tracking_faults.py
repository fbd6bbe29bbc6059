"""Faults of the tracking server and store: nothing is lost.

A real ``mlflow server`` is killed in the middle of an audit and in the middle of logging a
run (after the run was created, before its artifacts); many processes log to one sqlite store
at once. Each server runs on 127.0.0.1 and is stopped by its process id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lea_ai_audit import audit
from lea_ai_audit.cli import main
from lea_ai_audit.datasets import FEATURES
from lea_ai_audit.results import AuditReport
from lea_ai_audit.tracking import PENDING_FILE, SIDECAR_FILE, TrackingWarning, log_report

from .conftest import MlflowServer


def _runs(uri: str, report_id: str, experiment: str = "lea-ai-audit") -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], f"tags.`lea.report_id` = '{report_id}'")


def test_server_killed_mid_audit_keeps_the_report_and_sync_uploads_it(
        demo_data, tmp_path: Path, capsys) -> None:
    server = MlflowServer(tmp_path)
    out = tmp_path / "audit"

    def kill_at_the_second_check(i: int, total: int, req: str, res) -> None:
        if i == 1 and res is None:
            server.stop(signal.SIGKILL)  # the server dies while the audit is running

    try:
        with pytest.warns(TrackingWarning, match="lea-audit sync"):
            rep = audit(demo_data.test, target="reoffended", sensitive=["ethnicity", "sex"],
                        model=demo_data.model, features=FEATURES, out=out, track=server.uri,
                        checks=["fairness", "performance"], progress=kill_at_the_second_check)
        assert server.proc.poll() is not None
        assert AuditReport.load(out) == rep  # the audit completed and its report is kept
        assert (out / "card.html").is_file()
        marker = json.loads((out / PENDING_FILE).read_text())
        assert marker["report_id"] == rep.report_id and marker["tracking_uri"] == server.uri
    finally:
        server.stop()
    again = MlflowServer(tmp_path)  # the same store, served again (on another port)
    try:
        assert _runs(again.uri, rep.report_id) == []
        assert main(["sync", str(out), "--tracking-uri", again.uri]) == 0
        (run,) = _runs(again.uri, rep.report_id)
        assert run.info.status == "FINISHED"
        arts = {a.path for a in MlflowClient(again.uri).list_artifacts(run.info.run_id)}
        assert "report.json" in arts
        assert not (out / PENDING_FILE).exists() and (out / SIDECAR_FILE).is_file()
    finally:
        again.stop()
    capsys.readouterr()


def test_server_killed_while_logging_a_run(demo_data, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The run exists, its artifacts do not: the half-logged run never counts as logged."""
    out = tmp_path / "audit"
    rep = audit(demo_data.test, target="reoffended", sensitive=["sex"], model=demo_data.model,
                features=FEATURES, checks=["performance"], out=out, track=False)
    before = (out / "report.json").read_bytes()
    server = MlflowServer(tmp_path)
    real_log_artifact = MlflowClient.log_artifact

    def dying_log_artifact(self, *a, **kw):  # fault injection: the real server really dies
        server.stop(signal.SIGKILL)
        return real_log_artifact(self, *a, **kw)

    try:
        monkeypatch.setattr(MlflowClient, "log_artifact", dying_log_artifact)
        res = log_report(out, tracking_uri=server.uri)
        monkeypatch.undo()
        assert not res.logged and "lea-audit sync" in res.message
        assert (out / PENDING_FILE).is_file() and not (out / SIDECAR_FILE).exists()
        assert (out / "report.json").read_bytes() == before
    finally:
        server.stop()
    again = MlflowServer(tmp_path)
    try:
        (half,) = _runs(again.uri, rep.report_id)  # created before the server died
        assert half.info.status != "FINISHED"
        res = log_report(out, tracking_uri=again.uri)  # what `lea-audit sync` calls
        assert res.logged, res.message
        runs = _runs(again.uri, rep.report_id)
        finished = [r for r in runs if r.info.status == "FINISHED"]
        assert [r.info.run_id for r in finished] == [res.run_id] and len(runs) == 2
        arts = {a.path for a in MlflowClient(again.uri).list_artifacts(res.run_id)}
        assert {"report.json", "card.html"} <= arts
        half = MlflowClient(again.uri).get_run(half.info.run_id)  # no longer left RUNNING
        assert half.info.status == "FAILED"
        assert half.data.tags["lea.superseded_by"] == res.run_id
    finally:
        again.stop()


def test_concurrent_audits_into_one_sqlite_store(tmp_path: Path) -> None:
    """Four processes audit at once into one local store: every run is there, complete."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = (
        "import sys, warnings\n"
        "from lea_ai_audit import audit\n"
        "from lea_ai_audit.tracking import TrackingWarning\n"
        "warnings.simplefilter('error', TrackingWarning)  # a run not logged fails here\n"
        "from lea_ai_audit.datasets import FEATURES, make_demo\n"
        "d = make_demo(3000, seed=int(sys.argv[1]))\n"
        "r = audit(d.test, target='reoffended', sensitive=['sex'], model=d.model,\n"
        "          features=FEATURES, checks=['performance', 'fairness.group_metrics'],\n"
        "          out=sys.argv[2], track=sys.argv[3])\n"
        "print(r.report_id)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the store's tables exist before the race (as after a first audit on this machine)
        MlflowClient(uri).search_experiments()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i), str(tmp_path / f"a{i}"), uri],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "LEA_AUDIT_TRACKING": "on"})
             for i in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-2000:] for _, e in outs]
    ids = [o.strip().splitlines()[-1] for o, _ in outs]
    for i, rid in enumerate(ids):
        (run,) = _runs(uri, rid)
        assert run.info.status == "FINISHED"
        assert json.loads((tmp_path / f"a{i}" / SIDECAR_FILE).read_text())["run_id"] == \
            run.info.run_id
        assert not (tmp_path / f"a{i}" / PENDING_FILE).exists()
