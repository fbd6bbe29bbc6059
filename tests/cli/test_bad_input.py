"""Bad input: every case exits 2 with one line ``error: <what> — <how to fix>`` on stderr, no
traceback (unless ``--verbose``), and nothing written.

The table calls ``lea_ai_audit.cli.main`` in-process (fast) with ``-q``: the default progress
display is tested on its own below (``test_default_output_*``), so that one defect there does
not hide every other assertion of the table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit import audit

from .conftest import CaseFiles, Result, assert_one_error_line

Cli = Callable[..., Result]
Setup = Callable[[Path, CaseFiles], str]


def run_argv(data: str, *extra: str, target: str = "reoffended", pred: str | None = "flagged",
             score: str | None = "risk", sensitive: Sequence[str] = ("ethnicity", "sex"),
             out: str = "out", quiet: bool = True) -> list[str]:
    """`lea-audit run` on ``data`` with the demo's columns, writing into ``out``."""
    argv = ["run", "--data", data, "--target", target]
    if pred:
        argv += ["--prediction-col", pred]
    if score:
        argv += ["--score-col", score]
    for s in sensitive:
        argv += ["--sensitive", s]
    return [*argv, *extra, "--out", out, *(["-q"] if quiet else [])]


# -- ways to make a bad data file -------------------------------------------------------------
def the_cases(tmp: Path, cases: CaseFiles) -> str:
    return str(cases.biased_csv)


def raw(content: bytes, name: str = "bad.csv") -> Setup:
    def setup(tmp: Path, cases: CaseFiles) -> str:
        (tmp / name).write_bytes(content)
        return name
    return setup


