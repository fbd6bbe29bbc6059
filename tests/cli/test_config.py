"""The configuration file (#21 point 2): `lea-audit run` and `lea-audit gate` with no options
read lea-audit.yaml (or [tool.lea-audit] in pyproject.toml); the command line wins; relative
paths are the file's; the file may not weaken the gate or make the run load a pickle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from lea_ai_audit.results import AuditReport

from .conftest import RUN_COLUMNS, assert_one_error_line

CONFIG = {"run": {"data": "data/cases.csv", "target": "reoffended", "prediction-col": "flagged",
                  "score-col": "risk", "sensitive": ["ethnicity", "sex"],
                  "reference-group": {"ethnicity": "majority"}, "checks": ["fairness"],
                  "out": "audits/risk-tool", "ledger": "audits/ledger.jsonl", "no-track": True,
                  "seed": 7},
          "gate": {"report": "audits/risk-tool", "ledger": "audits/ledger.jsonl"}}


def _project(root: Path, case_files, config=CONFIG, name="lea-audit.yaml") -> Path:
    (root / "data").mkdir(parents=True)
    shutil.copy(case_files.biased_csv, root / "data" / "cases.csv")
    (root / name).write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def _results(folder: Path) -> dict[str, str]:
    rep = AuditReport.load(folder / "report.json")
    return {c.requirement_id: c.status.value for c in rep.checks}


def test_run_and_gate_read_the_file_and_match_the_same_options_given_by_hand(
        cli, case_files, tmp_path: Path) -> None:
    _project(tmp_path, case_files)
    r = cli("run")
    assert r.rc == 1, r.err  # the biased cases FAIL
    assert "config: " in r.err and "lea-audit.yaml" in r.err
    rep = AuditReport.load(tmp_path / "audits" / "risk-tool" / "report.json")
    assert rep.subject["sensitive"] == ["ethnicity", "sex"] and rep.seed == 7
    assert rep.subject["reference_groups"]["ethnicity"]["group"] == "majority"
    assert (tmp_path / "audits" / "ledger.jsonl").is_file()
    (tmp_path / "empty.yaml").write_text("{}\n", encoding="utf-8")
    by_hand = cli("run", "--data", "data/cases.csv", *RUN_COLUMNS, "--reference-group",
                  "ethnicity=majority", "--checks", "fairness", "--seed", "7", "--out", "hand",
                  "--no-track", "--ledger", "off", "--config", tmp_path / "empty.yaml")
    assert by_hand.rc == 1, by_hand.err
    assert _results(tmp_path / "hand") == _results(tmp_path / "audits" / "risk-tool")
    g = cli("gate")
    assert g.rc == 1 and "gate CLOSED" in g.out, g.out  # the gate reads its section too


def test_the_command_line_wins_over_the_file(cli, case_files, tmp_path: Path) -> None:
    _project(tmp_path, case_files)
    r = cli("run", "--sensitive", "sex", "--reference-group", "sex=male", "--out", "mine",
            "-q")
    assert r.rc in (0, 1), r.err
    rep = AuditReport.load(tmp_path / "mine" / "report.json")
    assert rep.subject["sensitive"] == ["sex"]  # a repeatable option replaces, not extends
    assert not (tmp_path / "audits" / "risk-tool").exists()


def test_pyproject_and_relative_paths_from_another_directory(cli, case_files, tmp_path: Path
                                                             ) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.lea-audit.run]\ndata = "data/cases.csv"\n'
        'target = "reoffended"\nscore-col = "risk"\nsensitive = ["sex"]\n'
        'checks = ["fairness"]\nout = "audits/a"\nno-track = true\nledger = "off"\n',
        encoding="utf-8")
    (proj / "data").mkdir()
    shutil.copy(case_files.fair_csv, proj / "data" / "cases.csv")
    (tmp_path / "elsewhere").mkdir()
    r = cli("run", "--config", proj / "pyproject.toml", "-q")  # cwd is tmp_path
    assert r.rc in (0, 1), r.err
    assert (proj / "audits" / "a" / "report.json").is_file()  # the file's folder, not the cwd
    assert not (tmp_path / "audits").exists()


@pytest.mark.parametrize(("section", "key", "why"), [
    ("run", "trust-model", "can run code"),
    ("gate", "allow-unsigned-audit", "did not sign"),
    ("gate", "no-model-check", "model file"),
    ("gate", "accept-waivers", "waivers"),
    ("run", "force", "overwrite"),
    ("run", "sign-passphrase-env", "secrets"),
])
def test_the_file_may_not_weaken_the_gate_or_run_code(cli, case_files, tmp_path: Path,
                                                      section: str, key: str, why: str
                                                      ) -> None:
    cfg = {k: dict(v) for k, v in CONFIG.items()}
    cfg[section][key] = "X" if key.endswith("env") else True
    _project(tmp_path, case_files, cfg)
    r = cli(section)
    line = assert_one_error_line(r.err)
    assert r.rc == 2 and f"{section}.{key}" in line and why in line, line
    assert not (tmp_path / "audits").exists()  # nothing written


@pytest.mark.parametrize(("doc", "says"), [
    ({"run": {"tagret": "y"}}, "did you mean 'target'"),
    ({"run": {"seed": "many"}}, "run.seed must be a whole number"),
    ({"run": {"sensitive": []}}, "run.sensitive"),
    ({"run": ["data"]}, "run must be a mapping"),
    ({"deploy": {}}, "unknown key"),
    ("a: [", "not valid YAML"),
])
def test_a_bad_file_is_one_line_and_exit_2(cli, case_files, tmp_path: Path, doc, says
                                           ) -> None:
    (tmp_path / "lea-audit.yaml").write_text(doc if isinstance(doc, str) else
                                            yaml.safe_dump(doc), encoding="utf-8")
    r = cli("run", "--data", case_files.fair_csv, *RUN_COLUMNS)
    line = assert_one_error_line(r.err)
    assert r.rc == 2 and says in line, line


def test_without_a_file_the_missing_options_are_named(cli, tmp_path: Path) -> None:
    r = cli("run", "--data", "x.csv")
    line = assert_one_error_line(r.err)
    assert r.rc == 2 and "--target, --sensitive" in line and "lea-audit.yaml" in line
    r = cli("gate")
    assert r.rc == 2 and "no audit to gate" in assert_one_error_line(r.err)
    r = cli("run", "--config", "nope.yaml")
    assert r.rc == 2 and "no configuration file" in assert_one_error_line(r.err)
