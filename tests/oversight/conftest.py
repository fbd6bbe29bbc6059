"""Fixtures of the oversight tests: real audits from the demo (a failing and a passing one,
audited and signed by 'alice') and real Ed25519 keys in a real trust store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lea_ai_audit.cli import main

REVIEWERS = {"alice": "data-scientist", "bob": "model-risk-officer",
             "carol": "data-protection-officer", "dave": "model-risk-officer"}


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """private keys of alice, bob, carol and dave (all in trust.yaml) and mallory (not)."""
    from lea_ai_audit.signoff import generate_keys

    base = tmp_path_factory.mktemp("keys")
    out = {}
    for who, role in REVIEWERS.items():
        out[who] = generate_keys(who, role=role, out=base, trust_store=base / "trust.yaml"
                                 ).private_key
    out["mallory"] = generate_keys("mallory", role="model-risk-officer", out=base).private_key
    out["store"] = base / "trust.yaml"
    return out


@pytest.fixture(scope="session")
def report_sources(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]
                   ) -> dict[str, Path]:
    """folders written by `lea-audit demo` (never modified: tests copy them): each holds the
    report directory ``audit/`` (signed by its author alice, with the model file
    ``audit/model.skops``) and the ledger ``ledger.jsonl`` that recorded it."""
    base = tmp_path_factory.mktemp("reports")
    out = {}
    for name, bias, code in (("failing", "0.6", 1), ("passing", "0", 0)):
        folder = base / name
        rc = main(["demo", "--out", str(folder / "audit"), "--rows", "4000", "--bias", bias,
                   "--author", "alice", "--ledger", str(folder / "ledger.jsonl"),
                   "--sign-key", str(keys["alice"]), "-q"])
        assert rc == code
        out[name] = folder
    return out


@pytest.fixture
def failing(report_sources: dict[str, Path], tmp_path: Path) -> Path:
    """a copy of the failing audit (its ledger beside it, where the gate looks by default)"""
    return Path(shutil.copytree(report_sources["failing"], tmp_path / "failing")) / "audit"


@pytest.fixture
def passing(report_sources: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(report_sources["passing"], tmp_path / "passing")) / "audit"