def edited(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Setup:
    """The demo cases with ``change`` applied, as CSV."""
    def setup(tmp: Path, cases: CaseFiles) -> str:
        change(cases.biased.copy()).to_csv(tmp / "bad.csv", index=False)
        return "bad.csv"
    return setup


def header_only(tmp: Path, cases: CaseFiles) -> str:
    cases.biased.head(0).to_csv(tmp / "bad.csv", index=False)
    return "bad.csv"


def a_directory(tmp: Path, cases: CaseFiles) -> str:
    (tmp / "cases.csv").mkdir()
    return "cases.csv"


def csv_named_parquet(tmp: Path, cases: CaseFiles) -> str:
    (tmp / "cases.parquet").write_bytes(cases.biased_csv.read_bytes())
    return "cases.parquet"


def with_policy(text: str) -> Callable[[Path], str]:
    def write(tmp: Path) -> str:
        (tmp / "policy.yaml").write_text(text, encoding="utf-8")
        return "policy.yaml"
    return write


def _set(col: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df[col] = df[col].astype(float if value is np.nan else object)
        df.loc[row, col] = value
        return df
    return change


def _column(col: str, values: Callable[[pd.DataFrame], Any]
            ) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df[col] = values(df)
        return df
    return change


YES_NO = _column("reoffended", lambda df: np.where(df["reoffended"] == 1, "yes", "no"))

GOOD_POLICY_HEAD = "id: mine\nversion: '1'\ntitle: my pack\nrequirements:\n"

# (setup of --data, argv builder keywords, extra options, fragments the message must hold)
RUN_CASES = [
    pytest.param(lambda t, c: "no-such-file.csv", {}, [], ["'no-such-file.csv'", "does not exist"],
                 id="missing-data-file"),
    pytest.param(raw(b""), {}, [], ["'bad.csv'", "empty"], id="empty-file"),
    pytest.param(header_only, {}, [], ["header but no rows"], id="header-only-csv"),
    pytest.param(raw(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4), {}, [],
                 ["binary"], id="binary-file"),
    pytest.param(a_directory, {}, [], ["directory"], id="directory-as-data"),
    pytest.param(raw("reoffended,flagged,risk,ethnicity,sex\n1,1,0.9,Müller,m\n"
                     .encode("latin-1")), {}, [], ["UTF-8"], id="not-utf8"),
    pytest.param(raw(b"reoffended,flagged,risk,ethnicity,sex\n1,1,0.9,a,m\n0,1,0.2,a,m,x,y\n"),
                 {}, [], ["cannot be read as CSV", "line 3"], id="ragged-csv"),
    pytest.param(csv_named_parquet, {}, [], ["Parquet"], id="csv-named-parquet"),
    # columns that are not there: the message names the column and suggests a close match
    pytest.param(the_cases, {"target": "reoffend"}, [],
                 ["target column 'reoffend'", "did you mean 'reoffended'"], id="missing-target"),
    pytest.param(the_cases, {"sensitive": ["ethnicty"]}, [],
                 ["sensitive column 'ethnicty'", "'ethnicity'"], id="missing-sensitive"),
    pytest.param(the_cases, {"pred": "flaged"}, [],
                 ["prediction column 'flaged'", "'flagged'"], id="missing-prediction-col"),
    pytest.param(the_cases, {"score": "risc"}, [], ["score column 'risc'", "'risk'"],
                 id="missing-score-col"),
    pytest.param(the_cases, {"sensitive": ["ethnicity", "reoffended"]}, [],
                 ["'reoffended'", "target"], id="sensitive-is-target"),
    pytest.param(the_cases, {"sensitive": ["sex", "sex"]}, [], ["repeat"],
                 id="sensitive-twice"),
    # values that cannot be audited
    pytest.param(the_cases, {"pred": "risk", "score": None}, [],
                 ["prediction column 'risk'", "--score-col"], id="score-as-prediction"),
    pytest.param(the_cases, {"score": "district"}, [], ["'district'", "not numeric"],
                 id="score-not-numeric"),
    pytest.param(edited(_set("reoffended", 5, np.nan)), {}, [],
                 ["target column 'reoffended'", "1 missing value", "row 5"], id="nan-in-target"),
    pytest.param(edited(_set("flagged", 7, np.nan)), {}, [],
                 ["prediction column 'flagged'", "missing value", "row 7"],
                 id="nan-in-predictions"),
    pytest.param(edited(_set("risk", 3, np.nan)), {}, [], ["score column 'risk'", "missing"],
                 id="nan-in-scores"),
    pytest.param(edited(_column("reoffended", lambda df: np.arange(len(df)) % 3)), {}, [],
                 ["target column 'reoffended'", "two values"], id="multi-class-target"),
    pytest.param(edited(_column("reoffended", lambda df: 1)), {}, [],
                 ["'reoffended'", "one class"], id="one-class-target"),
    pytest.param(edited(YES_NO), {}, [], ["'reoffended'", "two values", "positive"],
                 id="text-target-without-positive-label"),
    pytest.param(edited(YES_NO), {}, ["--positive-label", "Yes"],
                 ["'Yes'", "does not occur", "'yes'"], id="positive-label-not-in-target"),
    # options that do not fit the data
    pytest.param(the_cases, {}, ["--reference-group", "ethnicity=nobody"],
                 ["'nobody'", "majority"], id="reference-group-absent"),
    pytest.param(the_cases, {}, ["--reference-group", "district=D01"],
                 ["'district'", "not a sensitive attribute"], id="reference-group-not-sensitive"),
    pytest.param(the_cases, {}, ["--reference-group", "ethnicity"], ["name=value"],
                 id="reference-group-without-equals"),
    pytest.param(the_cases, {}, ["--reference-group", "ethnicity="], ["name=value"],
                 id="reference-group-without-value"),
    pytest.param(the_cases, {"pred": None, "score": None}, [],
                 ["--prediction-col", "--score-col"], id="no-prediction-no-score"),
    # the decision rule (score >= threshold) must fit: typed errors, never a silent negative
    pytest.param(the_cases, {"pred": None}, ["--threshold", "nan"],
                 ["threshold nan", "not a finite number", "--threshold"], id="threshold-nan"),
    pytest.param(the_cases, {"pred": None}, ["--threshold", "inf"],
                 ["threshold inf", "not a finite number"], id="threshold-inf"),
    pytest.param(the_cases, {"pred": None}, ["--threshold", "5"],
                 ["threshold 5 is outside [0, 1]", "'risk'", "no case would be flagged"],
                 id="threshold-above-1-for-probabilities"),
    pytest.param(the_cases, {"pred": None}, ["--threshold", "-1"],
                 ["threshold -1 is outside [0, 1]", "every case would be flagged"],
                 id="threshold-negative"),
    pytest.param(the_cases, {}, ["--threshold", "0.3"],
                 ["threshold 0.3 is not used", "prediction column 'flagged'"],
                 id="threshold-with-prediction-col"),
    pytest.param(edited(_column("risk", lambda df: (df["risk"] * 100).round())), {"pred": None},
                 [], ["column 'risk'", "outside [0, 1]", "0.5", "--threshold"],
                 id="scores-0-100-default-threshold"),
    pytest.param(edited(_set("risk", 3, np.inf)), {}, [],
                 ["score column 'risk'", "infinite", "row 3"], id="inf-in-scores"),
    pytest.param(edited(_column("reoffended", lambda df: np.arange(len(df)) % 3)), {},
                 ["--positive-label", "2"], ["'reoffended'", "two values", "recode"],
                 id="multi-class-target-with-positive-label"),
    # sensitive attributes that cannot be compared
    pytest.param(edited(_column("sex", lambda df: "m")), {}, [],
                 ["sensitive column 'sex'", "one group only", "'m'"], id="one-group-sensitive"),
    pytest.param(edited(_column("case_no", lambda df: np.arange(len(df)))),
                 {"sensitive": ["ethnicity", "case_no"]}, [],
                 ["sensitive column 'case_no'", "identifier", "group attribute"],
                 id="identifier-as-sensitive"),
    pytest.param(the_cases, {}, ["--checks", "nonsense"], ["'nonsense'"],
                 id="unknown-checks-prefix"),
    pytest.param(the_cases, {}, ["--attest", "officer-training"], ["name=value"],
                 id="attest-without-equals"),
    pytest.param(the_cases, {}, ["--reference", "no-such-train.csv"],
                 ["'no-such-train.csv'", "does not exist"], id="missing-reference-file"),
    pytest.param(the_cases, {}, ["--policy", "no-such-pack"],
                 ["'no-such-pack'", "eu-council-2020-internal-security"], id="unknown-policy-id"),
    pytest.param(the_cases, {"out": "afile"}, [], ["cannot write", "afile"],
                 id="out-is-a-file"),
]


@pytest.mark.parametrize(("setup", "kw", "extra", "fragments"), RUN_CASES)
def test_run_bad_input(setup: Setup, kw: dict[str, Any], extra: list[str],
                       fragments: list[str], cli: Cli, case_files: CaseFiles,
                       tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory\n")
    data = setup(tmp_path, case_files)
    res = cli(*run_argv(data, *extra, **kw))
    assert res.rc == 2, res.out + res.err
    line = assert_one_error_line(res.err)
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / "out").exists(), "something was written"
    assert (tmp_path / "afile").read_text() == "not a directory\n"


POLICY_CASES = [
    pytest.param(GOOD_POLICY_HEAD + "  - {id: a, clauses: [c], check: fairness.disparity\n",
                 ["'policy.yaml'", "not valid YAML", "line"], id="malformed-yaml"),
    pytest.param("- a list\n- not a mapping\n", ["mapping"], id="yaml-not-a-mapping"),
    pytest.param(GOOD_POLICY_HEAD + "  - {id: a, clauses: [c], check: fairness.nonsense}\n",
                 ["'fairness.nonsense'", "fairness.disparity"], id="unknown-check-id"),
    pytest.param(GOOD_POLICY_HEAD + "  - {id: a, clauses: [c], check: fairness.disparity,"
                                    " params: {metric: nonsense}}\n",
                 ["'nonsense'", "fpr"], id="unknown-check-parameter-value"),
    pytest.param(GOOD_POLICY_HEAD + "  - {id: a, clauses: [c], check: fairness.disparity,"
                                    " colour: red}\n", ["colour"], id="unknown-requirement-key"),
    pytest.param(GOOD_POLICY_HEAD, ["requirements"], id="no-requirements"),
]


@pytest.mark.parametrize(("text", "fragments"), POLICY_CASES)
@pytest.mark.parametrize("command", ["run", "policies"])
def test_bad_policy_file(text: str, fragments: list[str], command: str, cli: Cli,
                         case_files: CaseFiles, tmp_path: Path) -> None:
    policy = with_policy(text)(tmp_path)
    argv = (run_argv(str(case_files.biased_csv), "--policy", policy) if command == "run"
            else ["policies", policy])
    res = cli(*argv)
    assert res.rc == 2, res.out + res.err
    line = assert_one_error_line(res.err)
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tagged", [
    'id: !!python/object/apply:os.system ["touch {marker}"]',
    'id: !!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
    "id: !!python/name:os.system",
])
def test_policy_with_python_tag_is_refused_and_never_runs(tagged: str, cli: Cli,
                                                          case_files: CaseFiles,
                                                          tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = (tagged.format(marker=marker) + "\nversion: '1'\ntitle: t\nrequirements:\n"
            "  - {id: a, clauses: [c], check: fairness.disparity, params: {metric: fpr}}\n")
    policy = with_policy(text)(tmp_path)
    for argv in (run_argv(str(case_files.biased_csv), "--policy", policy),
                 ["policies", policy]):
        res = cli(*argv)
        assert res.rc == 2
        line = assert_one_error_line(res.err)
        assert "tag" in line
    assert not marker.exists(), "the YAML tag ran a command"
    assert not (tmp_path / "out").exists()


USAGE_CASES = [
    pytest.param(["frobnicate"], ["'frobnicate'", "--help"], id="unknown-subcommand"),
    pytest.param(["run", "--data", "cases.csv"], ["--target", "--sensitive"],
                 id="missing-required-options"),
    pytest.param(["run", "--data", "cases.csv", "--target", "y", "--sensitive", "s",
                  "--no-such-option"], ["--no-such-option"], id="unknown-option"),
    pytest.param(["demo", "--rows", "many"], ["--rows", "'many'"], id="rows-not-a-number"),
    pytest.param(["demo", "--bias"], ["--bias"], id="option-without-value"),
    pytest.param(["gate"], ["report"], id="gate-without-report"),
    # checked by the library rather than argparse: same form
    pytest.param(["demo", "--rows", "5", "--out", "out"], ["--rows"], id="demo-too-few-rows"),
    pytest.param(["demo", "--bias", "2", "--out", "out"], ["--bias"], id="demo-bias-above-1"),
    pytest.param(["policies", "no-such-pack"], ["'no-such-pack'"], id="policies-unknown-id"),
]


@pytest.mark.parametrize(("argv", "fragments"), USAGE_CASES)
def test_usage_errors(argv: list[str], fragments: list[str], cli: Cli, tmp_path: Path) -> None:
    res = cli(*argv)
    assert res.rc == 2, res.out + res.err
    line = assert_one_error_line(res.err)
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / "out").exists()


