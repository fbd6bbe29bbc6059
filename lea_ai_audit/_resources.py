"""Where the shipped checklists/ and model_cards/ live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The directory ``name`` (``"checklists"`` or ``"model_cards"``) shipped with the package.

    In a wheel it lies at ``lea_ai_audit/_shipped/<name>``; in a source checkout (or an
    editable install) at the project root.
    """
    for candidate in (_PKG / "_shipped" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"lea-ai-audit is installed without its {name}/ directory; "
                            "reinstall it with pip")
