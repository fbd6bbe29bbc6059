"""The hash-chained ledger: an edited, removed or reordered entry is found; concurrent appends
from several processes keep one unbroken chain.

Oracle: each entry's hash recomputed with hashlib over the canonical JSON (sorted keys, no
spaces) of the entry without its hash, and every ``prev`` compared with the line before.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lea_ai_audit.cli import main
from lea_ai_audit.errors import InputError, LeaAuditError
from lea_ai_audit.ledger import (
    GENESIS,
    append_entry,
    default_ledger_path,
    read_ledger,
    record_assessment,
    verify_ledger,
)
from lea_ai_audit.results import AuditReport


def _ledger(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "ledger.jsonl"
    for i in range(n):
        append_entry(path, "assessment", {"report_id": f"r{i}", "status": "pass", "i": i})
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_entries_are_chained_by_sha256(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    prev = GENESIS
    for n, line in enumerate(_lines(path), 1):
        e = json.loads(line)
        body = {k: v for k, v in e.items() if k != "hash"}
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert e["hash"] == hashlib.sha256(canon.encode()).hexdigest()
        assert e["prev"] == prev and e["seq"] == n
        prev = e["hash"]
    check = verify_ledger(path)
    assert check.ok and check.entries == 5 and check.problems == [] and check.head == prev


def test_an_edited_entry_is_found(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    e = json.loads(lines[2])
    e["data"]["status"] = "fail"  # someone turns a pass into a fail (or back)
    lines[2] = json.dumps(e, sort_keys=True, separators=(",", ":"))
    _write(path, lines)
    check = verify_ledger(path)
    assert not check.ok and check.entries == 5
    assert check.problems == ["line 3 (entry 3): its content does not match its hash: the entry "
                              "was edited"]
    # re-hashing the edited entry breaks the link of the next one instead
    body = {k: v for k, v in e.items() if k != "hash"}
    e["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                               .encode()).hexdigest()
    lines[2] = json.dumps(e)
    _write(path, lines)
    check = verify_ledger(path)
    assert not check.ok
    assert any(p.startswith("line 4 (entry 4): it does not follow the entry before it")
               for p in check.problems)


def test_a_removed_entry_is_found(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    _write(path, lines[:2] + lines[3:])
    check = verify_ledger(path)
    assert not check.ok and check.entries == 4
    text = "\n".join(check.problems)
    assert "line 3 (entry 4): it does not follow the entry before it" in text
    assert "1 entry(ies) missing" in text
    _write(path, lines[1:])  # the first one removed
    check = verify_ledger(path)
    assert not check.ok and "entries before it were removed" in check.problems[0]


def test_reordered_entries_are_found(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    _write(path, lines)
    check = verify_ledger(path)
    assert not check.ok
    text = "\n".join(check.problems)
    assert "out of order" in text and "line 2 (entry 3)" in text


def test_a_cut_off_tail_is_found_only_against_a_published_head(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    head = verify_ledger(path).head
    _write(path, _lines(path)[:-1])
    assert verify_ledger(path).ok  # a hash chain alone cannot see it: documented
    check = verify_ledger(path, expect_head=head)
    assert not check.ok and "cut off the end" in check.problems[0]
    append_entry(path, "assessment", {"x": 1})
    new_head = verify_ledger(path).head
    append_entry(path, "assessment", {"x": 2})
    assert verify_ledger(path, expect_head=new_head).ok  # growth after publishing is fine


def test_broken_lines_and_unreadable_files(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 3)
    with open(path, "a") as fh:
        fh.write('{"seq": 4, "half')  # a write cut off
    check = verify_ledger(path)
    assert not check.ok and "incomplete" in "\n".join(check.problems)
    with pytest.raises(LeaAuditError, match="incomplete entry"):
        append_entry(path, "assessment", {})  # never chain onto a broken link
    with pytest.raises(InputError, match="no ledger at"):
        verify_ledger(tmp_path / "missing.jsonl")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError, match="not a ledger"):
        verify_ledger(tmp_path / "bin")
    (tmp_path / "csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="holds no ledger entry"):
        verify_ledger(tmp_path / "csv")
    with pytest.raises(InputError, match="directory"):
        verify_ledger(tmp_path)


def test_lea_audit_verify_reports_the_ledger(tmp_path: Path, capsys) -> None:
    path = _ledger(tmp_path)
    assert main(["verify", str(path)]) == 0
    assert "ledger OK: 5 entries" in capsys.readouterr().out
    lines = _lines(path)
    _write(path, lines[:1] + lines[2:])
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ledger NOT OK" in out and "it does not follow the entry before it" in out


_APPEND = """
import sys
from lea_ai_audit.ledger import append_entry
for i in range(int(sys.argv[3])):
    append_entry(sys.argv[1], "assessment", {"writer": sys.argv[2], "i": i})
"""


def test_concurrent_appends_from_several_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _APPEND, str(path), f"w{k}", "40"])
             for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    check = verify_ledger(path)
    assert check.ok, check.problems
    assert check.entries == 120
    writers = [e["data"]["writer"] for e in read_ledger(path)]
    assert sorted(set(writers)) == ["w0", "w1", "w2"] and len(writers) == 120


def test_where_the_ledger_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEA_AUDIT_LEDGER", raising=False)
    assert default_ledger_path(tmp_path / "audit") == tmp_path / "ledger.jsonl"
    assert default_ledger_path(tmp_path / "audit", ledger="x.jsonl") == Path("x.jsonl")
    assert default_ledger_path(None) is None
    monkeypatch.setenv("LEA_AUDIT_LEDGER", str(tmp_path / "env.jsonl"))
    assert default_ledger_path(tmp_path / "audit") == tmp_path / "env.jsonl"
    assert default_ledger_path(tmp_path / "audit", ledger="off") is None
    monkeypatch.setenv("LEA_AUDIT_LEDGER", "off")
    assert default_ledger_path(tmp_path / "audit") is None


def test_an_assessment_entry_names_the_report(passing: Path, tmp_path: Path) -> None:
    rep = AuditReport.load(passing)
    e = record_assessment(tmp_path / "l.jsonl", rep, report_dir=passing)
    assert e["kind"] == "assessment"
    assert e["data"]["report_id"] == rep.report_id
    assert e["data"]["report_digest"] == rep.digest()
    assert e["data"]["status"] == rep.status.value and e["data"]["author"] == "alice"
    assert e["time"].endswith("+00:00")
