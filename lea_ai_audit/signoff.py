"""Signed four-eyes sign-off of an audit report (Council 13083/1/20 §27; AI Act Art. 14 and
Annex IV 2(g): test reports "dated and signed by the responsible persons").

Keys
    :func:`generate_keys` makes an Ed25519 key pair per reviewer: ``<id>.key`` (PKCS#8 PEM,
    file mode 0600, optionally encrypted with a passphrase) and ``<id>.pub`` (a small YAML
    file: reviewer id, role, public key, fingerprint — what the trust store keeper needs).
Trust store
    A YAML file listing the reviewers whose sign-offs count: id, role and public key
    (:func:`load_trust_store`, :func:`add_to_trust_store`; read with ``yaml.safe_load``). The
    role that counts for a policy's ``required_roles`` is the trust store's.
Sign-off records
    :func:`sign_report` writes ``<report_dir>/signoffs/<time>-<reviewer>-<nonce>.json``. The
    signature covers a canonical JSON payload binding the decision to this report: its
    ``report_id`` and digest (:meth:`AuditReport.digest`, which covers the evidence files'
    digests), the model file's SHA-256 when given, the model card's digest when a card.json
    is present, the key's fingerprint and a random nonce. A copy of the record next to
    another report, or a report, model or card changed after signing, no longer verifies.
    The record's top-level fields (``reviewer``, ``role``, ``decision``, ``comment``,
    ``signed_at``, ``expires_at``, ``waiver``, ...) repeat the signed ones for readers such as
    the model card; a top-level field that differs from the signed one is refused.
Rule
    :func:`evaluate_signoffs` applies the policy's ``signoff`` rule recorded in the report
    (default: at least 2 approvals by distinct reviewers of the trust store, none of them the
    report's author, no rejection, every signature valid, none expired; ``required_roles``
    demands an approval by each role; ``max_age_days`` limits the age of an approval). A
    failed audit can be approved only with a signed waiver naming each failed requirement and
    a justification.

Every sign-off is also appended to the ledger (:mod:`lea_ai_audit.ledger`) and, when the report
was logged to MLflow, to its run (:func:`lea_ai_audit.tracking.log_signoff`).

Examples
--------
>>> from lea_ai_audit.signoff import generate_keys, sign_report, check_signoffs  # doctest: +SKIP
>>> bob = generate_keys("bob", role="model-risk", out="keys",
...                     trust_store="trust.yaml")                   # doctest: +SKIP
>>> sign_report("audit", key=bob.private_key, reviewer="bob", decision="approve",
...             comment="reviewed the fairness evidence")             # doctest: +SKIP
>>> check_signoffs("audit", trust_store="trust.yaml").ok             # doctest: +SKIP
False
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._io import (
    atomic_write_bytes,
    atomic_write_text,
    dir_lock,
    safe_yaml,
    sha256_file,
    strict_json,
)
from .errors import InputError, LeaAuditError, ReportError

__all__ = [
    "FORMAT",
    "SIGNOFF_DIR",
    "Identity",
    "KeyPair",
    "SignedOff",
    "Signoff",
    "SignoffCheck",
    "SignoffVerdict",
    "TrustStore",
    "add_to_trust_store",
    "card_body_digest",
    "card_digest",
    "check_signoffs",
    "evaluate_signoffs",
    "failed_requirements",
    "fingerprint",
    "generate_keys",
    "load_private_key",
    "load_signoffs",
    "load_trust_store",
    "parse_expiry",
    "read_identity",
    "sign_report",
    "verify_attestation_author",
    "verify_record",
]

FORMAT = "lea-ai-audit.signoff/1"
SIGNOFF_DIR = "signoffs"
ALGORITHM = "Ed25519"
DECISIONS = ("approve", "reject", "withdraw")
#: fields of the signed payload repeated at the top level of a record
TOP_FIELDS = ("reviewer", "role", "decision", "comment", "signed_at", "expires_at", "waiver",
              "report_id", "report_digest", "model_sha256", "model_card_sha256",
              "key_fingerprint", "policy_sha256", "data_sha256", "attestation_sha256",
              "author_fingerprint")
#: a signature dated this far in the future is refused (clock skew allowance)
CLOCK_SKEW = timedelta(minutes=5)
#: card.json sections left out of the card digest: they change with every rendering or
#: sign-off (the summary and Annex IV items repeat the sign-off state), or are drawn from the
#: report, which the report digest covers
CARD_VOLATILE = ("generated_at", "generator", "human_oversight", "figures", "summary",
                 "annex_iv")
_RULE_DEFAULTS: dict[str, Any] = {"min_approvals": 2, "required_roles": [],
                                  "author_may_approve": False, "max_age_days": None}

# messages that tests import (as fairlearn does)
UNKNOWN_KEY = "{who}: signed with a key that is not in the trust store ({fp})"
BAD_SIGNATURE = "{who}: the signature does not match the record: it was edited after signing"
OTHER_REPORT = ("{who}: signed report {theirs}, not this one ({mine}): a sign-off copied from "
                "another report")
REPORT_CHANGED = "{who}: the report changed after it was signed (digest {theirs}, now {mine})"
MODEL_CHANGED = ("{who}: signed the model file with SHA-256 {theirs}, but {path} has {mine}: "
                 "the model changed after signing, or it is another model")
EXPIRED = "{who}: the sign-off expired on {when}"
AUTHOR_APPROVAL = ("{who}: is the report's author and may not approve their own audit "
                   "(four-eyes principle)")
TOO_FEW = "{n} valid approval(s) by distinct reviewers{besides}; the policy needs {need}"


# -- small helpers -------------------------------------------------------------------------------
def _now(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date; a date beyond year 9999 in UTC
        return None


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def fingerprint(public_key: bytes) -> str:
    """``sha256:<hex>`` of the raw 32-byte Ed25519 public key.

    Examples
    --------
    >>> fingerprint(bytes(32))[:14]
    'sha256:66687aa'
    """
    return "sha256:" + hashlib.sha256(bytes(public_key)).hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")[:60] or "reviewer"


def _check_id(value: Any, what: str, flag: str) -> str:
    text = str(value or "").strip()
    if not text or any(ch in text for ch in "\n\r\t"):
        raise InputError(f"no usable {what} given ({value!r})",
                         f"pass {flag} with a short name on one line")
    return text


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the directory of ``path`` (serialises read-modify-write of the
    trust store without leaving a lock file behind)."""
    with dir_lock(path.parent):
        yield


