"""The output folder is switched whole: after any fault it holds the previous audit or the new.

A fault in the middle of a save (a card that cannot be written, SIGINT, SIGTERM) must leave the
folder exactly as the previous audit left it: its report, its cards of the same report id, its
evidence, the sign-offs beside them; no staging folder behind; exit 130 / 143 with one line;
the background worker gone with the process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit import Audit
from lea_ai_audit.results import AuditReport


def _frame(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], n)
    y = rng.integers(0, 2, n)
    return pd.DataFrame({"y": y, "p": np.where(rng.random(n) < 0.7, y, 1 - y), "g": g})


def _state(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _consistent(folder: Path) -> str:
    """The report id, after checking the cards and evidence belong to that report."""
    report = AuditReport.load(folder)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    assert card["report"]["report_id"] == report.report_id
    assert report.report_id in (folder / "card.html").read_text(encoding="utf-8")
    for e in report.files():
        e.read(folder)  # present, with the digest the report records
    ids = {p.name for p in (folder / "evidence").iterdir()} if (folder / "evidence").exists() \
        else set()
    assert ids <= {report.report_id[:12]}
    return report.report_id


def _no_stage(parent: Path, name: str) -> None:
    left = [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]
    assert left == [], left


def test_a_card_failing_keeps_the_previous_audit_whole(tmp_path, monkeypatch):
    import lea_ai_audit.cards as cards

    out = tmp_path / "audit"
    a = Audit(target="y", sensitive="g", prediction="p", checks=["fairness"], track=False)
    first = a.run(_frame(0), out=out)
    (out / "signoffs").mkdir()
    (out / "signoffs" / "officer.json").write_text("{}")
    before = _state(out)
    real = cards.write_cards

    def broken(report, folder, **kw):  # the HTML card is written, then the disk is full
        paths = real(report, folder, formats=("html",), **{k: v for k, v in kw.items()
                                                          if k != "formats"})
        raise OSError(28, "No space left on device", str(paths["html"]))

    monkeypatch.setattr(cards, "write_cards", broken)
    with pytest.raises(OSError):
        a.run(_frame(1), out=out)
    assert _state(out) == before
    assert _consistent(out) == first.report_id
    _no_stage(tmp_path, "audit")

    monkeypatch.setattr(cards, "write_cards", real)
    second = a.run(_frame(2), out=out)
    assert _consistent(out) == second.report_id != first.report_id
    # what was beside the old audit stays beside the new one; the old evidence is gone
    assert (out / "signoffs" / "officer.json").read_text() == "{}"
    _no_stage(tmp_path, "audit")


def test_the_first_audit_into_a_new_folder(tmp_path):
    out = tmp_path / "deep" / "audit"
    r = Audit(target="y", sensitive="g", prediction="p", checks=["fairness"],
              track=False).run(_frame(0), out=out)
    assert _consistent(out) == r.report_id
    mode = out.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not the private mode of a temporary folder
    _no_stage(out.parent, "audit")


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    d = tmp_path_factory.mktemp("signals")
    r = subprocess.run([sys.executable, "-m", "lea_ai_audit.cli", "demo", "--rows", "3000",
                        "--out", "out", "-q", "--no-track"], cwd=d, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    return d


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "SIGTERM"),
                                                   (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_mid_audit_leaves_the_previous_audit(previous, sig, code, word):
    d = previous
    before = _state(d / "out")
    old_id = _consistent(d / "out")
    env = {**os.environ, "LEA_AUDIT_BACKGROUND": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lea_ai_audit.cli", "demo", "--rows", "3000",
                             "--out", "out", "-q", "--no-track", "--seed", "7"], cwd=d, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a test runner's worker may ignore SIGINT,
                            # and a child inherits that (Python then never raises it)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # the demo's new folder exists from its start; wait until the audit itself is running
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            staged = [p for p in d.iterdir() if p.name.startswith(".out.new-")]
            if staged and (staged[0] / "model.skops").exists():
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the demo never reached its audit")
        # on two cores or more the audit hands its drift report to a worker: wait for it
        kids: list[int] = []
        while (os.cpu_count() or 1) > 1 and not kids and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            kids = _children(proc.pid)
            time.sleep(0.05)
        if (os.cpu_count() or 1) > 1:
            assert kids, "the audit's background worker never started"
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: interrupted ({word})"
                                                   if sig == signal.SIGINT
                                                   else "error: stopped by SIGTERM"), err
    assert "Traceback" not in err
    assert _state(d / "out") == before and _consistent(d / "out") == old_id
    _no_stage(d, "out")
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)], "a worker outlived the stopped audit"
