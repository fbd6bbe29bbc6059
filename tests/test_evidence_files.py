"""File evidence (plots, schemas, HTML reports): saved beside report.json, covered by its digest."""

from __future__ import annotations

import hashlib
import json

import pytest

from lea_ai_audit.checks import Check, register
from lea_ai_audit.errors import ReportError
from lea_ai_audit.policy import load_policy
from lea_ai_audit.results import AuditReport, CheckResult, Evidence, Status, safe_filename
from lea_ai_audit.runner import audit

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@register
class _TwoFiles(Check):
    """A test-only check that attaches two files with the same name and one with a bad name."""

    id = "testonly.files"
    title = "attach files"

    def __init__(self, *, n: int = 1) -> None:
        self.n = n

    def run(self, ctx):
        return self.result(Status.PASS, "files attached", evidence=[
            Evidence.file("plot", "plot.png", PNG, "a plot", media_type="image/png"),
            Evidence.file("plot again", "plot.png", b"second", media_type="image/png"),
            Evidence.file("escape", "../../etc/passwd", "text\n", media_type="text/plain"),
        ])


def _policy():
    return load_policy({"id": "files", "version": "1", "title": "files",
                        "requirements": [{"id": "attach/1", "title": "t", "clauses": ["x"],
                                          "check": "testonly.files", "blocking": True}]})


def _report(tiny_frame):
    return audit(tiny_frame, target="y", sensitive=["g"], prediction="p", policy=_policy())


@pytest.fixture()
def tiny_frame():
    import pandas as pd
    return pd.DataFrame({"y": [0, 1] * 20, "p": [0, 1, 1, 0] * 10, "g": ["a", "b"] * 20})


def test_file_evidence_digest_and_json(tiny_frame):
    rep = _report(tiny_frame)
    files = rep.files()
    folder = f"evidence/{rep.report_id[:12]}/attach_1"
    assert [e.data["path"] for e in files] == [
        f"{folder}/plot.png", f"{folder}/2-plot.png", f"{folder}/etc_passwd"]
    assert files[0].data["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert files[0].data["size"] == len(PNG)
    # the bytes are not in the JSON, the digest is
    doc = json.loads(rep.to_json())
    ev = doc["checks"][0]["evidence"][0]
    assert "content" not in ev and ev["data"]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert AuditReport.from_json(rep.to_json()) == rep


def test_save_writes_files_and_load_reads_them_back(tmp_path, tiny_frame):
    rep = _report(tiny_frame)
    rep.save(tmp_path)
    assert (tmp_path / rep.files()[0].data["path"]).read_bytes() == PNG
    back = AuditReport.load(tmp_path)
    assert back == rep and back.digest() == rep.digest()
    assert back.files()[0].content is None
    assert back.files()[0].read(tmp_path) == PNG
    # nothing escaped the report directory
    assert not (tmp_path.parent / "etc").exists()


def test_changed_evidence_file_is_detected(tmp_path, tiny_frame):
    rep = _report(tiny_frame)
    rep.save(tmp_path)
    (tmp_path / rep.files()[0].data["path"]).write_bytes(PNG + b"x")
    with pytest.raises(ReportError, match="does not match its digest"):
        AuditReport.load(tmp_path).files()[0].read(tmp_path)


def test_evidence_path_outside_report_dir_is_refused(tmp_path):
    (tmp_path / "secret").write_bytes(b"s")
    e = Evidence("x", "file", {"path": "../secret", "sha256": hashlib.sha256(b"s").hexdigest()})
    with pytest.raises(ReportError, match="outside the report directory"):
        e.read(tmp_path / "report")


def test_digest_covers_the_files(tiny_frame):
    rep = _report(tiny_frame)
    c = rep.checks[0]
    changed = Evidence.file("plot", "plot.png", PNG[:-1], media_type="image/png")
    other = rep.with_checks([CheckResult.from_dict({**c.to_dict(), "evidence": [
        {**changed.to_dict(), "data": {**changed.data, "path": c.evidence[0].data["path"]}},
        *[e.to_dict() for e in c.evidence[1:]]]})])
    assert other.digest() != rep.digest()


@pytest.mark.parametrize("name,want", [("a b/c.png", "a_b_c.png"), ("..", "file"),
                                       ("é.png", "png"), ("x" * 300, "x" * 120)])
def test_safe_filename(name, want):
    assert safe_filename(name) == want


def test_new_report_never_overwrites_the_old_reports_files(tmp_path, tiny_frame):
    old = _report(tiny_frame)
    old.save(tmp_path)
    new = _report(tiny_frame)
    assert new.report_id != old.report_id
    # a save that fails after writing the evidence but before report.json: old report intact
    (tmp_path / "report.json").rename(tmp_path / "keep.json")
    (tmp_path / "report.json").mkdir()
    with pytest.raises(ReportError):
        new.save(tmp_path)
    (tmp_path / "report.json").rmdir()
    (tmp_path / "keep.json").rename(tmp_path / "report.json")
    back = AuditReport.load(tmp_path)
    assert back == old and back.files()[0].read(tmp_path) == PNG
    # a successful save replaces the report and removes the old report's evidence folder
    new.save(tmp_path)
    assert AuditReport.load(tmp_path) == new
    folders = sorted(p.name for p in (tmp_path / "evidence").iterdir())
    assert folders == [new.report_id[:12]]