# -- identities and keys ---------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """A reviewer as the trust store knows them: id, role and Ed25519 public key (raw bytes)."""

    reviewer: str
    role: str
    public_key: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form: ``id``, ``role``, ``algorithm``, ``public_key`` (base64),
        ``fingerprint``."""
        return {"id": self.reviewer, "role": self.role, "algorithm": ALGORITHM,
                "public_key": base64.b64encode(self.public_key).decode("ascii"),
                "fingerprint": self.fingerprint}

    def verifier(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.public_key)


def _identity_from(entry: Any, where: str) -> Identity:
    if not isinstance(entry, Mapping):
        raise InputError(f"{where}: a reviewer entry is not a mapping",
                         "write each reviewer as id:, role:, public_key:")
    rid = str(entry.get("id") or "").strip()
    role = str(entry.get("role") or "").strip()
    if not rid or not role:
        raise InputError(f"{where}: reviewer entry {entry.get('id')!r} needs an id and a role",
                         "add id: and role: (as written by `lea-audit keygen`)")
    if str(entry.get("algorithm", ALGORITHM)) != ALGORITHM:
        raise InputError(f"{where}: reviewer {rid!r} uses algorithm {entry.get('algorithm')!r}",
                         f"only {ALGORITHM} keys are supported: run `lea-audit keygen`")
    try:
        raw = base64.b64decode(str(entry.get("public_key") or ""), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError(f"{where}: the public key of reviewer {rid!r} is not a base64 "
                         f"{ALGORITHM} key", "copy it unchanged from the reviewer's .pub file")
    ident = Identity(rid, role, raw)
    fp = entry.get("fingerprint")
    if fp and str(fp) != ident.fingerprint:
        raise InputError(f"{where}: the fingerprint of reviewer {rid!r} does not match their "
                         "public key", "copy the entry unchanged from the reviewer's .pub file")
    return ident


def read_identity(path: str | os.PathLike[str]) -> Identity:
    """Read a reviewer's ``.pub`` file (written by :func:`generate_keys`).

    Examples
    --------
    >>> read_identity("keys/bob.pub").role                             # doctest: +SKIP
    'model-risk'
    """
    import yaml

    p = Path(path)
    try:
        data = safe_yaml(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no public key file {str(p)!r}",
                         "pass the .pub file written by `lea-audit keygen`") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the public key file {str(p)!r}: "
                         f"{type(exc).__name__}", "pass the .pub file written by "
                                                  "`lea-audit keygen`") from exc
    return _identity_from(data, repr(str(p)))


@dataclass(frozen=True)
class KeyPair:
    """What :func:`generate_keys` wrote."""

    identity: Identity
    private_key: Path
    public_key: Path
    trust_store: Path | None = None
    encrypted: bool = False


def generate_keys(reviewer: str, *, role: str, out: str | os.PathLike[str],
                  trust_store: str | os.PathLike[str] | None = None,
                  passphrase: str | bytes | None = None) -> KeyPair:
    """Make an Ed25519 key pair for ``reviewer``.

    Parameters
    ----------
    reviewer : str
        The reviewer's id as it will appear in sign-offs and the trust store.
    role : str
        Their role (e.g. ``model-risk-officer``, ``data-protection-officer``).
    out : path
        Directory for ``<reviewer>.key`` (private, mode 0600) and ``<reviewer>.pub``.
    trust_store : path, optional
        Also add the reviewer to this YAML trust store (created if missing).
    passphrase : str or bytes, optional
        Encrypt the private key with it (PKCS#8, the best encryption ``cryptography`` offers).

    Raises
    ------
    InputError
        An empty id or role, a key file that already exists (never overwritten), or a reviewer
        already in the trust store with another key.

    Examples
    --------
    >>> kp = generate_keys("bob", role="model-risk", out="keys")       # doctest: +SKIP
    >>> oct(kp.private_key.stat().st_mode & 0o777)                     # doctest: +SKIP
    '0o600'
    """
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    reviewer = _check_id(reviewer, "reviewer id", "--reviewer")
    role = _check_id(role, "role", "--role")
    out_dir = Path(out)
    key_path = out_dir / f"{_safe(reviewer)}.key"
    pub_path = out_dir / f"{_safe(reviewer)}.pub"
    for p in (key_path, pub_path):
        if p.exists():
            raise InputError(f"{str(p)!r} already exists: a key is never overwritten",
                             "choose another --out directory, or remove the old key yourself "
                             "if it is no longer needed")
    pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    if pw is not None and not pw:
        raise InputError("the passphrase is empty", "set a non-empty passphrase, or none")
    key = Ed25519PrivateKey.generate()
    enc = ser.BestAvailableEncryption(pw) if pw else ser.NoEncryption()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, enc)
    raw_pub = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    ident = Identity(reviewer, role, raw_pub)
    if trust_store is not None:  # refuse a clash before any file is written
        _check_can_add(Path(trust_store), ident)
    atomic_write_bytes(key_path, pem, mode=0o600)
    atomic_write_text(pub_path, _pub_text(ident))
    store = add_to_trust_store(trust_store, ident) if trust_store is not None else None
    return KeyPair(identity=ident, private_key=key_path, public_key=pub_path, trust_store=store,
                   encrypted=bool(pw))


def _pub_text(ident: Identity) -> str:
    import yaml

    return (f"# lea-ai-audit public key of reviewer {ident.reviewer}: give this file to the "
            "keeper of the trust store\n" + yaml.safe_dump(ident.to_dict(), sort_keys=False,
                                                          allow_unicode=True))


def load_private_key(path: str | os.PathLike[str], *, passphrase: str | bytes | None = None
                     ) -> Any:
    """Load an Ed25519 private key (PEM) written by :func:`generate_keys`.

    Raises
    ------
    InputError
        Missing file, not an Ed25519 key, a passphrase missing, wrong or not needed.
    """
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no key file {str(p)!r}",
                         "pass the .key file written by `lea-audit keygen`") from None
    except OSError as exc:
        raise InputError(f"cannot read the key file {str(p)!r}: {exc.strerror or exc}",
                         "check the path and that it is your key") from exc
    pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    try:
        key = ser.load_pem_private_key(data, password=pw or None)
    except TypeError:
        if pw:
            raise InputError(f"the key {str(p)!r} is not protected by a passphrase",
                             "sign without --passphrase-env") from None
        raise InputError(f"the key {str(p)!r} is protected by a passphrase",
                         "pass --passphrase-env VAR with the passphrase in that environment "
                         "variable (passphrase= in the API)") from None
    except ValueError as exc:
        if b"ENCRYPTED" in data and pw:
            raise InputError(f"wrong passphrase for the key {str(p)!r}",
                             "check the passphrase in the environment variable") from exc
        raise InputError(f"{str(p)!r} is not a private key in PEM format",
                         "pass the .key file written by `lea-audit keygen`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{str(p)!r} is not an {ALGORITHM} key",
                         "make one with `lea-audit keygen`")
    return key


# -- trust store -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrustStore:
    """The reviewers whose sign-offs count, by id (and by key fingerprint)."""

    reviewers: Mapping[str, Identity]
    path: str | None = None
    #: policy packs allowed besides the shipped ones: ``{"sha256": ..., "path": ...}``
    policies: tuple[Mapping[str, Any], ...] = ()
    #: SHA-256 of the trust store file (pin it with ``lea-audit gate --trust-store-sha256``)
    sha256: str | None = None

    def by_fingerprint(self, fp: str) -> Identity | None:
        for ident in self.reviewers.values():
            if ident.fingerprint == fp:
                return ident
        return None

    def __contains__(self, reviewer: object) -> bool:
        return reviewer in self.reviewers

    def __len__(self) -> int:
        return len(self.reviewers)


def _parse_store(data: Any, where: str) -> TrustStore:
    from ._schemas import validate

    # the declared schema (lea_ai_audit._schemas.TRUST_STORE_SCHEMA): the type of every key,
    # and no top-level key but reviewers: and policies:
    validate("trust_store", data, f"trust store {where}")
    if data is None:
        data = {"reviewers": []}
    reviewers: dict[str, Identity] = {}
    seen_fp: dict[str, str] = {}
    for entry in data.get("reviewers") or []:
        ident = _identity_from(entry, f"trust store {where}")
        if ident.reviewer in reviewers:
            raise InputError(f"trust store {where} lists reviewer {ident.reviewer!r} twice",
                             "keep one entry per reviewer")
        if ident.fingerprint in seen_fp:
            raise InputError(f"trust store {where}: reviewers {seen_fp[ident.fingerprint]!r} "
                             f"and {ident.reviewer!r} share one key",
                             "each reviewer needs their own key pair")
        reviewers[ident.reviewer] = ident
        seen_fp[ident.fingerprint] = ident.reviewer
    policies = data.get("policies") or []
    if not isinstance(policies, list) or not all(
            isinstance(x, Mapping) and re.fullmatch(r"[0-9a-f]{64}", str(x.get("sha256") or ""))
            for x in policies):
        raise InputError(f"trust store {where}: policies must be a list of entries with a "
                         "sha256 (64 hex digits) and a path",
                         "write e.g. policies: [{path: packs/ours.yaml, sha256: <lea-audit "
                         "policies --digest>}]")
    return TrustStore(reviewers=reviewers, path=None,
                      policies=tuple(dict(x) for x in policies))


def load_trust_store(path: str | os.PathLike[str] | TrustStore) -> TrustStore:
    """Read a YAML trust store (``yaml.safe_load``).

    Raises
    ------
    InputError
        Missing or unreadable file, invalid YAML, a malformed entry, a reviewer listed twice,
        two reviewers with one key.

    Examples
    --------
    >>> store = load_trust_store("trust.yaml")                         # doctest: +SKIP
    >>> store.reviewers["bob"].role                                    # doctest: +SKIP
    'model-risk'
    """
    import yaml

    if isinstance(path, TrustStore):
        return path
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no trust store at {str(p)!r}",
                         "pass the YAML file built by `lea-audit keygen --trust-store`"
                         ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the trust store {str(p)!r}: {type(exc).__name__}",
                         "pass a readable UTF-8 YAML file") from exc
    try:
        data = safe_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2024-13-45
        raise InputError(f"the trust store {str(p)!r} is not valid YAML",
                         "fix the YAML (plain YAML only: tags that build objects are refused)"
                         ) from exc
    store = _parse_store(data, repr(str(p)))
    return TrustStore(reviewers=store.reviewers, path=str(p), policies=store.policies,
                      sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def _check_can_add(path: Path, ident: Identity) -> TrustStore:
    store = load_trust_store(path) if path.exists() else TrustStore({}, str(path))
    old = store.reviewers.get(ident.reviewer)
    if old is not None and old.public_key != ident.public_key:
        raise InputError(f"reviewer {ident.reviewer!r} is already in the trust store "
                         f"{str(path)!r} with another key",
                         "remove their old entry first (a key change is a deliberate act)")
    other = store.by_fingerprint(ident.fingerprint)
    if other is not None and other.reviewer != ident.reviewer:
        raise InputError(f"this key is already in the trust store as reviewer "
                         f"{other.reviewer!r}", "each reviewer needs their own key pair")
    return store


def add_to_trust_store(path: str | os.PathLike[str], identity: Identity | str | os.PathLike[str]
                       ) -> Path:
    """Add a reviewer (an :class:`Identity` or a ``.pub`` file) to the YAML trust store at
    ``path`` (created if missing). Adding the same reviewer with the same key again is a no-op
    (their role is updated); another key for a known reviewer is refused.

    Examples
    --------
    >>> add_to_trust_store("trust.yaml", "keys/bob.pub")               # doctest: +SKIP
    PosixPath('trust.yaml')
    """
    import yaml

    ident = identity if isinstance(identity, Identity) else read_identity(identity)
    p = Path(path)
    with _file_lock(p):
        _check_can_add(p, ident)
        raw = (safe_yaml(p.read_text(encoding="utf-8")) if p.exists() else None) or {}
        entries = [e for e in raw.get("reviewers") or [] if e.get("id") != ident.reviewer]
        entry = ident.to_dict()
        entry["added_at"] = _iso(_now())
        entries.append(entry)
        text = ("# lea-ai-audit trust store: the reviewers whose sign-offs count "
                "(lea-audit gate --require-signoff --trust-store)\n"
                + yaml.safe_dump({"reviewers": entries,  # and the store's other keys (policies)
                                  **{k: v for k, v in raw.items() if k != "reviewers"}},
                                 sort_keys=False, allow_unicode=True))
        atomic_write_text(p, text)
    return p


# -- the report, the model and the card ------------------------------------------------------
def _report_paths(report: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(report)
    if p.is_dir():
        return p, p / "report.json"
    return p.parent, p


def card_digest(report_dir: str | os.PathLike[str]) -> str | None:
    """SHA-256 of the model card (``card.json``) beside the report, or None without a card.

    The digest is over the card's canonical JSON without the sections that change with every
    rendering or sign-off (:data:`CARD_VOLATILE`: time of rendering, human oversight, the
    summary and Annex IV items that repeat the sign-off state, plots drawn from the report):
    a re-rendered card with the same content keeps its digest; a changed intended use, owner
    or ethical consideration does not.
    """
    p = Path(report_dir) / "card.json"
    if not p.is_file():
        return None
    try:
        card = strict_json(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unreadable:" + sha256_file(p)
    if not isinstance(card, Mapping):
        return "unreadable:" + sha256_file(p)
    try:
        return card_body_digest(card)
    except ValueError:  # no canonical JSON: 1e400 (infinity), an unpaired surrogate escape
        return "unreadable:" + sha256_file(p)


def card_body_digest(card: Mapping[str, Any]) -> str:
    """The digest :func:`card_digest` computes, of a card already parsed from card.json."""
    body = {k: v for k, v in card.items() if k not in CARD_VOLATILE}
    return hashlib.sha256(_canonical(body)).hexdigest()


def failed_requirements(report: Any) -> list[str]:
    """The requirements that keep the gate closed: FAIL, or a blocking ERROR."""
    return [c.requirement_id for c in report.checks
            if c.status.value == "fail" or (c.status.value == "error" and c.blocking)]


def _evidence_problems(report: Any, report_dir: Path) -> list[str]:
    problems = []
    for e in report.files():
        try:
            e.read(report_dir)
        except LeaAuditError as exc:
            problems.append(f"evidence {e.name!r}: {exc.what}")
    return problems


def parse_expiry(value: str | int | float | datetime | None, *, now: datetime | None = None
                 ) -> datetime | None:
    """``expires``: a number of days from now, an ISO date (end of that day, UTC) or date-time.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> parse_expiry("30", now=datetime(2026, 1, 1, tzinfo=UTC)).date().isoformat()
    '2026-01-31'
    >>> parse_expiry("2026-03-01").isoformat()
    '2026-03-01T23:59:59+00:00'
    """
    if value is None or value == "":
        return None
    base = _now(now)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        days = float(value)
    else:
        text = str(value).strip()
        try:
            days = float(text)
        except ValueError:
            days = None  # type: ignore[assignment]
        if days is None:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                text += "T23:59:59+00:00"
            when = _parse_time(text)
            if when is None:
                raise InputError(f"expiry {value!r} is neither a number of days nor an ISO "
                                 "date", "write e.g. --expires 90 or --expires 2027-01-31")
            return when
    if days <= 0:
        raise InputError(f"expiry of {value!r} days is not in the future",
                         "give a positive number of days")
    return base + timedelta(days=days)


# -- signing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedOff:
    """What :func:`sign_report` did: the record, its file, the ledger entry, MLflow."""

    record: dict[str, Any]
    path: Path
    ledger: Path | None = None
    ledger_error: str | None = None
    tracked: bool | None = None
    tracking_note: str = ""
    ledger_entry: Mapping[str, Any] | None = None


def sign_report(report: str | os.PathLike[str], *, key: str | os.PathLike[str] | Any,
                reviewer: str, decision: str, comment: str = "", role: str | None = None,
                expires: str | int | float | datetime | None = None,
                model_path: str | os.PathLike[str] | None = None,
                waive: Sequence[str] | None = None, justification: str | None = None,
                passphrase: str | bytes | None = None,
                trust_store: str | os.PathLike[str] | TrustStore | None = None,
                ledger: str | os.PathLike[str] | bool | None = None, track: bool = True,
                now: datetime | None = None) -> SignedOff:
    """Sign ``report`` (its directory or report.json) and write the record beside it.

    Parameters
    ----------
    report : path
        The report directory (or its report.json).
    key : path or Ed25519PrivateKey
        The reviewer's private key (``<id>.key`` from :func:`generate_keys`).
    reviewer : str
        The reviewer's id (must be the key's owner in the trust store for the sign-off to count).
    decision : {"approve", "reject"}
        A reject needs a comment. Approving a failed audit needs ``waive`` naming every failed
        requirement and a ``justification``.
    comment : str
        What was reviewed, or why it is rejected.
    role : str, optional
        Default: from ``trust_store`` if given, else from the ``.pub`` file beside the key.
    expires : days, ISO date or datetime, optional
        When the sign-off stops counting.
    model_path : path, optional
        The model file; its SHA-256 is signed (``lea-audit gate --model`` checks it).
    waive, justification
        The failed requirements approved anyway, and why.
    passphrase : str, optional
        For a key protected by a passphrase.
    trust_store : path, optional
        Refuse to sign if the key is not the reviewer's key there.
    ledger : path or bool, optional
        Where the sign-off is logged (see :func:`lea_ai_audit.ledger.default_ledger_path`);
        False for no ledger entry.
    track : bool
        Also log it to the report's MLflow run (if the report was logged; never fails the
        sign-off: ``tracked`` and ``tracking_note`` say what happened).
    now : datetime, optional
        The signing time (default: now, UTC); for importing sign-offs made on paper.

    Raises
    ------
    InputError
        Bad decision, a reject without comment, an unwaived failed requirement, an unknown
        requirement in ``waive``, a model file other than the audited one, an expiry in the past,
        a key that does not belong to ``reviewer``.

    Examples
    --------
    >>> s = sign_report("audit", key="keys/bob.key", reviewer="bob", decision="approve",
    ...                 comment="evidence reviewed", expires=365)      # doctest: +SKIP
    >>> s.path.parent.name                                             # doctest: +SKIP
    'signoffs'
    """
    from cryptography.hazmat.primitives import serialization as ser

    from .results import AuditReport

    report_dir, report_file = _report_paths(report)
    rep = AuditReport.load(report_file)
    when = _now(now)
    reviewer = _check_id(reviewer, "reviewer id", "--reviewer")
    decision = str(decision or "").strip().lower()
    if decision not in DECISIONS:
        raise InputError(f"decision {decision!r} is not approve, reject or withdraw",
                         "pass --decision approve, reject or withdraw")
    comment = str(comment or "").strip()
    if decision in ("reject", "withdraw") and not comment:
        raise InputError(f"a {'rejection' if decision == 'reject' else 'withdrawal'} needs a "
                         "comment", "say why with --comment TEXT")
    bad_files = _evidence_problems(rep, report_dir)
    if bad_files:
        raise ReportError(f"the report's evidence is not as audited: {bad_files[0]}",
                          "re-run the audit; sign only an intact report")
    failed = failed_requirements(rep)
    waiver = None
    if waive:
        waived = list(dict.fromkeys(str(w).strip() for w in waive if str(w).strip()))
        known = [c.requirement_id for c in rep.checks]
        unknown = [w for w in waived if w not in known]
        if unknown:
            raise InputError(f"--waive names requirement(s) not in the report: "
                             f"{', '.join(unknown)}", f"the report has: {', '.join(known)}")
        if decision != "approve":
            raise InputError("a waiver goes with an approval", "use --decision approve")
        if not str(justification or "").strip():
            raise InputError("a waiver needs a justification",
                             "say why the failed requirement(s) may be accepted "
                             "(--justification TEXT)")
        waiver = {"requirements": waived, "justification": str(justification).strip()}
    elif justification:
        raise InputError("--justification without --waive", "name the waived requirement(s) "
                                                            "with --waive REQ")
    if decision == "approve" and failed:
        missing = [f for f in failed if f not in (waiver or {}).get("requirements", [])]
        if missing:
            raise InputError(f"the audit did not pass ({rep.status.value.upper()}): "
                             f"approving it needs a waiver of {', '.join(missing)}",
                             "add --waive " + " --waive ".join(missing)
                             + " --justification TEXT, or reject it")
    expires_at = parse_expiry(expires, now=when)
    if expires_at is not None and expires_at <= when:
        raise InputError(f"the expiry {_iso(expires_at)} is not after the signing time",
                         "give a date in the future")
    model_sha = None
    audited_sha = (rep.subject.get("model") or {}).get("file_sha256")
    if model_path is not None:
        mp = Path(model_path)
        if not mp.is_file():
            raise InputError(f"no model file {str(mp)!r}", "pass the model file that was audited")
        model_sha = sha256_file(mp)
        if audited_sha and audited_sha != model_sha:
            raise InputError(f"the model file {str(mp)!r} is not the one audited (SHA-256 "
                             f"{model_sha[:12]}..., the report has {str(audited_sha)[:12]}...)",
                             "sign with the audited model file, or audit this one")
    elif audited_sha:
        model_sha = str(audited_sha)
    priv = key if not isinstance(key, (str, os.PathLike)) else \
        load_private_key(key, passphrase=passphrase)
    raw_pub = priv.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    fp = fingerprint(raw_pub)
    store = load_trust_store(trust_store) if trust_store is not None else None
    if store is not None:
        ident = store.reviewers.get(reviewer)
        if ident is None or ident.fingerprint != fp:
            raise InputError(f"this key is not the key of reviewer {reviewer!r} in the trust "
                             f"store {store.path!r}",
                             "sign with your own key, or ask the keeper of the trust store to "
                             "add it")
        role = role or ident.role
    if not role and isinstance(key, (str, os.PathLike)):
        pub = Path(key).with_suffix(".pub")
        if pub.is_file():
            ident = read_identity(pub)
            if ident.fingerprint == fp and ident.reviewer == reviewer:
                role = ident.role
    role = _check_id(role, "role", "--role (or keep the .pub file from keygen beside the key)")
    from .attest import (
        SIGNOFF_PREDICATE,
        STATEMENT_TYPE,
        envelope_digest,
        load_attestation,
        sign_statement,
        subjects,
    )

    att = load_attestation(report_dir)
    author_fp = None
    if att is not None:
        try:
            author_fp = strict_json(base64.b64decode(att["payload"]))["predicate"][
                "author_fingerprint"]
        except (KeyError, ValueError, TypeError):
            author_fp = None
    rule = {**_RULE_DEFAULTS, **dict(rep.policy.get("signoff") or {})}
    if decision == "approve" and not rule.get("author_may_approve"):
        if author_fp is not None and author_fp == fp:
            raise InputError(AUTHOR_APPROVAL.format(who=repr(reviewer)) + ": this key signed "
                             "the audit", "ask another officer to review it")
        if _same_person(reviewer, rep.author):
            raise InputError(AUTHOR_APPROVAL.format(who=repr(reviewer)),
                             "ask another officer to review it")
    withdraws = None
    if decision == "withdraw":
        withdraws = [str(((s.record or {}).get("payload") or {}).get("nonce"))
                     for s in load_signoffs(report_dir)
                     if (s.record or {}).get("key_fingerprint") == fp
                     and (s.record or {}).get("decision") != "withdraw"]
        if not withdraws:
            raise InputError(f"{reviewer!r} has no sign-off of this report to withdraw",
                             "a reviewer can withdraw only their own earlier sign-off")
    payload = {
        "format": FORMAT, "algorithm": ALGORITHM,
        "reviewer": reviewer, "role": role, "decision": decision, "comment": comment,
        "signed_at": _iso(when), "expires_at": _iso(expires_at) if expires_at else None,
        "waiver": waiver,
        "report_id": rep.report_id, "report_digest": rep.digest(),
        "report_status": rep.status.value, "report_author": rep.author,
        "policy": rep.policy.get("id"), "policy_version": rep.policy.get("version"),
        "model_sha256": model_sha, "model_card_sha256": card_digest(report_dir),
        "key_fingerprint": fp, "nonce": secrets.token_hex(16),
        "policy_sha256": rep.policy.get("sha256"), "data_sha256": rep.data.get("sha256"),
        "attestation_sha256": envelope_digest(att) if att is not None else None,
        "author_fingerprint": author_fp,
        **({"withdraws": withdraws} if withdraws else {}),
    }
    statement = {"_type": STATEMENT_TYPE,
                 "subject": subjects(report_dir, rep, model_sha256=model_sha),
                 "predicateType": SIGNOFF_PREDICATE, "predicate": payload}
    envelope = sign_statement(statement, priv)
    record = {k: payload[k] for k in TOP_FIELDS}
    record.update({"algorithm": ALGORITHM, "payload": payload, "envelope": envelope})
    name = f"{when:%Y%m%dT%H%M%SZ}-{_safe(reviewer)}-{payload['nonce'][:8]}.json"
    path = atomic_write_text(report_dir / SIGNOFF_DIR / name,
                             json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    ledger_path = ledger_error = ledger_entry = None
    if ledger is not False:
        from .ledger import default_ledger_path, record_signoff

        ledger_path = default_ledger_path(report_dir, ledger=None if ledger in (None, True)
                                          else ledger)  # type: ignore[arg-type]
        if ledger_path is not None:
            try:
                ledger_entry = record_signoff(ledger_path, record, file=path.resolve())
            except LeaAuditError as exc:
                ledger_error = str(exc)
    tracked, note = None, ""
    if track:
        head = (f"{ledger_entry['seq']}:{ledger_entry['hash']}" if ledger_entry else None)
        tracked, note = _track(report_dir, record, head)
    return SignedOff(record=record, path=path, ledger=ledger_path, ledger_error=ledger_error,
                     tracked=tracked, tracking_note=note, ledger_entry=ledger_entry)


def _track(report_dir: Path, record: Mapping[str, Any], ledger_head: str | None = None
           ) -> tuple[bool | None, str]:
    try:
        from .tracking import log_signoff
    except (ImportError, AttributeError):
        return None, "MLflow logging is not available in this installation"
    try:
        ok = bool(log_signoff(report_dir, record, ledger_head=ledger_head))
    except Exception as exc:  # never fail a sign-off because MLflow misbehaves
        return False, f"not logged to MLflow ({type(exc).__name__}: {exc})"
    if ok:
        return True, "logged to the report's MLflow run"
    if (report_dir / "mlflow.pending.json").exists():
        return False, ("not logged to MLflow now (unreachable or the report is not logged "
                       "yet): `lea-audit sync` will log it")
    return False, "not logged to MLflow: the report has no MLflow run"


def _person(text: Any) -> tuple[str, str]:
    """(name, e-mail) of "Name <email>", "email" or "name", case-folded and trimmed."""
    t = str(text or "").strip()
    m = re.match(r"^(.*?)\s*<([^<>]+)>\s*$", t)
    if m:
        return m.group(1).strip().casefold(), m.group(2).strip().casefold()
    return (t.casefold(), t.casefold()) if "@" in t else (t.casefold(), "")


def _same_person(reviewer: Any, author: Any) -> bool:
    """Whether a reviewer id names the report's author ("bob", "Bob <bob@x.eu>", "bob@x.eu";
    an e-mail's local part counts too)."""
    if not str(author or "").strip():
        return False
    rn, re_ = _person(reviewer)
    an, ae = _person(author)
    local = ae.split("@")[0] if ae else ""
    return bool(rn) and (rn == an or (bool(re_) and re_ == ae) or (bool(local) and rn == local))


