"""Small file helpers: atomic writes and digests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .errors import ReportError


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    Readers see the old file or the new one, never half of either. On failure the previous
    file is left as it was and a :class:`ReportError` names the path.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], content: bytes, *, mode: int | None = None
                       ) -> Path:
    """Write ``content`` to ``path`` atomically (see :func:`atomic_write_text`).

    ``mode`` (e.g. ``0o600`` for a private key) is set before the file appears under its name.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ReportError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}",
            "choose a writable output directory (--out) with free space",
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp makes 0600; give the usual file mode
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ReportError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}",
            "choose a writable output directory (--out) with free space; "
            "the previous file is intact",
        ) from exc
    return target


def sha256_bytes(content: bytes) -> str:
    """Hex SHA-256 of ``content``."""
    return hashlib.sha256(content).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


#: the deepest nesting a JSON file we read may have (a report is about 8 levels deep)
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONLimitError(json.JSONDecodeError):
    """A JSON text beyond what lea-audit reads: too deeply nested, or NaN/Infinity (a
    ``json.JSONDecodeError``, so every reader's handling of bad JSON applies)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, "", 0)
        self.msg = msg

    def __str__(self) -> str:
        return self.msg


def _no_constant(name: str) -> Any:
    raise JSONLimitError(f"it holds {name}, which JSON does not allow")


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not
    count); linear in the text, no recursion."""
    import numpy as np

    brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    raw = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    step = np.where((raw == ord("[")) | (raw == ord("{")), 1, -1)
    return int(np.cumsum(step).max())


def strict_json(text: str | bytes) -> Any:
    """``json.loads`` for files from outside: at most :data:`MAX_JSON_DEPTH` levels deep, and
    no NaN or Infinity. Every failure is a ``ValueError`` (never a RecursionError).

    Examples
    --------
    >>> strict_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> strict_json("[" * 100 + "]" * 100)
    Traceback (most recent call last):
    ...
    lea_ai_audit._io.JSONLimitError: it is nested 100 levels deep (at most 64)
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise JSONLimitError(f"it is nested {depth} levels deep (at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JSONLimitError("it is nested too deeply") from None


#: the most YAML nodes a file may expand to once its aliases are followed ("billion laughs")
MAX_YAML_NODES = 200_000
#: the largest YAML file read (policies, metadata, schemas, trust stores are small)
MAX_YAML_BYTES = 20 * 1024 * 1024


def _yaml_error() -> type[Exception]:
    import yaml

    class YAMLLimitError(yaml.YAMLError):
        """A YAML text beyond what lea-audit reads (a ``yaml.YAMLError``)."""

    return YAMLLimitError


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` for files from outside, with limits: a document that would expand to
    more than :data:`MAX_YAML_NODES` nodes through its aliases (an alias bomb), nests too
    deeply, or is larger than :data:`MAX_YAML_BYTES` is refused at once with a
    ``yaml.YAMLError`` (never a memory exhaustion or a RecursionError).

    Examples
    --------
    >>> safe_yaml("a: [1, 2]")
    {'a': [1, 2]}
    >>> bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\\n" + "".join(
    ...     f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\\n" for p, c in zip("abcdef", "bcdefg"))
    >>> safe_yaml(bomb)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lea_ai_audit._io.YAMLLimitError: the YAML expands to more than 200000 values through its ...
    """
    import yaml

    err = YAMLLimitError
    if len(text) > MAX_YAML_BYTES:
        raise err(f"the YAML is {len(text):,} characters long (at most {MAX_YAML_BYTES:,})")
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            seen: dict[int, int] = {}

            def size(n: Any) -> int:
                key = id(n)
                if key in seen:
                    return seen[key]
                seen[key] = 1  # a cycle counts once
                total = 1
                if isinstance(n, yaml.SequenceNode):
                    total += sum(size(c) for c in n.value)
                elif isinstance(n, yaml.MappingNode):
                    total += sum(size(k) + size(v) for k, v in n.value)
                if total > MAX_YAML_NODES:
                    raise err(f"the YAML expands to more than {MAX_YAML_NODES} values through "
                              "its aliases (an alias bomb?)")
                seen[key] = total
                return total

            size(node)
            return loader.construct_document(node)
        except RecursionError:
            raise err("the YAML is nested too deeply") from None
    finally:
        loader.dispose()


YAMLLimitError = _yaml_error()
YAMLLimitError.__module__ = __name__


def _written_by_us(path: Path, kind: str) -> bool:
    """Whether the existing file ``path`` is one lea-audit wrote (of ``kind``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if kind == "junit":
        return head.lstrip().startswith(b"<?xml") and b'<testsuite name="lea-ai-audit' in head
    if kind == "html":
        return b'<meta name="generator" content="lea-ai-audit' in head
    if kind == "md":
        return head.startswith(b"# Model card: ")
    if kind == "json":
        return b'"generator": "lea-ai-audit' in head
    if kind == "zip":
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                return "manifest.json" in zf.namelist() and "report.json" in zf.namelist()
        except (OSError, zipfile.BadZipFile):
            return False
    return False


def check_output(path: str | os.PathLike[str], *, option: str, kind: str,
                 inputs: Any = (), force: bool = False) -> Path:
    """Refuse to write ``path`` over one of the command's ``inputs``, over a directory, or over
    an existing file lea-audit did not write (of ``kind``: junit, html, md, json, zip, pdf),
    unless ``force``. Raises :class:`~lea_ai_audit.errors.InputError`; returns the path."""
    from .errors import InputError

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {str(p)!r} is a directory", f"give {option} a file name")
    for inp in inputs:
        if inp is None:
            continue
        q = Path(inp)
        same = False
        try:
            same = p.exists() and q.exists() and os.path.samefile(p, q)
        except OSError:
            same = False
        if same or p.resolve() == q.resolve():
            raise InputError(f"{option} {str(p)!r} is one of this command's inputs ({q})",
                             "write it to another file; an input is never overwritten")
    if p.exists() and not force and not _written_by_us(p, kind):
        raise InputError(f"{option} {str(p)!r} exists and was not written by lea-audit",
                         "choose another file name, or pass --force to overwrite it")
    return p
