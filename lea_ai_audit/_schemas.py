"""The declared schemas of the files lea-audit reads, and one validator for them (#23 point 5).

Every file a user gives lea-audit — a policy pack, the model-card metadata, a trust store, a
declared population, a pandera YAML schema — is checked against a JSON Schema (Draft 2020-12)
declared here, before anything reads its values. A value of the wrong type, out of range,
empty or under an unknown key stops the load with the loader's own typed error
(:class:`~lea_ai_audit.errors.PolicyError` for a policy, :class:`~lea_ai_audit.errors.InputError`
for the others) and one line that names the field as a path, what it must be and what it is::

    policy 'mine': requirements[0].clauses must be a list of strings or a string, got a
    mapping {'a': 1} — write e.g. clauses: ["AI Act Art. 10(2)(f)"]

The parameters of each check are declared by the check itself: their JSON types come from the
type hints of its ``__init__`` (``int`` is an integer and a boolean is not, ``float`` a finite
number, ``str`` a string, ``X | None`` also null, ``list[str]`` / ``Sequence[str]`` a list of
strings, ``dict`` a mapping), their bounds from :data:`PARAM_BOUNDS` below. What a schema cannot
say (a check id that exists, a metric name, requirement ids that repeat, shares adding up to
more than 1) the loaders still check by hand, after the schema.

Two annotations beyond the standard (Draft 2020-12 keeps unknown keywords as annotations):
``x-expected``, the words a message uses for what a value must be, and ``x-fix``, how to put it
right.

Examples
--------
>>> validate("population", {"ethnicity": {"majority": 1.5}}, "declared population 'p.yaml'")
Traceback (most recent call last):
...
lea_ai_audit.errors.InputError: declared population 'p.yaml': ethnicity.majority must be a \
share between 0 and 1, got a number 1.5 — write {attribute: {group: share}}, shares between 0 \
and 1, e.g. ethnicity: {majority: 0.8, minority_a: 0.12}
>>> validate("population", {"ethnicity": {"majority": 0.8}}, "p")  # valid: returns None
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import math
import numbers
import re
import reprlib
import types
import typing
from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

from .errors import InputError, PolicyError, close_matches

__all__ = ["KINDS", "METADATA_SCHEMA_TITLE", "PARAM_BOUNDS", "PATTERN_CHECKS",
           "POPULATION_SCHEMA", "SETTINGS_SCHEMA", "SIGNOFF_SCHEMA", "TRUST_STORE_SCHEMA",
           "check_params_schema", "describe_value", "expected", "metadata_schema",
           "pandera_schema", "policy_schema", "schema_for", "validate"]

#: the file kinds :func:`validate` knows
KINDS = ("policy", "metadata", "trust_store", "population", "pandera_schema", "review_users",
         "config")

# -- building blocks ---------------------------------------------------------------------------
_TEXT: dict[str, Any] = {"type": "string"}
_OPT_TEXT: dict[str, Any] = {"type": ["string", "null"], "x-expected": "text (or null)"}
_FLAG: dict[str, Any] = {"type": "boolean"}
_SHARE: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1,
                          "x-expected": "a share between 0 and 1"}
_UNIT = {"minimum": 0, "maximum": 1}                    # [0, 1]
_UNIT_OPEN_LOW = {"exclusiveMinimum": 0, "maximum": 1}  # (0, 1]
_CONFIDENCE = {"minimum": 0.5, "exclusiveMaximum": 1}   # [0.5, 1)
_AUC = {"exclusiveMinimum": 0.5, "maximum": 1}          # (0.5, 1]
_NON_EMPTY = {"minLength": 1}


def _ge(n: float) -> dict[str, Any]:
    return {"minimum": n}


# -- the population: {attribute: {group: share}} -----------------------------------------------
_GROUP_SHARES: dict[str, Any] = {
    "type": "object", "minProperties": 1, "additionalProperties": _SHARE,
    "x-expected": "a mapping {group: share} with at least one group"}

POPULATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "declared population",
    "description": "The population the audited data should represent, e.g. census shares: "
                   "{attribute: {group: share}}, each share between 0 and 1 (that the shares "
                   "of an attribute add up to at most 1 is checked by the audit).",
    "type": "object", "minProperties": 1, "additionalProperties": _GROUP_SHARES,
    "x-expected": "a mapping {attribute: {group: share}} with at least one attribute"}

# -- check parameters ----------------------------------------------------------------------------
_EXPLAIN_SAMPLE = {"sample_size": _ge(10), "min_per_group": _ge(1), "max_background": _ge(10)}
_GROUPS = {"min_group_size": _ge(1), "confidence": _CONFIDENCE}

#: Bounds of the parameters of the built-in checks, by check id and parameter: JSON Schema
#: fragments merged into the type each parameter's hint declares. They state what each check's
#: ``validate()`` requires (and, where it had no rule, that a tolerance cannot be negative);
#: ``validate()`` still runs after them for what a schema cannot say (names of metrics, rules).
PARAM_BOUNDS: dict[str, dict[str, dict[str, Any]]] = {
    "data.drift": {"sample_size": _ge(100), "threshold": {"exclusiveMinimum": 0},
                   "max_drifted_share": _UNIT, "alpha": _UNIT,
                   "group_psi": {"exclusiveMinimum": 0}, "group_sample": _ge(10),
                   "min_group_rows": _ge(2), "max_categories": _ge(2), "method": _NON_EMPTY},
    "data.leakage": {"max_auc": _AUC, "sample": _ge(100),
                     "features": {"items": _NON_EMPTY}},
    "data.protection": {"sample": _ge(10), "allow": {"items": _NON_EMPTY}},
    "data.quality_by_group": {
        "max_missing_difference": _UNIT, "max_duplicate_share": _UNIT,
        "max_share_difference": _UNIT, "min_class_share": {"minimum": 0, "maximum": 0.5},
        "population": {"minProperties": 1, "additionalProperties": _GROUP_SHARES,
                       "x-expected": "a mapping {attribute: {group: share}} (or null)"},
        **_GROUPS},
    "data.schema": {"max_failure_share": _UNIT, "max_categories": _ge(1),
                    "max_examples": _ge(0)},
    "explain.additivity": {"tolerance": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
                           "n_cases": {"minimum": 0, "maximum": 1000}, **_EXPLAIN_SAMPLE},
    "explain.by_group": {"max_ratio": {"exclusiveMinimum": 1},
                         "min_share": {"minimum": 0, "exclusiveMaximum": 1},
                         "min_group_size": _ge(2), "confidence": _CONFIDENCE,
                         "derived_min_accuracy": _AUC, **_EXPLAIN_SAMPLE},
    "explain.global_importance": {"top_k": _ge(1), "n_bootstrap": _ge(20),
                                  "min_agreement": _UNIT_OPEN_LOW, "min_cases": _ge(1),
                                  **_EXPLAIN_SAMPLE},
    "explain.local": {"n_cases": {"minimum": 1, "maximum": 1000}, "top": _ge(1),
                      **_EXPLAIN_SAMPLE},
    "explain.proxies": {"min_auc": _AUC, "top_k": _ge(1), "min_share": _UNIT_OPEN_LOW,
                        "n_bins": _ge(2), "max_rows": _ge(100), **_EXPLAIN_SAMPLE},
    "fairness.calibration": {"max_auc_difference": _ge(0), "max_calibration_gap": _ge(0),
                             "n_bins": _ge(2), **_GROUPS},
    "fairness.disparity": {"max_difference": _UNIT, "min_ratio": _UNIT_OPEN_LOW,
                           "control_bins": _ge(2), "control": {
                               "minItems": 1, "minLength": 1, "items": _NON_EMPTY,
                               "x-expected": "a column name or a non-empty list of column "
                                             "names (or null)"},
                           **_GROUPS},
    "fairness.group_metrics": dict(_GROUPS),
    "oversight.attestation": {"item": _NON_EMPTY, "question": _NON_EMPTY},
    "oversight.decisions": {"case_id": _NON_EMPTY, "model_id": _NON_EMPTY,
                            "min_decisions": _ge(1), "max_acceptance": _UNIT_OPEN_LOW,
                            "min_review_seconds": _ge(0), "max_override_difference": _UNIT,
                            **_GROUPS},
    "performance.metrics": {"min_accuracy": _UNIT, "min_precision": _UNIT, "min_recall": _UNIT,
                            "min_auc": _UNIT, "confidence": _CONFIDENCE},
    "robustness.perturbation": {"sample_size": _ge(10), "noise": _UNIT_OPEN_LOW,
                                "change_share": _UNIT, "max_flip_rate": _UNIT,
                                "max_levels": _ge(0), "min_per_group": _ge(0), **_GROUPS},
}

_SCALARS: dict[Any, dict[str, Any]] = {bool: {"type": "boolean"}, int: {"type": "integer"},
                                      float: {"type": "number"}, str: {"type": "string"},
                                      type(None): {"type": "null"}}
_ARRAYS = (list, tuple, set, frozenset, Sequence, MutableSequence)
_OBJECTS = (dict, Mapping, MutableMapping)


def _types(node: Mapping[str, Any]) -> list[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _hint_schema(hint: Any) -> dict[str, Any] | None:
    """The JSON Schema of a type hint; None where it says nothing (``Any``, a class)."""
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_hint_schema(a) for a in args]
        if any(p is None for p in parts):
            return None
        merged: dict[str, Any] = {"type": []}
        for p in parts:
            for key, value in p.items():
                if key == "type":
                    merged["type"] += [t for t in _types(p) if t not in merged["type"]]
                elif key in merged and merged[key] != value:
                    return {"anyOf": parts}
                else:
                    merged[key] = value
        return merged
    if origin is typing.Literal:
        return {"enum": list(args)}
    if hint in _ARRAYS or origin in _ARRAYS:
        node: dict[str, Any] = {"type": "array"}
        if args and not (origin is tuple and (len(args) != 2 or args[1] is not Ellipsis)):
            item = _hint_schema(args[0])
            if item is not None:
                node["items"] = item
        return node
    if hint in _OBJECTS or origin in _OBJECTS:
        node = {"type": "object"}
        if len(args) == 2:
            value = _hint_schema(args[1])
            if value is not None:
                node["additionalProperties"] = value
        return node
    return None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if key in ("items", "additionalProperties") and isinstance(out.get(key), dict) \
                and isinstance(value, Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_params_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of the ``params:`` of a check class: one property per ``__init__``
    parameter, typed from its hint, bounded by :data:`PARAM_BOUNDS`; unknown names refused
    (unless ``__init__`` takes ``**kwargs``).

    Examples
    --------
    >>> from lea_ai_audit.checks import get_check
    >>> check_params_schema(get_check("fairness.group_metrics"))["properties"]["min_group_size"]
    {'type': 'integer', 'default': 30, 'minimum': 1}
    """
    sig = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # a user's check with hints that cannot be resolved: no types
        hints = {}
    bounds = PARAM_BOUNDS.get(str(getattr(cls, "id", "")), {})
    props: dict[str, Any] = {}
    open_ended = False
    for name, p in sig.parameters.items():
        if name == "self" or p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            open_ended = True
            continue
        node = _hint_schema(hints[name]) if name in hints else None
        node = dict(node or {})
        if p.default is not p.empty and _plain(p.default):
            node["default"] = p.default
        props[name] = _merge(node, bounds.get(name, {}))
    cid = getattr(cls, "id", cls.__name__)
    return {"title": f"parameters of {cid}",
            "description": f"The params: of a requirement that runs {cid}, from the type hints "
                           "of its __init__ and the declared bounds (PARAM_BOUNDS).",
            "type": ["object", "null"], "properties": props,
            "additionalProperties": open_ended,
            "x-expected": f"a mapping of the parameters of {cid} (or null)"}


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


