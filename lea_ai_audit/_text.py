"""Text that cannot act on a terminal or a log: control characters from data made visible.

A group label, column name or metadata value crafted by someone outside may hold escape
sequences (clear the screen, set the window title, move the cursor, a carriage return that
overwrites a CI log line). Everything lea-audit prints passes through :func:`printable`: the
C0 and C1 control characters other than newline and tab are shown as ``\\xNN``.

Examples
--------
>>> printable("group\\x1b[2J\\rOK")
'group\\\\x1b[2J\\\\x0dOK'
"""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

#: every C0/C1 control character except newline and tab (DEL included)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: the colour codes a terminal console writes itself (SGR) and its cursor/erase codes (CSI)
_CSI = re.compile("\x1b\\[[0-9;?]*[A-Za-z]")


#: on a terminal the console's carriage returns (progress display) pass as well
_CONTROL_TTY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _visible(m: re.Match[str]) -> str:
    return f"\\x{ord(m.group(0)):02x}"


def printable(text: Any) -> str:
    """``text`` with its control characters (but newline and tab) as visible ``\\xNN``."""
    return CONTROL.sub(_visible, str(text))


class PrintableStream(io.TextIOBase):
    """A text stream that writes :func:`printable` text to ``stream``.

    On a log or a pipe (not a terminal) every control character is made visible: nothing a
    crafted label holds can erase or forge a CI log line. On a terminal, the console's own
    colour and cursor codes (CSI sequences) pass, so its progress display works; the data it
    shows is made :func:`printable` where it is printed.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        try:
            self._tty = bool(stream.isatty())
        except (AttributeError, ValueError):
            self._tty = False

    def write(self, text: str) -> int:  # type: ignore[override]
        if self._tty:
            parts, last = [], 0
            for m in _CSI.finditer(text):
                parts.append(_CONTROL_TTY.sub(_visible, text[last:m.start()]))
                parts.append(m.group(0))
                last = m.end()
            parts.append(_CONTROL_TTY.sub(_visible, text[last:]))
            self._stream.write("".join(parts))
        else:
            self._stream.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
