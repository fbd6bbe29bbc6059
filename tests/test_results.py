"""AuditReport: versioned JSON that round-trips exactly and is written atomically."""

from __future__ import annotations

import json
import math
import os

import pytest

from lea_ai_audit import AuditReport, CheckResult, Evidence, Status, audit
from lea_ai_audit.datasets import make_demo
from lea_ai_audit.errors import ReportError
from lea_ai_audit.results import SCHEMA_VERSION, overall_status


@pytest.fixture(scope="module")
def report() -> AuditReport:
    demo = make_demo(4000, bias=0.6, seed=5)
    return audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"],
                 model=demo.model, author="analyst@example.org", seed=5)


def test_round_trip_is_exact(report: AuditReport) -> None:
    again = AuditReport.from_json(report.to_json())
    assert again == report
    assert again.digest() == report.digest()
    assert again.to_json() == report.to_json()


def test_report_records_provenance(report: AuditReport) -> None:
    d = json.loads(report.to_json())
    assert d["schema_version"] == SCHEMA_VERSION
    assert d["author"] == "analyst@example.org" and d["seed"] == 5
    assert len(d["data"]["sha256"]) == 64 and d["data"]["n_rows"] == report.data["n_rows"]
    assert d["subject"]["model"]["class"].endswith("Pipeline")
    libs = d["environment"]["libraries"]
    assert {"numpy", "pandas", "scikit-learn", "lea-ai-audit"} <= set(libs)
    assert d["created_at"].endswith("+00:00")
    assert d["policy"]["id"] == "eu-council-2020-internal-security"


def test_json_is_strict_no_nan(report: AuditReport) -> None:
    text = report.to_json()
    # strict JSON: Python's parser with NaN/Infinity refused
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    for c in report.checks:
        for v in c.metrics.values():
            assert v is None or math.isfinite(v)


def test_digest_changes_with_any_edit(report: AuditReport) -> None:
    d = report.to_dict()
    d["checks"][0]["message"] += " "
    assert AuditReport.from_dict(d).digest() != report.digest()


def test_save_and_load(tmp_path, report: AuditReport) -> None:
    path = report.save(tmp_path / "out")
    assert path.name == "report.json"
    assert AuditReport.load(tmp_path / "out") == report
    assert AuditReport.load(path) == report
    assert not [p for p in os.listdir(tmp_path / "out") if p.endswith(".tmp")]


def test_failed_save_keeps_previous_report(tmp_path, report: AuditReport) -> None:
    out = tmp_path / "ro"
    report.save(out)
    before = (out / "report.json").read_bytes()
    os.chmod(out, 0o500)
    try:
        if os.access(out, os.W_OK):  # running as root: permissions do not bind
            target = out / "report.json"
            os.chmod(out, 0o700)
            target.unlink()
            target.mkdir()  # os.replace onto a directory fails for anyone
            with pytest.raises(ReportError, match="cannot write"):
                report.save(out)
            target.rmdir()
            (out / "report.json").write_bytes(before)
        else:
            with pytest.raises(ReportError, match="cannot write"):
                report.save(out)
    finally:
        os.chmod(out, 0o700)
    assert (out / "report.json").read_bytes() == before
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_unknown_major_version_refused(report: AuditReport) -> None:
    d = report.to_dict()
    d["schema_version"] = "2.0"
    with pytest.raises(ReportError, match="not supported"):
        AuditReport.from_dict(d)


def test_minor_version_accepted(report: AuditReport) -> None:
    d = report.to_dict()
    d["schema_version"] = "1.7"
    d["a_future_field"] = {"x": 1}
    assert AuditReport.from_dict(d).checks == report.checks


@pytest.mark.parametrize("statuses,blocking,expected", [
    (["pass", "pass"], [True, True], "pass"),
    (["pass", "warn"], [True, False], "warn"),
    (["pass", "fail"], [True, True], "fail"),
    (["error", "pass"], [True, True], "error"),
    (["error", "pass"], [False, True], "warn"),
    (["fail", "error"], [True, True], "fail"),
    (["skipped"], [True], "skipped"),
    (["skipped", "pass"], [True, True], "pass"),
])
def test_overall_status(statuses, blocking, expected) -> None:
    pairs = zip(statuses, blocking, strict=True)
    results = [CheckResult(check_id="x.y", requirement_id=f"r{i}", status=s, message="",
                           blocking=b) for i, (s, b) in enumerate(pairs)]
    assert overall_status(results) is Status(expected)


def test_html_repr_escapes_data() -> None:
    evil = '<script>alert("x")</script>'
    r = CheckResult(check_id="x.y", requirement_id=evil, status="warn", message=evil,
                    evidence=(Evidence("e", "text", evil),))
    rep = AuditReport(checks=(r,), status="warn", policy={"id": evil})
    html = rep._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
