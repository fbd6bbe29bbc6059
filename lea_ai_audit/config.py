"""The project's configuration file: what ``lea-audit run`` and ``lea-audit gate`` audit and
check, so a CI job is two lines (``lea-audit run``, then ``lea-audit gate``).

Found as ``--config FILE``, else ``$LEA_AUDIT_CONFIG``, else ``lea-audit.yaml`` (or ``.yml``)
in the working directory, else the ``[tool.lea-audit]`` table of ``pyproject.toml`` there. One
section per command; each key is that command's long option without the dashes, with the
value the option takes (a list for a repeatable one, ``true`` for a flag)::

    run:
      data: data/cases.csv
      target: reoffended
      score-col: risk
      prediction-col: flagged
      sensitive: [ethnicity, sex]
      reference-group: {ethnicity: majority}
      reference: data/train.csv
      out: audits/risk-tool
    gate:
      report: audits/risk-tool
      trust-store: trust.yaml
      require-signoff: true

An option given on the command line wins over the file. ``tracking-uri`` follows MLflow's
order: the flag, else ``MLFLOW_TRACKING_URI``, else the file, else the local store in
``~/.lea-ai-audit`` (the same for loading a ``models:/`` model). Relative paths are relative to the
file. The file may not weaken what protects the gate or run code: ``trust-model``,
``allow-unsigned-audit``, ``no-model-check``, ``accept-waivers`` and ``force`` are refused
there (they belong, visibly, on the job's command line), and so is a passphrase variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "CONFIG_ENV", "CONFIG_FILES", "FORBIDDEN", "apply_config",
           "config_schema", "find_config"]

CONFIG_ENV = "LEA_AUDIT_CONFIG"
CONFIG_FILES = ("lea-audit.yaml", "lea-audit.yml")
COMMANDS = ("run", "gate")
#: options a configuration file may not set: each opens the gate wider or runs code
FORBIDDEN = {"trust_model": "it would load a pickle, which can run code",
             "allow_unsigned_audit": "it would accept an audit its author did not sign",
             "no_model_check": "it would skip the check of the model file",
             "accept_waivers": "it would open the gate on waivers",
             "force": "it would overwrite files lea-audit did not write",
             "sign_passphrase_env": "secrets stay out of the repository",
             "help": "", "verbose": "", "config": ""}
#: options whose value is a path, resolved against the file's folder
_PATHS = {"data", "reference", "out", "junit", "metadata", "schema", "population", "ledger",
          "sign_key", "report", "trust_store", "checkpoint", "model", "policy"}
_URI = ("models:/", "runs:/")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _key(action: argparse.Action) -> str:
    longs = [o for o in action.option_strings if o.startswith("--")]
    return longs[0][2:] if longs else action.dest.replace("_", "-")


def _settable(sp: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {_key(a): a for a in sp._actions if a.dest not in FORBIDDEN}


def _value_schema(action: argparse.Action) -> dict[str, Any]:
    if isinstance(action, argparse._StoreTrueAction):
        return {"type": "boolean"}
    one: dict[str, Any] = ({"type": "integer"} if action.type is int else
                           {"type": "number"} if action.type is float else
                           {"type": ["string", "number"]})
    if action.choices:
        one = {"enum": list(action.choices)}
    if isinstance(action, argparse._AppendAction):
        alts = [one, {"type": "array", "items": one, "minItems": 1}]
        if action.dest in ("reference_group", "attest"):
            alts.append({"type": "object", "minProperties": 1,
                         "additionalProperties": {"type": ["string", "number"]}})
        return {"anyOf": alts, "x-expected": "a value, a list of values"
                + (" or a mapping" if len(alts) > 2 else "")}
    return one


def config_schema(parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """The JSON Schema of the configuration file, from the commands' own options."""
    if parser is None:
        from .cli import build_parser

        parser = build_parser()
    subs = _subparsers(parser)
    props = {}
    for cmd in COMMANDS:
        props[cmd] = {"type": "object", "additionalProperties": False,
                      "properties": {k: _value_schema(a)
                                     for k, a in _settable(subs[cmd]).items()}}
    return {"title": "lea-audit configuration (lea-audit.yaml, [tool.lea-audit])",
            "description": "One section per command; each key is the command's long option "
                           "without the dashes.",
            "type": "object", "additionalProperties": False, "properties": props}


