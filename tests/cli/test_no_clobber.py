"""No command writes over one of its own inputs, or over a file it did not write, unless
--force; a bundle packs no symbolic link (#23 point 2). Each refusal is the one-line error,
exit 2, and the file is left byte for byte as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import assert_one_error_line

RUN = ["--target", "reoffended", "--prediction-col", "flagged", "--score-col", "risk",
       "--sensitive", "ethnicity", "--checks", "fairness", "--no-track"]


@pytest.fixture
def audit_dir(cli, case_files, tmp_path: Path) -> Path:
    assert cli("run", "--data", case_files.biased_csv, *RUN, "--out", tmp_path / "audit").rc == 1
    return tmp_path / "audit"


def _refused(r, what: str) -> None:
    assert r.rc == 2, r.err
    assert what in assert_one_error_line(r.err)


def test_outputs_never_overwrite_inputs(cli, case_files, audit_dir: Path, tmp_path: Path
                                       ) -> None:
    report = audit_dir / "report.json"
    before = report.read_bytes()
    _refused(cli("card", audit_dir, "--out", report), "is one of this command's inputs")
    _refused(cli("card", audit_dir, "--out", report, "--force"), "is one of this command's")
    _refused(cli("gate", audit_dir, "--junit", report), "is one of this command's inputs")
    assert report.read_bytes() == before
    data = tmp_path / "cases.csv"
    data.write_bytes(case_files.biased_csv.read_bytes())
    before = data.read_bytes()
    _refused(cli("run", "--data", data, *RUN, "--out", tmp_path / "b", "--junit", data),
             "is one of this command's inputs")
    assert data.read_bytes() == before and not (tmp_path / "b").exists()


def test_a_file_lea_audit_did_not_write_needs_force(cli, audit_dir: Path,
                                                    tmp_path: Path) -> None:
    trust = tmp_path / "trust.yaml"
    trust.write_text("reviewers: []\n")
    _refused(cli("export", audit_dir, "--out", trust), "was not written by lea-audit")
    assert trust.read_text() == "reviewers: []\n"
    notes = tmp_path / "notes.xml"
    notes.write_text("<notes/>")
    _refused(cli("gate", audit_dir, "--junit", notes), "was not written by lea-audit")
    assert notes.read_text() == "<notes/>"
    assert cli("gate", audit_dir, "--junit", notes, "--force").rc == 1
    assert "lea-ai-audit" in notes.read_text()
    # its own outputs it rewrites freely
    assert cli("gate", audit_dir, "--junit", notes).rc == 1
    page = tmp_path / "card.html"
    assert cli("card", audit_dir, "--out", page).rc == 0
    assert cli("card", audit_dir, "--out", page).rc == 0
    bundle = tmp_path / "b.zip"
    assert cli("export", audit_dir, "--out", bundle).rc == 0
    assert cli("export", audit_dir, "--out", bundle).rc == 0
    _refused(cli("export", audit_dir, "--out", audit_dir / "b.zip"), "inside the audit folder")


def test_a_bundle_packs_no_symbolic_link(cli, audit_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the bundle")
    (audit_dir / "card.md").unlink()
    os.symlink(secret, audit_dir / "card.md")
    _refused(cli("export", audit_dir, "--out", tmp_path / "b.zip"), "symbolic link")
    assert not (tmp_path / "b.zip").exists()
