"""``lea-audit`` as a user calls it: a subprocess, in a fresh working directory.

The main flows of the README: ``demo``, ``run`` on a CSV or Parquet file, ``gate`` with JUnit
XML, ``policies``, ``--help`` and ``--version``.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

import lea_ai_audit
from lea_ai_audit import AuditReport, Status
from lea_ai_audit.cli import main
from lea_ai_audit.policy import DEFAULT_POLICY, load_policy

from .conftest import RUN_COLUMNS, CaseFiles, Result

Runner = Callable[..., Result]


@dataclass(frozen=True)
class RunOutcome:
    cwd: Path        # where the command ran
    result: Result
    report: AuditReport


def _run_readme_command(tmp: Path, data: Path, run_cli_in: Runner, *extra: str) -> RunOutcome:
    """The README's `lea-audit run` command, writing into ``tmp/A``."""
    res = run_cli_in(tmp, "run", "--data", data, *RUN_COLUMNS,
                     "--reference-group", "ethnicity=majority", *extra, "--out", "A")
    assert (tmp / "A" / "report.json").is_file(), res.err
    return RunOutcome(tmp, res, AuditReport.load(tmp / "A" / "report.json"))


@pytest.fixture(scope="module")
def biased_run(tmp_path_factory: pytest.TempPathFactory, case_files: CaseFiles,
               run_cli_in: Runner) -> RunOutcome:
    return _run_readme_command(tmp_path_factory.mktemp("biased"), case_files.biased_csv,
                               run_cli_in)


@pytest.fixture(scope="module")
def fair_run(tmp_path_factory: pytest.TempPathFactory, case_files: CaseFiles,
             run_cli_in: Runner) -> RunOutcome:
    return _run_readme_command(tmp_path_factory.mktemp("fair"), case_files.fair_csv, run_cli_in)


def _attestation(report: AuditReport, item: str):
    hits = [c for c in report.checks
            if c.check_id == "oversight.attestation" and c.params.get("item") == item]
    assert len(hits) == 1, f"no single attestation requirement for {item!r}"
    return hits[0]


# -- demo --------------------------------------------------------------------------------------
def test_demo_with_injected_bias_fails_and_writes_report_and_cases(run_cli: Runner,
                                                                   tmp_path: Path) -> None:
    res = run_cli("demo", "--out", "D", "--rows", "6000", "--bias", "0.6")
    assert res.rc == 1, res.err
    assert "error:" not in res.err
    report = AuditReport.load(tmp_path / "D" / "report.json")
    assert report.status is Status.FAIL
    assert report.result("fpr-parity").status is Status.FAIL  # the injected over-policing
    cases = pd.read_csv(tmp_path / "D" / "cases.csv")
    assert {"reoffended", "flagged", "risk", "ethnicity", "sex", "age_band"} <= set(cases.columns)
    assert len(cases) == report.data["n_rows"]
    assert "report: D/report.json" in res.out


def test_demo_without_bias_passes(run_cli: Runner, tmp_path: Path) -> None:
    res = run_cli("demo", "--out", "D", "--rows", "6000", "--bias", "0")
    assert res.rc == 0, res.out + res.err
    report = AuditReport.load(tmp_path / "D")
    assert report.status in (Status.PASS, Status.WARN)
    assert not report.by_status(Status.FAIL)
    assert (tmp_path / "D" / "cases.csv").is_file()


