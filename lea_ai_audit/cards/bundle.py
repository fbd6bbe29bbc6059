"""Export an audit for the Innovation Hub as one archive, and check such an archive.

The bundle (a .zip) holds report.json, the model cards (HTML, Markdown, JSON), the evidence
files, the sign-offs and ``manifest.json`` with the SHA-256 of every file. :func:`verify_bundle`
recomputes every digest, checks that nothing was added or removed, that the report's own
evidence digests match, that its overall status agrees with its results and that the cards
render this very report. The manifest is not signed: digests alone prove nothing against
someone who rewrites it. With a trust store, :func:`verify_bundle` also verifies the
signatures inside — the author's attestation (``attestation.json``) and every sign-off — and
says what they prove; a bundle is ``ok`` only when something in it is signed and verifies.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from .._io import atomic_write_bytes, sha256_bytes, strict_json
from ..errors import InputError, ReportError

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "lea-ai-audit-bundle"
_MAX_TOTAL = 4 << 30  # refuse archives that would unpack to more than 4 GiB
#: what reading a damaged or crafted member raises: a bad CRC or header, a truncated stream,
#: an unknown compression method (NotImplementedError), an encrypted member (RuntimeError), a
#: size or offset that points nowhere (OSError, ValueError)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
               NotImplementedError, RuntimeError, ValueError)


@dataclass(frozen=True)
class BundleCheck:
    """What :func:`verify_bundle` found: ``ok`` when ``problems`` is empty."""

    path: str
    files: int
    report_id: str | None
    status: str | None
    problems: list[str] = field(default_factory=list)
    #: who signed the audit (the author's attestation), verified against the trust store
    author: str | None = None
    #: verified approvals / rejections, "reviewer (role, key sha256:...)"
    approvals: tuple[str, ...] = ()
    rejections: tuple[str, ...] = ()
    #: whether signatures were checked at all (a trust store was given)
    signatures_checked: bool = False

    @property
    def signed(self) -> bool:
        return self.author is not None or bool(self.approvals or self.rejections)

    @property
    def intact(self) -> bool:
        """Every digest matches (says nothing about who made the files)."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """Intact, and signed by keys of the trust store."""
        return not self.problems and self.signatures_checked and self.signed


def _own_file(base: Path, rel: str) -> Path:
    """``base / rel``, refused (ReportError) when it or a folder on its way is a symbolic
    link, or it lies outside ``base``: a bundle packs only the audit folder's own files."""
    from ..errors import ReportError

    p = base / rel
    q = base
    for part in PurePosixPath(rel).parts:
        q = q / part
        if q.is_symlink():
            raise ReportError(f"the audit folder holds a symbolic link, {rel!r}: a bundle packs "
                              "only the folder's own files",
                              "replace the link with the file itself, or remove it")
    try:
        p.resolve().relative_to(base.resolve())
    except ValueError:
        raise ReportError(f"{rel!r} lies outside the audit folder",
                          "keep the report's files inside its folder") from None
    return p


def _collect(base: Path, rep: Any) -> dict[str, bytes]:
    files: dict[str, bytes] = {"report.json": _own_file(base, "report.json").read_bytes()}
    for e in rep.files():
        _own_file(base, str(e.data["path"]))
        files[str(e.data["path"])] = e.read(base)  # ReportError if missing or changed
    for name in ("card.html", "card.md", "card.json", "mlflow.json", "attestation.json"):
        p = base / name
        if p.is_file() or p.is_symlink():
            files[name] = _own_file(base, name).read_bytes()
    sign = base / "signoffs"
    if sign.is_dir() or sign.is_symlink():
        _own_file(base, "signoffs")
        for p in sorted(sign.glob("*.json")):
            files[f"signoffs/{p.name}"] = _own_file(base, f"signoffs/{p.name}").read_bytes()
    return files


