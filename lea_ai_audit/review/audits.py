"""What awaits review: the audit folders under a directory, and the MLflow runs that carry a
report, each with its status, model, date and sign-off state.

An audit is addressed in the page by a key derived from its place (never by a path the browser
sends): the server looks the key up in its own index, so no request can reach a file outside
the folders it found. Folders are found without following symbolic links.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LeaAuditError

MAX_DEPTH = 4
#: folders never searched for audits
_SKIP = {".git", "node_modules", "__pycache__", ".venv", "venv", "signoffs", "evidence"}


@dataclass(frozen=True)
class Audit:
    """One audit as the page lists it."""

    key: str
    folder: Path
    label: str
    report: Any
    status: str
    model: str
    created_at: str
    author: str | None
    run_id: str | None = None
    problem: str = ""
    verdict: Any = None
    attested_by: str | None = None
    signoffs: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def signoff_state(self) -> str:
        """A short line: approved, rejected, awaiting N more approval(s), or why not known."""
        v = self.verdict
        if self.problem:
            return "cannot be reviewed"
        if v is None:
            return "sign-offs not verified (no trust store)"
        if v.rejections:
            return "rejected"
        if v.ok:
            return "approved"
        need = int((v.rule or {}).get("min_approvals") or 0)
        missing = max(need - len(v.approvals), 0)
        if missing:
            return f"awaiting {missing} more approval{'s' if missing != 1 else ''}"
        return "not approved: " + (v.reasons[0] if v.reasons else "see the sign-off rule")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def find_report_dirs(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) that hold a report.json, at most
    :data:`MAX_DEPTH` levels down, symbolic links not followed."""
    found: list[Path] = []
    root = Path(root)

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        if any(e.name == "report.json" and e.is_file(follow_symlinks=False) for e in entries):
            found.append(d)
        if depth >= MAX_DEPTH:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False) and e.name not in _SKIP \
                    and not e.name.startswith("."):
                walk(Path(e.path), depth + 1)

    walk(root, 0)
    return found


def _model_name(rep: Any) -> str:
    meta = (rep.subject.get("metadata") or {}) if isinstance(rep.subject, Mapping) else {}
    model = rep.subject.get("model") or {}
    for value in (meta.get("model_name"), meta.get("name"), model.get("name"),
                  model.get("class"), rep.subject.get("prediction_source")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "scores only"


def load_audit(folder: Path, label: str, trust_store: Any, *, run_id: str | None = None
               ) -> Audit:
    """Read one audit folder (its report, sign-offs and their verdict against the trust
    store). A folder that cannot be read is listed with the reason, never hidden."""
    from ..results import AuditReport
    from ..signoff import check_signoffs, load_signoffs, verify_attestation_author

    key = _key(("run:" + run_id) if run_id else str(folder.resolve()))
    try:
        rep = AuditReport.load(folder / "report.json")
    except LeaAuditError as exc:
        return Audit(key, folder, label, None, "unreadable", "", "", None, run_id,
                     problem=str(exc))
    verdict = attested = None
    signoffs: tuple[Any, ...] = ()
    problem = ""
    try:
        signoffs = tuple(load_signoffs(folder))
        if trust_store is not None:
            verdict = check_signoffs(folder, trust_store=trust_store)
            attested = verify_attestation_author(folder, rep, trust_store)
    except LeaAuditError as exc:
        problem = str(exc)
    return Audit(key, folder, label, rep, rep.status.value, _model_name(rep), rep.created_at,
                 rep.author, run_id, problem=problem, verdict=verdict, attested_by=attested,
                 signoffs=signoffs)


class AuditIndex:
    """The audits under ``root`` (re-read on every listing: a new audit or sign-off shows
    at once), and those of MLflow runs downloaded into ``cache``."""

    def __init__(self, root: Path | None, *, trust_store: Any = None,
                 tracking_uri: str | None = None, cache: Path | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self.trust_store = trust_store
        self.tracking_uri = tracking_uri
        self.cache = cache
        self._lock = threading.Lock()
        self._by_key: dict[str, Audit] = {}

    def _store(self) -> Any:
        if self.trust_store is None:
            return None
        from ..signoff import load_trust_store

        return load_trust_store(self.trust_store)

    def listing(self) -> list[Audit]:
        store = self._store()
        audits: list[Audit] = []
        if self.root is not None:
            for d in find_report_dirs(self.root):
                rel = d.relative_to(self.root).as_posix()
                audits.append(load_audit(d, rel if rel != "." else self.root.name, store))
        if self.tracking_uri:
            from .runs import fetch_runs

            for run_id, folder, label in fetch_runs(self.tracking_uri, self.cache, store):
                audits.append(load_audit(folder, label, store, run_id=run_id))
        audits.sort(key=lambda a: a.created_at or "", reverse=True)
        with self._lock:
            self._by_key = {a.key: a for a in audits}
        return audits

    def get(self, key: str) -> Audit | None:
        """The audit with ``key``, read afresh (None for a key the index does not hold)."""
        with self._lock:
            known = self._by_key.get(key)
        if known is None:
            self.listing()
            with self._lock:
                known = self._by_key.get(key)
            if known is None:
                return None
        return load_audit(known.folder, known.label, self._store(), run_id=known.run_id)
