"""`lea-audit keygen`, `signoff`, `gate --require-signoff` and `--ledger`, as a user calls them.

Every refusal of issue 6 gives exit 1 with its reason on stderr; bad input gives exit 2 with a
one-line error.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lea_ai_audit.cli import main
from lea_ai_audit.ledger import read_ledger
from lea_ai_audit.results import AuditReport


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _signoff(capsys, report: Path, keys: dict[str, Path], who: str, *extra: str) -> str:
    store = [] if who == "mallory" else ["--trust-store", keys["store"]]
    rc, out, err = _run(capsys, "signoff", report, "--key", keys[who], "--reviewer", who,
                        "--decision", "approve", "--comment", f"{who} reviewed it",
                        "--ledger", "off", *store, *extra)
    assert rc == 0, err
    return out


def _gate(capsys, report: Path, keys: dict[str, Path], *extra: str) -> tuple[int, str, str]:
    model = (["--model", report / "model.skops"]
             if "--model" not in extra and (report / "model.skops").is_file() else [])
    return _run(capsys, "gate", report, "--require-signoff", "--trust-store", keys["store"],
                "-q", *model, *extra)


def test_the_whole_flow_with_the_installed_command(tmp_path: Path) -> None:
    """keygen (one key with a passphrase) -> two sign-offs -> gate opens -> ledger verifies.

    (The refusals are checked in-process below, where each costs less.)"""
    exe = shutil.which("lea-audit") or pytest.fail("lea-audit is not installed")
    env = {**os.environ, "LEA_AUDIT_TRACKING": "off", "PASS_CAROL": "s3cret phrase"}
    env.pop("LEA_AUDIT_LEDGER", None)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *argv], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    r = run("keygen", "--reviewer", "ci", "--role", "audit-service", "--out", "keys",
            "--trust-store", "trust.yaml")
    assert r.returncode == 0, r.stderr
    r = run("demo", "--out", "audit", "--rows", "4000", "--bias", "0", "--author", "alice",
            "--sign-key", "keys/ci.key", "-q")
    assert r.returncode == 0, r.stderr
    assert "ledger: " in r.stdout and (tmp_path / "ledger.jsonl").is_file()
    assert "attestation: audit/attestation.json" in r.stdout
    r = run("keygen", "--reviewer", "bob", "--role", "model-risk-officer", "--out", "keys",
            "--trust-store", "trust.yaml")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "keys" / "bob.key").stat().st_mode) == 0o600
    r = run("keygen", "--reviewer", "carol", "--role", "data-protection-officer", "--out",
            "keys", "--trust-store", "trust.yaml", "--passphrase-env", "PASS_CAROL")
    assert r.returncode == 0 and "protected by a passphrase" in r.stdout
    assert stat.S_IMODE((tmp_path / "keys" / "carol.key").stat().st_mode) == 0o600
    r = run("signoff", "audit", "--key", "keys/bob.key", "--reviewer", "bob", "--decision",
            "approve", "--comment", "fairness evidence reviewed", "--expires", "365",
            "--trust-store", "trust.yaml")
    assert r.returncode == 0, r.stderr
    r = run("signoff", "audit", "--key", "keys/carol.key", "--reviewer", "carol",
            "--decision", "approve", "--comment", "DPIA checked", "--passphrase-env",
            "PASS_CAROL", "--trust-store", "trust.yaml")
    assert r.returncode == 0, r.stderr
    assert "model card: updated with the sign-off" in r.stdout
    r = run("gate", "audit", "--require-signoff", "--trust-store", "trust.yaml", "--model",
            "audit/model.skops", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sign-off: approved by bob (model-risk-officer, key sha256:" in r.stdout
    assert ", carol (data-protection-officer, key sha256:" in r.stdout
    assert "attestation: signed by ci (audit-service" in r.stdout
    card = json.loads((tmp_path / "audit" / "card.json").read_text())
    assert card["human_oversight"]["approvals"] == 2
    r = run("verify", "ledger.jsonl")
    assert r.returncode == 0 and "ledger OK: 3 entries" in r.stdout
    kinds = [e["kind"] for e in read_ledger(tmp_path / "ledger.jsonl")]
    assert kinds == ["assessment", "signoff", "signoff"]


def test_missing_single_and_authors_approval_refused_on_stderr(
        capsys, passing: Path, keys: dict[str, Path]) -> None:
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "gate closed: 0 valid approval(s)" in err
    _signoff(capsys, passing, keys, "bob")
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "gate closed: 1 valid approval(s)" in err
    rc, _, err = _run(capsys, "signoff", passing, "--key", keys["alice"], "--reviewer",
                      "alice", "--decision", "approve", "--ledger", "off")  # the author
    assert rc == 2 and "'alice': is the report's author" in err and "this key signed" in err
    assert len(list((passing / "signoffs").glob("*alice*"))) == 0
    _signoff(capsys, passing, keys, "carol")
    rc, out, err = _gate(capsys, passing, keys)
    assert rc == 0 and err == "" and "gate OPEN" in out


def test_unknown_key_refused(capsys, passing: Path, keys: dict[str, Path]) -> None:
    for who in ("bob", "carol", "mallory"):
        _signoff(capsys, passing, keys, who)
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "'mallory': signed with a key that is not in the trust store" in err


def test_report_changed_after_signing_refused(capsys, passing: Path,
                                              keys: dict[str, Path]) -> None:
    for who in ("bob", "carol"):
        _signoff(capsys, passing, keys, who)
    assert _gate(capsys, passing, keys)[0] == 0
    d = json.loads((passing / "report.json").read_text())
    d["data"]["n_rows"] += 1
    (passing / "report.json").write_text(json.dumps(d))
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and err.count("the report changed after it was signed") == 2


def test_model_changed_after_signing_refused(capsys, passing: Path, keys: dict[str, Path],
                                             tmp_path: Path) -> None:
    model = passing / "model.skops"
    other = tmp_path / "other.skops"
    other.write_bytes(model.read_bytes() + b"\0")
    rc, _, err = _run(capsys, "signoff", passing, "--key", keys["bob"], "--reviewer", "bob",
                      "--decision", "approve", "--model", other, "--ledger", "off")
    assert rc == 2 and "is not the one audited" in err
    for who in ("bob", "carol"):
        _signoff(capsys, passing, keys, who, "--model", model)
    assert _gate(capsys, passing, keys, "--model", model)[0] == 0
    rc, _, err = _gate(capsys, passing, keys, "--model", other)
    assert rc == 1 and "is not the one audited" in err
    assert err.count("the model changed after signing, or it is another model") == 2
    # a report made with a model does not pass without its model file, unless recorded
    rc, out, err = _run(capsys, "gate", passing, "--require-signoff", "--trust-store",
                        keys["store"], "-q")
    assert rc == 1 and "the audit was made with a model, but no model file was given" in err
    rc, out, err = _run(capsys, "gate", passing, "--require-signoff", "--trust-store",
                        keys["store"], "-q", "--no-model-check", "--junit",
                        tmp_path / "j.xml")
    assert rc == 0 and "opt-out: the model file was not checked" in out
    assert "opt-outs: the model file was not checked" in (tmp_path / "j.xml").read_text()


def test_signoff_copied_from_another_report_refused(capsys, passing: Path, failing: Path,
                                                    keys: dict[str, Path]) -> None:
    waive = [c.requirement_id for c in AuditReport.load(failing).checks
             if c.status.value == "fail"]
    for who in ("bob", "carol"):
        _signoff(capsys, failing, keys, who, "--waive", *waive, "--justification",
                 "limited pilot")
    shutil.copytree(failing / "signoffs", passing / "signoffs")
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and err.count("a sign-off copied from another report") == 2


def test_expired_signoff_refused(capsys, passing: Path, keys: dict[str, Path]) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    _signoff(capsys, passing, keys, "bob", "--expires", soon)
    _signoff(capsys, passing, keys, "carol", "--expires", "30")
    time.sleep(max(0.0, (datetime.fromisoformat(soon) - datetime.now(UTC)).total_seconds())
               + 0.2)
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "gate closed: 1 valid approval(s)" in err
    assert f"'bob': the sign-off expired on {soon}" in err


def test_a_rejection_closes_the_gate(capsys, passing: Path, keys: dict[str, Path]) -> None:
    for who in ("bob", "carol"):
        _signoff(capsys, passing, keys, who)
    rc, _, err = _run(capsys, "signoff", passing, "--key", keys["dave"], "--reviewer", "dave",
                      "--decision", "reject", "--ledger", "off")
    assert rc == 2 and "a rejection needs a comment" in err
    rc, _, _ = _run(capsys, "signoff", passing, "--key", keys["dave"], "--reviewer", "dave",
                    "--decision", "reject", "--comment", "no DPIA", "--ledger", "off")
    assert rc == 0
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "rejected by 'dave' (model-risk-officer, key sha256:" in err
    assert "): no DPIA" in err


def test_failed_audit_waiver(capsys, failing: Path, keys: dict[str, Path]) -> None:
    waive = [c.requirement_id for c in AuditReport.load(failing).checks
             if c.status.value == "fail"]
    rc, _, err = _run(capsys, "signoff", failing, "--key", keys["bob"], "--reviewer", "bob",
                      "--decision", "approve", "--ledger", "off")
    assert rc == 2 and f"needs a waiver of {waive[0]}" in err and "--waive" in err
    rc, _, err = _run(capsys, "signoff", failing, "--key", keys["bob"], "--reviewer", "bob",
                      "--decision", "approve", "--waive", *waive, "--ledger", "off")
    assert rc == 2 and "needs a justification" in err
    for who in ("bob", "carol"):
        out = _signoff(capsys, failing, keys, who, "--waive", *waive, "--justification",
                       "pilot; every flag reviewed")
        assert f"waiving {', '.join(waive)}" in out
    rc, out, _ = _gate(capsys, failing, keys)
    assert rc == 1  # the audit itself failed: this version's gate stays closed
    assert f"failed requirement(s) {', '.join(waive)} waived by every approval" in out
    assert "waiver" in (failing / "card.md").read_text().lower()
    rc, out, _ = _gate(capsys, failing, keys, "--accept-waivers")
    assert rc == 0 and "OPEN by signed waiver" in out and ", ".join(sorted(waive)) in out


def test_accept_waivers_needs_a_waiver_by_every_approval(capsys, failing: Path,
                                                        keys: dict[str, Path]) -> None:
    waive = [c.requirement_id for c in AuditReport.load(failing).checks
             if c.status.value == "fail"]
    _signoff(capsys, failing, keys, "bob", "--waive", *waive, "--justification", "pilot")
    rc, out, _ = _gate(capsys, failing, keys, "--accept-waivers")
    assert rc == 1 and "1 valid approval(s)" in out  # one waiver is not four eyes
    assert "OPEN" not in out
    rc, _, err = _run(capsys, "gate", failing, "--accept-waivers")
    assert rc == 2 and "only count with --require-signoff" in err


@pytest.mark.parametrize("argv, message", [
    (["gate", "{r}", "--require-signoff"], "--require-signoff needs the trust store"),
    (["gate", "{r}", "--trust-store", "{s}"], "only count with --require-signoff"),
    (["gate", "{r}", "--require-signoff", "--trust-store", "{r}/nope.yaml"], "no trust store"),
    (["signoff", "{r}", "--key", "{k}", "--reviewer", "bob", "--decision", "approve",
      "--passphrase-env", "LEA_TEST_UNSET_VAR"], "'LEA_TEST_UNSET_VAR' is not set"),
    (["signoff", "{r}", "--key", "{r}/none.key", "--reviewer", "bob", "--decision",
      "approve"], "no key file"),
    (["signoff", "{r}", "--key", "{r}/report.json", "--reviewer", "bob", "--decision",
      "approve"], "not a private key"),
    (["signoff", "{r}", "--key", "{k}", "--reviewer", "bob", "--decision", "approve",
      "--expires", "soonish"], "neither a number of days"),
    (["signoff", "{r}", "--key", "{k}", "--reviewer", "bob", "--decision", "approve",
      "--model", "{r}/no-model.bin"], "no model file"),
    (["keygen", "--reviewer", "bob", "--role", "x", "--out", "{kd}"], "never overwritten"),
])
def test_bad_input_is_one_line_exit_2(capsys, passing: Path, keys: dict[str, Path],
                                      argv: list[str], message: str) -> None:
    subst = {"{r}": str(passing), "{s}": str(keys["store"]), "{k}": str(keys["bob"]),
             "{kd}": str(keys["bob"].parent)}
    args = []
    for a in argv:
        for k, v in subst.items():
            a = a.replace(k, v)
        args.append(a)
    rc, _, err = _run(capsys, *args, "--ledger", "off") if argv[0] == "signoff" else \
        _run(capsys, *args)
    assert rc == 2, err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert " — " in err
    assert not (passing / "signoffs").exists()


def test_run_and_demo_append_assessments_to_the_ledger(capsys, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "custom" / "ledger.jsonl"
    rc, out, _ = _run(capsys, "demo", "--out", tmp_path / "a", "--rows", "4000", "--ledger",
                      ledger, "-q")
    assert rc == 1 and f"ledger: {ledger} (entry 1, head " in out
    rep = AuditReport.load(tmp_path / "a")
    monkeypatch.setenv("LEA_AUDIT_LEDGER", str(ledger))
    rc, out, _ = _run(capsys, "run", "--data", tmp_path / "a" / "cases.csv", "--target",
                      "reoffended", "--prediction-col", "flagged", "--score-col", "risk",
                      "--sensitive", "sex", "--checks", "performance", "--out", tmp_path / "b",
                      "-q")
    assert rc == 0 and "(entry 2, head " in out
    entries = read_ledger(ledger)
    assert [e["data"]["report_id"] for e in entries] == [
        rep.report_id, AuditReport.load(tmp_path / "b").report_id]
    assert entries[0]["data"]["report_digest"] == rep.digest()
    assert entries[0]["data"]["status"] == "fail"
    assert entries[1]["data"]["status"] == AuditReport.load(tmp_path / "b").status.value
    monkeypatch.setenv("LEA_AUDIT_LEDGER", "off")
    rc, out, _ = _run(capsys, "demo", "--out", tmp_path / "c", "--rows", "4000", "-q")
    assert "ledger" not in out and len(read_ledger(ledger)) == 2
    assert not (tmp_path / "ledger.jsonl").exists()


def test_help_lists_the_verbs_without_loading_cryptography_or_sqlalchemy() -> None:
    code = ("import sys; from lea_ai_audit.cli import build_parser; "
            "h = build_parser().format_help(); "
            "print('keygen' in h, 'signoff' in h, "
            "any(m.startswith(('cryptography', 'sqlalchemy')) for m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "False"]


def test_a_passphrase_protected_key_needs_its_passphrase(capsys, passing: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setenv("LEA_TEST_PASS", "s3cret phrase")
    rc, out, _ = _run(capsys, "keygen", "--reviewer", "erin", "--role", "dpo", "--out",
                      tmp_path / "k", "--passphrase-env", "LEA_TEST_PASS")
    assert rc == 0 and "mode 600, protected by a passphrase" in out
    base = ["signoff", passing, "--key", tmp_path / "k" / "erin.key", "--reviewer", "erin",
            "--decision", "approve", "--ledger", "off"]
    rc, _, err = _run(capsys, *base)
    assert rc == 2 and "protected by a passphrase" in err and err.count("\n") == 1
    monkeypatch.setenv("LEA_TEST_WRONG", "not it")
    rc, _, err = _run(capsys, *base, "--passphrase-env", "LEA_TEST_WRONG")
    assert rc == 2 and "wrong passphrase" in err
    rc, out, _ = _run(capsys, *base, "--passphrase-env", "LEA_TEST_PASS")
    assert rc == 0 and "approve by erin (dpo)" in out


def test_an_undecided_blocking_requirement_opens_only_by_signed_waiver(
        capsys, tmp_path: Path, keys: dict[str, Path]) -> None:
    """A vendor's scores alone: the blocking SHAP self-test cannot be decided (ERROR); the gate
    stays closed under plain approvals and opens only when every approval waives it."""
    from lea_ai_audit import audit
    from lea_ai_audit.datasets import make_demo

    demo = make_demo(4000, bias=0.0, seed=3)
    rep = audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"],
                prediction="flagged", score="risk", author="alice", out=tmp_path / "v",
                track=False)
    # a pipeline that gates records its audit in the ledger, signs it and renders the card
    from lea_ai_audit.attest import attest_report
    from lea_ai_audit.cards import write_cards
    from lea_ai_audit.ledger import record_assessment

    record_assessment(tmp_path / "ledger.jsonl", rep, report_dir=tmp_path / "v")
    write_cards(rep, tmp_path / "v", report_dir=tmp_path / "v")
    attest_report(tmp_path / "v", key=keys["alice"])
    err_req = [c.requirement_id for c in rep.checks if c.status.value == "error" and c.blocking]
    assert err_req == ["explanation-additivity"] and rep.status.value == "error"
    rc, _, err = _run(capsys, "signoff", tmp_path / "v", "--key", keys["bob"], "--reviewer",
                      "bob", "--decision", "approve", "--ledger", "off")
    assert rc == 2 and "needs a waiver of explanation-additivity" in err
    for who in ("bob", "carol"):
        _signoff(capsys, tmp_path / "v", keys, who, "--waive", *err_req, "--justification",
                 "vendor model not disclosed; decisions reviewed by officers")
    assert _gate(capsys, tmp_path / "v", keys)[0] == 1
    rc, out, _ = _gate(capsys, tmp_path / "v", keys, "--accept-waivers")
    assert rc == 0 and "OPEN by signed waiver" in out and "explanation-additivity" in out


def test_the_python_api_appends_to_the_ledger_and_the_gate_finds_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """audit(..., out=) records the assessment as `lea-audit run` does: beside the folder by
    default, where the gate looks; ledger= names another; False writes none."""
    import warnings

    from lea_ai_audit import audit
    from lea_ai_audit.datasets import make_police_triage
    from lea_ai_audit.gate import _ledger_check
    from lea_ai_audit.runner import LedgerWarning

    monkeypatch.delenv("LEA_AUDIT_LEDGER", raising=False)
    df = make_police_triage(n_rows=3000, seed=0)
    df["risk"] = df["prior_contacts"].rank(pct=True)
    df["flagged"] = (df["risk"] > 0.7).astype(int)
    kw = {"target": "reoffended", "sensitive": ["sex"], "prediction": "flagged",
          "score": "risk", "checks": ["performance"], "track": False}
    rep = audit(df, out=tmp_path / "audits" / "m1", **kw)
    (entry,) = read_ledger(tmp_path / "audits" / "ledger.jsonl")
    assert entry["kind"] == "assessment" and entry["data"]["report_id"] == rep.report_id
    assert entry["data"]["report_digest"] == rep.digest()
    check, _ = _ledger_check(tmp_path / "audits" / "m1", rep, None, ledger=None,
                             expect_head=None, checkpoint=None)
    assert check.ok, check.reasons  # the gate's own ledger check finds the assessment
    other = tmp_path / "elsewhere.jsonl"
    rep2 = audit(df, out=tmp_path / "audits" / "m2", ledger=other, **kw)
    assert [e["data"]["report_id"] for e in read_ledger(other)] == [rep2.report_id]
    audit(df, out=tmp_path / "audits" / "m3", ledger=False, **kw)
    assert len(read_ledger(tmp_path / "audits" / "ledger.jsonl")) == 1
    audit(df, **kw)  # nothing saved: nothing recorded
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "ledger.jsonl").mkdir()  # cannot be appended to
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit(df, out=tmp_path / "ro" / "m4", **kw)
    assert (tmp_path / "ro" / "m4" / "report.json").is_file()  # the report is kept
    assert any(issubclass(w.category, LedgerWarning) for w in caught)
