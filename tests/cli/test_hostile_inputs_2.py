"""Hostile input, round two (#23): devices and pipes as data, repeated column names,
contradicting flags, a corrupt bundle member, SIGTERM mid-audit. Each is refused or stopped
with one line and a telling exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from .conftest import assert_one_error_line

RUN = ["--target", "reoffended", "--prediction-col", "flagged", "--sensitive", "ethnicity",
       "--checks", "fairness", "--no-track"]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_device_or_pipe_is_not_read(cli, tmp_path: Path, kind: str) -> None:
    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "cases.csv"
        os.mkfifo(path)  # nobody writes to it: reading would block for ever
    t0 = time.perf_counter()
    r = cli("run", "--data", path, *RUN, "--out", tmp_path / "a")
    assert time.perf_counter() - t0 < 20
    assert r.rc == 2 and "not a regular file" in assert_one_error_line(r.err)
    assert not (tmp_path / "a").exists()


def test_repeated_column_names_are_refused(cli, case_files, tmp_path: Path) -> None:
    lines = case_files.biased_csv.read_text().splitlines()
    cols = lines[0].split(",")
    cols[cols.index("flagged")] = "ethnicity"  # two columns called ethnicity
    data = tmp_path / "dup.csv"
    data.write_text("\n".join([",".join(cols), *lines[1:]]) + "\n")
    r = cli("run", "--data", data, "--target", "reoffended", "--score-col", "risk",
            "--threshold", "0.5", "--sensitive", "ethnicity", "--no-track", "--out",
            tmp_path / "a")
    assert r.rc == 2 and "'ethnicity' more than once" in assert_one_error_line(r.err)


def test_contradicting_tracking_flags_are_refused(cli, case_files, tmp_path: Path) -> None:
    r = cli("run", "--data", case_files.biased_csv, *RUN, "--tracking-uri",
            f"sqlite:///{tmp_path / 'm.db'}", "--out", tmp_path / "a")
    assert r.rc == 2 and "contradict" in assert_one_error_line(r.err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "m.db").exists()


def test_a_corrupt_bundle_member_is_not_ok(cli, case_files, tmp_path: Path) -> None:
    assert cli("run", "--data", case_files.biased_csv, *RUN, "--out", tmp_path / "a").rc == 1
    bundle = tmp_path / "b.zip"
    assert cli("export", tmp_path / "a", "--out", bundle).rc == 0
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo("report.json")
    raw = bytearray(bundle.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 10, start + 60):  # inside the compressed data
        raw[i] ^= 0xFF
    bundle.write_bytes(bytes(raw))
    r = cli("verify", bundle)
    assert r.rc == 1 and "internal error" not in r.err + r.out
    assert "corrupt" in r.out or "does not match" in r.out


def test_sigterm_mid_audit_stops_with_143(tmp_path: Path) -> None:
    env = dict(os.environ, LEA_AUDIT_TRACKING="off")
    proc = subprocess.Popen([sys.executable, "-m", "lea_ai_audit.cli", "demo", "--rows",
                             "60000", "--out", str(tmp_path / "a"), "--quiet"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)  # data made, model trained, the audit under way
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, (proc.returncode, err[-500:])
    line = assert_one_error_line(err)
    assert "SIGTERM" in line
    assert not (tmp_path / "a" / "report.json").exists()  # no half audit under its name