# -- the policy pack -----------------------------------------------------------------------------
SETTINGS_SCHEMA: dict[str, Any] = {
    "title": "policy settings",
    "description": "Defaults merged into the parameters of every check that accepts them.",
    "type": ["object", "null"], "additionalProperties": False,
    "x-expected": "a mapping of min_group_size, confidence, decision_rule, intersections",
    "properties": {
        "min_group_size": {"type": "integer", "minimum": 1},
        "confidence": {"type": "number", **_CONFIDENCE},
        "decision_rule": {"type": "string", "enum": ["demonstrated", "significant", "point"]},
        "intersections": {"type": "boolean"}}}

SIGNOFF_SCHEMA: dict[str, Any] = {
    "title": "sign-off rule",
    "description": "Who must approve a report before the gate opens (the four-eyes principle).",
    "type": ["object", "null"], "additionalProperties": False,
    "x-expected": "a mapping of min_approvals, required_roles, author_may_approve, "
                  "max_age_days",
    "properties": {
        "min_approvals": {"type": "integer", "minimum": 1, "x-fix": "write e.g. min_approvals: 2"},
        "required_roles": {"type": ["array", "string"], "minLength": 1,
                           "items": {"type": "string", "minLength": 1,
                                     "x-expected": "a role name (a non-empty string)"},
                           "x-expected": "a list of role names (or one name)",
                           "x-fix": "write e.g. required_roles: [data-protection-officer]"},
        "author_may_approve": {"type": "boolean", "x-fix": "write author_may_approve: false"},
        "max_age_days": {"type": ["number", "null"], "exclusiveMinimum": 0,
                         "x-expected": "a positive number of days (or null)",
                         "x-fix": "write e.g. max_age_days: 365, or leave it out"}}}