# -- reading and checking --------------------------------------------------------------------
@dataclass(frozen=True)
class Signoff:
    """A sign-off file: its record, or why it cannot be read."""

    path: Path
    record: dict[str, Any] | None
    error: str | None = None


def load_signoffs(report_dir: str | os.PathLike[str]) -> list[Signoff]:
    """The sign-off files in ``<report_dir>/signoffs/``, in name (= time) order.

    Examples
    --------
    >>> [s.record["reviewer"] for s in load_signoffs("audit")]         # doctest: +SKIP
    ['bob', 'carol']
    """
    base, _ = _report_paths(report_dir)
    folder = base / SIGNOFF_DIR
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            rec = strict_json(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            out.append(Signoff(p, None, f"cannot be read ({type(exc).__name__})"))
            continue
        if not isinstance(rec, dict):
            out.append(Signoff(p, None, "is not a sign-off record"))
            continue
        wrong = _record_problem(rec)
        if wrong is not None:
            out.append(Signoff(p, None, f"is not a sign-off record: {wrong}"))
            continue
        out.append(Signoff(p, rec))
    return out


def _record_problem(rec: Mapping[str, Any]) -> str | None:
    """Why a parsed record is not laid out as :func:`sign_report` writes it (a field of the
    wrong type), or None. Readers of the top-level copies (the model card) rely on it; a
    record refused here would fail its signature check anyway."""
    def kind(v: Any) -> str:
        return "null" if v is None else type(v).__name__

    for k in TOP_FIELDS:
        v = rec.get(k)
        if k == "waiver":
            if v is None:
                continue
            if not isinstance(v, Mapping):
                return f"its 'waiver' is {kind(v)}, not a mapping"
            reqs, why = v.get("requirements"), v.get("justification")
            if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
                return "its waiver's 'requirements' is not a list of requirement ids"
            if not isinstance(why, str):
                return f"its waiver's 'justification' is {kind(why)}, not text"
        elif v is not None and not isinstance(v, str):
            return f"its {k!r} is {kind(v)}, not text"
    for k in ("envelope", "payload"):
        if k in rec and not isinstance(rec[k], Mapping):
            return f"its {k!r} is {kind(rec[k])}, not a mapping"
    return None


@dataclass(frozen=True)
class SignoffCheck:
    """One sign-off as :func:`evaluate_signoffs` judged it.

    ``state``: ``valid``; ``expired`` (not counted); ``invalid`` (refused: the gate stays
    closed while it is there); ``author`` (the author's own approval: refused);
    ``withdrawn`` (voided by the same reviewer's signed withdrawal). ``fingerprint`` is the
    key that verified it ("" when none did).
    """

    file: str
    reviewer: str
    role: str
    decision: str
    state: str
    problem: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class SignoffVerdict:
    """Whether the sign-off rule holds (``ok``), and every reason why not."""

    ok: bool
    reasons: tuple[str, ...]
    approvals: tuple[str, ...] = ()
    rejections: tuple[str, ...] = ()
    approvers: tuple[Identity, ...] = ()
    waived: tuple[str, ...] = ()
    checks: tuple[SignoffCheck, ...] = ()
    rule: Mapping[str, Any] = field(default_factory=dict)


def model_file_problem(report: Any, model_path: str | os.PathLike[str]
                       ) -> tuple[str, str | None]:
    """(SHA-256 of the model file, why it is not the audited file or None).

    Raises
    ------
    InputError
        No such file.
    """
    mp = Path(model_path)
    if not mp.is_file():
        raise InputError(f"no model file {str(mp)!r}", "pass the model file to deploy")
    sha = sha256_file(mp)
    audited = (report.subject.get("model") or {}).get("file_sha256")
    if audited and audited != sha:
        return sha, (f"the model file {mp!s} (SHA-256 {sha[:12]}...) is not the one audited "
                     f"({str(audited)[:12]}...)")
    return sha, None


def _statement(record: Mapping[str, Any]) -> dict[str, Any] | None:
    env = record.get("envelope")
    try:
        st = strict_json(base64.b64decode(str((env or {}).get("payload") or ""), validate=True))
    except (ValueError, TypeError, AttributeError):
        return None
    return st if isinstance(st, dict) else None


def verify_record(record: Mapping[str, Any], trust_store: TrustStore
                  ) -> tuple[Identity | None, dict[str, Any] | None, str | None]:
    """Check a record's signature against the trust store.

    Returns ``(identity, payload, None)`` when the signature is valid and the record's
    top-level fields match the signed ones, else ``(identity or None, payload or None,
    problem)``. Binding to a report is checked by :func:`evaluate_signoffs`.
    """
    from .attest import SIGNOFF_PREDICATE, open_envelope

    who = repr(str(record.get("reviewer") or "?"))
    env = record.get("envelope")
    if not isinstance(env, Mapping):
        return None, None, f"{who}: not a signed record (no signed envelope)"
    ident, statement, problem = open_envelope(env, trust_store,
                                              predicate_type=SIGNOFF_PREDICATE)
    payload = (statement or {}).get("predicate")
    if not isinstance(payload, Mapping):
        return None, None, f"{who}: not a signed sign-off ({problem})"
    if payload.get("format") != FORMAT or record.get("algorithm", ALGORITHM) != ALGORITHM:
        return None, None, f"{who}: unknown sign-off format {payload.get('format')!r}"
    fp = str(payload.get("key_fingerprint") or "")
    if ident is None:
        return None, dict(payload), UNKNOWN_KEY.format(who=who, fp=fp[:19] or "none")
    if problem is not None or fp != ident.fingerprint:
        return ident, dict(payload), BAD_SIGNATURE.format(who=who)
    if "payload" in record and record.get("payload") != payload:
        return ident, dict(payload), BAD_SIGNATURE.format(who=who)
    for k in TOP_FIELDS:
        if k in record and record.get(k) != payload.get(k):
            return ident, dict(payload), (f"{who}: its {k!r} ({record.get(k)!r}) is not what "
                                          f"was signed ({payload.get(k)!r}): the record was "
                                          "edited")
    if payload.get("reviewer") != ident.reviewer:
        return ident, dict(payload), (f"{who}: signed with the key of {ident.reviewer!r}, who "
                                      "is not the reviewer it names")
    if payload.get("role") != ident.role:
        return ident, dict(payload), (f"{who}: signed as {payload.get('role')!r} but the trust "
                                      f"store lists the role {ident.role!r}")
    return ident, dict(payload), None


def _texts(value: Any) -> list[str]:
    """A signed list of names (waived requirements, withdrawn nonces) as strings; anything
    but a list names nothing."""
    return [str(x) for x in value] if isinstance(value, list) else []


def _days(value: Any) -> timedelta:
    """``max_age_days`` as a timedelta (a limit beyond any date: the largest one)."""
    try:
        return timedelta(days=float(value))
    except OverflowError:
        return timedelta.max


def _rule_of(report: Any, rule: Mapping[str, Any] | None
             ) -> tuple[int, list[str], bool, float | None]:
    """(min_approvals, required_roles, author_may_approve, max_age_days) of the policy's
    sign-off rule recorded in the report, overridden by ``rule``; an InputError names a value
    of the wrong type."""
    recorded = report.policy.get("signoff") or {}
    for what, part in (("the report's policy.signoff", recorded), ("rule=", rule or {})):
        if not isinstance(part, Mapping):
            raise InputError(f"{what} is {type(part).__name__}, not a mapping",
                             "give the sign-off rule as min_approvals, required_roles, "
                             "author_may_approve, max_age_days")
    r = {**_RULE_DEFAULTS, **dict(recorded), **dict(rule or {})}
    need, roles, age = r.get("min_approvals") or 0, r.get("required_roles") or [], \
        r.get("max_age_days")
    if isinstance(need, bool) or not isinstance(need, int) or need < 0:
        raise InputError(f"the sign-off rule's min_approvals is {need!r}, not a whole number "
                         ">= 0", "fix min_approvals in the policy's signoff: (or rule=)")
    if not isinstance(roles, list) or not all(isinstance(x, str) for x in roles):
        raise InputError(f"the sign-off rule's required_roles is {roles!r}, not a list of "
                         "roles", "fix required_roles in the policy's signoff: (or rule=)")
    if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float))
                            or not age > 0):
        raise InputError(f"the sign-off rule's max_age_days is {age!r}, not a positive "
                         "number of days", "fix max_age_days in the policy's signoff: "
                                           "(or rule=)")
    return need, list(roles), bool(r.get("author_may_approve")), age