# -- run ---------------------------------------------------------------------------------------
def test_run_writes_report_with_the_right_subject(biased_run: RunOutcome,
                                                  case_files: CaseFiles) -> None:
    rep = biased_run.report
    subject = rep.subject
    assert subject["target"] == "reoffended"
    assert subject["sensitive"] == ["ethnicity", "sex"]
    assert subject["prediction_column"] == "flagged"
    assert subject["score_column"] == "risk"
    assert subject["has_scores"] is True
    assert subject["prediction_source"] == "prediction"
    assert subject["model"] is None
    refs = subject["reference_groups"]
    assert refs["ethnicity"] == {"group": "majority", "chosen": "given"}
    assert refs["sex"]["chosen"] == "largest" and refs["sex"]["group"] == "male"
    assert "ethnicity & sex" in refs  # the intersection is audited too

    assert rep.data["n_rows"] == len(case_files.biased)
    assert rep.data["positives"] == int(case_files.biased["reoffended"].sum())
    assert rep.data["predicted_positive"] == int(case_files.biased["flagged"].sum())
    source = rep.data["source"]
    assert Path(source["file"]).name == "cases.csv"
    assert source["file_sha256"] == hashlib.sha256(case_files.biased_csv.read_bytes()).hexdigest()

    policy = load_policy()
    assert rep.policy["id"] == DEFAULT_POLICY
    assert [c.requirement_id for c in rep.checks] == [r.id for r in policy.requirements]


@pytest.mark.parametrize(("which", "rc", "status"), [
    ("biased_run", 1, Status.FAIL),
    # a vendor's scores alone cannot be explained: the blocking SHAP self-test is not decided,
    # so the audit is ERROR and the gate stays closed (a signed waiver can open it)
    ("fair_run", 1, Status.ERROR),
])
def test_run_exit_code_follows_the_report(which: str, rc: int, status: Status,
                                          request: pytest.FixtureRequest) -> None:
    outcome: RunOutcome = request.getfixturevalue(which)
    assert outcome.result.rc == rc, outcome.result.err
    assert outcome.report.status is status
    assert f"audit {status.value.upper()}" in outcome.result.out
    assert "fpr-parity" in outcome.result.out  # the summary table
    assert "error:" not in outcome.result.err


@pytest.mark.parametrize("which", ["biased_run", "fair_run"])
def test_gate_exit_code_matches_the_report_and_junit_parses(which: str, run_cli: Runner,
                                                            request: pytest.FixtureRequest
                                                            ) -> None:
    outcome: RunOutcome = request.getfixturevalue(which)
    report_file = outcome.cwd / "A" / "report.json"
    before = report_file.read_bytes()
    res = run_cli("gate", "A/report.json", "--junit", "A/junit.xml", cwd=outcome.cwd)

    report = outcome.report
    assert res.rc == (0 if report.status in (Status.PASS, Status.WARN) else 1), res.err
    assert ("gate OPEN" if res.rc == 0 else "gate CLOSED") in res.out
    assert report_file.read_bytes() == before  # the gate only reads the report

    root = ET.parse(outcome.cwd / "A" / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.requirement_id for c in report.checks] + [
        "gate.verdict"]  # the gate's own verdict: a closed gate is always a failure
    assert int(suite.get("tests")) == len(report.checks) + 1
    closed = res.rc == 1
    assert int(suite.get("failures")) == len(report.by_status(Status.FAIL)) + closed
    assert (cases[-1].find("failure") is not None) == closed
    for case, result in zip(cases[:-1], report.checks, strict=True):
        failure = case.find("failure")
        assert (failure is not None) == (result.status is Status.FAIL), result.requirement_id
        if failure is not None:
            assert failure.get("message") == result.message
        assert case.get("classname", "").endswith(result.check_id)


def test_gate_accepts_the_report_directory(biased_run: RunOutcome, run_cli: Runner) -> None:
    res = run_cli("gate", "A", "--quiet", cwd=biased_run.cwd)
    assert res.rc == 1
    assert "fpr-parity failed" in res.out


