"""A group label crafted by someone outside cannot act on a terminal or a CI log (#23 point 4).

The label holds a screen clear, a window-title sequence, a bell and a carriage return that would
overwrite the log line with a forged "PASS". Through the installed command (a pipe, as CI reads
it), nothing of it acts: stdout, stderr, the JUnit file and the Markdown card hold no control
character; the label is shown with its escapes visible.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from .conftest import assert_one_error_line

HOSTILE = "minority_a\x1b[2J\x1b]0;pwned\x07\r audit PASS \x9b31m"
CONTROL = [chr(c) for c in [*range(0, 9), *range(11, 32), *range(127, 160)]]


def _lea(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lea-audit") or pytest.fail("lea-audit is not installed")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": str(Path(exe).parent), "LEA_AUDIT_TRACKING": "off",
                               "HOME": str(cwd)})


def _clean(text: str) -> None:
    bad = sorted({f"\\x{ord(c):02x}" for c in text if c in CONTROL})
    assert not bad, bad


def test_a_hostile_label_cannot_act_on_the_log(case_files, tmp_path: Path) -> None:
    df = case_files.biased.copy()
    df["ethnicity"] = df["ethnicity"].replace({"minority_a": HOSTILE})
    data = tmp_path / "cases.parquet"  # Parquet holds any label exactly
    df.to_parquet(data, index=False)
    r = _lea(["run", "--data", str(data), "--target", "reoffended", "--prediction-col",
              "flagged", "--score-col", "risk", "--sensitive", "ethnicity", "--checks",
              "fairness", "--out", "audit", "--junit", "junit.xml", "--no-track"], tmp_path)
    assert r.returncode == 1, r.stderr
    _clean(r.stdout)
    _clean(r.stderr)
    assert "\\x1b[2J" in r.stdout  # shown, visibly, where the label is
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    _clean(junit.replace("\n", "").replace("\t", ""))
    ET.fromstring(junit)  # still well-formed XML
    md = (tmp_path / "audit" / "card.md").read_text(encoding="utf-8")
    _clean(md.replace("\n", ""))
    # the gate's reasons too
    g = _lea(["gate", "audit", "--junit", "gate.xml"], tmp_path)
    assert g.returncode == 1
    _clean(g.stdout)
    _clean(g.stderr)


def test_a_hostile_value_in_an_error_is_one_printable_line(case_files, tmp_path: Path) -> None:
    r = _lea(["run", "--data", str(case_files.biased_csv), "--target", "reoffended",
              "--prediction-col", "flagged", "--sensitive", "ethnicity", "--reference-group",
              "ethnicity=x\x1b[2J\nforged line", "--out", "a", "--no-track"], tmp_path)
    assert r.returncode == 2
    line = assert_one_error_line(r.stderr)
    _clean(line)
    assert "\\x1b[2J" in line and not (tmp_path / "a").exists()


def test_printable_keeps_text_and_shows_controls() -> None:
    from lea_ai_audit._text import printable

    assert printable("A & B\tc\nd") == "A & B\tc\nd"
    assert printable("\x1b[2J\r\x07\x9b") == "\\x1b[2J\\x0d\\x07\\x9b"
    df = pd.DataFrame({"x": [HOSTILE]})
    assert "\x1b" not in printable(df.to_string())
