"""Signed statements over content digests: DSSE envelopes holding in-toto Statements.

Everything the gate trusts is a signed statement in the standard form a third-party verifier
knows (the in-toto Attestation Framework, https://github.com/in-toto/attestation):

- an **envelope** (DSSE, https://github.com/secure-systems-lab/dsse): ``payloadType``,
  ``payload`` (base64) and ``signatures`` (``keyid``, ``sig``); the signature is an Ed25519
  signature over ``PAE(payloadType, payload)``;
- its payload is an **in-toto Statement v1**: ``subject`` (name + ``{"sha256": ...}`` of every
  artefact bound: report.json, each evidence file, the model card, the model file, the data,
  the policy pack) and a ``predicate`` of type :data:`AUDIT_PREDICATE` (the audit, signed by
  whoever ran it: :func:`attest_report` writes ``attestation.json``) or :data:`SIGNOFF_PREDICATE`
  (an officer's decision, see :mod:`lea_ai_audit.signoff`).

``keyid`` is the key's fingerprint (``sha256:`` of the raw public key), the same the trust store
lists. :func:`open_envelope` checks a signature against a trust store; :func:`subjects` and
:func:`check_subjects` recompute the digests from the files on disk.

Examples
--------
>>> from lea_ai_audit.attest import pae
>>> pae("text/plain", b"hi")
b'DSSEv1 10 text/plain 2 hi'
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._io import atomic_write_text, sha256_bytes, sha256_file, strict_json
from .errors import LeaAuditError, ReportError

__all__ = ["ATTESTATION_FILE", "AUDIT_PREDICATE", "PAYLOAD_TYPE", "SIGNOFF_PREDICATE",
           "STATEMENT_TYPE", "Attestation", "attest_report", "check_subjects",
           "envelope_digest", "load_attestation", "open_envelope", "pae", "sign_statement",
           "subjects", "verify_attestation"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
AUDIT_PREDICATE = "https://lea-ai-audit.eu/attestation/audit/v1"
SIGNOFF_PREDICATE = "https://lea-ai-audit.eu/attestation/signoff/v1"
ATTESTATION_FILE = "attestation.json"
#: the subject names of things that are not files in the report directory
MODEL, DATA, CARD = "model", "data", "card.json#body"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding (what is signed).

    Examples
    --------
    >>> pae("a", b"")
    b'DSSEv1 1 a 0 '
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def sign_statement(statement: Mapping[str, Any], private_key: Any) -> dict[str, Any]:
    """A DSSE envelope of ``statement`` signed with an Ed25519 ``private_key``."""
    from cryptography.hazmat.primitives import serialization as ser

    from .signoff import fingerprint

    payload = _canonical(dict(statement))
    raw_pub = private_key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    sig = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE, "payload": _b64(payload),
            "signatures": [{"keyid": fingerprint(raw_pub), "sig": _b64(sig)}]}


def envelope_digest(envelope: Mapping[str, Any]) -> str:
    """SHA-256 of an envelope's canonical JSON (how a sign-off names the attestation)."""
    return sha256_bytes(_canonical(dict(envelope)))


