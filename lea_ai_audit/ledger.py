"""An append-only, hash-chained ledger of every assessment and sign-off (JSON Lines).

Each line is one entry::

    {"seq": 3, "time": "2026-05-01T10:00:00+00:00", "kind": "signoff",
     "data": {...}, "prev": "<hash of entry 2>", "hash": "<sha256 of this entry>"}

``hash`` is the SHA-256 of the entry's canonical JSON (sorted keys, no spaces) without
``hash``; ``prev`` is the ``hash`` of the entry before it (64 zeros for the first). Editing an
entry breaks its own hash; removing or reordering entries breaks the ``prev`` links and the
``seq`` numbering. :func:`verify_ledger` (``lea-audit verify LEDGER``) finds all three. A hash
chain cannot by itself show that the *last* entries were cut off: publish :attr:`LedgerCheck.head`
(the last hash) somewhere else and pass it back as ``expect_head=`` to detect that too.

Appends take an exclusive lock on the file (``fcntl.flock``; several processes may append to
one ledger) and are flushed to disk (``fsync``) before returning.

Where the ledger lives
----------------------
:func:`default_ledger_path`: ``--ledger PATH`` (or ``ledger=`` in the API) if given, else the
environment variable ``LEA_AUDIT_LEDGER``, else ``ledger.jsonl`` beside the report directory
(``lea-audit run --out audit/`` appends to ``./ledger.jsonl``; sign-offs of ``audit/`` go to
the same file). ``LEA_AUDIT_LEDGER=off`` turns the ledger off.

Examples
--------
>>> from lea_ai_audit.ledger import append_entry, verify_ledger     # doctest: +SKIP
>>> e = append_entry("ledger.jsonl", "assessment", {"report_id": "ab12"})  # doctest: +SKIP
>>> verify_ledger("ledger.jsonl").ok                                # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._io import strict_json
from .errors import InputError, ReportError

__all__ = ["CHECKPOINT_PREDICATE", "GENESIS", "LEDGER_ENV", "LedgerCheck", "append_entry",
           "checkpoint_path", "default_ledger_path", "entry_hash", "read_ledger",
           "record_assessment", "record_signoff", "sign_checkpoint", "verify_checkpoint",
           "verify_ledger"]

#: ``prev`` of the first entry
GENESIS = "0" * 64
#: environment variable naming the ledger file (``off`` disables it)
LEDGER_ENV = "LEA_AUDIT_LEDGER"
LEDGER_FILE = "ledger.jsonl"
_FIELDS = ("seq", "time", "kind", "data", "prev", "hash")
_OFF = {"off", "0", "false", "no", "none"}


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _hash_or_none(entry: Mapping[str, Any]) -> str | None:
    """:func:`entry_hash`, or None for an entry that has no canonical JSON (a number that
    reads as infinity, an unpaired surrogate escape): it was not written by lea-audit."""
    try:
        return entry_hash(entry)
    except ValueError:  # UnicodeEncodeError is a ValueError too
        return None


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON without its ``hash`` field.

    Examples
    --------
    >>> e = {"seq": 1, "time": "t", "kind": "k", "data": {}, "prev": GENESIS}
    >>> len(entry_hash(e))
    64
    """
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


def default_ledger_path(report_dir: str | os.PathLike[str] | None = None, *,
                        ledger: str | os.PathLike[str] | None = None) -> Path | None:
    """The ledger to use: ``ledger`` if given, else ``$LEA_AUDIT_LEDGER``, else
    ``<parent of report_dir>/ledger.jsonl``; ``None`` when turned off (``off``) or when
    nothing names a place.

    Examples
    --------
    >>> default_ledger_path("audits/model-7", ledger="x.jsonl").name
    'x.jsonl'
    """
    for value in (ledger, os.environ.get(LEDGER_ENV)):
        if value is not None and str(value).strip():
            if str(value).strip().lower() in _OFF:
                return None
            return Path(value)
    if report_dir is None:
        return None
    return Path(report_dir).resolve().parent / LEDGER_FILE


