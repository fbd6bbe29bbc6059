"""``lea-audit card``, ``export`` and ``verify`` as a user calls them; tampering detected."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from lea_ai_audit.cards.bundle import MANIFEST, export_bundle, verify_bundle
from lea_ai_audit.cli import main
from lea_ai_audit.results import AuditReport

from .conftest import plot_png


def _cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and " — " in lines[0], err
    return lines[0]


def _rewrite(zip_path: Path, out: Path, change) -> Path:
    """Copy the archive, passing each (name, bytes) through ``change`` (None drops it)."""
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = change(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return out


def test_card_command_formats_and_compare(report_dir: Path, fair_report_dir: Path,
                                          tmp_path: Path, capsys) -> None:
    rc, out, _ = _cli(capsys, "card", report_dir, "--format", "json")
    assert rc == 0
    card = json.loads(out)
    assert card["report"]["report_id"] == AuditReport.load(report_dir).report_id
    assert card["changes"] is None
    rc, out, _ = _cli(capsys, "card", report_dir / "report.json", "--format", "md", "--out",
                      tmp_path / "c.md", "--compare", fair_report_dir)
    assert rc == 0 and "model card (md)" in out
    text = (tmp_path / "c.md").read_text()
    assert "## What changed since the previous version" in text
    rc, _, _ = _cli(capsys, "card", report_dir, "--out", tmp_path / "c.html")
    assert rc == 0 and (tmp_path / "c.html").read_text().startswith("<!DOCTYPE html>")
    rc, _, err = _cli(capsys, "card", tmp_path / "nowhere", "--format", "md")
    assert rc == 2 and "no report at" in _one_error_line(err)
    rc, _, err = _cli(capsys, "card", report_dir, "--format", "docx")
    assert rc == 2


def test_demo_with_metadata_writes_the_cards(tmp_path: Path, capsys) -> None:
    meta = tmp_path / "card.yaml"
    meta.write_text("owner: Unit <7>\nintended_use: [case triage]\n")
    out = tmp_path / "a"
    rc, printed, _ = _cli(capsys, "demo", "--rows", "3000", "--bias", "0", "--out", out,
                          "--metadata", meta, "-q", "--no-track")
    assert rc == 0 and "model card:" in printed
    from lea_ai_audit.cli import DEMO_METADATA

    # the user's metadata over the demo's own words, key by key
    assert AuditReport.load(out).subject["metadata"] == {
        **DEMO_METADATA, "owner": "Unit <7>", "intended_use": ["case triage"]}
    assert "Unit &lt;7&gt;" in (out / "card.html").read_text()
    assert json.loads((out / "card.json").read_text())["model_details"]["owner"] == "Unit <7>"
    meta.write_text("owners: x\n")
    rc, _, err = _cli(capsys, "demo", "--rows", "3000", "--out", tmp_path / "b",
                      "--metadata", meta, "-q", "--no-track")
    assert rc == 2 and "unknown key(s) ['owners']" in _one_error_line(err)
    assert not (tmp_path / "b").exists()  # nothing written before the audit is done


@pytest.fixture()
def bundle(report_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    d = tmp_path / "audit"
    shutil.copytree(report_dir, d)
    (d / "signoffs").mkdir()
    (d / "signoffs" / "a.json").write_text(json.dumps(
        {"reviewer": "Ana", "role": "dpo", "decision": "approve", "comment": "",
         "signed_at": "2026-11-23T10:00:00+00:00", "expires_at": None, "waiver": None}))
    return d, export_bundle(d, tmp_path / "bundle.zip")


def test_export_holds_everything_with_digests(bundle: tuple[Path, Path], capsys) -> None:
    import hashlib

    d, z = bundle
    rep = AuditReport.load(d)
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST))
        for f in manifest["files"]:  # digests recomputed independently of the library
            assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]
    plot = next(e for e in rep.files() if e.name == "importance <plot>")
    assert {"report.json", "card.html", "card.md", "card.json", "signoffs/a.json",
            plot.data["path"], MANIFEST} <= names
    assert manifest["report_sha256"] == rep.digest()
    assert not (d / "card.html").exists()  # cards rendered into the archive, dir unchanged
    rc, out, _ = _cli(capsys, "verify", z)  # intact, but nothing in it is verified as signed
    assert rc == 1 and "bundle NOT VERIFIED" in out and "bundle OK" not in out
    assert "the digests match, but nothing in it is verified as signed" in out


@pytest.mark.parametrize("attack", ["report", "evidence", "added", "removed", "card-swap"])
def test_verify_detects_tampering(bundle: tuple[Path, Path], tmp_path: Path, capsys,
                                  fair_report_dir: Path, attack: str) -> None:
    d, z = bundle
    rep = AuditReport.load(d)
    plot = next(e for e in rep.files() if e.name == "importance <plot>")
    bad = tmp_path / f"{attack}.zip"
    if attack == "report":  # a FAIL turned into a PASS
        _rewrite(z, bad, lambda n, b: b.replace(b'"status": "fail"', b'"status": "pass"', 1)
                 if n == "report.json" else b)
        want = "report.json: its SHA-256 does not match the manifest"
    elif attack == "evidence":
        _rewrite(z, bad, lambda n, b: plot_png("red") if n == plot.data["path"] else b)
        want = f"{plot.data['path']}: its SHA-256 does not match the manifest"
    elif attack == "added":
        _rewrite(z, bad, lambda n, b: b)
        with zipfile.ZipFile(bad, "a") as zf:
            zf.writestr("signoffs/forged.json", "{}")
        want = "signoffs/forged.json: in the archive but not in the manifest"
    elif attack == "removed":
        _rewrite(z, bad, lambda n, b: None if n == "signoffs/a.json" else b)
        want = "signoffs/a.json: listed in the manifest but missing"
    else:  # another report's card, with the manifest recomputed to match
        other = export_bundle(fair_report_dir, tmp_path / "other.zip")
        with zipfile.ZipFile(other) as zf:
            foreign = zf.read("card.json")

        def swap(n: str, b: bytes) -> bytes:
            if n == "card.json":
                return foreign
            if n == MANIFEST:
                import hashlib
                m = json.loads(b)
                for f in m["files"]:
                    if f["path"] == "card.json":
                        f["sha256"] = hashlib.sha256(foreign).hexdigest()
                return json.dumps(m).encode()
            return b
        _rewrite(z, bad, swap)
        want = "card.json renders another report"
    check = verify_bundle(bad)
    assert not check.ok and want in "\n".join(check.problems), check.problems
    rc, out, _ = _cli(capsys, "verify", bad)
    assert rc == 1 and "bundle NOT OK" in out and want in out


def test_verify_bad_input(tmp_path: Path, capsys) -> None:
    rc, _, err = _cli(capsys, "verify", tmp_path / "missing.zip")
    assert rc == 2 and "no file" in _one_error_line(err)
    notzip = tmp_path / "x.zip"
    notzip.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(Exception, match="not a zip archive"):
        verify_bundle(notzip)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../outside.txt", "x")
        zf.writestr(MANIFEST, json.dumps({"format": "lea-ai-audit-bundle", "files": []}))
    check = verify_bundle(evil)
    assert any("unsafe path" in p for p in check.problems)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_export_refuses_changed_evidence(report_dir: Path, tmp_path: Path, capsys) -> None:
    d = tmp_path / "a"
    shutil.copytree(report_dir, d)
    plot = next(e for e in AuditReport.load(d).files() if e.name == "importance <plot>")
    (d / plot.data["path"]).write_bytes(b"changed")
    rc, _, err = _cli(capsys, "export", d, "--out", tmp_path / "b.zip")
    assert rc == 2 and "does not match its digest" in _one_error_line(err)
    assert not (tmp_path / "b.zip").exists()