def open_envelope(envelope: Any, trust_store: Any, *, predicate_type: str
                  ) -> tuple[Any, dict[str, Any] | None, str | None]:
    """Verify ``envelope`` against ``trust_store``.

    Returns ``(identity, statement, None)`` when a signature by a key of the trust store
    verifies and the payload is an in-toto Statement with ``predicate_type``; else
    ``(identity or None, statement or None, problem)``.
    """
    from cryptography.exceptions import InvalidSignature

    if not isinstance(envelope, Mapping) or envelope.get("payloadType") != PAYLOAD_TYPE:
        return None, None, "not a DSSE envelope of an in-toto statement"
    try:
        payload = base64.b64decode(str(envelope.get("payload") or ""), validate=True)
        statement = strict_json(payload)
    except (ValueError, TypeError):
        return None, None, "the envelope's payload is not base64 JSON"
    if (not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE
            or statement.get("predicateType") != predicate_type
            or not isinstance(statement.get("predicate"), dict)
            or not isinstance(statement.get("subject"), list)):
        return None, None, f"the payload is not an in-toto Statement of {predicate_type}"
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        return None, statement, "the envelope carries no signature"
    unknown = []
    for s in sigs:
        if not isinstance(s, Mapping):
            continue
        ident = trust_store.by_fingerprint(str(s.get("keyid") or ""))
        if ident is None:
            unknown.append(str(s.get("keyid") or "none")[:19])
            continue
        try:
            ident.verifier().verify(base64.b64decode(str(s.get("sig") or ""), validate=True),
                                    pae(PAYLOAD_TYPE, payload))
        except (InvalidSignature, ValueError):
            return ident, statement, "the signature does not match the statement: edited"
        return ident, statement, None
    return None, statement, (f"signed with a key that is not in the trust store "
                             f"({', '.join(unknown) or 'no key id'})")


# -- what is bound ---------------------------------------------------------------------------
def subjects(report_dir: str | os.PathLike[str], report: Any, *,
             model_sha256: str | None = None) -> list[dict[str, Any]]:
    """The in-toto subjects of an audit as it is on disk now: report.json, every evidence
    file, the model card's content (``card.json#body``), the model file, the data and the
    policy pack (``policy:<id>@<version>``), each with its SHA-256."""
    from .signoff import card_digest

    base = Path(report_dir)
    out = [{"name": "report.json", "digest": {"sha256": sha256_file(base / "report.json")}}]
    for e in report.files():
        out.append({"name": str(e.data.get("path")), "digest": {"sha256": str(e.data.get(
            "sha256"))}})
    card = card_digest(base)
    if card is not None:
        out.append({"name": CARD, "digest": {"sha256": card}})
    model = model_sha256 or (report.subject.get("model") or {}).get("file_sha256")
    if model:
        out.append({"name": MODEL, "digest": {"sha256": str(model)}})
    if report.data.get("sha256"):
        out.append({"name": DATA, "digest": {"sha256": str(report.data["sha256"])}})
    pol = report.policy
    if pol.get("sha256"):
        out.append({"name": f"policy:{pol.get('id')}@{pol.get('version')}",
                    "digest": {"sha256": str(pol["sha256"])}})
    return out


def check_subjects(signed: Any, now: list[dict[str, Any]], *, who: str) -> list[str]:
    """Every subject ``signed`` lists that is missing or different ``now``."""
    have = {str(s.get("name")): (s.get("digest") or {}).get("sha256") for s in now}
    problems = []
    for s in signed if isinstance(signed, list) else []:
        if not isinstance(s, Mapping):
            continue
        name = str(s.get("name"))
        want = (s.get("digest") or {}).get("sha256") if isinstance(s.get("digest"),
                                                                   Mapping) else None
        if name not in have:
            problems.append(f"{who}: signed {name} but it is gone (deleted after signing)")
        elif have[name] != want:
            problems.append(f"{who}: {name} changed after it was signed (SHA-256 "
                            f"{str(want)[:12]}..., now {str(have[name])[:12]}...)")
    return problems


# -- the author's attestation ----------------------------------------------------------------
@dataclass(frozen=True)
class Attestation:
    """An audit's attestation as verified: who signed it (``identity``), the statement, and
    every problem (empty when it holds)."""

    identity: Any
    statement: dict[str, Any] | None
    envelope: dict[str, Any] | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def fingerprint(self) -> str | None:
        return self.identity.fingerprint if self.identity is not None else None


