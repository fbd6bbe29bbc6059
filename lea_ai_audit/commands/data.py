"""``--schema FILE`` for ``lea-audit run`` and ``demo``: the pandera schema the data must match.

The file is a pandera YAML schema (``DataFrameSchema.to_yaml()``, or the ``schema.yaml`` a
previous audit saved under ``evidence/``). It is read safely (``yaml.safe_load``) before the
audit starts, so a bad file stops the command with one line and exit code 2, and it overrides
the schema the ``data.schema`` check would infer from ``--reference``.

Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", metavar="YAML",
                   help="pandera schema (YAML) the audited data must match; overrides the one "
                        "inferred from --reference (data.schema check)")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    path = getattr(args, "schema", None)
    if not path:
        return {}
    from pathlib import Path

    from ..errors import InputError
    from ..schema import schema_from_yaml

    if not Path(path).is_file():
        raise InputError(f"schema file {path!r} does not exist",
                         "pass the path of a pandera YAML schema (--schema)")
    return {"schema": schema_from_yaml(Path(path))}
