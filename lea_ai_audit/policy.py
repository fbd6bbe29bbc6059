"""Policy packs: requirements with the clauses they serve, their check and thresholds.

A pack is a YAML file in ``checklists/`` (loaded with ``yaml.safe_load``: no tags that build
objects). Every requirement names the clauses it serves (e.g. ``"Council 13083/1/20 §26"``,
``"AI Act Art. 10(2)(f)"``), the check it runs with its parameters, and whether it blocks.
Every check id and parameter is validated when the pack is loaded, not when the audit runs.

Examples
--------
>>> from lea_ai_audit.policy import load_policy
>>> p = load_policy()                          # the default pack
>>> p.id
'eu-council-2020-internal-security'
>>> [r.check for r in p.select(["fairness.disparity"]).requirements][:1]
['fairness.disparity']
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ._io import safe_yaml
from ._resources import shipped_dir
from .errors import InputError, PolicyError

__all__ = ["DEFAULT_POLICY", "SIGNOFF_DEFAULTS", "Policy", "Requirement", "list_policies",
           "load_policy"]

DEFAULT_POLICY = "eu-council-2020-internal-security"
#: the sign-off rule of a pack (``signoff:``) and its defaults: the four-eyes principle
SIGNOFF_DEFAULTS: dict[str, Any] = {"min_approvals": 2, "required_roles": [],
                                    "author_may_approve": False, "max_age_days": None}


def _parse_signoff(data: Any, pid: str) -> dict[str, Any]:
    """The sign-off rule with its defaults (its shape is checked by the pack's schema)."""
    if data is None:
        return dict(SIGNOFF_DEFAULTS)
    rule = {**SIGNOFF_DEFAULTS, **data}
    roles = rule["required_roles"]
    rule["required_roles"] = [roles] if isinstance(roles, str) else list(roles)
    return rule


@dataclass(frozen=True)
class Requirement:
    """One requirement of a policy: what it serves, which check decides it, and how."""

    id: str
    title: str
    clauses: tuple[str, ...]
    check: str
    params: Mapping[str, Any] = field(default_factory=dict)
    blocking: bool = True
    quote: str = ""
    description: str = ""

    def make_check(self) -> Any:
        """A validated instance of this requirement's check."""
        from .checks import make_check
        return make_check(self.check, dict(self.params))


@dataclass(frozen=True)
class Policy:
    """A validated policy pack."""

    id: str
    version: str
    title: str
    requirements: tuple[Requirement, ...]
    source: str = ""
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None
    signoff: Mapping[str, Any] = field(default_factory=lambda: dict(SIGNOFF_DEFAULTS))

    def select(self, prefixes: Iterable[str] | None) -> Policy:
        """The requirements whose check id or requirement id starts with one of ``prefixes``."""
        if prefixes is None:
            return self
        wanted = [p.strip() for p in prefixes if p and p.strip()]
        if not wanted:
            return self
        reqs = tuple(r for r in self.requirements
                     if any(r.check.startswith(p) or r.id.startswith(p) for p in wanted))
        if not reqs:
            known = sorted({r.check for r in self.requirements} | {r.id for r in self.requirements})
            raise InputError(f"no requirement of policy {self.id!r} matches {wanted}",
                             f"use a check id or requirement id prefix: {', '.join(known)}")
        return replace(self, requirements=reqs)

    def describe(self) -> dict[str, Any]:
        """Id, version, title, source and canonical digest (:meth:`digest`), for the report."""
        return {"id": self.id, "version": self.version, "title": self.title,
                "source": self.source, "path": self.path, "settings": dict(self.settings),
                "signoff": dict(self.signoff), "sha256": self.digest(),
                "requirements": len(self.requirements)}

    def canonical(self) -> dict[str, Any]:
        """What decides an audit under this pack, as plain JSON: id, version, settings, the
        sign-off rule and each requirement's id, check, parameters, clauses and blocking."""
        import json

        body = {"id": self.id, "version": self.version, "settings": dict(self.settings),
                "signoff": dict(self.signoff),
                "requirements": [{"id": r.id, "check": r.check, "params": dict(r.params),
                                  "clauses": list(r.clauses), "blocking": r.blocking}
                                 for r in self.requirements]}
        return json.loads(json.dumps(body, default=str))

    def digest(self) -> str:
        """SHA-256 of :meth:`canonical` (sorted keys, no spaces): the same for every copy of
        the pack, whatever its comments, key order or file path; another for any change of a
        threshold, parameter, blocking flag or the sign-off rule.

        Examples
        --------
        >>> load_policy().digest() == load_policy().digest()
        True
        """
        import hashlib
        import json

        canon = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _policy_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(shipped_dir("checklists").glob("*.y*ml"))}