def test_run_checks_fairness_runs_only_fairness_checks(run_cli: Runner,
                                                       case_files: CaseFiles,
                                                       tmp_path: Path) -> None:
    res = run_cli("run", "--data", case_files.biased_csv, *RUN_COLUMNS,
                  "--checks", "fairness", "--out", "A")
    report = AuditReport.load(tmp_path / "A" / "report.json")
    assert res.rc == (0 if report.passed else 1)
    assert report.checks, "no check ran"
    assert all(c.check_id.startswith("fairness.") for c in report.checks)
    expected = [r.id for r in load_policy().requirements if r.check.startswith("fairness.")]
    assert [c.requirement_id for c in report.checks] == expected
    assert len(expected) < len(load_policy().requirements)


def test_parquet_input_gives_the_csv_results(run_cli: Runner, case_files: CaseFiles,
                                             biased_run: RunOutcome, tmp_path: Path) -> None:
    res = run_cli("run", "--data", case_files.biased_parquet, *RUN_COLUMNS,
                  "--reference-group", "ethnicity=majority", "--out", "P")
    assert res.rc == biased_run.result.rc, res.err
    report = AuditReport.load(tmp_path / "P" / "report.json")
    assert Path(report.data["source"]["file"]).suffix == ".parquet"
    assert report.data["n_rows"] == biased_run.report.data["n_rows"]
    assert report.data["positives"] == biased_run.report.data["positives"]
    assert ([(c.requirement_id, c.status) for c in report.checks]
            == [(c.requirement_id, c.status) for c in biased_run.report.checks])


def test_attest_turns_the_attestation_into_pass(run_cli: Runner, case_files: CaseFiles,
                                                biased_run: RunOutcome, tmp_path: Path) -> None:
    statement = "course 'Using risk tools' (2026-10), all 40 officers of the unit"
    assert _attestation(biased_run.report, "officer-training").status is Status.WARN
    res = run_cli("run", "--data", case_files.biased_csv, *RUN_COLUMNS,
                  "--attest", f"officer-training={statement}", "--out", "A")
    report = AuditReport.load(tmp_path / "A" / "report.json")
    assert res.rc == (0 if report.passed else 1)
    attested = _attestation(report, "officer-training")
    assert attested.status is Status.PASS
    assert statement in attested.message
    assert attested.evidence_named("attestation").data["statement"] == statement
    # only that item: the other attestations still wait for a person
    others = [c for c in report.checks
              if c.check_id == "oversight.attestation" and c.params["item"] != "officer-training"]
    assert others and all(c.status is Status.WARN for c in others)


# -- policies, help, version -------------------------------------------------------------------
def test_policies_lists_the_default_pack(run_cli: Runner) -> None:
    res = run_cli("policies")
    assert res.rc == 0, res.err
    assert "eu-council-2020-internal-security" in res.out
    for req in load_policy().requirements:
        assert req.id in res.out
    assert res.err == ""


def test_help_lists_commands_and_exit_codes(run_cli: Runner) -> None:
    res = run_cli("--help")
    assert res.rc == 0
    assert res.out.startswith("usage: lea-audit")
    for command in ("demo", "run", "gate", "policies"):
        assert command in res.out
    assert "exit codes: 0 pass or warn, 1 fail, 2 bad input or usage" in res.out

    res = run_cli("run", "--help")
    assert res.rc == 0
    for option in ("--data", "--target", "--prediction-col", "--score-col", "--sensitive",
                   "--reference-group", "--checks", "--attest", "--out"):
        assert option in res.out


def test_version(run_cli: Runner) -> None:
    res = run_cli("--version")
    assert res.rc == 0
    assert res.out.strip() == f"lea-ai-audit {lea_ai_audit.__version__}"


def test_console_script_entry_point_is_main() -> None:
    scripts = [ep for ep in metadata.entry_points(group="console_scripts")
               if ep.name == "lea-audit"]
    assert len(scripts) == 1
    assert scripts[0].value == "lea_ai_audit.cli:main"
    assert scripts[0].load() is main


def test_no_command_prints_help_and_exits_2(cli: Callable[..., Result]) -> None:
    res = cli()
    assert res.rc == 2
    assert res.out.startswith("usage: lea-audit")