def attest_report(report_dir: str | os.PathLike[str], *, key: Any,
                  passphrase: str | bytes | None = None,
                  ledger_head: Mapping[str, Any] | None = None,
                  now: datetime | None = None) -> Path:
    """Sign the audit in ``report_dir`` as its author (the person or service that ran it) and
    write ``attestation.json`` (a DSSE envelope; see the module docstring).

    Run it right after the audit wrote the report and its cards (``lea-audit run --sign-key``
    does). The four-eyes rule then compares key fingerprints: an officer whose key signed the
    attestation may not approve.

    Examples
    --------
    >>> attest_report("audit", key="keys/ci.key")                      # doctest: +SKIP
    PosixPath('audit/attestation.json')
    """
    from cryptography.hazmat.primitives import serialization as ser

    from .results import AuditReport
    from .signoff import card_digest, fingerprint, load_private_key

    base = Path(report_dir)
    rep = AuditReport.load(base / "report.json")
    for e in rep.files():
        e.read(base)  # refuses changed or missing evidence
    priv = key if not isinstance(key, (str, os.PathLike)) else \
        load_private_key(key, passphrase=passphrase)
    raw_pub = priv.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    when = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    statement = {
        "_type": STATEMENT_TYPE, "subject": subjects(base, rep),
        "predicateType": AUDIT_PREDICATE,
        "predicate": {
            "report_id": rep.report_id, "report_digest": rep.digest(),
            "status": rep.status.value, "created_at": rep.created_at,
            "author": rep.author, "author_fingerprint": fingerprint(raw_pub),
            "policy": {k: rep.policy.get(k) for k in ("id", "version", "sha256")},
            "model_sha256": (rep.subject.get("model") or {}).get("file_sha256"),
            "model_class": (rep.subject.get("model") or {}).get("class"),
            "data_sha256": rep.data.get("sha256"), "card_sha256": card_digest(base),
            "ledger": dict(ledger_head) if ledger_head else None, "signed_at": when,
        },
    }
    env = sign_statement(statement, priv)
    return atomic_write_text(base / ATTESTATION_FILE,
                             json.dumps(env, indent=2, ensure_ascii=False) + "\n")


def load_attestation(report_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The envelope in ``attestation.json``, None when there is none.

    Raises
    ------
    ReportError
        The file exists but is not JSON.
    """
    p = Path(report_dir) / ATTESTATION_FILE
    if not p.is_file():
        return None
    try:
        env = strict_json(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ReportError(f"{p} cannot be read ({type(exc).__name__})",
                          "re-run the audit with --sign-key") from None
    if not isinstance(env, dict):
        raise ReportError(f"{p} is not an attestation", "re-run the audit with --sign-key")
    return env


def verify_attestation(report_dir: str | os.PathLike[str], report: Any, trust_store: Any
                       ) -> Attestation | None:
    """Check ``attestation.json`` beside ``report``: signed by a key of the trust store, for
    this report, and every subject it binds still as signed. None when there is none."""
    base = Path(report_dir)
    try:
        env = load_attestation(base)
    except LeaAuditError as exc:
        return Attestation(None, None, None, (exc.what,))
    if env is None:
        return None
    ident, st, problem = open_envelope(env, trust_store, predicate_type=AUDIT_PREDICATE)
    if problem is not None:
        return Attestation(ident, st, env, (f"the audit's attestation: {problem}",))
    assert st is not None
    pred = st["predicate"]
    problems = []
    if pred.get("report_id") != report.report_id or pred.get("report_digest") != \
            report.digest():
        problems.append("the audit's attestation is for another report, or report.json "
                        "changed after the audit was signed")
    if pred.get("author_fingerprint") != ident.fingerprint:
        problems.append("the audit's attestation names another author key than the one that "
                        "signed it")
    try:
        now = subjects(base, report)
    except (OSError, LeaAuditError) as exc:
        return Attestation(ident, st, env, (*problems, f"cannot read the audit: {exc}"))
    problems += check_subjects(st["subject"], now, who="the audit's attestation")
    return Attestation(ident, st, env, tuple(problems))
