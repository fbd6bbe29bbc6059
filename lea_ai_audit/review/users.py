"""The officers who may log in to ``lea-audit review``: local accounts in a YAML file.

A password is never stored: the file holds its scrypt hash (RFC 7914 through the standard
library's OpenSSL binding: N=2**17, r=8, p=1, a 16-byte random salt, the OWASP setting), and
each officer's Ed25519 signing key lies beside it *encrypted with that same password*
(PKCS#8, ``cryptography``'s best available encryption). The server unlocks the key only for
the one request that signs, with the password the officer types into the confirmation form,
and forgets it afterwards; the key never leaves the server and is never written unencrypted.

So whoever can write the users file can lock an officer out, but cannot sign as them: the key
that verifies in the trust store opens only with the officer's own password.

File format (written by ``lea-audit review add-user``)::

    users:
      - id: bob                      # the reviewer id in the trust store
        role: model-risk-officer
        password: scrypt$17$8$1$<salt>$<hash>
        key: keys/bob.key            # relative to the users file
        fingerprint: <SHA-256 of the public key>
        added_at: 2026-12-04T10:00:00+00:00
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError

USERS_ENV = "LEA_AUDIT_REVIEW_USERS"
MIN_PASSWORD = 12
# OWASP password storage cheat sheet: scrypt N=2^17, r=8, p=1 (128 MiB per hash)
_LOG_N, _R, _P = 17, 8, 1
_MAXMEM = 256 * 1024 * 1024


def default_users_path() -> Path:
    """``$LEA_AUDIT_REVIEW_USERS``, else ``~/.lea-ai-audit/review/users.yaml``."""
    value = os.environ.get(USERS_ENV, "").strip()
    return Path(value) if value else Path.home() / ".lea-ai-audit" / "review" / "users.yaml"


def hash_password(password: str) -> str:
    """The scrypt hash of ``password`` as stored in the users file.

    Examples
    --------
    >>> h = hash_password("correct horse battery")
    >>> h.startswith("scrypt$17$8$1$"), verify_password(h, "correct horse battery")
    (True, True)
    >>> verify_password(h, "wrong")
    False
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2 ** _LOG_N, r=_R, p=_P,
                            maxmem=_MAXMEM, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_LOG_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (constant-time comparison; a malformed
    or absurdly expensive hash from an edited file is a mismatch, never a crash or a hang)."""
    try:
        scheme, log_n, r, p, salt, digest = str(stored).split("$")
        n_log, r_i, p_i = int(log_n), int(r), int(p)
        if scheme != "scrypt" or not (14 <= n_log <= 20 and 1 <= r_i <= 16 and 1 <= p_i <= 4):
            return False
        want = base64.urlsafe_b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.urlsafe_b64decode(salt),
                             n=2 ** n_log, r=r_i, p=p_i, maxmem=_MAXMEM, dklen=len(want))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got, want)


_DUMMY: list[str] = []


def burn_time(password: str) -> None:
    """Spend the time of one verification (a login for an unknown id takes as long as one
    with a wrong password, so the page does not tell which ids exist)."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(8)))
    verify_password(_DUMMY[0], password)


@dataclass(frozen=True)
class User:
    """One officer's account."""

    id: str
    role: str
    password: str
    key: Path
    fingerprint: str


def _text(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: {name} must be a non-empty text, got {value!r:.60}",
                         "add the user again with `lea-audit review add-user`")
    return value.strip()


def load_users(path: str | os.PathLike[str]) -> dict[str, User]:
    """The accounts in the users file at ``path`` (missing file: none).

    Raises
    ------
    InputError
        A file that is not YAML, is not a users file, or an entry without id, role, password,
        key or fingerprint.
    """
    from .._io import safe_yaml
    from .._schemas import validate

    p = Path(path)
    if not p.exists():
        return {}
    where = f"users file {str(p)!r}"
    import yaml

    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the {where}: {type(exc).__name__}",
                         "check the path given to --users") from exc
    try:
        data = safe_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2024-13-45
        raise InputError(f"the {where} is not valid YAML",
                         "fix the YAML, or add the users again with `lea-audit review "
                         "add-user`") from exc
    validate("review_users", data, where)
    out: dict[str, User] = {}
    for i, entry in enumerate((data or {}).get("users") or []):
        at = f"{where}, users[{i}]"
        uid = _text(entry, "id", at)
        if uid in out:
            raise InputError(f"{at}: user {uid!r} appears twice",
                             "remove one of the two entries")
        key = Path(_text(entry, "key", at))
        out[uid] = User(uid, _text(entry, "role", at), _text(entry, "password", at),
                        key if key.is_absolute() else p.parent / key,
                        _text(entry, "fingerprint", at))
    return out


