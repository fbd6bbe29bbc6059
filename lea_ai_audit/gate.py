"""The CI gate: decide from a report whether a model may pass, and render JUnit XML.

The gate never trusts the report's stored ``status``: it recomputes it from the results and
refuses a report whose stored status disagrees (an edited report).

Examples
--------
>>> from lea_ai_audit.gate import evaluate_gate          # doctest: +SKIP
>>> verdict = evaluate_gate(report)
>>> verdict.exit_code   # 0 pass or warn, 1 fail
0
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_write_text
from .errors import ReportError
from .results import AuditReport, Status, overall_status

__all__ = ["GateVerdict", "evaluate_gate", "junit_xml", "write_junit"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# characters XML 1.0 cannot hold at all, even escaped
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """Text that XML can hold: invalid control characters become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", str(text))


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision: ``opened`` (exit 0) or not (exit 1), and why."""

    status: Status
    opened: bool
    reasons: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.opened else EXIT_FAIL


def evaluate_gate(report: AuditReport) -> GateVerdict:
    """Open for PASS or WARN; closed for FAIL, ERROR, or a report in which nothing ran.

    Raises
    ------
    ReportError
        When the stored status disagrees with the results (the report was edited).
    """
    status = overall_status(report.checks)
    if status is not report.status:
        raise ReportError(f"the report says {report.status.value.upper()} but its results give "
                          f"{status.value.upper()}: it was edited after the audit",
                          "re-run the audit; never edit report.json by hand")
    reasons = []
    for c in report.checks:
        if c.status is Status.FAIL:
            reasons.append(f"{c.requirement_id} failed: {c.message}")
        elif c.status is Status.ERROR and c.blocking:
            reasons.append(f"{c.requirement_id} could not be checked: {c.message}")
    if status is Status.SKIPPED:
        reasons.append("no requirement was checked")
    return GateVerdict(status=status, opened=status.passed, reasons=tuple(reasons))


def junit_xml(report: AuditReport) -> str:
    """JUnit XML with one test case per requirement (WARN passes, with its message)."""
    counts = report.counts()
    suite = ET.Element("testsuite", {
        "name": _x(f"lea-ai-audit {report.policy.get('id', '')}"),
        "tests": str(len(report.checks)),
        "failures": str(counts["fail"]),
        "errors": str(sum(1 for c in report.checks if c.status is Status.ERROR and c.blocking)),
        "skipped": str(counts["skipped"]),
        "time": f"{report.duration_s:.3f}",
        "timestamp": report.created_at,
    })
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", {
            "classname": _x(f"{report.policy.get('id', 'policy')}.{c.check_id}"),
            "name": _x(c.requirement_id),
            "time": f"{c.duration_s:.3f}",
        })
        clauses = "; ".join(c.clauses)
        msg = _x(c.message)
        if c.status is Status.FAIL:
            ET.SubElement(case, "failure", {"message": msg, "type": "fail"}).text = \
                _x(f"{c.title} ({clauses})\n") + msg
        elif c.status is Status.ERROR:
            tag = "error" if c.blocking else "system-out"
            ET.SubElement(case, tag, {"message": msg, "type": "error"} if tag == "error"
                          else {}).text = f"ERROR: {msg}"
        elif c.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", {"message": msg})
        elif c.status is Status.WARN:
            ET.SubElement(case, "system-out").text = f"WARN: {msg}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: AuditReport, path: str | os.PathLike[str]) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically."""
    return atomic_write_text(path, junit_xml(report))