@contextlib.contextmanager
def _locked(fh: Any) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: appends are not serialised
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _last_line(fh: Any) -> bytes:
    """The last line of the open binary file (without its newline); b"" if empty."""
    fh.seek(0, os.SEEK_END)
    end = fh.tell()
    if end == 0:
        return b""
    fh.seek(end - 1)
    if fh.read(1) != b"\n":
        raise ReportError("the ledger ends with an incomplete entry (a write was cut off)",
                          "run `lea-audit verify` on it and restore the file from a copy")
    pos, buf = end - 1, b""
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        cut = buf.rfind(b"\n", 0, len(buf) - 1 if buf.endswith(b"\n") else len(buf))
        if cut >= 0:
            return buf[cut + 1:].rstrip(b"\n")
    return buf.rstrip(b"\n")


def append_entry(path: str | os.PathLike[str], kind: str, data: Mapping[str, Any], *,
                 now: datetime | None = None) -> dict[str, Any]:
    """Append one entry to the ledger at ``path`` (created if missing); returns the entry.

    The file is locked while the previous entry is read and the new one written, and synced
    to disk before the lock is released.

    Raises
    ------
    ReportError
        When the ledger cannot be written, or its last entry cannot be read (then nothing is
        appended: the chain would hang from a broken link).

    Examples
    --------
    >>> e = append_entry("ledger.jsonl", "assessment", {"report_id": "ab12"})  # doctest: +SKIP
    >>> e["seq"], len(e["hash"])                                               # doctest: +SKIP
    (1, 64)
    """
    target = Path(path)
    when = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        created = not target.exists()
        with open(target, "a+b") as fh, _locked(fh):
            last = _last_line(fh)
            if last:
                try:
                    prev_entry = strict_json(last)
                    prev, seq = str(prev_entry["hash"]), int(prev_entry["seq"])
                except (ValueError, KeyError, TypeError, OverflowError):  # 1e400: inf
                    raise ReportError(f"the last entry of the ledger {str(target)!r} cannot be "
                                      "read", "run `lea-audit verify` on it and restore the "
                                      "file from a copy") from None
            else:
                prev, seq = GENESIS, 0
            entry: dict[str, Any] = {"seq": seq + 1, "time": when, "kind": str(kind),
                                     "data": json.loads(_canonical(dict(data))), "prev": prev}
            entry["hash"] = entry_hash(entry)
            fh.seek(0, os.SEEK_END)
            fh.write((_canonical(entry) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        if created:
            with contextlib.suppress(OSError):
                dfd = os.open(target.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
    except OSError as exc:
        raise ReportError(f"cannot append to the ledger {str(target)!r}: "
                          f"{exc.strerror or exc}",
                          "pass a writable --ledger path (or set LEA_AUDIT_LEDGER)") from exc
    return entry


def record_assessment(path: str | os.PathLike[str], report: Any, *,
                      report_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append an ``assessment`` entry for ``report`` (id, digest, status, policy, author).

    Examples
    --------
    >>> record_assessment("ledger.jsonl", report, report_dir="audit")  # doctest: +SKIP
    """
    data = {"report_id": report.report_id, "report_digest": report.digest(),
            "status": report.status.value, "created_at": report.created_at,
            "author": report.author, "policy": report.policy.get("id"),
            "policy_version": report.policy.get("version"),
            "model_sha256": ((report.subject.get("model") or {}).get("file_sha256")),
            "data_sha256": report.data.get("sha256"),
            "report_dir": str(Path(report_dir).resolve()) if report_dir is not None else None}
    return append_entry(path, "assessment", data)


def record_signoff(path: str | os.PathLike[str], record: Mapping[str, Any], *,
                   file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append a ``signoff`` entry for a sign-off ``record`` (see :mod:`lea_ai_audit.signoff`).

    The entry holds the reviewer, decision, report id and digest, and the signature itself, so
    the ledger alone shows who signed what.

    Examples
    --------
    >>> record_signoff("ledger.jsonl", signed.record)                  # doctest: +SKIP
    """
    keys = ("reviewer", "role", "decision", "signed_at", "expires_at", "report_id",
            "report_digest", "model_sha256", "key_fingerprint")
    data = {k: record.get(k) for k in keys}
    data["waived"] = list((record.get("waiver") or {}).get("requirements") or [])
    data["file"] = str(file) if file is not None else None
    data["record"] = dict(record)  # the signed record itself: a deleted file can be shown
    return append_entry(path, "signoff", data)


@dataclass(frozen=True)
class LedgerCheck:
    """What :func:`verify_ledger` found: ``ok`` when ``problems`` is empty.

    ``entries`` counts the lines that hold an entry; ``head`` is the hash of the last entry
    (publish it elsewhere to detect a cut-off tail later).
    """

    path: str
    entries: int
    problems: list[str] = field(default_factory=list)
    head: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise InputError(f"no ledger at {str(path)!r}",
                         "pass the ledger.jsonl written beside the report directory "
                         "(or the file named by --ledger / LEA_AUDIT_LEDGER)")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a directory, not a ledger", "pass the .jsonl file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the ledger {str(path)!r}: {exc.strerror or exc}",
                         "check the path and its permissions") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not a ledger (not UTF-8 text)",
                         "pass the ledger.jsonl file, or a bundle .zip") from None
    return text.split("\n")


def read_ledger(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The entries of a ledger, in file order (lines that are not entries are skipped).

    Use :func:`verify_ledger` to know whether they can be trusted.
    """
    out = []
    for line in _read_lines(Path(path)):
        with contextlib.suppress(ValueError):
            e = strict_json(line)
            if isinstance(e, dict) and "hash" in e:
                out.append(e)
    return out


def verify_ledger(path: str | os.PathLike[str], *, expect_head: str | None = None
                  ) -> LedgerCheck:
    """Check the hash chain of the ledger at ``path``.

    Finds an edited entry (its hash no longer matches its content), a removed or reordered
    entry (a broken ``prev`` link, a gap or step back in ``seq``), lines that are not entries
    and an incomplete last line. With ``expect_head`` (a hash published earlier), also entries
    cut off the end.

    Raises
    ------
    lea_ai_audit.errors.InputError
        When the file is missing or unreadable, or holds no ledger entry at all.

    Examples
    --------
    >>> check = verify_ledger("ledger.jsonl")                          # doctest: +SKIP
    >>> check.ok, check.entries, check.problems                        # doctest: +SKIP
    (True, 12, [])
    """
    p = Path(path)
    lines = _read_lines(p)
    problems: list[str] = []
    if lines and lines[-1] == "":
        lines = lines[:-1]
    elif lines and lines[-1] != "":
        problems.append(f"line {len(lines)}: the last line is incomplete (no newline): a write "
                        "was cut off or the file was edited")
    entries = 0
    parsed = 0
    prev_hash, prev_seq = GENESIS, 0
    hashes: list[str] = []
    for n, line in enumerate(lines, 1):
        try:
            e = strict_json(line)
        except ValueError:
            problems.append(f"line {n}: not a ledger entry (not JSON): edited or corrupted")
            prev_hash, prev_seq = None, None  # type: ignore[assignment]
            continue
        if not isinstance(e, dict) or set(e) != set(_FIELDS):
            problems.append(f"line {n}: not a ledger entry (fields "
                            f"{sorted(e) if isinstance(e, dict) else type(e).__name__}): "
                            "edited or corrupted")
            prev_hash, prev_seq = None, None  # type: ignore[assignment]
            continue
        parsed += 1
        entries += 1
        seq = e.get("seq")
        label = f"line {n} (entry {str(seq)[:20]})"
        own = _hash_or_none(e)
        if own is None or own != e.get("hash"):
            problems.append(f"{label}: its content does not match its hash: the entry was "
                            "edited")
        if prev_hash is not None and e.get("prev") != prev_hash:
            what = ("the first entry does not start the chain: entries before it were removed"
                    if prev_hash == GENESIS else
                    "it does not follow the entry before it: an entry was removed, inserted or "
                    "moved")
            problems.append(f"{label}: {what}")
        if isinstance(seq, int) and prev_seq is not None and seq != prev_seq + 1:
            if seq > prev_seq + 1:
                problems.append(f"{label}: comes after entry {prev_seq}: "
                                f"{seq - prev_seq - 1} entry(ies) missing")
            else:
                problems.append(f"{label}: comes after entry {prev_seq}: entries are out of "
                                "order")
        elif not isinstance(seq, int):
            problems.append(f"{label}: seq is not a whole number")
        prev_hash = str(e.get("hash"))
        prev_seq = seq if isinstance(seq, int) else None  # type: ignore[assignment]
        hashes.append(prev_hash)
    if lines and parsed == 0:
        raise InputError(f"{str(p)!r} holds no ledger entry",
                         "pass the ledger.jsonl written by lea-audit, or a bundle .zip")
    head = hashes[-1] if hashes else None
    if entries == 0:
        problems.append("the ledger is empty: it was truncated, or nothing was ever recorded")
    if expect_head is not None and expect_head not in hashes:
        problems.append("the expected head hash is not in the ledger: entries were cut off the "
                        "end, or the ledger was replaced")
    return LedgerCheck(path=str(p), entries=entries, problems=problems, head=head)


# -- anchoring: signed checkpoints -----------------------------------------------------------
CHECKPOINT_PREDICATE = "https://lea-ai-audit.eu/attestation/ledger-checkpoint/v1"


def checkpoint_path(ledger: str | os.PathLike[str]) -> Path:
    """Where :func:`sign_checkpoint` writes by default: ``<ledger>.checkpoint.json``."""
    p = Path(ledger)
    return p.with_name(p.name + ".checkpoint.json")


def sign_checkpoint(ledger: str | os.PathLike[str], *, key: Any,
                    passphrase: str | bytes | None = None,
                    out: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """Sign the ledger's current head and length (a checkpoint, like a Certificate
    Transparency signed tree head) and write it to ``out`` (default :func:`checkpoint_path`).

    A later :func:`verify_checkpoint` finds any rewrite of the first ``entries`` entries and
    any truncation below them. Keep checkpoints where the ledger's writers cannot delete them
    (a CI artefact, the MLflow run, a mail to the oversight board).

    Examples
    --------
    >>> path, cp = sign_checkpoint("ledger.jsonl", key="keys/board.key")  # doctest: +SKIP
    >>> cp["entries"], cp["head"][:8]                                      # doctest: +SKIP
    (12, '9f0c1d2e')
    """
    import json as _json

    from ._io import atomic_write_text
    from .attest import STATEMENT_TYPE, sign_statement
    from .signoff import load_private_key

    check = verify_ledger(ledger)
    if not check.ok:
        raise ReportError(f"the ledger {str(ledger)!r} does not verify ({check.problems[0]})",
                          "a checkpoint signs only an intact ledger: restore it first")
    priv = key if not isinstance(key, (str, os.PathLike)) else \
        load_private_key(key, passphrase=passphrase)
    body = {"entries": check.entries, "head": check.head,
            "signed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    statement = {"_type": STATEMENT_TYPE,
                 "subject": [{"name": Path(ledger).name, "digest": {"sha256": check.head}}],
                 "predicateType": CHECKPOINT_PREDICATE, "predicate": body}
    env = sign_statement(statement, priv)
    target = Path(out) if out is not None else checkpoint_path(ledger)
    atomic_write_text(target, _json.dumps(env, indent=2) + "\n")
    return target, body


def verify_checkpoint(ledger: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
                      trust_store: Any) -> tuple[list[str], str]:
    """Problems of the ledger against a signed checkpoint (empty when it holds), and who
    signed the checkpoint."""
    from .attest import open_envelope
    from .signoff import load_trust_store

    store = load_trust_store(trust_store)
    try:
        env = strict_json(Path(checkpoint).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no checkpoint {str(checkpoint)!r}",
                         "pass the file written by `lea-audit checkpoint`") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        return [f"the checkpoint {str(checkpoint)!r} cannot be read ({type(exc).__name__})"], ""
    ident, st, problem = open_envelope(env, store, predicate_type=CHECKPOINT_PREDICATE)
    if problem is not None or st is None:
        return [f"the checkpoint {str(checkpoint)!r}: {problem}"], ""
    who = f"{ident.reviewer} (key {ident.fingerprint[:19]})"
    body = st["predicate"]
    n, head = body.get("entries"), body.get("head")
    entries = read_ledger(ledger)
    at = [e for e in entries if e.get("seq") == n]
    if not isinstance(n, int) or len(entries) < n or not at:
        return [f"the ledger holds fewer entries than the checkpoint signed by {who} "
                f"({len(entries)} < {n}): entries were cut off or deleted"], who
    if head is None or at[0].get("hash") != head or _hash_or_none(at[0]) != head:
        return [f"entry {n} is not the one the checkpoint signed by {who} names: the ledger "
                "was rewritten"], who
    return [], who