@contextlib.contextmanager
def _users_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<users file>.lock`` (the trust store beside it has its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def add_user(path: str | os.PathLike[str], user_id: str, *, role: str, password: str,
             key: str | os.PathLike[str] | None = None,
             trust_store: str | os.PathLike[str] | None = None) -> User:
    """Add an officer to the users file at ``path`` (created, mode 0600, if missing).

    Without ``key``, a new Ed25519 key pair is made in ``<users dir>/keys/``, encrypted with
    ``password``; with ``key``, the officer's own encrypted key (``lea-audit keygen
    --passphrase-env``) whose passphrase must be ``password``. With ``trust_store``, the
    public key is added there too (as ``lea-audit keygen --trust-store`` does).

    Raises
    ------
    InputError
        A short password, a user that exists already, a key that ``password`` does not open
        or that is not encrypted.
    """
    import yaml

    from .._io import atomic_write_bytes, safe_yaml
    from ..signoff import (
        _check_id,
        add_to_trust_store,
        fingerprint,
        generate_keys,
        load_private_key,
        read_identity,
    )

    user_id = _check_id(user_id, "user id", "add-user ID")
    role = _check_id(role, "role", "--role")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password has {len(password)} characters; at least "
                         f"{MIN_PASSWORD} are needed", "choose a longer password (a phrase)")
    p = Path(path)
    with _users_lock(p):
        users = load_users(p)
        if user_id in users:
            raise InputError(f"user {user_id!r} is already in {str(p)!r}",
                             "choose another id, or remove the old entry from the file")
        if key is None:
            kp = generate_keys(user_id, role=role, out=p.parent / "keys",
                               trust_store=trust_store, passphrase=password)
            key_path, fp = kp.private_key, kp.identity.fingerprint
        else:
            key_path = Path(key).resolve()
            if key_path.is_file() and b"ENCRYPTED" not in key_path.read_bytes():
                raise InputError(f"the key {str(key)!r} is not encrypted",
                                 "make one with `lea-audit keygen --passphrase-env VAR`")
            from cryptography.hazmat.primitives import serialization as ser

            priv = load_private_key(key_path, passphrase=password)
            fp = fingerprint(priv.public_key().public_bytes(ser.Encoding.Raw,
                                                            ser.PublicFormat.Raw))
            pub = key_path.with_suffix(".pub")
            if trust_store is not None:
                ident = read_identity(pub) if pub.is_file() else None
                if ident is None or ident.fingerprint != fp:
                    raise InputError(f"no .pub file of this key beside {str(key)!r}",
                                     "keep the .pub file from `lea-audit keygen` beside it")
                add_to_trust_store(trust_store, ident)
        try:
            rel = key_path.resolve().relative_to(p.parent.resolve())
        except ValueError:
            rel = key_path.resolve()
        raw = (safe_yaml(p.read_text(encoding="utf-8")) if p.exists() else None) or {}
        entries = list(raw.get("users") or [])
        entries.append({"id": user_id, "role": role, "password": hash_password(password),
                        "key": str(rel), "fingerprint": fp,
                        "added_at": datetime.now(UTC).isoformat(timespec="seconds")})
        text = ("# lea-ai-audit review users (lea-audit review add-user): password hashes "
                "(scrypt), never passwords\n"
                + yaml.safe_dump({"users": entries}, sort_keys=False, allow_unicode=True))
        atomic_write_bytes(p, text.encode("utf-8"), mode=0o600)
    return load_users(p)[user_id]
