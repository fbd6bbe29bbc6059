"""Fixtures of the MLflow tests: a real ``mlflow server`` on 127.0.0.1, saved report directories.

The server runs once per session (sqlite backend and artifacts in a temporary directory) and
is stopped by its process id. Every test here turns tracking on (the project's conftest turns
it off for the other tests) and keeps the default store in its own temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lea_ai_audit import audit
from lea_ai_audit.datasets import FEATURES, make_demo
from lea_ai_audit.results import CheckResult, Evidence, Status
from lea_ai_audit.runner import _place_files


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 with its store in ``d``; ``stop()`` by its pid."""

    def __init__(self, d: Path, port: int | None = None) -> None:
        self.dir = d
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._log = open(d / f"server-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1", "--backend-store-uri",
             f"sqlite:///{d / 'server.db'}", "--artifacts-destination", str(d / "artifacts")],
            cwd=d, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("mlflow server did not start:\n" + (
                    d / f"server-{self.port}.log").read_text(errors="replace")[-3000:])
            time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and its workers (its own process group), by its process id."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):  # workers left in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """The URI of a real MLflow tracking server (HTTP) started for this session."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server.uri
    server.stop()


@pytest.fixture(autouse=True)
def tracking_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tracking on, no tracking URI set, the default store under this test's tmp_path."""
    import mlflow

    monkeypatch.delenv("LEA_AUDIT_TRACKING", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    home = tmp_path / "lea-home"
    monkeypatch.setenv("LEA_AUDIT_HOME", str(home))
    yield home
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="session")
def demo_data():
    return make_demo(4000, bias=0.6, seed=3)


def _with_plot(report):
    """The report plus one result with a PNG evidence file (as the explainability checks add)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.bar(["a", "b"], [1, 2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    ev = Evidence.file("importance plot", "importance.png", buf.getvalue(),
                       "test plot", media_type="image/png")
    res = CheckResult(check_id="test.plot", requirement_id="plot-evidence", status=Status.PASS,
                      message="a plot", evidence=_place_files([ev], "plot-evidence",
                                                              report.report_id),
                      title="A plot", clauses=("test",), metrics={"weird:name/../x": 1.5})
    return report.with_checks([*report.checks, res])


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory, demo_data) -> Path:
    """A saved report directory (report.json, a plot, the three cards), never logged."""
    from lea_ai_audit.cards import write_cards

    d = tmp_path_factory.mktemp("report")
    rep = audit(demo_data.test, target="reoffended", sensitive=["ethnicity", "sex"],
                model=demo_data.model, features=FEATURES, author="analyst", track=False)
    rep = _with_plot(rep)
    rep.save(d)
    write_cards(rep, d, report_dir=d)
    return d


def copy_report(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst

