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


# -- a fresh store, a slow server, two syncs at once, no secret on disk ------------------------
_AUDIT_CODE = (
    "import sys, warnings\n"
    "from lea_ai_audit import audit\n"
    "from lea_ai_audit.tracking import TrackingWarning\n"
    "warnings.simplefilter('error', TrackingWarning)  # a run not logged fails here\n"
    "from lea_ai_audit.datasets import FEATURES, make_demo\n"
    "d = make_demo(2000, seed=int(sys.argv[1]))\n"
    "r = audit(d.test, target='reoffended', sensitive=['sex'], model=d.model,\n"
    "          features=FEATURES, checks=['performance'], out=sys.argv[2], track=sys.argv[3])\n"
    "print(r.report_id)\n")


def test_eight_audits_at_once_into_a_fresh_sqlite_store(tmp_path: Path) -> None:
    """The store does not exist when eight processes start: MLflow's first-use migration runs
    once (under a lock), and every audit's run is there, FINISHED, nothing pending."""
    db = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert not db.exists()
    procs = [subprocess.Popen([sys.executable, "-c", _AUDIT_CODE, str(i),
                               str(tmp_path / f"a{i}"), uri],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "LEA_AUDIT_TRACKING": "on"})
             for i in range(8)]
    outs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e[-1500:] for _, e in outs]
    ids = [o.strip().splitlines()[-1] for o, _ in outs]
    assert len(set(ids)) == 8
    for i, rid in enumerate(ids):
        (run,) = _runs(uri, rid)
        assert run.info.status == "FINISHED"
        assert not (tmp_path / f"a{i}" / PENDING_FILE).exists()
    assert not list(tmp_path.glob("*.lock")) and not list(db.parent.glob("*.lock"))


_SLOW_SERVER = (
    "import http.server, sys, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def _slow(self):\n"
    "        time.sleep(float(sys.argv[2]))\n"
    "        body = b'{}'\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    do_GET = do_POST = _slow\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n")


def test_a_slow_server_meets_the_tracking_deadline(report_dir: Path, tmp_path: Path) -> None:
    """A server that accepts every connection and answers each request after 4 s (under the
    HTTP timeout, so no single call fails): without a deadline the upload takes minutes; with
    --tracking-timeout 6 it stops after about 6 s, keeps the report and marks it pending."""
    import shutil
    import time

    from .conftest import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SERVER, str(port), "4"])
    try:
        _wait_port(port)
        out = tmp_path / "audit"
        shutil.copytree(report_dir, out)
        t0 = time.monotonic()
        rc = main(["sync", str(out), "--tracking-uri", f"http://127.0.0.1:{port}",
                   "--tracking-timeout", "6"])
        took = time.monotonic() - t0
        assert rc == 1 and 5.5 <= took < 15, took
        marker = json.loads((out / PENDING_FILE).read_text())
        assert "deadline of 6 s" in marker["reason"]
        assert not (out / SIDECAR_FILE).exists()
        assert AuditReport.load(out).report_id == marker["report_id"]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_bad_tracking_timeout_is_refused_before_the_audit(demo_data, tmp_path: Path,
                                                             capsys) -> None:
    data = tmp_path / "cases.csv"
    demo_data.test.to_csv(data, index=False)
    for bad in ("0", "-3", "nan", "inf"):
        rc = main(["run", "--data", str(data), "--target", "reoffended", "--sensitive", "sex",
                   "--score-col", "risk", "--out", str(tmp_path / "o"), "--tracking-timeout",
                   bad])
        err = capsys.readouterr().err
        assert rc == 2 and "tracking timeout" in err and "Traceback" not in err, (bad, err)
        assert not (tmp_path / "o").exists()
    # the variable, from the CLI and from Python: refused before anything is written
    os.environ["LEA_AUDIT_TRACKING_TIMEOUT"] = "soon"
    try:
        rc = main(["run", "--data", str(data), "--target", "reoffended", "--sensitive", "sex",
                   "--score-col", "risk", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert rc == 2 and "LEA_AUDIT_TRACKING_TIMEOUT='soon'" in err, err
        from lea_ai_audit.errors import InputError

        with pytest.raises(InputError, match="LEA_AUDIT_TRACKING_TIMEOUT"):
            audit(demo_data.test, target="reoffended", sensitive=["sex"], score="risk",
                  out=tmp_path / "o")
        assert not (tmp_path / "o").exists()
    finally:
        del os.environ["LEA_AUDIT_TRACKING_TIMEOUT"]


def _wait_port(port: int, seconds: float = 20) -> None:
    import socket
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def test_two_syncs_at_once_log_each_report_once(tmp_path: Path, demo_data,
                                                mlflow_server: str) -> None:
    """Four reports never logged; two `lea-audit sync` processes at once to a real server:
    one run each (without the lock on the report directory both create runs)."""
    ids = []
    for i in range(4):
        rep = audit(demo_data.test.iloc[i * 250:(i + 1) * 250], target="reoffended",
                    sensitive=["sex"], score="risk", prediction="flagged",
                    checks=["performance"], out=tmp_path / "audits" / f"r{i}", track=False)
        ids.append(rep.report_id)
    env = {**os.environ, "LEA_AUDIT_TRACKING": "on", "MLFLOW_EXPERIMENT_NAME": "two-syncs"}
    cmd = [sys.executable, "-m", "lea_ai_audit.cli", "sync", str(tmp_path / "audits"),
           "--tracking-uri", mlflow_server]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for _, e in outs]
    for i, rid in enumerate(ids):
        runs = _runs(mlflow_server, rid, "two-syncs")
        assert [r.info.status for r in runs] == ["FINISHED"], (rid, len(runs))
        side = json.loads((tmp_path / "audits" / f"r{i}" / SIDECAR_FILE).read_text())
        assert side["run_id"] == runs[0].info.run_id


def test_no_password_is_written_and_sync_finds_it_again(report_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A URI with a password: the marker, and later the sidecar, hold the store without it;
    `lea-audit sync` with MLFLOW_TRACKING_URI (the same store, with its password) uploads."""
    import shutil

    from .conftest import free_port

    port = free_port()
    secret_uri = f"http://officer:s3cr3t-pw@127.0.0.1:{port}"
    out = tmp_path / "audit"
    shutil.copytree(report_dir, out)
    res = log_report(out, tracking_uri=secret_uri, timeout=20)  # nothing listens yet
    assert not res.logged and "s3cr3t-pw" not in res.message
    marker = json.loads((out / PENDING_FILE).read_text())
    assert marker["tracking_uri"] == f"http://127.0.0.1:{port}"
    server = MlflowServer(tmp_path, port=port)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", secret_uri)
        assert main(["sync", str(out)]) == 0
        (run,) = _runs(server.uri, AuditReport.load(out).report_id)
        assert run.info.status == "FINISHED"
    finally:
        server.stop()
    for f in out.rglob("*"):
        if f.is_file():
            assert b"s3cr3t-pw" not in f.read_bytes(), f