def find_config(explicit: str | None = None, cwd: Path | None = None
                ) -> tuple[Path, dict[str, Any]] | None:
    """(path, parsed content) of the configuration in force, or None."""
    import tomllib

    from ._io import safe_yaml
    from .errors import InputError

    cwd = Path.cwd() if cwd is None else cwd
    named = explicit or os.environ.get(CONFIG_ENV) or None
    candidates = [Path(named)] if named else [cwd / n for n in CONFIG_FILES]
    for path in candidates:
        if not path.is_file():
            if named:
                raise InputError(f"no configuration file {str(path)!r}",
                                 "check the path (--config, $LEA_AUDIT_CONFIG)")
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".toml":
                doc = tomllib.loads(text).get("tool", {}).get("lea-audit", {})
            else:
                doc = safe_yaml(text)
        except (OSError, UnicodeDecodeError, ValueError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"configuration {str(path)!r} cannot be read: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                             "fix the file, or pass another with --config") from None
        except Exception as exc:  # yaml.YAMLError and the limits of safe_yaml
            raise InputError(f"configuration {str(path)!r} is not valid YAML: "
                             f"{str(exc).splitlines()[0]}",
                             "fix the file, or pass another with --config") from None
        return path, ({} if doc is None else doc)
    pyproject = cwd / "pyproject.toml"
    if not named and pyproject.is_file():
        try:
            doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # not ours to judge: the project's build tools will say
        tool = doc.get("tool", {}).get("lea-audit")
        if tool is not None:
            return pyproject, tool
    return None


def _forbidden_keys(section: Mapping[str, Any], sp: argparse.ArgumentParser) -> list[str]:
    bad = []
    for a in sp._actions:
        if a.dest in FORBIDDEN and FORBIDDEN[a.dest] and _key(a) in section:
            bad.append(f"{_key(a)} ({FORBIDDEN[a.dest]})")
    return bad


def _tokens_given(argv: Sequence[str], sp: argparse.ArgumentParser) -> set[str]:
    """The dests of the options written on the command line (long, ``--x=v``, unique
    prefixes as argparse accepts them, and short flags)."""
    longs = {o: a.dest for a in sp._actions for o in a.option_strings}
    given = set()
    for tok in argv:
        if tok == "--":
            break
        if not tok.startswith("-") or tok == "-":
            continue
        name = tok.split("=", 1)[0]
        if name in longs:
            given.add(longs[name])
        elif name.startswith("--"):
            hits = {d for o, d in longs.items() if o.startswith(name)}
            if len(hits) == 1:
                given |= hits
        else:  # combined short flags, e.g. -qv
            given |= {longs[f"-{c}"] for c in name[1:] if f"-{c}" in longs}
    return given


def _path_value(dest: str, value: Any, base: Path) -> Any:
    if dest not in _PATHS or not isinstance(value, str) or not value:
        return value
    if "://" in value or value.startswith(_URI) or value.lower() in ("off", "none"):
        return value
    if dest == "policy" and not value.endswith((".yaml", ".yml")):
        return value  # a pack id
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def _convert(action: argparse.Action, value: Any, base: Path) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        return bool(value)
    if isinstance(action, argparse._AppendAction):
        if isinstance(value, Mapping):
            return [f"{k}={v}" for k, v in value.items()]
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return [_path_value(action.dest, str(v), base) for v in items]
    if action.type in (int, float):
        return action.type(value)
    return _path_value(action.dest, str(value), base)


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str],
                 args: argparse.Namespace) -> Path | None:
    """Fill ``args`` (parsed from ``argv``) from the configuration's section of its command,
    for every option the command line does not give. Returns the file used, or None."""
    from ._schemas import validate
    from .errors import InputError

    command = getattr(args, "command", None)
    if command not in COMMANDS:
        return None
    found = find_config(getattr(args, "config", None))
    if found is None:
        return None
    path, doc = found
    if not isinstance(doc, Mapping):
        raise InputError(f"configuration {str(path)!r} must be a mapping of sections "
                         f"({', '.join(COMMANDS)}), got {type(doc).__name__}",
                         "write e.g. `run:` with the run's options under it")
    sp = _subparsers(parser)[command]
    section = doc.get(command) or {}
    if isinstance(section, Mapping):
        bad = _forbidden_keys(section, sp)
        if bad:
            raise InputError(f"configuration {str(path)!r} may not set {command}."
                             + f", {command}.".join(bad),
                             "pass it on the job's command line, where it shows")
    validate("config", dict(doc), f"configuration {str(path)!r}")
    given = _tokens_given(argv[argv.index(command) + 1:] if command in argv else argv, sp)
    actions = _settable(sp)
    args.from_config = set()
    for key, value in section.items():
        action = actions[key]
        if action.dest in given or value is None:
            continue
        if action.dest == "tracking_uri" and os.environ.get("MLFLOW_TRACKING_URI"):
            continue  # the order is flag, MLFLOW_TRACKING_URI, configuration, default
        setattr(args, action.dest, _convert(action, value, path.parent))
        args.from_config.add(action.dest)
    return path
