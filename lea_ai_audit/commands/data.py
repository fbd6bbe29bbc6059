"""``--schema FILE`` for ``lea-audit run`` and ``demo``: the pandera schema the data must match.

The file is a pandera YAML schema (``DataFrameSchema.to_yaml()``, or the ``schema.yaml`` a
previous audit saved under ``evidence/``). It is read safely (``yaml.safe_load``) before the
audit starts, so a bad file stops the command with one line and exit code 2, and it overrides
the schema the ``data.schema`` check would infer from ``--reference``. ``--population FILE``
is checked against its declared schema (:data:`lea_ai_audit._schemas.POPULATION_SCHEMA`) the
same way.

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
        except OSError as exc:
            raise InputError(f"cannot read the population file {pop!r}: "
                             f"{exc.strerror or type(exc).__name__}",
                             "pass a readable UTF-8 YAML file (--population)") from None
        except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
            # ValueError: PyYAML's own, for a date such as 2024-13-45 or a too long integer
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"population file {pop!r} is not valid YAML: {first}",
                             "write {attribute: {group: share}}, e.g. ethnicity: {majority: "
                             "0.8, minority_a: 0.12}") from None
        from .._schemas import validate

        # the declared schema (lea_ai_audit._schemas.POPULATION_SCHEMA): {attribute: {group:
        # share}}, shares in [0, 1]; that they add up to at most 1 is checked with the audit
        validate("population", declared, f"declared population {pop!r}")
        out["declared_population"] = declared
    return out
