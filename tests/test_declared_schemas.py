"""Every file lea-audit reads is checked against a declared schema (issue #23 point 5), and
the patterns a data schema brings run under a time limit (#23 point 1).

The kinds: a policy pack, the model-card metadata, a trust store, a declared population, a
pandera YAML schema, the users of the review page, the configuration file. A bad value — of the
wrong type, negative, out of range, empty, under an unknown key — is refused with the loader's
typed error and one line that names the field as a path and the value received; through the CLI,
exit code 2 and one ``error:`` line. Hypothesis then feeds each real loader random structures,
mutations of a valid file, and text and bytes that are not YAML: it loads, or raises a
:class:`~lea_ai_audit.errors.LeaAuditError` — never another exception.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lea_ai_audit._schemas import (
    KINDS,
    PARAM_BOUNDS,
    SETTINGS_SCHEMA,
    check_params_schema,
    describe_value,
    schema_for,
    validate,
)
from lea_ai_audit.cards.builder import load_metadata
from lea_ai_audit.checks import available_checks
from lea_ai_audit.commands.data import audit_kwargs
from lea_ai_audit.errors import InputError, LeaAuditError, PolicyError
from lea_ai_audit.policy import list_policies, load_policy
from lea_ai_audit.schema import (
    PATTERN_TIMEOUT_ENV,
    infer_schema,
    load_schema,
    schema_from_yaml,
    schema_to_yaml,
    validate_schema,
)
from lea_ai_audit.signoff import load_trust_store

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# -- valid files of each kind ------------------------------------------------------------------
POLICY: dict[str, Any] = {
    "id": "mine", "version": "1.0", "title": "my pack", "source": "us", "description": "d",
    "settings": {"min_group_size": 20, "confidence": 0.9, "decision_rule": "significant",
                 "intersections": False},
    "signoff": {"min_approvals": 2, "required_roles": ["dpo"], "author_may_approve": False,
                "max_age_days": 365},
    "requirements": [
        {"id": "fpr", "title": "FPR", "clauses": ["AI Act Art. 10(2)(f)"],
         "check": "fairness.disparity", "params": {"metric": "fpr", "max_difference": 0.1},
         "blocking": True, "quote": "q", "description": "d"},
        {"id": "pop", "clauses": "AI Act Art. 10(3)", "check": "data.quality_by_group",
         "params": {"population": {"ethnicity": {"majority": 0.8, "minority": 0.2}}},
         "blocking": False}]}
METADATA: dict[str, Any] = {"name": "triage", "version": "2.3", "owner": "Unit 7",
                            "users": ["triage officers", "analysts"], "caveats": None}
KEY = base64.b64encode(bytes(range(32))).decode("ascii")
TRUST: dict[str, Any] = {
    "reviewers": [{"id": "bob", "role": "dpo", "algorithm": "Ed25519", "public_key": KEY,
                   "added_at": "2024-01-01T00:00:00Z"}],
    "policies": [{"path": "packs/ours.yaml", "sha256": "0" * 64}]}
POPULATION: dict[str, Any] = {"ethnicity": {"majority": 0.8, "minority_a": 0.12},
                              "sex": {"f": 0.5, "m": 0.5}}


def _frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({
        "age": [18 + i % 50 for i in range(n)],
        "amount": [None if i % 7 == 0 else 1.5 * i for i in range(n)],
        "district": [f"D{i % 4:02d}" for i in range(n)],
        "flag": [i % 3 == 0 for i in range(n)],
        "when": pd.date_range("2020-01-01", periods=n, freq="D"),
        "kind": pd.Categorical(["a", "b", "c"] * (n // 3)),
        "case_ref": [f"C-{i:05d}" for i in range(n)]})


SCHEMA: dict[str, Any] = yaml.safe_load(schema_to_yaml(infer_schema(_frame())))
SCHEMA["columns"]["case_ref"]["str_matches"] = "^C-[0-9]+$"
SCHEMA["columns"]["district"]["str_contains"] = {"pattern": "D0", "ignore_na": True}


# -- the real loaders, each from a file --------------------------------------------------------
def _population(path: Path) -> Any:
    return audit_kwargs(argparse.Namespace(schema=None, population=str(path)))


def _review_users(path: Path) -> Any:
    from lea_ai_audit.review.users import load_users

    return load_users(path)


def _config(path: Path) -> Any:
    from lea_ai_audit.cli import build_parser
    from lea_ai_audit.config import apply_config

    parser = build_parser()
    argv = ["run", "--config", str(path)]
    args = parser.parse_args(argv)
    apply_config(parser, argv, args)
    return args


CONFIG = {"run": {"data": "cases.csv", "target": "reoffended", "score-col": "risk",
                  "sensitive": ["ethnicity", "sex"], "reference-group": {"ethnicity": "majority"},
                  "threshold": 0.4, "seed": 3, "no-track": True},
          "gate": {"report": "audits/m", "require-signoff": True, "trust-store": "trust.yaml"}}
USERS = {"users": [{"id": "bob", "role": "model-risk-officer",
                    "password": "scrypt$17$8$1$c2FsdA==$aGFzaA==", "key": "keys/bob.key",
                    "fingerprint": "sha256:" + "0" * 64,
                    "added_at": "2026-12-04T10:00:00+00:00"}]}
LOADERS: dict[str, Callable[[Path], Any]] = {
    "policy": load_policy, "metadata": load_metadata, "trust_store": load_trust_store,
    "population": _population, "pandera_schema": schema_from_yaml,
    "review_users": _review_users, "config": _config}
VALID: dict[str, dict[str, Any]] = {"policy": POLICY, "metadata": METADATA, "trust_store": TRUST,
                                    "population": POPULATION, "pandera_schema": SCHEMA,
                                    "review_users": USERS, "config": CONFIG}
ERROR = {"policy": PolicyError}


def _write(tmp: Path, data: Any, name: str = "file.yaml") -> Path:
    p = tmp / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    elif isinstance(data, str):
        p.write_text(data, encoding="utf-8")
    else:
        p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                     encoding="utf-8")
    return p


def _edit(base: dict[str, Any], path: str, value: Any = ..., *, drop: bool = False
          ) -> dict[str, Any]:
    """``base`` with the value at ``path`` (``a.b[0].c``) set to ``value`` (or removed)."""
    doc = copy.deepcopy(base)
    steps: list[Any] = []
    for part in path.replace("]", "").replace("[", ".").split("."):
        steps.append(int(part) if part.isdigit() else part)
    cur = doc
    for step in steps[:-1]:
        cur = cur[step]
    if drop:
        del cur[steps[-1]]
    else:
        cur[steps[-1]] = value
    return doc


@pytest.mark.parametrize("kind", KINDS)
def test_each_declared_schema_is_valid_and_accepts_the_valid_file(kind: str,
                                                                  tmp_path: Path) -> None:
    import jsonschema

    schema = schema_for(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema.get("title") and schema.get("description")
    validate(kind, VALID[kind], "x")
    LOADERS[kind](_write(tmp_path, VALID[kind]))


def test_every_shipped_pack_is_valid_against_the_schema() -> None:
    for pol in list_policies():
        assert pol.path is not None
        validate("policy", yaml.safe_load(Path(pol.path).read_text(encoding="utf-8")), pol.id)


def test_the_settings_schema_names_what_the_checks_accept() -> None:
    accepted = {p for cls in available_checks().values() for p in check_params_schema(cls)[
        "properties"]}
    assert set(SETTINGS_SCHEMA["properties"]) <= accepted
    assert set(PARAM_BOUNDS) <= set(available_checks()), "bounds for a check that is not there"
    for cid, bounds in PARAM_BOUNDS.items():
        props = check_params_schema(available_checks()[cid])["properties"]
        assert set(bounds) <= set(props), f"{cid}: bounds for unknown parameters"


@pytest.mark.parametrize("cid", sorted(available_checks()))
def test_each_checks_defaults_fit_its_parameter_schema(cid: str) -> None:
    import jsonschema

    schema = check_params_schema(available_checks()[cid])
    for name, prop in schema["properties"].items():
        if "default" in prop and prop["default"] not in (None, ""):
            assert jsonschema.Draft202012Validator(prop).is_valid(prop["default"]), (cid, name)


@pytest.mark.parametrize(("hint", "ok", "bad"), [
    ("min_group_size", 30, [2.5, True, "30", None, 0]),
    ("confidence", 0.95, [1, 0.4, "high", float("nan")]),
    ("intersections", True, [1, "yes", None]),
    ("control", ["priors"], [[1], [], {"a": 1}, 3]),
])
def test_param_types_come_from_the_checks_type_hints(hint: str, ok: Any, bad: list[Any]
                                                     ) -> None:
    base = copy.deepcopy(POLICY)
    base["requirements"] = [base["requirements"][0]]
    validate("policy", _edit(base, f"requirements[0].params.{hint}", ok), "p")
    for value in bad:
        with pytest.raises(PolicyError, match=rf"requirements\[0\]\.params\.{hint}"):
            validate("policy", _edit(base, f"requirements[0].params.{hint}", value), "p")


# -- one row per bad value -------------------------------------------------------------------
def _row(kind: str, data: Any, *fragments: str, id: str) -> Any:
    return pytest.param(kind, data, fragments, id=f"{kind}-{id}")


ROWS = [
    # policy packs
    _row("policy", _edit(POLICY, "requirements[0].clauses", {"a": 1}),
         "requirements[0].clauses must be a list of strings or a string", "{'a': 1}",
         id="clauses-mapping"),
    _row("policy", _edit(POLICY, "id", [1]), "id must be", "[1]", id="id-list"),
    _row("policy", _edit(POLICY, "version", {"a": 1}), "version must be", "{'a': 1}",
         id="version-mapping"),
    _row("policy", _edit(POLICY, "requirements[1].id", {"x": 1}), "requirements[1].id",
         "{'x': 1}", id="requirement-id-mapping"),
    _row("policy", _edit(POLICY, "requirements[0].title", [1, 2]), "requirements[0].title",
         "[1, 2]", id="title-list"),
    _row("policy", _edit(POLICY, "settings.min_group_size", 2.5), "settings.min_group_size",
         "whole number", "2.5", id="settings-min-group-size-float"),
    _row("policy", _edit(POLICY, "settings.intersections", "yes"), "settings.intersections",
         "'yes'", id="settings-bool-as-text"),
    _row("policy", _edit(POLICY, "requirements[0].params.max_difference", -0.1),
         "requirements[0].params.max_difference", "[0, 1]", "-0.1", id="negative-tolerance"),
    _row("policy", _edit(POLICY, "signoff.max_age_days", -1), "signoff.max_age_days", "-1",
         id="negative-age"),
    _row("policy", _edit(POLICY, "requirements[0].params.min_group_size", -3),
         "requirements[0].params.min_group_size", ">= 1", "-3", id="negative-group-size"),
    _row("policy", _edit(POLICY, "settings.confidence", 1.5), "settings.confidence",
         "[0.5, 1)", "1.5", id="confidence-out-of-range"),
    _row("policy", _edit(POLICY, "requirements[0].params.min_ratio", 0),
         "requirements[0].params.min_ratio", "(0, 1]", "0", id="ratio-out-of-range"),
    _row("policy", _edit(POLICY, "requirements[1].params.population.ethnicity.majority", 2),
         "requirements[1].params.population.ethnicity.majority", "share", "2",
         id="population-param-out-of-range"),
    _row("policy", _edit(POLICY, "requirements[0].params.min_group_size", True),
         "requirements[0].params.min_group_size", "boolean true", id="bool-is-not-an-int"),
    _row("policy", _edit(POLICY, "requirements", []), "requirements must be a non-empty list",
         "[]", id="no-requirements"),
    _row("policy", _edit(POLICY, "requirements[0].clauses", []), "requirements[0].clauses",
         "[]", id="empty-clauses"),
    _row("policy", _edit(POLICY, "requirements[0].id", ""), "requirements[0].id", "''",
         id="empty-id"),
    _row("policy", _edit(POLICY, "signoff.required_roles", [""]),
         "signoff.required_roles[0]", "''", id="empty-role"),
    _row("policy", _edit(POLICY, "requirements[0].colour", "red"),
         "requirements[0] has unknown key(s) ['colour']", id="unknown-requirement-key"),
    _row("policy", _edit(POLICY, "settings.min_groupsize", 5),
         "settings has unknown key(s) ['min_groupsize']", "did you mean 'min_group_size'",
         id="unknown-setting"),
    _row("policy", _edit(POLICY, "requirements[0].params.colour", "red"),
         "requirements[0].params has unknown key(s) ['colour']", id="unknown-param"),
    _row("policy", _edit(POLICY, "signoff.quorum", 2), "signoff has unknown key(s) ['quorum']",
         id="unknown-signoff-key"),
    _row("policy", _edit(POLICY, "requirements[0].check", drop=True),
         "requirements[0] has no 'check'", id="missing-check"),
    _row("policy", ["a", "list"], "is not a policy pack", "['a', 'list']", id="not-a-mapping"),
    _row("policy", _edit(POLICY, "setings", {"min_group_size": 5}), "unknown key(s) ['setings']",
         "did you mean 'settings'", id="misspelt-settings"),
    # card metadata
    _row("metadata", _edit(METADATA, "owner", {"a": 1}), "owner must be text or a list of text",
         "{'a': 1}", id="owner-mapping"),
    _row("metadata", _edit(METADATA, "owner", True), "owner", "boolean true", "quotes",
         id="unquoted-yes"),
    _row("metadata", _edit(METADATA, "users", [["nested"]]), "users[0]", "['nested']",
         id="nested-list"),
    _row("metadata", _edit(METADATA, "version", float("inf")), "version", "inf",
         id="not-finite"),
    _row("metadata", _edit(METADATA, "ownr", "x"), "unknown key(s) ['ownr']", "'owner'",
         id="unknown-key"),
    _row("metadata", "- a\n- list\n", "is not a mapping", "['a', 'list']", id="not-a-mapping"),
    _row("metadata", "owner: 2024-01-01\n", "owner", "a date 2024-01-01", id="unquoted-date"),
    # trust stores
    _row("trust_store", _edit(TRUST, "reviewers", {"bob": 1}), "reviewers must be a list",
         "{'bob': 1}", id="reviewers-mapping"),
    _row("trust_store", _edit(TRUST, "reviewers[0].id", [1]), "reviewers[0].id", "[1]",
         id="id-list"),
    _row("trust_store", _edit(TRUST, "reviewers[0].role", ""), "reviewers[0].role", "''",
         id="empty-role"),
    _row("trust_store", _edit(TRUST, "reviewers[0].public_key", 12345),
         "reviewers[0].public_key", "12345", id="key-number"),
    _row("trust_store", _edit(TRUST, "reviewers[0]", "bob"), "reviewers[0]", "'bob'",
         id="entry-not-a-mapping"),
    _row("trust_store", _edit(TRUST, "policies[0].sha256", "abc"), "policies[0].sha256",
         "64 hex digits", "'abc'", id="digest-too-short"),
    _row("trust_store", _edit(TRUST, "policies", "packs/ours.yaml"), "policies must be",
         "'packs/ours.yaml'", id="policies-text"),
    _row("trust_store", {"reviewer": TRUST["reviewers"]}, "unknown key(s) ['reviewer']",
         "did you mean 'reviewers'", id="misspelt-reviewers"),
    _row("trust_store", "- just a list\n", "is not a trust store", "['just a list']",
         id="not-a-mapping"),
    # declared populations ({attribute: {group: share}}: the keys are the user's own, so no
    # key is unknown to the file; an attribute the audit does not have is refused with it)
    _row("population", _edit(POPULATION, "ethnicity.majority", -0.1), "ethnicity.majority",
         "share between 0 and 1", "-0.1", id="negative-share"),
    _row("population", _edit(POPULATION, "sex.f", 1.5), "sex.f", "1.5", id="share-above-1"),
    _row("population", _edit(POPULATION, "sex.f", "half"), "sex.f", "'half'",
         id="share-text"),
    _row("population", _edit(POPULATION, "sex.f", True), "sex.f", "boolean true",
         id="share-bool"),
    _row("population", _edit(POPULATION, "ethnicity", ["majority"]), "ethnicity must be",
         "['majority']", id="groups-list"),
    _row("population", _edit(POPULATION, "ethnicity", {}), "ethnicity", "{}",
         id="no-groups"),
    _row("population", {}, "is not", "{}", id="empty"),
    _row("population", "", "is not", "null", id="empty-file"),
    _row("population", {"two words": {"a b": "x"}}, "['two words']['a b']", "'x'",
         id="odd-keys-named"),
    # pandera YAML schemas
    _row("pandera_schema", _edit(SCHEMA, "columns", None), "columns must be", "null",
         id="columns-null"),
    _row("pandera_schema", _edit(SCHEMA, "columns", drop=True), "missing 'columns'",
         id="no-columns"),
    _row("pandera_schema", _edit(SCHEMA, "columns.age.nullable", "yes"),
         "columns.age.nullable must be true or false", "'yes'", id="flag-text"),
    _row("pandera_schema", _edit(SCHEMA, "columns.age.colour", "red"),
         "columns.age has unknown key(s) ['colour']", "in_range", id="unknown-column-key"),
    _row("pandera_schema", _edit(SCHEMA, "columns.age.dtype", [1]), "columns.age.dtype",
         "[1]", id="dtype-list"),
    _row("pandera_schema", _edit(SCHEMA, "coerce", "maybe"), "coerce", "'maybe'",
         id="coerce-text"),
    _row("pandera_schema", _edit(SCHEMA, "strict", "sometimes"), "strict", "'sometimes'",
         id="strict-out-of-range"),
    _row("pandera_schema", _edit(SCHEMA, "columns.case_ref.str_matches", "(unclosed"),
         "columns.case_ref.str_matches", "regular expression", "'(unclosed'",
         id="pattern-syntax"),
    _row("pandera_schema", _edit(SCHEMA, "columns.district.str_contains.pattern", "a{2,1}"),
         "columns.district.str_contains.pattern", "'a{2,1}'", id="pattern-syntax-mapping"),
    _row("pandera_schema", _edit(SCHEMA, "columns.age.checks",
                                 [{"value": "[", "options": {"check_name": "str_matches"}}]),
         "columns.age.checks[0].value", "'['", id="pattern-syntax-list"),
    _row("pandera_schema", _edit(SCHEMA, "columns.age.checks",
                                 [{"value": 1, "options": {"check_name": "nope"}}]),
         "columns.age.checks[0].options.check_name", "'nope'", id="unknown-check"),
    _row("pandera_schema", _edit(SCHEMA, "index", {"a": 1}), "index must be", "{'a': 1}",
         id="index-mapping"),
    _row("pandera_schema", "- just\n- a list\n", "not a pandera DataFrameSchema",
         "['just', 'a list']", id="not-a-mapping"),
]


@pytest.mark.parametrize(("kind", "data", "fragments"), ROWS)
def test_a_bad_value_is_refused_naming_the_field_and_the_value(
        kind: str, data: Any, fragments: tuple[str, ...], tmp_path: Path) -> None:
    path = _write(tmp_path, data)
    expected = ERROR.get(kind, InputError)
    with pytest.raises(LeaAuditError) as exc:
        LOADERS[kind](path)
    assert type(exc.value) is expected, (type(exc.value), str(exc.value))
    line = str(exc.value)
    assert "\n" not in line and " — " in line, line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert "file.yaml" in line or kind == "policy", line  # the file is named
    if not isinstance(data, str):  # the mapping route says the same
        with pytest.raises(expected) as direct:
            validate(kind, data, "here")
        assert all(f in str(direct.value) for f in fragments if "file.yaml" not in f)


def test_the_first_error_is_the_first_in_the_file() -> None:
    doc = _edit(_edit(POLICY, "requirements[1].blocking", "no"), "requirements[0].clauses", 7)
    with pytest.raises(PolicyError, match=r"requirements\[0\]\.clauses"):
        validate("policy", doc, "p")
    doc = _edit(_edit(POLICY, "signoff.min_approvals", 0), "settings.confidence", 7)
    with pytest.raises(PolicyError, match=r"settings\.confidence"):  # settings come first
        validate("policy", doc, "p")


def test_values_are_shown_short_and_printable() -> None:
    shown = describe_value("x" * 500 + "\u202e\n\x00")
    assert len(shown) < 90 and shown.isprintable() and "\n" not in shown
    assert describe_value(10 ** 5000).startswith("an integer")  # too long for repr: no crash
    loop: list[Any] = []
    loop.append(loop)
    assert describe_value(loop).startswith("a list")


def test_the_policy_names_the_pack_by_its_id_or_its_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"^policy 'mine': settings"):
        load_policy(_write(tmp_path, _edit(POLICY, "settings.confidence", 2)))
    with pytest.raises(PolicyError, match=r"^policy '.*file\.yaml': id must be"):
        load_policy(_write(tmp_path, _edit(POLICY, "id", 3)))


def test_what_a_schema_cannot_say_is_still_checked_by_hand(tmp_path: Path) -> None:
    twice = _edit(POLICY, "requirements[1].id", "fpr")
    with pytest.raises(PolicyError, match="repeats"):
        load_policy(twice)
    with pytest.raises(PolicyError, match="unknown check"):
        load_policy(_edit(POLICY, "requirements[0].check", "fairness.nope"))
    with pytest.raises(PolicyError, match="unknown metric"):
        load_policy(_edit(POLICY, "requirements[0].params.metric", "nope"))
    with pytest.raises(PolicyError, match="add up"):
        load_policy(_edit(POLICY, "requirements[1].params.population.ethnicity.minority", 0.9))
    with pytest.raises(InputError, match="base64"):
        load_trust_store(_write(tmp_path, _edit(TRUST, "reviewers[0].public_key", "bm90")))


# -- through the CLI: exit code 2, one line, no traceback ------------------------------------
def _lea_audit() -> str:
    here = Path(sys.executable).with_name("lea-audit")
    return str(here) if here.exists() else (shutil.which("lea-audit") or "lea-audit")


@pytest.fixture(scope="module")
def cases_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cli") / "cases.csv"
    pd.DataFrame({"y": [0, 1] * 20, "g": ["a", "b", "b", "a"] * 10,
                  "p": [0, 1, 1, 0] * 10}).to_csv(p, index=False)
    return p


RUN = ["run", "--target", "y", "--sensitive", "g", "--prediction-col", "p", "--no-track"]
CLI_ROWS = [
    pytest.param(["policies", "{file}"], _edit(POLICY, "settings.min_group_size", 2.5),
                 ["settings.min_group_size", "2.5"], id="policy"),
    pytest.param(["trust", "show", "{file}"], _edit(TRUST, "reviewers[0].id", [1]),
                 ["reviewers[0].id", "[1]"], id="trust-store"),
    pytest.param([*RUN, "--data", "{data}", "--out", "{out}", "--population", "{file}"],
                 _edit(POPULATION, "sex.m", -1), ["declared population", "sex.m", "-1"],
                 id="population"),
    pytest.param([*RUN, "--data", "{data}", "--out", "{out}", "--metadata", "{file}"],
                 _edit(METADATA, "users", {"a": 1}), ["users", "{'a': 1}"], id="metadata"),
    pytest.param([*RUN, "--data", "{data}", "--out", "{out}", "--schema", "{file}"],
                 _edit(SCHEMA, "columns.case_ref.str_matches", "(("),
                 ["columns.case_ref.str_matches", "'(('"], id="pandera-schema"),
]


@pytest.mark.parametrize(("argv", "data", "fragments"), CLI_ROWS)
def test_the_cli_says_it_in_one_line_with_exit_code_2(argv: list[str], data: Any,
                                                      fragments: list[str], tmp_path: Path,
                                                      cases_csv: Path) -> None:
    file = _write(tmp_path, data)
    args = [a.format(file=file, data=cases_csv, out=tmp_path / "out") for a in argv]
    env = {**os.environ, "NO_COLOR": "1"}
    res = subprocess.run([_lea_audit(), *args], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not (tmp_path / "out").exists()


# -- the patterns of a data schema: a time limit, never a hang ---------------------------------
def _pattern_schema(pattern: str, check: str = "str_matches", column: str = "s") -> Any:
    return schema_from_yaml(yaml.safe_dump({"schema_type": "dataframe", "columns": {
        column: {"dtype": "str", "nullable": True, check: pattern}}}))


def test_a_catastrophic_pattern_finishes_and_reports_the_values() -> None:
    # ^(a+)+$ against 'aaa…a!' takes Python's re longer than the age of the universe
    data = pd.DataFrame({"s": ["a" * 40 + "!", "aaaa", None, "b"]})
    t0 = time.perf_counter()
    v = validate_schema(data, _pattern_schema("^(a+)+$"))
    assert time.perf_counter() - t0 < 5
    (f,) = v.failures
    assert (f.column, f.kind, f.count) == ("s", "does not match the pattern", 2)
    assert f.examples == ("a" * 40 + "!", "b") and v.failing_rows == 2 and not v.structural


def test_a_pattern_beyond_the_time_limit_stops_the_audit_and_says_so(monkeypatch, tmp_path
                                                                    ) -> None:
    from lea_ai_audit import audit, load_policy
    from lea_ai_audit.cli import main
    from lea_ai_audit.errors import LimitError

    monkeypatch.setenv(PATTERN_TIMEOUT_ENV, "0.5")
    evil = "(x+x+)+y"  # exponential even for the regex module
    n = 40
    data = pd.DataFrame({"reoffended": [0, 1] * (n // 2), "ethnicity": ["a", "b"] * (n // 2),
                         "rearrested": [0, 1, 1, 0] * (n // 4), "s": ["x" * 3000] * n,
                         "t": ["x" * 3000 + "z"] * n})
    spec = {"columns": {
        "s": {"dtype": "str", "str_contains": evil}, "t": {"dtype": "str", "str_matches": evil},
        "reoffended": {"dtype": "int64", "in_range": {"min_value": 0, "max_value": 1}}}}
    schema = schema_from_yaml(yaml.safe_dump(spec))
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=r"could not be evaluated within the 0\.5 s time "
                                         r"limit of patterns \(LEA_AUDIT_PATTERN_TIMEOUT\)"):
        validate_schema(data, schema)
    assert time.perf_counter() - t0 < 3  # one budget for the whole validation
    policy = load_policy({"id": "t", "version": "1", "title": "t", "requirements": [
        {"id": "schema", "clauses": ["AI Act Art. 10"], "check": "data.schema"}]})
    with pytest.raises(LimitError):  # never an ERROR or FAIL result: the audit stops
        audit(data, target="reoffended", sensitive="ethnicity", prediction="rearrested",
              schema=schema, policy=policy, track=False)
    # through the CLI: one line, exit 2, nothing written
    data.to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    rc = main(["run", "--data", "c.csv", "--target", "reoffended", "--sensitive", "ethnicity",
               "--prediction-col", "rearrested", "--schema", "s.yaml", "--checks", "data.schema",
               "--out", "out", "--no-track", "-q"])
    assert rc == 2 and not (tmp_path / "out").exists()


def test_the_time_limit_comes_from_the_environment(monkeypatch) -> None:
    from lea_ai_audit.schema import PATTERN_TIMEOUT, pattern_timeout

    monkeypatch.delenv(PATTERN_TIMEOUT_ENV, raising=False)
    assert pattern_timeout() == PATTERN_TIMEOUT == 10
    monkeypatch.setenv(PATTERN_TIMEOUT_ENV, "2.5")
    assert pattern_timeout() == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        monkeypatch.setenv(PATTERN_TIMEOUT_ENV, bad)
        with pytest.raises(InputError, match=PATTERN_TIMEOUT_ENV):
            validate_schema(pd.DataFrame({"s": ["a"]}), _pattern_schema("^a"))


def test_pattern_checks_keep_pandera_semantics() -> None:
    data = pd.DataFrame({"s": ["xab", "ab", None, "ba"], "n": [1, 2, 3, 4]},
                        index=["i1", "i2", "j", "i4"])
    contains = validate_schema(data, _pattern_schema("ab", "str_contains"))
    assert [(f.count, f.examples) for f in contains.failures] == [(1, ("ba",))]  # search
    matches = validate_schema(data, _pattern_schema("ab"))
    assert [(f.count, f.examples) for f in matches.failures] == [(2, ("xab", "ba"))]  # match
    strict_na = schema_from_yaml(yaml.safe_dump({"columns": {"s": {
        "dtype": "str", "nullable": True,
        "checks": [{"pattern": "ab", "options": {"check_name": "str_contains",
                                                 "ignore_na": False}}]}}}))
    assert validate_schema(data, strict_na).failures[0].count == 2  # the missing value fails
    index = schema_from_yaml(yaml.safe_dump({"columns": {"n": {"dtype": "int64"}},
                                             "index": [{"dtype": "str", "str_matches": "^i"}]}))
    (f,) = validate_schema(data, index).failures
    assert (f.column, f.count, f.examples) == ("(index)", 1, ("j",))
    # a column declared by a name pattern: the pattern resolves the columns, its checks apply
    # to each; one that matches no column is a missing column
    wide = pd.DataFrame({"a_1": ["x1", "y"], "a_2": ["x", "x"], "b": ["q", "q"]})
    regex_col = schema_from_yaml(yaml.safe_dump({"columns": {"a_.*": {
        "dtype": "str", "regex": True, "str_matches": "^x"}}}))
    (f,) = validate_schema(wide, regex_col).failures
    assert (f.column, f.count) == ("a_1", 1)
    none = schema_from_yaml(yaml.safe_dump({"columns": {"z_.*": {"regex": True}}}))
    v = validate_schema(wide, none)
    assert v.failing_rows == 2 and v.structural[0].startswith("missing column: z_.*")
    # the data.schema evidence still writes the schema as pandera YAML
    assert "str_matches" in schema_to_yaml(regex_col)


def test_a_pattern_that_is_not_a_regular_expression_names_the_column() -> None:
    import pandera.pandas as pa

    with pytest.raises(InputError, match=r"columns\.who\.str_contains.*'\(\['"):
        _pattern_schema("([", "str_contains", column="who")
    bad_name = pa.DataFrameSchema({"(x": pa.Column(str, regex=True)})
    with pytest.raises(InputError, match=r"pattern '\(x' of the column name '\(x'"):
        load_schema(bad_name)


def test_pandera_yaml_round_trips_through_the_declared_schema() -> None:
    import pandera.pandas as pa

    s = infer_schema(_frame())
    assert schema_from_yaml(schema_to_yaml(s)) == s
    rich = pa.DataFrameSchema(
        {"s": pa.Column(str, checks=[pa.Check.str_matches(r"^a+$"), pa.Check.str_contains("a"),
                                     pa.Check.str_startswith("a"), pa.Check.str_length(1, 5),
                                     pa.Check.notin(["z"])], nullable=True, unique=True,
                        title="t", description="d"),
         "n": pa.Column(int, pa.Check.ge(0), coerce=True, required=False),
         "r_.*": pa.Column(float, regex=True)},
        index=pa.MultiIndex([pa.Index(int, name="i"),
                             pa.Index(str, name="j", checks=pa.Check.str_matches("^x"))]),
        strict="filter", ordered=True, unique=["s"], name="rich", coerce=True)
    from pandera.io import pandas_io

    text = schema_to_yaml(rich)
    assert schema_from_yaml(text) == pandas_io.from_yaml(text)  # what pandera itself reads
    assert list(schema_from_yaml(text).columns) == ["s", "n", "r_.*"]


# -- fuzzing: every loader either loads or raises a LeaAuditError --------------------------------
FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
_NASTY = st.sampled_from(["", "0", "yes", "no", "null", "2024-01-01", "2024-13-45", "(", "[",
                          "^(a+)+$", "(x+x+)+y", "\u202e\n\x00", "x" * 80, "fairness.disparity",
                          "str_matches", "in_range", "-1", ".inf"])
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.text(max_size=12) | _NASTY)
_KEYS = st.sampled_from(sorted({
    "id", "version", "title", "requirements", "clauses", "check", "params", "blocking",
    "settings", "signoff", "min_group_size", "confidence", "max_difference", "population",
    "reviewers", "policies", "role", "public_key", "sha256", "path", "owner", "users",
    "columns", "dtype", "nullable", "checks", "options", "check_name", "pattern", "value",
    "regex", "index", "ethnicity", "majority"})) | st.text(max_size=6)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=16)


def _paths(x: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, (*at, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, (*at, i))


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    doc: Any = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        value = draw(_VALUES)
        if not path:
            doc = value
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(_KEYS)] = value
        elif op == "add":
            parent.insert(path[-1], value)
        else:
            parent[path[-1]] = value
    return doc


def _loads_or_says_why(kind: str, path: Path) -> None:
    try:
        loaded = LOADERS[kind](path)
    except LeaAuditError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return
    if kind == "pandera_schema":  # a schema that loads also validates (or says why)
        with contextlib.suppress(LeaAuditError):
            validate_schema(_frame(12), loaded)


def _fuzz_file() -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="lea-fuzz-"))
    return d / "file.yaml"


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=_VALUES)
def test_fuzz_random_structures(kind: str, data: Any) -> None:
    path = _fuzz_file()
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    _loads_or_says_why(kind, path)
    shutil.rmtree(path.parent)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(st.data())
def test_fuzz_mutations_of_a_valid_file(kind: str, data: st.DataObject) -> None:
    doc = data.draw(_mutated(VALID[kind]))
    path = _fuzz_file()
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _loads_or_says_why(kind, path)
    shutil.rmtree(path.parent)


_NOT_YAML = (st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
             | st.sampled_from([b"a: [", b"\xff\xfe\x00", b"x: 2001-13-45", b"x: " + b"9" * 5000,
                                b"a: &a [*a]\nrequirements: *a", b"[" * 200,
                                b"!!python/object/apply:os.system ['true']",
                                b"reviewers:\n- &r {id: x, role: y, public_key: *r}"]))


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(raw=_NOT_YAML)
def test_fuzz_text_and_bytes_that_are_not_yaml(kind: str, raw: bytes) -> None:
    path = _fuzz_file()
    path.write_bytes(raw)
    _loads_or_says_why(kind, path)
    shutil.rmtree(path.parent)