def evaluate_signoffs(report: Any, signoffs: Sequence[Signoff | Mapping[str, Any]],
                      trust_store: TrustStore | str | os.PathLike[str], *,
                      model_path: str | os.PathLike[str] | None = None,
                      rule: Mapping[str, Any] | None = None,
                      report_dir: str | os.PathLike[str] | None = None,
                      author_fingerprint: str | None = None,
                      ledger_records: Sequence[tuple[int, Mapping[str, Any]]] = (),
                      now: datetime | None = None) -> SignoffVerdict:
    """Apply the sign-off rule to ``signoffs`` of ``report``.

    Parameters
    ----------
    report : AuditReport
        The report as it is now.
    signoffs : list
        :class:`Signoff` items from :func:`load_signoffs` (or plain record dicts).
    trust_store : TrustStore or path
        The reviewers whose sign-offs count.
    model_path : path, optional
        The model file to be deployed: every approval must have signed its SHA-256.
    rule : mapping, optional
        ``min_approvals``, ``required_roles``, ``author_may_approve``, ``max_age_days``;
        default the policy's rule recorded in the report (``report.policy["signoff"]``).
    report_dir : path, optional
        The report's directory: its evidence files and model card are checked too, and every
        digest a sign-off bound (its in-toto subjects) is recomputed from the files there.
    author_fingerprint : str, optional
        The key that signed the audit (from its verified attestation): an approval with that
        key is the author's own (four-eyes rule by key, not by name).
    ledger_records : list of (seq, record), optional
        The sign-off records the ledger holds for this report: a rejection or withdrawal
        recorded there but missing from ``signoffs`` keeps the rule from holding.
    now : datetime, optional
        The time of the check (default now).

    Returns
    -------
    SignoffVerdict
        ``ok`` and ``reasons`` (one line each, for an officer or a CI log).

    Examples
    --------
    >>> v = evaluate_signoffs(report, load_signoffs("audit"), "trust.yaml")  # doctest: +SKIP
    >>> v.ok, v.reasons                                                # doctest: +SKIP
    (False, ('1 valid approval(s) by distinct reviewers, the policy needs 2 ...',))
    """
    store = load_trust_store(trust_store)
    need, roles, author_ok, max_age = _rule_of(report, rule)
    when = _now(now)
    digest = report.digest()
    failed = failed_requirements(report)
    blocking: list[str] = []
    notes: list[str] = []
    model_sha = None
    if model_path is not None:
        model_sha, problem = model_file_problem(report, model_path)
        if problem:
            blocking.append(problem)
    card_now = None
    subjects_now = None
    if report_dir is not None:
        from .attest import subjects as _subjects

        blocking += [f"{p}: the report's evidence changed after the audit"
                     for p in _evidence_problems(report, Path(report_dir))]
        card_now = card_digest(report_dir)
        if (Path(report_dir) / "report.json").is_file():
            subjects_now = [x for x in _subjects(report_dir, report) if x["name"] != "model"]
    items: list[Signoff | Mapping[str, Any]] = list(signoffs)
    on_disk = {json.dumps(((it.record if isinstance(it, Signoff) else it) or {}).get(
        "envelope"), sort_keys=True) for it in items}
    for seq, rec in ledger_records:
        if json.dumps(rec.get("envelope"), sort_keys=True) in on_disk:
            continue
        ident, pl, problem = verify_record(rec, store)
        if problem is None and pl and pl.get("report_id") == report.report_id:
            what = str(pl.get("decision"))
            if what in ("reject", "withdraw"):
                blocking.append(f"the ledger (entry {seq}) records a {what} by "
                                f"{pl.get('reviewer')!r} that is missing from {SIGNOFF_DIR}/: "
                                "a sign-off file was deleted")
            else:
                notes.append(f"the ledger (entry {seq}) records an approval by "
                             f"{pl.get('reviewer')!r} that is not in {SIGNOFF_DIR}/ (not "
                             "counted)")

    checks: list[SignoffCheck] = []
    approvals: dict[str, Identity] = {}
    rejections: list[str] = []
    counted: list[tuple[str, str, Identity, str, str, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, Signoff):
            fname, rec, err = item.path.name, item.record, item.error
        else:
            fname, rec, err = "<record>", dict(item), None
        if rec is None:
            msg = f"sign-off file {fname} {err or 'cannot be read'}"
            blocking.append(msg)
            checks.append(SignoffCheck(fname, "?", "?", "?", "invalid", msg))
            continue
        who = repr(str(rec.get("reviewer") or "?"))
        ident, payload, problem = verify_record(rec, store)
        p = payload or {}
        decision = str(p.get("decision") or rec.get("decision") or "?")
        state = "valid"
        if problem is None and p.get("report_id") != report.report_id:
            problem = OTHER_REPORT.format(who=who, theirs=p.get("report_id"),
                                          mine=report.report_id)
        if problem is None and p.get("report_digest") != digest:
            problem = REPORT_CHANGED.format(who=who, theirs=str(p.get("report_digest"))[:12],
                                            mine=digest[:12])
        if problem is None and decision not in DECISIONS:
            problem = f"{who}: unknown decision {decision!r}"
        if problem is None and model_sha is not None and decision == "approve":
            theirs = p.get("model_sha256")
            if not theirs:
                problem = (f"{who}: approved without the model file's digest: sign again with "
                           "--model")
            elif theirs != model_sha:
                problem = MODEL_CHANGED.format(who=who, theirs=str(theirs)[:12] + "...",
                                               path=model_path, mine=model_sha[:12] + "...")
        if (problem is None and report_dir is not None and p.get("model_card_sha256")
                and p.get("model_card_sha256") != card_now):
            problem = (f"{who}: the model card (card.json) changed after it was signed"
                       if card_now else f"{who}: signed a model card that is gone (card.json "
                       "was deleted)")
        if problem is None and subjects_now is not None:
            from .attest import check_subjects

            st = _statement(rec)
            lost = check_subjects([x for x in (st or {}).get("subject") or []
                                   if isinstance(x, Mapping) and x.get("name") != "model"],
                                  subjects_now, who=who)
            if lost:
                problem = lost[0]
        signed_at = _parse_time(p.get("signed_at"))
        if problem is None and signed_at is None:
            problem = f"{who}: the signing time is unreadable"
        if problem is None and signed_at is not None and signed_at > when + CLOCK_SKEW:
            problem = f"{who}: dated {p.get('signed_at')}, in the future"
        if problem is not None:
            state = "invalid"
        else:
            exp = _parse_time(p.get("expires_at"))
            if p.get("expires_at") and exp is None:
                state, problem = "invalid", f"{who}: the expiry is unreadable"
            elif exp is not None and exp <= when:
                state, problem = "expired", EXPIRED.format(who=who, when=p.get("expires_at"))
            elif (max_age is not None and decision == "approve" and signed_at is not None
                  and when - signed_at > _days(max_age)):
                state, problem = "expired", (f"{who}: signed on {p.get('signed_at')}, more "
                                             f"than the policy's {max_age:g} days ago")
        if state == "valid" and decision == "approve" and ident is not None:
            if not author_ok and ((author_fingerprint and ident.fingerprint == author_fingerprint)
                                  or _same_person(ident.reviewer, report.author)):
                state, problem = "author", AUTHOR_APPROVAL.format(who=who)
            elif failed:
                waived = set(_texts((p.get("waiver") or {}).get("requirements")
                                    if isinstance(p.get("waiver"), Mapping) else None))
                missing = [f for f in failed if f not in waived]
                if missing:
                    state, problem = "invalid", (f"{who}: approves a failed audit without "
                                                 f"waiving {', '.join(missing)}")
        checks.append(SignoffCheck(fname, str(p.get("reviewer") or rec.get("reviewer") or "?"),
                                   str(p.get("role") or rec.get("role") or "?"), decision,
                                   state, problem or "",
                                   ident.fingerprint if ident is not None else ""))
        if state in ("invalid", "author"):
            blocking.append(problem or f"{who}: invalid")
        elif state == "expired":
            notes.append(problem or f"{who}: expired")
        else:
            assert ident is not None
            counted.append((str(p.get("signed_at")), fname, ident, decision, who, p))
    # a signed withdrawal voids the sign-offs of the same key that it names (by nonce)
    voided = {(ident.fingerprint, n) for _, _, ident, decision, _, p in counted
              if decision == "withdraw" for n in _texts(p.get("withdraws"))}
    gone = {fname for _, fname, ident, decision, _, p in counted if decision != "withdraw"
            and (ident.fingerprint, str(p.get("nonce"))) in voided}
    for _, _, _, decision, who, p in counted:
        if decision == "withdraw":
            notes.append(f"{who}: withdrew their sign-off ({p.get('comment') or 'no comment'})")
    checks[:] = [SignoffCheck(c.file, c.reviewer, c.role, c.decision, "withdrawn",
                              "withdrawn by the reviewer (signed)", c.fingerprint)
                 if c.file in gone else c for c in checks]
    for _, fname, ident, decision, _, p in counted:
        if decision == "withdraw" or fname in gone:
            continue
        if decision == "reject":
            rejections.append(ident.reviewer)
            blocking.append(f"rejected by {ident.reviewer!r} ({ident.role}, key "
                            f"{ident.fingerprint[:19]}): {p.get('comment') or 'no comment'}")
        else:
            approvals.setdefault(ident.reviewer, ident)
    reasons = list(blocking)
    if len(approvals) < need:
        reasons.append(TOO_FEW.format(n=len(approvals), need=need, besides=(
            "" if author_ok else " other than the report's author")))
    have_roles = {i.role for i in approvals.values()}
    for role in roles:
        if role not in have_roles:
            reasons.append(f"no valid approval by a reviewer with the role {role!r}, which the "
                           "policy requires")
    if reasons:
        reasons += notes  # why some sign-offs were not counted
    waived = tuple(failed) if failed and approvals and not reasons else ()
    return SignoffVerdict(ok=not reasons, reasons=tuple(reasons),
                          approvals=tuple(sorted(approvals)), rejections=tuple(rejections),
                          approvers=tuple(approvals[k] for k in sorted(approvals)),
                          waived=waived, checks=tuple(checks),
                          rule={"min_approvals": need, "required_roles": roles,
                                "author_may_approve": author_ok, "max_age_days": max_age})


def check_signoffs(report: str | os.PathLike[str], *,
                   trust_store: TrustStore | str | os.PathLike[str],
                   model_path: str | os.PathLike[str] | None = None,
                   rule: Mapping[str, Any] | None = None, now: datetime | None = None
                   ) -> SignoffVerdict:
    """Load the report at ``report`` (directory or report.json) and its sign-offs, and apply
    :func:`evaluate_signoffs` (evidence files and model card included).

    Examples
    --------
    >>> v = check_signoffs("audit", trust_store="trust.yaml",
    ...                    model_path="model.skops")                   # doctest: +SKIP
    >>> v.ok                                                           # doctest: +SKIP
    True
    """
    from .results import AuditReport

    report_dir, report_file = _report_paths(report)
    rep = AuditReport.load(report_file)
    store = load_trust_store(trust_store)
    return evaluate_signoffs(rep, load_signoffs(report_dir), store,
                             model_path=model_path, rule=rule, report_dir=report_dir,
                             author_fingerprint=verify_attestation_author(report_dir, rep, store),
                             now=now)


def verify_attestation_author(report_dir: str | os.PathLike[str], report: Any,
                              trust_store: TrustStore | str | os.PathLike[str]) -> str | None:
    """The key fingerprint that signed the audit's attestation, if it verifies against the
    trust store (else None)."""
    from .attest import verify_attestation

    att = verify_attestation(report_dir, report, load_trust_store(trust_store))
    return att.fingerprint if att is not None and att.ok else None
