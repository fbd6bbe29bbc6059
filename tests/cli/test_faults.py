"""Faults while writing: a full disk (the kernel's file-size limit) and a broken output path.

The file-size limit (RLIMIT_FSIZE) makes the kernel refuse writes beyond a size with EFBIG,
exactly as a full disk refuses them with ENOSPC: the write fails half-way through a file. The
CLI must then print one line, exit 2, and leave the previous report and its evidence intact.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lea_ai_audit.results import AuditReport


def _limited(limit_bytes: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return preexec


def _cli(args: list[str], cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lea_ai_audit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(limit) if limit else None)


@pytest.fixture(scope="module")
def first_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    r = _cli(["demo", "--rows", "3000", "--out", "out", "-q"], d)
    assert r.returncode in (0, 1), r.stderr
    return d


def test_disk_full_keeps_the_previous_report(first_report):
    d = first_report
    before = (d / "out" / "report.json").read_bytes()
    old = AuditReport.load(d / "out")
    # cases.csv is written first by the demo and is larger than the limit: the write fails
    r = _cli(["demo", "--rows", "3000", "--out", "out", "-q", "--seed", "1"], d, limit=20_000)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write ")
    assert "File too large" in lines[0] and "intact" in lines[0]
    assert "Traceback" not in r.stderr
    assert (d / "out" / "report.json").read_bytes() == before
    for e in old.files():  # the old report's evidence still matches its digests
        e.read(d / "out")
    assert not list((d / "out").rglob("*.tmp"))


def test_report_write_failing_keeps_the_previous_report(first_report):
    d = first_report
    before = (d / "out" / "report.json").read_bytes()
    # a report of this audit is far larger than 2,000 bytes: its write fails half-way
    r = _cli(["run", "--data", "out/cases.csv", "--target", "reoffended",
              "--prediction-col", "flagged", "--score-col", "risk", "--sensitive", "ethnicity",
              "--out", "out", "-q"], d, limit=2000)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("error: cannot write ")
    assert (d / "out" / "report.json").read_bytes() == before
    assert json.loads(before)["report_id"] == AuditReport.load(d / "out").report_id


def test_output_path_is_a_file(first_report):
    d = first_report
    (d / "blocker").write_text("x")
    r = _cli(["demo", "--rows", "3000", "--out", "blocker/out", "-q"], d)
    assert r.returncode == 2
    assert r.stderr.startswith("error: cannot write ") and r.stderr.count("\n") == 1
    assert (d / "blocker").read_text() == "x"
