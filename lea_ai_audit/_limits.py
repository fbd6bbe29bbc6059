"""Limits on what an input file may cost: bytes once decompressed, rows and columns.

A data file comes from outside: a 50 KB ``.csv.gz`` can unpack to 50 GB and a CSV header can
name 100,000 columns. Each limit below stops such a file early, with the one-line error and exit
code 2, before memory or time runs out. Each is set by an environment variable:

=============================  =================  =======================================
variable                       default            what it bounds
=============================  =================  =======================================
``LEA_AUDIT_MAX_INPUT_BYTES``  ``8G``             bytes of a data file once decompressed
                                                  (CSV: the text; Parquet: the columns'
                                                  uncompressed size); suffixes K, M, G, T
``LEA_AUDIT_MAX_ROWS``         ``100000000``      rows of a data file
``LEA_AUDIT_MAX_COLUMNS``      ``2000``           columns of a data file or DataFrame
``LEA_AUDIT_MAX_GROUPS``       ``1000``           groups of one sensitive attribute (the
                                                  intersection of several: ten times it)
=============================  =================  =======================================

``0`` or ``none`` switches a limit off. Compressed CSV (gzip, bzip2, xz, a zip holding one
file, zstandard if the ``zstandard`` package is installed) is recognised by its first bytes,
whatever its suffix, and decompressed as it is read, so the byte limit holds before pandas sees
the text.

Examples
--------
>>> parse_size("512M")
536870912
>>> parse_size("none") is None
True
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import DataError, InputError

__all__ = ["Limits", "check_columns", "limits", "open_text_source", "parse_size"]

DEFAULTS = {"LEA_AUDIT_MAX_INPUT_BYTES": "8G", "LEA_AUDIT_MAX_ROWS": "100000000",
            "LEA_AUDIT_MAX_COLUMNS": "2000", "LEA_AUDIT_MAX_GROUPS": "1000"}
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
          (b"PK\x03\x04", "zip"), (b"\x28\xb5\x2f\xfd", "zstandard"))


def parse_size(text: str, var: str = "size") -> int | None:
    """``"8G"`` -> bytes; ``"0"``/``"none"`` -> None (no limit)."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    if t in ("", "0", "NONE", "OFF"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)", t)
    if not m:
        raise InputError(f"{var}={text!r} is not a size",
                         "write a number of bytes with an optional K, M, G or T, e.g. 8G "
                         "(0 or none: no limit)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _count(var: str) -> int | None:
    text = os.environ.get(var, DEFAULTS[var]).strip()
    if text.lower() in ("0", "none", "off", ""):
        return None
    t = text.replace("_", "").replace(",", "")
    if not t.isdigit():
        raise InputError(f"{var}={text!r} is not a whole number",
                         f"set {var} to a positive whole number (0 or none: no limit)")
    return int(t)


@dataclass(frozen=True)
class Limits:
    """The limits in force (``None``: none)."""

    max_bytes: int | None
    max_rows: int | None
    max_columns: int | None
    max_groups: int | None = None


def limits() -> Limits:
    """The limits set by the environment (see the module docstring)."""
    var = "LEA_AUDIT_MAX_INPUT_BYTES"
    return Limits(max_bytes=parse_size(os.environ.get(var, DEFAULTS[var]), var),
                  max_rows=_count("LEA_AUDIT_MAX_ROWS"),
                  max_columns=_count("LEA_AUDIT_MAX_COLUMNS"),
                  max_groups=_count("LEA_AUDIT_MAX_GROUPS"))


def _human(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return f"{n:,} bytes"


class _Bounded(io.RawIOBase):
    """A binary stream that raises :class:`DataError` once more than ``limit`` bytes are read."""

    def __init__(self, raw: IO[bytes], limit: int | None, where: str, closers: list[Any]):
        self._raw, self._limit, self._where, self._closers = raw, limit, where, closers
        self._seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._raw.read(len(buffer))
        except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
            raise DataError(f"{self._where} is damaged: cannot decompress it ({exc})",
                            "export it again") from None
        n = len(data)
        self._seen += n
        if self._limit is not None and self._seen > self._limit:
            raise DataError(f"{self._where} unpacks to more than {_human(self._limit)}",
                            "audit a sample of the rows, or raise LEA_AUDIT_MAX_INPUT_BYTES "
                            "if the file is what you expect")
        buffer[:n] = data
        return n

    def close(self) -> None:
        for c in reversed(self._closers):
            with contextlib.suppress(Exception):  # closing a damaged archive
                c.close()
        super().close()


def compression_of(path: Path) -> str | None:
    """The compression a file's first bytes announce, or None for plain text."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def open_text_source(path: Path, where: str, limit: int | None) -> tuple[IO[bytes], str | None]:
    """A bounded binary stream of the file's (decompressed) bytes and the compression found."""
    kind = compression_of(path)
    raw: Any = open(path, "rb")  # noqa: SIM115 - closed by the returned stream
    closers: list[Any] = [raw]
    try:
        if kind == "gzip":
            raw = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "bzip2":
            raw = bz2.BZ2File(raw, mode="rb")
        elif kind == "xz":
            raw = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115 - closed by the stream
        elif kind == "zip":
            try:
                zf = zipfile.ZipFile(raw)
            except zipfile.BadZipFile as exc:
                raise DataError(f"{where} is binary, not CSV: it starts as a zip file but is "
                                f"not one ({exc})", "pass a CSV file (plain, or zipped alone)"
                                ) from None
            names = [i for i in zf.infolist() if not i.is_dir()]
            if len(names) != 1:
                raise DataError(f"{where} is a zip holding {len(names)} files",
                                "zip exactly one CSV file, or pass the CSV itself")
            closers.append(zf)
            raw = zf.open(names[0])
        elif kind == "zstandard":
            try:
                import zstandard
            except ImportError:
                raise InputError(f"{where} is zstandard-compressed",
                                 "pip install zstandard, or pass it as gzip or plain CSV"
                                 ) from None
            raw = zstandard.ZstdDecompressor().stream_reader(raw)
        if raw is not closers[-1]:
            closers.append(raw)
    except BaseException:
        for c in reversed(closers):
            c.close()
        raise
    return io.BufferedReader(_Bounded(raw, limit, where, closers), buffer_size=1 << 20), kind


def check_columns(n: int, where: str) -> None:
    """Refuse more columns than LEA_AUDIT_MAX_COLUMNS."""
    cap = limits().max_columns
    if cap is not None and n > cap:
        raise DataError(f"{where} has {n:,} columns, more than the limit of {cap:,}",
                        "select the columns the model uses, or raise LEA_AUDIT_MAX_COLUMNS if "
                        "you mean to audit them all")


def check_parquet(path: Path, where: str) -> None:
    """Rows, columns and uncompressed bytes of a Parquet file, from its footer, before reading."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:  # pyarrow raises several kinds for a bad footer
        raise DataError(f"{where} is not a readable Parquet file ({type(exc).__name__})",
                        "export it again as Parquet or CSV") from None
    lim = limits()
    check_columns(meta.num_columns, where)
    if lim.max_rows is not None and meta.num_rows > lim.max_rows:
        raise DataError(f"{where} has {meta.num_rows:,} rows, more than the limit of "
                        f"{lim.max_rows:,}", "audit a sample of the rows, or raise "
                        "LEA_AUDIT_MAX_ROWS")
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if lim.max_bytes is not None and size > lim.max_bytes:
        raise DataError(f"{where} unpacks to {_human(size)}, more than {_human(lim.max_bytes)}",
                        "audit a sample of the rows, or raise LEA_AUDIT_MAX_INPUT_BYTES if the "
                        "file is what you expect")
