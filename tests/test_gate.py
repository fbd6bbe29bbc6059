"""The CI gate: evaluate_gate's verdicts and the JUnit XML rendering."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lea_ai_audit.errors import ReportError
from lea_ai_audit.gate import evaluate_gate, junit_xml, write_junit
from lea_ai_audit.results import AuditReport, CheckResult, Status, overall_status


def result(rid: str, status: Status, *, blocking: bool = True, message: str | None = None,
           check_id: str = "fairness.disparity") -> CheckResult:
    return CheckResult(check_id=check_id, requirement_id=rid, status=status,
                       message=message if message is not None else f"{rid} is {status.value}",
                       title=f"title of {rid}", clauses=("Council 13083/1/20 §26",),
                       blocking=blocking, duration_s=0.25)


def report_of(*checks: CheckResult) -> AuditReport:
    return AuditReport(checks=checks, status=overall_status(checks), policy={"id": "pack"},
                       created_at="2026-01-01T00:00:00+00:00", duration_s=1.5)


def parse(report: AuditReport) -> ET.Element:
    root = ET.fromstring(junit_xml(report))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    return suite


# -- verdicts ----------------------------------------------------------------------------------
def test_all_pass_opens() -> None:
    v = evaluate_gate(report_of(result("a", Status.PASS), result("b", Status.PASS)))
    assert v.status is Status.PASS
    assert v.opened and v.exit_code == 0
    assert v.reasons == ()


def test_blocking_fail_closes() -> None:
    v = evaluate_gate(report_of(result("a", Status.PASS), result("fpr-parity", Status.FAIL)))
    assert v.status is Status.FAIL
    assert not v.opened and v.exit_code == 1
    assert len(v.reasons) == 1
    assert v.reasons[0].startswith("fpr-parity failed: fpr-parity is fail")


def test_non_blocking_warn_opens() -> None:
    v = evaluate_gate(report_of(result("a", Status.PASS),
                                result("fnr-parity", Status.WARN, blocking=False)))
    assert v.status is Status.WARN
    assert v.opened and v.exit_code == 0
    assert v.reasons == ()


def test_blocking_error_closes() -> None:
    v = evaluate_gate(report_of(result("a", Status.PASS),
                                result("perf", Status.ERROR, message="no scores")))
    assert v.status is Status.ERROR
    assert not v.opened and v.exit_code == 1
    assert v.reasons == ("perf could not be checked: no scores",)


def test_non_blocking_error_opens_as_warn() -> None:
    v = evaluate_gate(report_of(result("a", Status.PASS),
                                result("calib", Status.ERROR, blocking=False)))
    assert v.status is Status.WARN
    assert v.opened and v.exit_code == 0
    assert v.reasons == ()


def test_fail_wins_over_blocking_error() -> None:
    v = evaluate_gate(report_of(result("e", Status.ERROR), result("f", Status.FAIL)))
    assert v.status is Status.FAIL and v.exit_code == 1
    assert len(v.reasons) == 2


@pytest.mark.parametrize("checks", [
    pytest.param((result("a", Status.SKIPPED), result("b", Status.SKIPPED, blocking=False)),
                 id="all-skipped"),
    pytest.param((), id="no-checks"),
])
def test_nothing_run_closes(checks: tuple[CheckResult, ...]) -> None:
    v = evaluate_gate(report_of(*checks))
    assert v.status is Status.SKIPPED
    assert not v.opened and v.exit_code == 1
    assert v.reasons == ("no requirement was checked",)


def test_skipped_beside_a_pass_opens() -> None:
    v = evaluate_gate(report_of(result("a", Status.PASS), result("calib", Status.SKIPPED)))
    assert v.status is Status.PASS and v.opened


@pytest.mark.parametrize(("stored", "actual"), [
    (Status.PASS, Status.FAIL), (Status.WARN, Status.ERROR), (Status.FAIL, Status.PASS)])
def test_edited_status_is_refused(stored: Status, actual: Status) -> None:
    checks = {Status.FAIL: (result("a", Status.FAIL),),
              Status.ERROR: (result("a", Status.ERROR),),
              Status.PASS: (result("a", Status.PASS),)}[actual]
    edited = AuditReport(checks=checks, status=stored, policy={"id": "pack"})
    with pytest.raises(ReportError, match="edited"):
        evaluate_gate(edited)


def test_verdict_survives_the_json_round_trip() -> None:
    rep = report_of(result("a", Status.FAIL), result("b", Status.WARN, blocking=False))
    again = AuditReport.from_json(rep.to_json())
    assert evaluate_gate(again) == evaluate_gate(rep)


# -- JUnit -------------------------------------------------------------------------------------
def mixed_report() -> AuditReport:
    return report_of(
        result("p", Status.PASS),
        result("f", Status.FAIL),
        result("w", Status.WARN, blocking=False),
        result("eb", Status.ERROR),
        result("en", Status.ERROR, blocking=False),
        result("s", Status.SKIPPED, check_id="fairness.calibration"),
    )


def test_junit_counts() -> None:
    suite = parse(mixed_report())
    assert suite.get("name") == "lea-ai-audit pack"
    assert suite.get("tests") == "6"
    assert suite.get("failures") == "1"
    assert suite.get("errors") == "1"  # only the blocking error fails the build
    assert suite.get("skipped") == "1"
    assert suite.get("time") == "1.500"
    assert suite.get("timestamp") == "2026-01-01T00:00:00+00:00"


def test_junit_one_testcase_per_requirement() -> None:
    rep = mixed_report()
    cases = parse(rep).findall("testcase")
    assert [c.get("name") for c in cases] == ["p", "f", "w", "eb", "en", "s"]
    assert [c.get("classname") for c in cases] == [f"pack.{c.check_id}" for c in rep.checks]
    assert all(c.get("time") == "0.250" for c in cases)
    by_name = {c.get("name"): c for c in cases}
    assert list(by_name["p"]) == []
    assert [e.tag for e in by_name["f"]] == ["failure"]
    assert [e.tag for e in by_name["w"]] == ["system-out"]
    assert by_name["w"][0].text == "WARN: w is warn"
    assert [e.tag for e in by_name["eb"]] == ["error"]
    assert [e.tag for e in by_name["en"]] == ["system-out"]  # non-blocking: not a build error
    assert [e.tag for e in by_name["s"]] == ["skipped"]
    # a <failure> exactly for FAIL
    failing = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failing == {r.requirement_id for r in rep.by_status(Status.FAIL)}


def test_junit_failure_carries_title_clauses_and_message() -> None:
    suite = parse(report_of(result("f", Status.FAIL, message="FPR 0.32 vs 0.12")))
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "FPR 0.32 vs 0.12"
    assert failure.get("type") == "fail"
    assert failure.text == "title of f (Council 13083/1/20 §26)\nFPR 0.32 vs 0.12"


NASTY = "<script>alert('x')</script> & \"quoted\" 'single' ]]> §26 — ≤ 0.1"


@pytest.mark.parametrize("status", [Status.FAIL, Status.ERROR, Status.SKIPPED, Status.WARN])
def test_junit_escapes_messages(status: Status) -> None:
    rep = report_of(result("r<&>\"'", status, message=NASTY))
    text = junit_xml(rep)
    assert "<script>" not in text
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    case = suite.find("testcase")
    assert case is not None
    assert case.get("name") == "r<&>\"'"
    (child,) = list(case)
    if child.tag == "system-out":
        assert child.text is not None and child.text.endswith(NASTY)
    else:
        assert child.get("message") == NASTY
    if status is Status.FAIL:
        assert child.text is not None and child.text.endswith("\n" + NASTY)


def test_junit_keeps_newlines_and_tabs_in_attributes() -> None:
    msg = "line one\nline two\tend"
    failure = parse(report_of(result("f", Status.FAIL, message=msg))).find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == msg


def test_write_junit_writes_the_same_xml(tmp_path: Path) -> None:
    rep = mixed_report()
    path = write_junit(rep, tmp_path / "ci" / "junit.xml")
    assert path == tmp_path / "ci" / "junit.xml"
    assert path.read_text(encoding="utf-8") == junit_xml(rep)
    assert ET.parse(path).getroot().find("testsuite").get("tests") == "6"
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]  # no temp file left


def test_junit_with_a_control_character_still_parses() -> None:
    msg = "FPR disparity for ethnicity=minority\x0ba \x1b[31m"
    suite = parse(report_of(result("f", Status.FAIL, message=msg)))
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert "ethnicity=minority" in (failure.get("message") or "")
