"""Policy packs: validated at load, safe YAML, selection by prefix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lea_ai_audit import available_checks, list_policies, load_policy
from lea_ai_audit.errors import InputError, PolicyError
from lea_ai_audit.policy import DEFAULT_POLICY

CLAUSE = re.compile(r"^(Council 13083/1/20 §(2[4-9]|3[01])|AI Act (Art\. \d+|Annex [IVX]+)"
                    r"|GDPR Art\. \d+).*")


def test_default_pack_loads_and_cites_clauses() -> None:
    p = load_policy()
    assert p.id == DEFAULT_POLICY
    assert p.requirements
    ids = [r.id for r in p.requirements]
    assert len(ids) == len(set(ids))
    checks = available_checks()
    for r in p.requirements:
        assert r.check in checks
        assert r.clauses, r.id
        for c in r.clauses:
            assert CLAUSE.match(c), (f"{r.id}: clause {c!r} is not a Council §24-31, AI Act or "
                                     "GDPR cite")
        assert r.quote or r.description, f"{r.id} has neither a quote nor a description"


def test_default_pack_has_blocking_fairness_and_attestations() -> None:
    p = load_policy()
    assert any(r.check == "fairness.disparity" and r.blocking for r in p.requirements)
    attest = [r for r in p.requirements if r.check == "oversight.attestation"]
    assert any("§28" in " ".join(r.clauses) for r in attest)


def test_every_shipped_pack_is_valid() -> None:
    packs = list_policies()
    assert DEFAULT_POLICY in {p.id for p in packs}


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "pack.yaml"
    f.write_text(text)
    return f


GOOD = """
id: t
version: "1"
title: test
requirements:
  - id: fpr
    clauses: ["Council 13083/1/20 §26"]
    check: fairness.disparity
    params: {metric: fpr, max_difference: 0.1}
"""


def test_file_pack_and_settings_merge(tmp_path: Path) -> None:
    text = GOOD + "settings: {min_group_size: 7, decision_rule: point}\n"
    p = load_policy(_write(tmp_path, text))
    assert p.requirements[0].params["min_group_size"] == 7
    assert p.requirements[0].params["decision_rule"] == "point"


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d["requirements"][0].update(check="fairness.nope"), "unknown check"),
    (lambda d: d["requirements"][0]["params"].update(metric="nope"), "unknown metric"),
    (lambda d: d["requirements"][0]["params"].update(colour="red"),
     r"requirements\[0\]\.params has unknown key\(s\) \['colour'\]"),
    (lambda d: d["requirements"][0]["params"].update(max_difference=3), "max_difference"),
    (lambda d: d["requirements"][0].update(blocking="yes"), "blocking must be"),
    (lambda d: d["requirements"][0].pop("clauses"), "has no 'clauses'"),
    (lambda d: d["requirements"].append(dict(d["requirements"][0])), "repeats"),
    (lambda d: d.pop("requirements"), "missing 'requirements'"),
    (lambda d: d.update(settings={"bogus": 1}), "settings may only"),
    (lambda d: d["requirements"][0].update(tresholds=1), "unknown key"),
])
def test_bad_pack_fails_at_load(tmp_path: Path, mutate, pattern) -> None:
    d = yaml.safe_load(GOOD)
    mutate(d)
    with pytest.raises(PolicyError, match=pattern):
        load_policy(_write(tmp_path, yaml.safe_dump(d)))


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not valid YAML at line"):
        load_policy(_write(tmp_path, "id: x\nrequirements: [\n  - {a: 1\n"))


def test_object_constructing_tags_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'id: !!python/object/apply:os.system ["touch {marker}"]\n' + GOOD.split("\n", 2)[2]
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(_write(tmp_path, text))
    assert not marker.exists()


def test_unknown_pack_lists_known() -> None:
    with pytest.raises(PolicyError, match=DEFAULT_POLICY):
        load_policy("no-such-pack")


def test_select_by_prefix() -> None:
    p = load_policy()
    sub = p.select(["fairness"])
    assert sub.requirements and all(r.check.startswith("fairness") for r in sub.requirements)
    assert len(sub.requirements) < len(p.requirements)
    with pytest.raises(InputError, match="no requirement"):
        p.select(["zzz"])


def _pack(**extra):
    return {"id": "p", "version": "1", "title": "t",
            "requirements": [{"id": "r", "clauses": ["x"], "check": "fairness.group_metrics"}],
            **extra}


def test_signoff_rule_defaults_and_travels_in_the_report() -> None:
    from lea_ai_audit.policy import SIGNOFF_DEFAULTS, load_policy

    assert load_policy(_pack()).signoff == SIGNOFF_DEFAULTS
    p = load_policy(_pack(signoff={"min_approvals": 3,
                                   "required_roles": "data-protection-officer"}))
    assert p.signoff["min_approvals"] == 3
    assert p.signoff["required_roles"] == ["data-protection-officer"]
    assert p.describe()["signoff"]["min_approvals"] == 3
    assert load_policy().signoff["min_approvals"] == 2


@pytest.mark.parametrize("rule,fragment", [
    ({"min_approvals": 0}, "min_approvals must be a whole number"),
    ({"min_approvals": True}, "min_approvals must be a whole number"),
    ({"required_roles": [1]}, r"required_roles\[0\] must be a role name"),
    ({"author_may_approve": "yes"}, "author_may_approve must be true or false"),
    ({"max_age_days": -1}, "max_age_days must be a positive number"),
    ({"quorum": 2}, "signoff may only set"),
    ("two", "signoff must be a mapping"),
])
def test_bad_signoff_rule(rule, fragment) -> None:
    from lea_ai_audit.errors import PolicyError
    from lea_ai_audit.policy import load_policy

    with pytest.raises(PolicyError, match=fragment):
        load_policy(_pack(signoff=rule))