# -- gate ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def failing_report(case_files: CaseFiles) -> dict[str, Any]:
    """A real report (status "fail") as the JSON dict `gate` reads."""
    rep = audit(case_files.biased, target="reoffended", prediction="flagged", score="risk",
                sensitive=["ethnicity", "sex"])
    d = json.loads(rep.to_json())
    assert d["status"] == "fail"
    return d


def _report_with(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    def make(real: dict[str, Any]) -> Any:
        return {**real, **changes}
    return make


GATE_CASES = [
    pytest.param(None, ["no report", "report.json"], id="missing-report"),
    pytest.param(b"reoffended,flagged\n1,0\n", ["not valid JSON"], id="not-json"),
    pytest.param(b"\xff\xfe\x00\x01binary", ["not valid JSON"], id="binary"),
    pytest.param(lambda real: [1, 2, 3], ["not an lea-ai-audit report"], id="json-list"),
    pytest.param(lambda real: {"hello": "world"}, ["not an lea-ai-audit report"],
                 id="json-not-a-report"),
    pytest.param(_report_with(schema_version="99.0"), ["'99.0'", "1.x"], id="schema-99"),
    pytest.param(lambda real: {k: v for k, v in real.items() if k != "schema_version"},
                 ["schema_version"], id="no-schema-version"),
    pytest.param(_report_with(status="pass"), ["PASS", "FAIL", "edited"], id="status-edited"),
    pytest.param(_report_with(status="maybe"), ["malformed"], id="status-unknown"),
    pytest.param(_report_with(checks=None), ["malformed"], id="checks-null"),
    pytest.param(lambda real: {**real, "checks": [{**real["checks"][0], "status": "great"}]},
                 ["malformed"], id="check-status-unknown"),
]


def _write_report(tmp: Path, content: Any, real: dict[str, Any]) -> str:
    if content is None:
        return "nowhere/report.json"
    if callable(content):
        content = json.dumps(content(real)).encode()
    (tmp / "report.json").write_bytes(content)
    return "report.json"


@pytest.mark.parametrize(("content", "fragments"), GATE_CASES)
def test_gate_bad_report(content: Any, fragments: list[str], cli: Cli,
                         failing_report: dict[str, Any], tmp_path: Path) -> None:
    path = _write_report(tmp_path, content, failing_report)
    res = cli("gate", path, "--junit", "junit.xml")
    assert res.rc == 2, res.out + res.err  # refused: neither opened (0) nor a verdict (1)
    line = assert_one_error_line(res.err)
    for fragment in fragments:
        assert fragment in line
    assert "gate OPEN" not in res.out
    assert not (tmp_path / "junit.xml").exists(), "JUnit written for a refused report"


def test_gate_on_the_unedited_report_closes(cli: Cli, failing_report: dict[str, Any],
                                            tmp_path: Path) -> None:
    """The control of the edited-report case: the same report, untouched, is read."""
    (tmp_path / "report.json").write_text(json.dumps(failing_report), encoding="utf-8")
    res = cli("gate", "report.json", "--junit", "junit.xml", "-q")
    assert res.rc == 1, res.err
    assert res.err == ""
    assert (tmp_path / "junit.xml").is_file()


def test_gate_directory_without_report(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    res = cli("gate", "A")
    assert res.rc == 2
    assert "no report" in assert_one_error_line(res.err)


@pytest.mark.parametrize("checks", ["abc", [1, 2]], ids=["string", "numbers"])
def test_gate_report_with_non_object_checks(checks: Any, cli: Cli,
                                            failing_report: dict[str, Any],
                                            tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({**failing_report, "checks": checks}))
    res = cli("gate", "report.json")
    assert res.rc == 2
    line = assert_one_error_line(res.err)
    assert "internal error" not in line
    assert "malformed" in line


# -- --verbose ---------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--verbose", "-v"])
def test_verbose_shows_the_traceback(flag: str, cli: Cli, case_files: CaseFiles) -> None:
    res = cli(flag, *run_argv(str(case_files.biased_csv), target="reoffend"))
    assert res.rc == 2
    assert "Traceback (most recent call last)" in res.err
    assert "ColumnNotFoundError" in res.err
    last = res.err.splitlines()[-1]
    assert last.startswith("error: target column 'reoffend'")


def test_verbose_shows_the_traceback_of_a_refused_report(cli: Cli,
                                                         failing_report: dict[str, Any],
                                                         tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({**failing_report, "status": "pass"}))
    res = cli("--verbose", "gate", "report.json")
    assert res.rc == 2
    assert "Traceback (most recent call last)" in res.err
    assert "ReportError" in res.err


def test_verbose_after_the_command(cli: Cli, case_files: CaseFiles) -> None:
    res = cli(*run_argv(str(case_files.biased_csv), "--verbose", target="reoffend"))
    assert res.rc == 2
    assert "Traceback (most recent call last)" in res.err


# -- the default output (without -q) ---------------------------------------------------------
def test_default_output_error_before_the_audit_is_one_line(cli: Cli, tmp_path: Path) -> None:
    res = cli(*run_argv("no-such-file.csv", quiet=False))
    assert res.rc == 2
    assert_one_error_line(res.err)


@pytest.mark.parametrize("kw,extra", [
    pytest.param({"target": "reoffend"}, [], id="missing-target"),
    pytest.param({}, ["--policy", "no-such-pack"], id="unknown-policy"),
    pytest.param({}, ["--reference-group", "ethnicity=nobody"], id="reference-group-absent"),
])
def test_default_output_error_during_the_audit_is_one_line(kw: dict[str, Any],
                                                           extra: list[str], cli: Cli,
                                                           case_files: CaseFiles) -> None:
    res = cli(*run_argv(str(case_files.biased_csv), *extra, quiet=False, **kw))
    assert res.rc == 2
    assert_one_error_line(res.err)


# -- messages ----------------------------------------------------------------------------------
def test_not_binary_message_shows_plain_values(cli: Cli, case_files: CaseFiles,
                                               tmp_path: Path) -> None:
    data = edited(_column("reoffended", lambda df: np.arange(len(df)) % 3))(tmp_path, case_files)
    res = cli(*run_argv(data))
    line = assert_one_error_line(res.err)
    assert "np." not in line
    assert "0, 1, 2" in line


def test_missing_reference_file_names_the_reference_option(cli: Cli,
                                                           case_files: CaseFiles) -> None:
    res = cli(*run_argv(str(case_files.biased_csv), "--reference", "no-such-train.csv"))
    line = assert_one_error_line(res.err)
    assert "--reference" in line
    assert "--data" not in line


def test_positive_label_given_for_a_numeric_target(cli: Cli, case_files: CaseFiles,
                                                   tmp_path: Path) -> None:
    res = cli(*run_argv(str(case_files.biased_csv), "--positive-label", "1"))
    assert res.rc in (0, 1), res.err
    assert (tmp_path / "out" / "report.json").is_file()


# -- nothing lost ------------------------------------------------------------------------------
LOSS_CASES = [
    pytest.param(the_cases, {"target": "reoffend"}, [], id="missing-target"),
    pytest.param(edited(_set("reoffended", 5, np.nan)), {}, [], id="nan-in-target"),
    pytest.param(the_cases, {}, ["--policy", "no-such-pack"], id="unknown-policy"),
    pytest.param(the_cases, {}, ["--reference-group", "ethnicity=nobody"],
                 id="reference-group-absent"),
    pytest.param(the_cases, {}, ["--checks", "nonsense"], id="unknown-checks-prefix"),
    pytest.param(the_cases, {}, ["--attest", "officer-training"], id="attest-without-equals"),
    pytest.param(raw(b""), {}, [], id="empty-file"),
]


@pytest.fixture
def earlier_run(tmp_path: Path, failing_report: dict[str, Any]) -> dict[str, bytes]:
    """``out/`` holding a report.json and junit.xml from an earlier run; their bytes."""
    out = tmp_path / "out"
    out.mkdir()
    files = {"report.json": (json.dumps(failing_report, indent=2, ensure_ascii=False)
                             + "\n").encode(),
             "junit.xml": b'<?xml version="1.0"?>\n<testsuites/>\n'}
    for name, content in files.items():
        (out / name).write_bytes(content)
    return files


def _assert_unchanged(out: Path, files: dict[str, bytes]) -> None:
    assert sorted(os.listdir(out)) == sorted(files), "a stray file was left in --out"
    for name, content in files.items():
        assert (out / name).read_bytes() == content, f"{name} from the earlier run changed"


@pytest.mark.parametrize(("setup", "kw", "extra"), LOSS_CASES)
def test_failed_run_leaves_the_earlier_report_intact(setup: Setup, kw: dict[str, Any],
                                                     extra: list[str], cli: Cli,
                                                     case_files: CaseFiles, tmp_path: Path,
                                                     earlier_run: dict[str, bytes]) -> None:
    data = setup(tmp_path, case_files)
    res = cli(*run_argv(data, *extra, "--junit", "out/junit.xml", **kw))
    assert res.rc == 2
    assert_one_error_line(res.err)
    _assert_unchanged(tmp_path / "out", earlier_run)


def test_refused_report_leaves_the_earlier_junit_intact(cli: Cli, tmp_path: Path,
                                                        failing_report: dict[str, Any],
                                                        earlier_run: dict[str, bytes]) -> None:
    edited_report = {**failing_report, "status": "pass"}
    (tmp_path / "edited.json").write_text(json.dumps(edited_report))
    res = cli("gate", "edited.json", "--junit", "out/junit.xml")
    assert res.rc == 2
    _assert_unchanged(tmp_path / "out", earlier_run)


def test_unwritable_junit_leaves_the_earlier_report_intact(cli: Cli, case_files: CaseFiles,
                                                           tmp_path: Path,
                                                           earlier_run: dict[str, bytes]
                                                           ) -> None:
    (tmp_path / "junit-dir").mkdir()
    res = cli(*run_argv(str(case_files.biased_csv), "--junit", "junit-dir"))
    assert res.rc == 2
    assert_one_error_line(res.err)
    _assert_unchanged(tmp_path / "out", earlier_run)


# -- the same bad input through the Python API ---------------------------------------------------
# Every case of the table above that is about the data or the arguments (not about reading a
# file or parsing an option) also goes through lea_ai_audit.audit(): a typed exception from
# lea_ai_audit.errors whose message is the very line the CLI prints after "error: ".
_FILE_OR_OPTION_CASES = {
    "missing-data-file", "empty-file", "header-only-csv", "binary-file", "directory-as-data",
    "not-utf8", "ragged-csv", "csv-named-parquet", "reference-group-without-equals",
    "reference-group-without-value", "attest-without-equals", "missing-reference-file",
    "out-is-a-file"}
API_CASES = [p for p in RUN_CASES if p.id not in _FILE_OR_OPTION_CASES]
# the CLI words these in its options (--prediction-col), the API in its arguments (prediction=)
_WORDED_FOR_EACH = {"no-prediction-no-score": "nothing to audit: no model, predictions or scores"}


def _api_kwargs(kw: dict[str, Any], extra: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {
        "target": kw.get("target", "reoffended"),
        "sensitive": list(kw.get("sensitive", ("ethnicity", "sex"))),
        "prediction": kw.get("pred", "flagged"), "score": kw.get("score", "risk")}
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    for flag, value in options.items():
        if flag == "--positive-label":
            args["positive_label"] = value
        elif flag == "--reference-group":
            attr, group = value.split("=", 1)
            args["reference_groups"] = {attr: group}
        elif flag == "--checks":
            args["checks"] = [value]
        elif flag == "--policy":
            args["policy"] = value
        elif flag == "--threshold":
            args["threshold"] = float(value)
        else:  # pragma: no cover - a new table entry needs its translation here
            raise AssertionError(f"no API form for {flag}")
    return args


def test_api_cases_cover_the_table() -> None:
    assert len(API_CASES) >= 20 and len(API_CASES) + len(_FILE_OR_OPTION_CASES) == len(RUN_CASES)


@pytest.mark.parametrize(("setup", "kw", "extra", "fragments"), API_CASES)
def test_api_bad_input_raises_the_clis_message(setup: Setup, kw: dict[str, Any],
                                               extra: list[str], fragments: list[str],
                                               cli: Cli, case_files: CaseFiles,
                                               tmp_path: Path) -> None:
    from lea_ai_audit.errors import LeaAuditError

    data = setup(tmp_path, case_files)
    res = cli(*run_argv(data, *extra, **kw))
    assert res.rc == 2, res.out + res.err
    line = assert_one_error_line(res.err)
    frame = pd.read_csv(Path(data) if Path(data).is_absolute() else tmp_path / data)
    with pytest.raises(LeaAuditError) as info:
        audit(frame, **_api_kwargs(kw, extra), track=False)
    assert type(info.value) is not LeaAuditError  # a specific subclass (DataError, ...)
    case = next(p.id for p in API_CASES if p.values[0] is setup and p.values[2] == extra
                and p.values[1] == kw)
    if case in _WORDED_FOR_EACH:
        assert str(info.value).startswith(_WORDED_FOR_EACH[case])
        return
    assert line == f"error: {info.value}"
    for fragment in fragments:
        assert fragment in str(info.value)