_REQUIREMENT: dict[str, Any] = {
    "title": "requirement",
    "type": "object", "required": ["id", "clauses", "check"], "additionalProperties": False,
    "x-expected": "a mapping with id:, clauses:, check: (and params:, blocking:)",
    "x-fix": "give each requirement id:, clauses:, check:, blocking:",
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "title": _OPT_TEXT,
        "clauses": {"type": ["array", "string"], "minItems": 1, "minLength": 1,
                    "items": {"type": "string", "minLength": 1,
                              "x-expected": "a clause (a non-empty string)"},
                    "x-expected": "a list of strings or a string",
                    "x-fix": 'write e.g. clauses: ["AI Act Art. 10(2)(f)"]'},
        "check": {"type": "string", "minLength": 1, "x-fix": "name a check: lea-audit policies "
                                                             "lists them"},
        "params": {"type": ["object", "null"], "x-expected": "a mapping {name: value, ...}",
                   "x-fix": "write params: {name: value, ...}"},
        "blocking": {"type": "boolean", "x-fix": "write blocking: true or blocking: false"},
        "quote": _OPT_TEXT,
        "description": _OPT_TEXT}}


def policy_schema(checks: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The JSON Schema of a policy pack, with the parameters of every registered check.

    Only the declared keys are allowed (a misspelt ``setings:`` would be ignored and its
    rule lost), and ``x-...`` keys for the pack author's notes; a requirement, ``settings:``
    and ``signoff:`` take only their own keys.
    """
    if checks is None:
        from .checks import available_checks

        checks = available_checks()
    req = copy.deepcopy(_REQUIREMENT)
    req["allOf"] = [{"if": {"properties": {"check": {"const": cid}}, "required": ["check"]},
                     "then": {"properties": {"params": check_params_schema(cls)}}}
                    for cid, cls in checks.items()]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "lea-ai-audit policy pack",
        "description": "A policy pack (checklists/*.yaml): requirements with the clauses they "
                       "serve, the check that decides each, its parameters and whether it "
                       "blocks; defaults for the checks (settings) and the sign-off rule.",
        "type": "object", "required": ["id", "version", "title", "requirements"],
        "x-expected": "a policy pack (a mapping with id:, version:, title:, requirements:)",
        "x-fix": "start the file with id:, version:, title:, requirements:",
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "version": {"type": ["string", "number"], "minLength": 1,
                        "x-expected": 'a version such as "1.0.0"'},
            "title": _TEXT,
            "source": _OPT_TEXT,
            "description": _OPT_TEXT,
            "settings": SETTINGS_SCHEMA,
            "signoff": SIGNOFF_SCHEMA,
            "requirements": {"type": "array", "minItems": 1, "items": req,
                             "x-expected": "a non-empty list of requirements",
                             "x-fix": "list the requirements under requirements:"}},
        # a misspelt key (setings:) would be ignored and its rule lost: refused; x-... keys
        # are the pack author's own notes
        "patternProperties": {"^x-": {}}, "additionalProperties": False}


# -- the card metadata -----------------------------------------------------------------------
METADATA_SCHEMA_TITLE = "lea-ai-audit model-card metadata"


def metadata_schema() -> dict[str, Any]:
    """The JSON Schema of the card metadata (``--metadata``): the keys of
    :data:`lea_ai_audit.cards.builder.METADATA_KEYS`, each text or a list of text."""
    from .cards.builder import METADATA_KEYS

    value = {"type": ["string", "number", "null", "array"],
             "items": {"type": ["string", "number", "null"], "x-expected": "text"},
             "x-expected": "text or a list of text"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": METADATA_SCHEMA_TITLE,
            "description": "What the audit cannot know about the model (owner, intended use, "
                           "...); every key optional, unknown keys refused so that a typo does "
                           "not silently drop a section of the card.",
            "type": "object", "additionalProperties": False,
            "x-expected": "a mapping of keys to text",
            "properties": {k: {**value, "description": d} for k, d in METADATA_KEYS.items()}}


# -- the trust store -------------------------------------------------------------------------------
TRUST_STORE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lea-ai-audit trust store",
    "description": "The reviewers whose sign-offs count (written by lea-audit keygen "
                   "--trust-store) and the policy packs allowed besides the shipped ones. "
                   "Entries may carry further keys (added_at, ...); the store itself only "
                   "reviewers: and policies:, so that a misspelt key does not silently empty it.",
    "type": ["object", "null"], "additionalProperties": False,
    "x-expected": "a trust store (a mapping with a list under reviewers:)",
    "x-fix": "it must be a mapping with a list under reviewers: (as written by `lea-audit "
             "keygen --trust-store`)",
    "properties": {
        "reviewers": {
            "type": ["array", "null"], "x-expected": "a list of reviewer entries",
            "items": {"type": "object",
                      "x-expected": "a reviewer entry (a mapping with id:, role:, public_key:)",
                      "x-fix": "write each reviewer as id:, role:, public_key: (copy the entry "
                               "from their .pub file)",
                      "properties": {"id": {"type": "string", "minLength": 1},
                                     "role": {"type": "string", "minLength": 1},
                                     "algorithm": _TEXT, "public_key": _TEXT,
                                     "fingerprint": _TEXT}}},
        "policies": {
            "type": ["array", "null"], "x-expected": "a list of {path:, sha256:} entries",
            "x-fix": "write e.g. policies: [{path: packs/ours.yaml, sha256: <lea-audit "
                     "policies --digest>}]",
            "items": {"type": "object", "required": ["sha256"],
                      "x-expected": "a mapping {path:, sha256:}",
                      "properties": {
                          "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                                     "x-expected": "a SHA-256 digest (64 hex digits)",
                                     "x-fix": "copy it from `lea-audit policies --digest`"},
                          "path": _TEXT}}}}}


REVIEW_USERS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lea-ai-audit review users",
    "description": "The officers who may log in to lea-audit review (written by lea-audit "
                   "review add-user): id, role, scrypt password hash, encrypted key file.",
    "type": ["object", "null"], "additionalProperties": False,
    "x-expected": "a users file (a mapping with a list under users:)",
    "x-fix": "add users with `lea-audit review add-user` (it writes the file)",
    "properties": {
        "users": {
            "type": ["array", "null"], "x-expected": "a list of user entries",
            "items": {"type": "object", "required": ["id", "role", "password", "key",
                                                     "fingerprint"],
                      "x-expected": "a user entry (id:, role:, password:, key:, fingerprint:)",
                      "properties": {"id": {"type": "string", "minLength": 1},
                                     "role": {"type": "string", "minLength": 1},
                                     "password": {"type": "string", "pattern": "^scrypt\\$",
                                                  "x-expected": "an scrypt hash"},
                                     "key": {"type": "string", "minLength": 1},
                                     "fingerprint": {"type": "string", "minLength": 1},
                                     "added_at": _TEXT}}}}}


# -- a pandera YAML schema -------------------------------------------------------------------
#: pandera checks whose argument is a regular expression, and how it applies to a value
#: (``re.match`` or ``re.search`` semantics); lea_ai_audit.schema evaluates them itself, with
#: the ``regex`` module and a time limit
PATTERN_CHECKS = {"str_matches": "match", "str_contains": "search"}
_COMPONENT_KEYS_FALLBACK = frozenset({
    "title", "description", "dtype", "nullable", "checks", "name", "unique", "coerce",
    "required", "regex", "default", "report_duplicates", "drop_invalid_rows", "dims", "alias",
    "ordered_dims", "sizes", "shape", "coords", "schema_type", "version"})


_COMMON_CHECKS = ("in_range", "isin", "notin", "equal_to", "not_equal_to", "greater_than",
                  "greater_than_or_equal_to", "less_than", "less_than_or_equal_to",
                  "str_matches", "str_contains", "str_startswith", "str_endswith", "str_length",
                  "unique_values_eq")


def _pandera_names() -> tuple[frozenset[str], tuple[str, ...]]:
    """(pandera's reserved column keys, the names of its registered checks)."""
    from pandera.api.checks import Check

    try:
        from pandera.io._flat_checks import COMPONENT_RESERVED_KEYS as reserved
    except ImportError:  # pragma: no cover - an older pandera: the keys it knew
        reserved = _COMPONENT_KEYS_FALLBACK
    names = set(getattr(Check, "CHECK_FUNCTION_REGISTRY", {}) or {})
    names |= set(getattr(Check, "REGISTERED_CUSTOM_CHECKS", {}) or {})
    names |= {a for a in ("eq", "ne", "gt", "ge", "lt", "le", "between", "isin", "notin")
              if hasattr(Check, a)}
    names |= set(PATTERN_CHECKS)
    return frozenset(reserved), tuple(sorted(names))


def pandera_schema() -> dict[str, Any]:
    """The JSON Schema of the top-level shape of a pandera YAML ``DataFrameSchema`` (pandera's
    own format, ``DataFrameSchema.to_yaml()``): what each key must be, the keys a column may
    have (pandera's own and the names of its checks), and that the pattern of a
    ``str_matches`` / ``str_contains`` check is a valid regular expression."""
    reserved, check_names = _pandera_names()
    fix = "fix the pattern (Python regular-expression syntax)"
    pattern = {"type": "string", "format": "regex", "x-expected": "a regular expression",
               "x-fix": fix}
    pattern_value = {"type": ["string", "object"], "format": "regex", "x-fix": fix,
                     "x-expected": "a regular expression (or {pattern: ...})",
                     "properties": {"pattern": pattern, "value": pattern}}
    check_entry = {
        "type": "object", "required": ["options"],
        "x-expected": "a check ({<argument>: ..., options: {check_name: ...}})",
        "properties": {"options": {
            "type": "object", "required": ["check_name"],
            "properties": {"check_name": {"type": "string", "enum": list(check_names),
                                          "x-expected": "the name of a pandera check "
                                                        "(in_range, isin, str_matches, ...)"}}}},
        "allOf": [{"if": {"properties": {"options": {"properties": {"check_name": {
                       "enum": list(PATTERN_CHECKS)}}, "required": ["check_name"]}},
                   "required": ["options"]},
                   "then": {"properties": {"pattern": pattern, "value": pattern}}}]}
    checks = {"type": ["array", "object", "null"], "items": check_entry,
              "properties": {n: (pattern_value if n in PATTERN_CHECKS else {})
                             for n in check_names},
              "additionalProperties": False,
              "x-expected": "a list of checks or a mapping {check name: argument}"}
    known: dict[str, Any] = {
        "title": _OPT_TEXT, "description": _OPT_TEXT,
        "dtype": {"type": ["string", "null"], "x-expected": "a dtype name such as int64 (or "
                                                            "null)"},
        "nullable": _FLAG, "unique": _FLAG, "coerce": _FLAG, "required": _FLAG, "regex": _FLAG,
        "drop_invalid_rows": _FLAG, "checks": checks,
        "report_duplicates": {"enum": ["exclude_first", "exclude_last", "all"]}}
    props = {k: known.get(k, {}) for k in sorted(reserved | set(known))}
    props.update({n: (pattern_value if n in PATTERN_CHECKS else {}) for n in check_names
                  if n not in props})
    column = {"type": "object", "properties": props, "additionalProperties": False,
              "x-expected": "a mapping (dtype:, nullable:, checks such as in_range:, ...)",
              "x-unknown-fix": "a column takes pandera's keys (dtype, nullable, unique, coerce, "
                               "required, regex, checks, title, description, ...) and the "
                               "names of pandera checks (" + ", ".join(
                                   n for n in _COMMON_CHECKS if n in check_names) + ", ...)"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pandera DataFrameSchema (YAML)",
        "description": "The top-level shape of pandera's YAML format: columns (a mapping of "
                       "column name to column, or a list of columns with name:), index, "
                       "dataframe-level checks and options. Other top-level keys are left to "
                       "pandera, which ignores them.",
        "type": "object", "required": ["columns"],
        "x-expected": "a pandera DataFrameSchema (a mapping with columns:)",
        "x-fix": "write it with pandera's DataFrameSchema.to_yaml()",
        "properties": {
            "schema_type": _TEXT, "api": _TEXT, "version": {"type": ["string", "number"]},
            "dataframe_library": _TEXT,
            "columns": {"type": ["object", "array"], "additionalProperties": column,
                        "items": column,
                        "x-expected": "a mapping of column names to columns (or a list of "
                                      "columns with name:)"},
            "index": {"type": ["array", "null"], "items": column,
                      "x-expected": "a list of index levels (or null)"},
            "checks": checks,
            "dtype": {"type": ["string", "null"]},
            "coerce": _FLAG, "ordered": _FLAG, "unique_column_names": _FLAG,
            "add_missing_columns": _FLAG, "drop_invalid_rows": _FLAG,
            "strict": {"enum": [True, False, "filter"], "x-expected": "true, false or filter"},
            "name": {"type": ["string", "null"]},
            "unique": {"type": ["string", "array", "null"], "items": _TEXT,
                       "x-expected": "a column name or a list of column names (or null)"},
            "report_duplicates": {"enum": ["exclude_first", "exclude_last", "all"]},
            "title": _OPT_TEXT, "description": _OPT_TEXT,
            "metadata": {"type": ["object", "null"]},
            "multiindex": {"type": ["object", "null"]}}}


# -- the validator -----------------------------------------------------------------------------
def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of a file kind (see :data:`KINDS`)."""
    if kind == "policy":
        return policy_schema()
    if kind == "metadata":
        return metadata_schema()
    if kind == "trust_store":
        return copy.deepcopy(TRUST_STORE_SCHEMA)
    if kind == "population":
        return copy.deepcopy(POPULATION_SCHEMA)
    if kind == "pandera_schema":
        return pandera_schema()
    if kind == "review_users":
        return copy.deepcopy(REVIEW_USERS_SCHEMA)
    if kind == "config":
        from .config import config_schema

        return config_schema()
    raise ValueError(f"unknown file kind {kind!r}; known: {', '.join(KINDS)}")


class _BadPattern(Exception):
    pass


def _is_integer(_checker: Any, x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(_checker: Any, x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return False
    return isinstance(x, numbers.Integral) or math.isfinite(x)


_VALIDATORS: dict[Any, Any] = {}


def _validator(kind: str) -> Any:
    import jsonschema

    if kind == "policy":
        from .checks import available_checks

        registry = available_checks()
        key: Any = (kind, tuple((cid, id(cls)) for cid, cls in registry.items()))
    elif kind == "pandera_schema":
        key = (kind, _pandera_names())
    else:
        key = kind
    hit = _VALIDATORS.get(key)
    if hit is not None:
        return hit
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({
        "integer": _is_integer, "number": _is_number,
        "object": lambda _c, x: isinstance(x, Mapping),
        "array": lambda _c, x: isinstance(x, (list, tuple)),
        "string": lambda _c, x: isinstance(x, str)})
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    formats = jsonschema.FormatChecker(formats=())

    @formats.checks("regex", raises=_BadPattern)
    def _regex(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        import regex

        try:
            regex.compile(value)
        except Exception as exc:  # regex.error, and RecursionError for absurd nesting
            raise _BadPattern(str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                              ) from None
        return True

    validator = cls(schema_for(kind), format_checker=formats)
    if len(_VALIDATORS) > 32:
        _VALIDATORS.clear()
    _VALIDATORS[key] = validator
    return validator


_KIND_FIX = {
    "policy": "correct it in the policy pack (the packs in checklists/ show every key)",
    "metadata": "see model_cards/example-metadata.yaml",
    "trust_store": "copy the entries unchanged from the reviewers' .pub files (`lea-audit "
                   "keygen --trust-store` writes them)",
    "population": "write {attribute: {group: share}}, shares between 0 and 1, e.g. ethnicity: "
                  "{majority: 0.8, minority_a: 0.12}",
    "review_users": "add users with `lea-audit review add-user` (it writes the file)",
    "config": "each key is a long option of the command without its dashes (see `lea-audit "
              "run --help`, `lea-audit gate --help`)",
    "pandera_schema": "write it with pandera's DataFrameSchema.to_yaml() (pandera's YAML "
                      "format)",
}
_RANK = {"type": 0, "required": 1, "additionalProperties": 2}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel = 48, 48, 3
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 4
_MAX_SHOWN = 64


def _short(x: Any) -> str:
    try:
        s = _REPR.repr(x)
    except Exception:  # an int too long to print, an object whose repr fails
        s = f"<{type(x).__name__}>"
    s = s.encode("ascii", "backslashreplace").decode("ascii") if not s.isprintable() else s
    return s if len(s) <= _MAX_SHOWN else s[:_MAX_SHOWN - 1] + "…"


def describe_value(x: Any) -> str:
    """A value as a message shows it: its kind and a short, printable rendering.

    Examples
    --------
    >>> describe_value({"a": 1}), describe_value(True), describe_value(2.5)
    ("a mapping {'a': 1}", 'a boolean true', 'a number 2.5')
    """
    if x is None:
        return "null"
    if isinstance(x, bool):
        return f"a boolean {'true' if x else 'false'}"
    if isinstance(x, numbers.Integral):
        return f"an integer {_short(x)}"
    if isinstance(x, numbers.Real):
        finite = isinstance(x, numbers.Rational) or math.isfinite(x)
        return f"a number {_short(x)}" + ("" if finite else " (not a finite number)")
    if isinstance(x, str):
        return f"a string {_short(x)}" if x else "an empty string ''"
    if isinstance(x, Mapping):
        return f"a mapping {_short(x)}" if x else "an empty mapping {}"
    if isinstance(x, (list, tuple)):
        return f"a list {_short(x)}" if x else "an empty list []"
    if isinstance(x, (_dt.date, _dt.datetime)):
        return f"a date {x.isoformat()}"
    return f"a {type(x).__name__} {_short(x)}"


def _path(parts: Sequence[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        elif isinstance(p, str) and _IDENT.match(p):
            out += f".{p}" if out else p
        else:
            out += f"[{_short(p)}]"
    return out


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


_PLURAL = {"string": "strings", "integer": "whole numbers", "number": "numbers",
           "boolean": "booleans", "object": "mappings", "array": "lists"}


def expected(node: Mapping[str, Any]) -> str:
    """What a value under ``node`` must be, in words (``x-expected``, else from the schema)."""
    if "x-expected" in node:
        return str(node["x-expected"])
    if "enum" in node:
        return "one of " + ", ".join(_short(v) for v in node["enum"])
    if "const" in node:
        return _short(node["const"])
    words = []
    for t in _types(node):
        if t == "null":
            continue
        if t in ("integer", "number"):
            base = "a whole number" if t == "integer" else "a number"
            lo_in, lo_ex = node.get("minimum"), node.get("exclusiveMinimum")
            hi_in, hi_ex = node.get("maximum"), node.get("exclusiveMaximum")
            lo, hi = (lo_in if lo_ex is None else lo_ex), (hi_in if hi_ex is None else hi_ex)
            if lo is not None and hi is not None:
                base += (f" in {'(' if lo_ex is not None else '['}{_num(lo)}, {_num(hi)}"
                         f"{')' if hi_ex is not None else ']'}")
            elif lo_ex == 0:
                base = "a positive " + base.split(" ", 1)[1]
            elif lo is not None:
                base += f" {'>' if lo_ex is not None else '>='} {_num(lo)}"
            elif hi is not None:
                base += f" {'<' if hi_ex is not None else '<='} {_num(hi)}"
            words.append(base)
        elif t == "string":
            words.append("a non-empty string" if node.get("minLength") else "a string")
        elif t == "boolean":
            words.append("true or false")
        elif t == "array":
            base = "a non-empty list" if node.get("minItems") else "a list"
            items = node.get("items")
            if isinstance(items, Mapping) and len(_types(items)) == 1 and "x-expected" not in items:
                base += f" of {_PLURAL.get(_types(items)[0], 'values')}"
            words.append(base)
        elif t == "object":
            words.append("a mapping")
    if not words:
        return "null" if "null" in _types(node) else "a valid value"
    text = " or ".join(words)
    return text + " (or null)" if "null" in _types(node) else text


def _order(err: Any, data: Any) -> tuple[Any, ...]:
    """Document order of an error: the position of each step of its path, then its kind."""
    pos: list[int] = []
    cur = data
    for step in err.absolute_path:
        if isinstance(cur, Mapping):
            keys = list(cur.keys())
            pos.append(keys.index(step) if step in keys else len(keys))
            cur = cur.get(step)
        elif isinstance(cur, (list, tuple)) and isinstance(step, int):
            pos.append(step)
            cur = cur[step] if 0 <= step < len(cur) else None
        else:
            pos.append(0)
            cur = None
    return (tuple(pos), _RANK.get(err.validator, 9), [str(s) for s in err.absolute_schema_path])


def _message(err: Any, kind: str, where: str) -> tuple[str, str]:
    node: Mapping[str, Any] = err.schema if isinstance(err.schema, Mapping) else {}
    parts = list(err.absolute_path)
    path = _path(parts)
    value = err.instance
    fix = str(node.get("x-fix") or _KIND_FIX.get(kind, "correct the file"))
    if err.validator == "required" and isinstance(value, Mapping):
        missing = [k for k in node.get("required", []) if k not in value]
        shown = ", ".join(repr(k) for k in missing)
        if not path:
            return (f"{where}: missing {shown}",
                    f"add a top-level {missing[0]}: entry" if missing else fix)
        return f"{where}: {path} has no {shown}", f"add {missing[0]}: to it" if missing else fix
    if err.validator == "additionalProperties" and isinstance(value, Mapping):
        allowed = [str(k) for k in node.get("properties", {})]
        extra = sorted(str(k) for k in value if k not in node.get("properties", {}))
        shown = _short(extra[:6]) + (f" and {len(extra) - 6} more" if len(extra) > 6 else "")
        what = (f"{where}: {path} has unknown key(s) {shown}" if path
                else f"{where} has unknown key(s) {shown}")
        hint = close_matches(extra[0], allowed) if extra else []
        label = path or "the file"
        listed = ", ".join(allowed) if len(allowed) <= 20 else ", ".join(allowed[:20]) + ", ..."
        return what, ((f"did you mean {hint[0]!r}? " if hint else "")
                      + str(node.get("x-unknown-fix")
                            or f"remove or rename it: {label} may only set {listed}"))
    if not path:  # the file as a whole: not a mapping, an empty one
        return f"{where} is not {expected(node)}: got {describe_value(value)}", fix
    what = f"{where}: {path} must be {expected(node)}, got {describe_value(value)}"
    if err.validator == "format" and err.cause is not None:
        what += f" ({_short(str(err.cause))[1:-1]})"
    if err.validator == "type" and "string" in _types(node) and isinstance(
            value, (bool, numbers.Number, _dt.date)):
        fix = ("put it in quotes (YAML reads an unquoted yes, no, true, false, number or date "
               "as a boolean, a number or a date)")
    elif "default" in node:
        fix = f"give {expected(node)}, or leave it out" + (
            "" if node["default"] is None else f" for the default {_short(node['default'])}")
    return what, fix


def validate(kind: str, data: Any, where: str) -> None:
    """Check ``data`` (a file's parsed content) against the declared schema of ``kind``.

    Parameters
    ----------
    kind : {"policy", "metadata", "trust_store", "population", "pandera_schema"}
        The file kind.
    data : object
        What ``yaml.safe_load`` (or the caller) gave.
    where : str
        How the message names the file, e.g. ``"policy 'mine'"``.

    Raises
    ------
    PolicyError
        For a policy: the first problem in document order, as one line naming the field as a
        path (``requirements[2].clauses``), what it must be and the value received.
    InputError
        The same, for the other kinds.
    """
    errors = list(_validator(kind).iter_errors(data))
    if not errors:
        return
    first = min(errors, key=lambda e: _order(e, data))
    what, fix = _message(first, kind, where)
    raise (PolicyError if kind == "policy" else InputError)(what, fix)