def export_bundle(report_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  metadata: Any = None) -> Path:
    """Write ``out`` (a .zip): the report, cards, evidence, sign-offs and a manifest.

    Cards missing from ``report_dir`` are rendered into the archive (``report_dir`` is not
    changed). Refuses a report whose evidence files are missing or were changed.

    Examples
    --------
    >>> export_bundle("audit", "audit.zip")                         # doctest: +SKIP
    PosixPath('audit.zip')
    """
    from ..results import AuditReport
    from . import FORMATS, build_card

    base = Path(report_dir)
    rep = AuditReport.load(base)
    files = _collect(base, rep)
    missing = [f for f in FORMATS if f"card.{FORMATS[f][1]}" not in files]
    if missing or metadata is not None:
        card = build_card(rep, report_dir=base, metadata=metadata)
        for f in (list(FORMATS) if metadata is not None else missing):
            files[f"card.{FORMATS[f][1]}"] = FORMATS[f][0](card).encode("utf-8")
    from .. import __version__

    manifest = {
        "format": BUNDLE_FORMAT, "version": 1, "generator": f"lea-ai-audit {__version__}",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report_id": rep.report_id, "report_sha256": rep.digest(), "status": rep.status.value,
        "policy": {"id": rep.policy.get("id"), "version": rep.policy.get("version")},
        "files": [{"path": p, "sha256": sha256_bytes(b), "size": len(b)}
                  for p, b in sorted(files.items())],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        for p, b in sorted(files.items()):
            zf.writestr(p, b)
    return atomic_write_bytes(out, buf.getvalue())


def _safe_name(name: str) -> bool:
    """A relative path inside the archive: no absolute path, drive, backslash or ``..``."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    parts = PurePosixPath(name).parts
    return bool(parts) and ".." not in parts and ":" not in parts[0]


def verify_bundle(path: str | os.PathLike[str], *, trust_store: Any = None) -> BundleCheck:
    """Check a bundle written by :func:`export_bundle`; with ``trust_store``, also the
    signatures inside (see :class:`BundleCheck`: ``intact`` vs ``ok``).

    Raises
    ------
    lea_ai_audit.errors.InputError
        ``path`` is missing or not a zip archive (bad input, not a failed check).

    Examples
    --------
    >>> verify_bundle("audit.zip").ok                               # doctest: +SKIP
    True
    """
    from ..gate import evaluate_gate
    from ..results import AuditReport

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no file {str(p)!r}", "pass the .zip written by `lea-audit export`")
    if not zipfile.is_zipfile(p):
        raise InputError(f"{str(p)!r} is not a zip archive",
                         "pass the .zip written by `lea-audit export`, or a ledger file")
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(p)
    except _ZIP_ERRORS as exc:
        raise InputError(f"{str(p)!r} is not a readable zip archive ({exc})",
                         "pass the .zip written by `lea-audit export`, unchanged") from None
    with zf:
        infos = zf.infolist()
        if sum(i.file_size for i in infos) > _MAX_TOTAL:
            raise InputError(f"{str(p)!r} would unpack to more than 4 GiB",
                             "this is not a bundle written by lea-audit export")
        names = [i.filename for i in infos if not i.is_dir()]
        bad = [n for n in names if not _safe_name(n)]
        problems += [f"unsafe path in the archive: {n!r}" for n in bad]
        if len(set(names)) != len(names):
            problems.append("the archive holds the same path twice")
        if MANIFEST not in names:
            return BundleCheck(str(p), len(names), None, None,
                               [*problems, "no manifest.json: not an lea-audit bundle"])
        try:
            manifest = strict_json(zf.read(MANIFEST))
            listed = {str(f["path"]): f for f in manifest["files"]}
        except (KeyError, TypeError, *_ZIP_ERRORS) as exc:
            return BundleCheck(str(p), len(names), None, None,
                               [*problems, f"manifest.json is unreadable ({exc})"])
        if manifest.get("format") != BUNDLE_FORMAT:
            problems.append("manifest.json is not an lea-ai-audit bundle manifest")
        present = set(names) - {MANIFEST}
        for name in sorted(set(listed) - present):
            problems.append(f"{name}: listed in the manifest but missing")
        for name in sorted(present - set(listed)):
            problems.append(f"{name}: in the archive but not in the manifest (added later)")
        contents: dict[str, bytes] = {}
        for name in sorted(present & set(listed)):
            try:
                raw = zf.read(name)
            except _ZIP_ERRORS as exc:
                problems.append(f"{name}: the archive member is corrupt ({exc})")
                continue
            contents[name] = raw
            if sha256_bytes(raw) != listed[name].get("sha256"):
                problems.append(f"{name}: its SHA-256 does not match the manifest (changed)")
    report_id = status = None
    if "report.json" not in contents:
        problems.append("report.json is missing")
        return BundleCheck(str(p), len(names), report_id, status, problems)
    try:
        rep = AuditReport.from_json(contents["report.json"])
    except ReportError as exc:  # its message names report.json and the field
        problems.append(exc.what)
        return BundleCheck(str(p), len(names), report_id, status, problems)
    report_id, status = rep.report_id, rep.status.value
    if manifest.get("report_sha256") != rep.digest():
        problems.append("report.json does not match the report digest in the manifest")
    try:
        evaluate_gate(rep)
    except ReportError as exc:
        problems.append(f"report.json: {exc.what}")
    for e in rep.files():
        rel = str(e.data.get("path"))
        raw = contents.get(rel)
        if raw is None:
            problems.append(f"{rel}: evidence file of the report is missing")
        elif sha256_bytes(raw) != e.data.get("sha256"):
            problems.append(f"{rel}: does not match its digest in report.json")
    if "card.json" in contents:
        try:
            card = strict_json(contents["card.json"])
        except ValueError:
            problems.append("card.json is not valid JSON")
        else:
            about = card.get("report") if isinstance(card, dict) else None
            if not isinstance(about, dict) or about.get("sha256") != rep.digest():
                problems.append("card.json renders another report")
    if trust_store is None:
        return BundleCheck(str(p), len(names), report_id, status, problems)
    return _verify_signatures(contents, rep, trust_store,
                              BundleCheck(str(p), len(names), report_id, status, problems))


def _verify_signatures(contents: dict[str, bytes], rep: Any, trust_store: Any,
                       check: BundleCheck) -> BundleCheck:
    """Unpack the bundle's files to a private temporary folder and verify the author's
    attestation and the sign-offs there, as the gate would."""
    import dataclasses
    import tempfile

    from ..attest import verify_attestation
    from ..signoff import evaluate_signoffs, load_signoffs, load_trust_store

    store = load_trust_store(trust_store)
    problems = list(check.problems)
    # only what the verification reads is unpacked: the report, its evidence, the card, the
    # attestation and the sign-offs (signoffs/<name>.json, as load_signoffs reads them)
    wanted = {"report.json", "card.json", "attestation.json",
              *(str(e.data.get("path")) for e in rep.files())}
    with tempfile.TemporaryDirectory(prefix="lea-bundle-") as tmp:
        base = Path(tmp)
        for name, raw in sorted(contents.items()):
            parts = PurePosixPath(name).parts
            if not _safe_name(name) or not (
                    name in wanted or (len(parts) == 2 and parts[0] == "signoffs"
                                       and parts[1].endswith(".json"))):
                continue
            target = base / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(raw)
            except (OSError, ValueError) as exc:  # a name too long, a file where a folder is
                problems.append(f"{name}: cannot be unpacked to verify it "
                                f"({getattr(exc, 'strerror', None) or exc})")
        att = verify_attestation(base, rep, store)
        author = None
        if att is not None and att.ok:
            author = (f"{att.identity.reviewer} ({att.identity.role}, key "
                      f"{att.identity.fingerprint[:19]})")
        elif att is not None:
            problems += list(att.problems)
        v = evaluate_signoffs(rep, load_signoffs(base), store, report_dir=base,
                              author_fingerprint=att.fingerprint if att and att.ok else None)
    bad = [c.problem for c in v.checks if c.state in ("invalid", "author")]
    problems += bad
    fps = {c.reviewer: c.fingerprint for c in v.checks if c.state == "valid"}
    approvals = tuple(f"{i.reviewer} ({i.role}, key {i.fingerprint[:19]})" for i in v.approvers)
    rejections = tuple(f"{r} (key {fps.get(r, '')[:19]})" for r in v.rejections)
    return dataclasses.replace(check, problems=problems, author=author, approvals=approvals,
                               rejections=rejections, signatures_checked=True)
