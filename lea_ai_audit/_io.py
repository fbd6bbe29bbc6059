"""Small file helpers: atomic writes and digests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def dir_lock(directory: str | os.PathLike[str], *, timeout: float | None = None
             ) -> Iterator[None]:
    """An exclusive lock on ``directory`` (``flock`` on the directory itself, so no lock file
    is left behind); processes that take it run one at a time.

    ``timeout`` (seconds) bounds the wait: :class:`TimeoutError` when another process holds
    the lock longer. Without ``fcntl`` (not POSIX) nothing is locked.
    """
    import time

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            end = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        raise TimeoutError(f"{str(folder)!r} is locked by another process "
                                           f"for more than {timeout:g} s") from None
                    time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


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
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when built in
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
            try:
                return loader.construct_document(node)
            except (ValueError, OverflowError) as exc:  # a date 2024-13-45, a huge integer
                raise err(f"the YAML holds a value that cannot be read ({exc}); put it in "
                          "quotes if it is text") from None
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


# -- an output folder switched whole -----------------------------------------------------------
_STAGE = ".{name}.new-"
_OLD = ".{name}.old-"
_STALE_AFTER_S = 3600.0


def _link_tree(src: Path, dst: Path) -> None:
    """Give ``dst`` the entries of ``src``: hard links of its files (a copy where a link is
    impossible), its folders made anew, its symlinks as symlinks (never followed)."""
    import shutil

    for root, dirs, files in os.walk(src, followlinks=False):
        rel = Path(root).relative_to(src)
        for d in list(dirs):
            s, t = Path(root) / d, dst / rel / d
            if s.is_symlink():
                os.symlink(os.readlink(s), t)
                dirs.remove(d)
            else:
                t.mkdir()
        for f in files:
            s, t = Path(root) / f, dst / rel / f
            if s.is_symlink():
                os.symlink(os.readlink(s), t)
            elif s.is_file():
                try:
                    os.link(s, t)
                except OSError:
                    shutil.copy2(s, t)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False where the
    system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    import errno

    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # an old kernel or a file system without the call: two renames instead
    raise OSError(err, os.strerror(err), str(b))


def _recover(target: Path) -> None:
    """After a crash between the two renames of the fallback switch, put the old folder back;
    remove folders left by audits that stopped long ago."""
    import shutil
    import time

    parent, name = target.parent, target.name
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(_OLD.format(name=name) + "*"), key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        os.rename(olds.pop(), target)
    now = time.time()
    for p in [*olds, *parent.glob(_STAGE.format(name=name) + "*")]:
        try:
            if now - p.stat().st_mtime > _STALE_AFTER_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _in_place(target: Path) -> bool:
    """Whether ``target`` must be written in place: it is (or holds) the working directory,
    or a mount point, where a switch would pull the folder from under the user."""
    try:
        here, t = Path.cwd().resolve(), target.resolve()
    except OSError:
        return True
    return t == here or t in here.parents or (target.is_dir() and os.path.ismount(target))


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike[str]) -> Any:
    """Write an output folder whole: yield a new folder beside ``out`` that starts with
    ``out``'s entries (hard links: nothing is copied or lost, sign-offs stay), and once the
    block ends, switch it into place in one step. After any fault the folder holds the
    previous complete audit or the new complete one, never a mix; an interrupted audit leaves
    it as it was. (The working directory, or a folder holding it, is written in place, file
    by file, each atomically.)
    """
    import shutil

    target = Path(out)
    try:
        if target.exists() and not target.is_dir():
            raise ReportError(f"cannot write {str(target)!r}: it is a file, not a folder",
                              "give --out the name of a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        _recover(target)
        stage = None
        if _in_place(target):
            target.mkdir(exist_ok=True)
        else:
            stage = Path(tempfile.mkdtemp(prefix=_STAGE.format(name=target.name),
                                          dir=target.parent))
    except OSError as exc:
        raise ReportError(f"cannot write {str(target)!r}: {exc.strerror or exc}",
                          "choose a writable output directory (--out) with free space") from exc
    if stage is None:
        yield target
        return
    try:
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(stage, (target.stat().st_mode & 0o7777) if target.is_dir()
                     else 0o777 & ~umask)
            if target.is_dir():
                _link_tree(target, stage)
        except OSError as exc:
            raise ReportError(f"cannot prepare the new {str(target)!r}: "
                              f"{exc.strerror or exc}",
                              "choose a writable output directory (--out) with free space; "
                              "the previous audit is intact") from exc
        yield stage
        try:
            _switch(stage, target)
        except OSError as exc:
            raise ReportError(f"cannot put the new audit in place at {str(target)!r}: "
                              f"{exc.strerror or exc}",
                              "check the folder's permissions; the previous audit is intact"
                              ) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # the old folder after a switch, else the new


def _switch(stage: Path, target: Path) -> None:
    import shutil

    if not target.exists():
        os.rename(stage, target)
        return
    if _exchange(stage, target):
        return
    old = Path(tempfile.mkdtemp(prefix=_OLD.format(name=target.name), dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
