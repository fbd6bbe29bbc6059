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

from .._io import safe_yaml


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", metavar="YAML",
                   help="pandera schema (YAML) the audited data must match; overrides the one "
                        "inferred from --reference (data.schema check)")
    p.add_argument("--population", metavar="YAML",
                   help="the population the data should represent, {attribute: {group: "
                        "share}} (e.g. census shares): each group's share of the data is "
                        "compared with it")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from pathlib import Path

    from ..errors import InputError

    out: dict[str, Any] = {}
    path = getattr(args, "schema", None)
    if path:
        from ..schema import schema_from_yaml

        if not Path(path).is_file():
            raise InputError(f"schema file {path!r} does not exist",
                             "pass the path of a pandera YAML schema (--schema)")
        out["schema"] = schema_from_yaml(Path(path))
    pop = getattr(args, "population", None)
    if pop:
        import yaml

        if not Path(pop).is_file():
            raise InputError(f"population file {pop!r} does not exist",
                             "pass a YAML file {attribute: {group: share}} (--population)")
        try:
            declared = safe_yaml(Path(pop).read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"population file {pop!r} is not valid YAML: {first}",
                             "write {attribute: {group: share}}, e.g. ethnicity: {majority: "
                             "0.8, minority_a: 0.12}") from None
        if not isinstance(declared, dict):
            raise InputError(f"population file {pop!r} must map each attribute to its group "
                             "shares", "write {attribute: {group: share}}")
        out["declared_population"] = declared
    return out
