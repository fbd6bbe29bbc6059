"""Files crafted to exhaust the tool are refused at once, with one line (#23 point 1).

YAML alias bombs ("billion laughs") in every YAML file lea-audit reads, JSON nested a hundred
thousand levels deep or holding NaN in the files it reads back: each ends in the one-line
``error: what — how to fix`` with exit code 2, in seconds, nothing written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .conftest import assert_one_error_line

#: 9 levels of 9 aliases: 9**9 (387 million) strings once expanded
BOMB = ('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
        + "".join(f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]\n"
                  for p, c in zip("abcdefgh", "bcdefghi", strict=True)))
RUN = ["run", "--prediction-col", "flagged", "--score-col", "risk", "--target", "reoffended",
       "--sensitive", "ethnicity", "--checks", "fairness", "--no-track"]


@pytest.mark.parametrize("option", ["--policy", "--metadata", "--schema", "--population"])
def test_an_alias_bomb_in_a_yaml_file_is_refused_at_once(cli, case_files, tmp_path: Path,
                                                         option: str) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    t0 = time.perf_counter()
    r = cli(*RUN, "--data", case_files.biased_csv, "--out", tmp_path / "a", option, bomb)
    assert time.perf_counter() - t0 < 30
    assert r.rc == 2, r.err
    line = assert_one_error_line(r.err)
    assert "alias" in line and "bomb.yaml" in line
    assert not (tmp_path / "a").exists()


def test_an_alias_bomb_in_the_trust_store_is_refused(cli, case_files, tmp_path: Path) -> None:
    r = cli(*RUN, "--data", case_files.biased_csv, "--out", tmp_path / "a")
    assert r.rc == 1
    bomb = tmp_path / "trust.yaml"
    bomb.write_text(BOMB)
    r = cli("gate", tmp_path / "a", "--require-signoff", "--trust-store", bomb)
    assert r.rc == 2
    assert "alias" in assert_one_error_line(r.err)


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"schema_version": NaN}', '{"a": Infinity}'])
def test_a_hostile_report_json_is_one_line(cli, tmp_path: Path, body: str) -> None:
    d = tmp_path / "audit"
    d.mkdir()
    (d / "report.json").write_text(body)
    for argv in (["gate", d], ["card", d, "--format", "json"], ["signoff", d, "--key", "k",
                                                                   "--reviewer", "bob"]):
        r = cli(*argv)
        assert r.rc == 2, (argv, r.err)
        line = assert_one_error_line(r.err)
        assert "internal error" not in line, line


def test_a_deeply_nested_ledger_line_is_not_an_internal_error(cli, tmp_path: Path) -> None:
    led = tmp_path / "ledger.jsonl"
    led.write_text("[" * 50_000 + "]" * 50_000 + "\n")
    r = cli("verify", led)
    assert r.rc in (1, 2) and "internal error" not in r.err and "Traceback" not in r.err


def test_strict_json_accepts_what_lea_audit_writes(case_files, tmp_path: Path, cli) -> None:
    from lea_ai_audit._io import json_depth, strict_json

    assert cli(*RUN, "--data", case_files.biased_csv, "--out", tmp_path / "a").rc == 1
    text = (tmp_path / "a" / "report.json").read_text()
    assert strict_json(text) == json.loads(text) and 3 < json_depth(text) < 20
    assert json_depth('["[[[", {"a": "]]]"}]') == 2  # brackets inside strings do not count
