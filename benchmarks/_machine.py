"""The machine a benchmark ran on, for its JSON result (shared by the bench_*.py scripts)."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine(libraries: Sequence[str]) -> dict[str, Any]:
    """Platform, Python, CPU model, cores, memory (GiB), load average now, library versions."""
    mem = _proc_field("/proc/meminfo", "MemTotal")
    libs: dict[str, str | None] = {}
    for lib in (*libraries, "lea-ai-audit"):
        try:
            libs[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            libs[lib] = None
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or None,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem.split()[0]) / 1024**2, 1) if mem else None,
        "load_average": load, "libraries": libs,
    }