def list_policies() -> list[Policy]:
    """Every policy pack shipped with lea-ai-audit."""
    return [load_policy(p) for p in _policy_files().values()]


def _parse(data: Any, where: str) -> Policy:
    """A validated :class:`Policy` from a pack's content.

    The shape of the pack — each key's type and range, the required keys, the keys a
    requirement, ``settings:`` and ``signoff:`` may have, and the type and bounds of every
    check's parameters — is declared in :func:`lea_ai_audit._schemas.policy_schema` and
    checked first; what a schema cannot say (a check id that exists, requirement ids that
    repeat, the checks' own ``validate()``) is checked here after it.
    """
    from ._schemas import validate
    from .checks import get_check, make_check

    named = isinstance(data, Mapping) and isinstance(data.get("id"), str) and data["id"]
    validate("policy", data, f"policy {data['id']!r}" if named else f"policy {where}")
    pid = str(data["id"])
    settings = data.get("settings") or {}
    seen: set[str] = set()
    reqs = []
    for r in data["requirements"]:
        rid = r["id"]
        if rid in seen:
            raise PolicyError(f"policy {pid!r}: requirement id {rid!r} repeats",
                              "give each requirement its own id")
        seen.add(rid)
        clauses = r["clauses"]
        if isinstance(clauses, str):
            clauses = [clauses]
        params = r.get("params") or {}
        blocking = r.get("blocking", True)
        check_id = r["check"]
        try:
            cls = get_check(check_id)
        except PolicyError as exc:
            raise PolicyError(f"policy {pid!r}: requirement {rid!r} names unknown check "
                              f"{check_id!r}", exc.fix) from None
        accepted = inspect.signature(cls.__init__).parameters
        merged = {k: v for k, v in settings.items() if k in accepted}
        merged.update(params)
        try:
            make_check(check_id, merged)
        except PolicyError as exc:
            raise PolicyError(f"policy {pid!r}: requirement {rid!r}: {exc.what}", exc.fix) from None
        reqs.append(Requirement(id=rid, title=str(r.get("title") or rid),
                                clauses=tuple(clauses), check=check_id, params=merged,
                                blocking=blocking, quote=str(r.get("quote") or ""),
                                description=str(r.get("description") or "")))
    return Policy(id=pid, version=str(data["version"]), title=str(data["title"]),
                  requirements=tuple(reqs), source=str(data.get("source") or ""),
                  description=str(data.get("description") or ""), settings=dict(settings),
                  signoff=_parse_signoff(data.get("signoff"), pid))


def load_policy(policy: str | os.PathLike[str] | Mapping[str, Any] | Policy | None = None
                ) -> Policy:
    """Load and validate a policy pack.

    Parameters
    ----------
    policy : str, path, mapping, Policy or None
        ``None`` for the default pack; the id of a shipped pack (``lea-audit policies`` lists
        them); a path to a YAML file; or the pack's content as a mapping.

    Raises
    ------
    PolicyError
        Malformed YAML, an unknown check id, a bad parameter — with what to fix.
    """
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        return _parse(policy, "<mapping>")
    name = str(policy) if policy is not None else DEFAULT_POLICY
    files = _policy_files()
    path = files.get(name)
    if path is None:
        path = Path(name)
        if not path.exists():
            raise PolicyError(f"no policy pack {name!r}",
                              f"give a YAML file path or one of: {', '.join(files)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {str(path)!r}: {exc}",
                          "pass a readable UTF-8 YAML file") from exc
    try:
        data = safe_yaml(text)
    except ValueError as exc:  # PyYAML's own: a date such as 2024-13-45, an int too long
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PolicyError(f"policy file {str(path)!r} is not valid YAML: {first}",
                          "quote the value (a date or number YAML cannot build)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"policy file {str(path)!r} is not valid YAML{where}: {problem}",
                          "fix the YAML (only plain YAML: tags that build objects are refused)"
                          ) from None
    pol = _parse(data, repr(str(path)))
    return replace(pol, path=str(path))
