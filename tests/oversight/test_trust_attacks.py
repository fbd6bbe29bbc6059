"""The evidence chain against an insider (issue 15), each attack through the CLI.

The insider has write access to the audit folder, the ledger, the policy file or the trust
store, and holds at most one key. Every attack below used to open the gate (or make `verify`
say OK); each must now close it (exit 1) with its reason, or be refused (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from lea_ai_audit.cli import main
from lea_ai_audit.ledger import GENESIS, entry_hash, read_ledger
from lea_ai_audit.results import AuditReport


def _run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _approve(capsys, report: Path, keys, who: str, *extra: str) -> None:
    rc, _, err = _run(capsys, "signoff", report, "--key", keys[who], "--reviewer", who,
                      "--decision", "approve", "--comment", f"{who} reviewed it",
                      "--trust-store", keys["store"], *extra)
    assert rc == 0, err


def _gate(capsys, report: Path, keys, *extra) -> tuple[int, str, str]:
    return _run(capsys, "gate", report, "--require-signoff", "--trust-store", keys["store"],
                "--model", report / "model.skops", "-q", *extra)


def _approved(capsys, report: Path, keys) -> None:
    for who in ("bob", "carol"):
        _approve(capsys, report, keys, who)
    rc, out, err = _gate(capsys, report, keys)
    assert rc == 0, out + err


def _rechain(entries: list[dict]) -> str:
    """What an insider does to a ledger: renumber and recompute every hash."""
    prev = GENESIS
    lines = []
    for n, e in enumerate(entries, 1):
        e = {**e, "seq": n, "prev": prev}
        e.pop("hash", None)
        e["hash"] = entry_hash(e)
        prev = e["hash"]
        lines.append(json.dumps(e, sort_keys=True, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)


def test_deleting_a_rejection_keeps_the_gate_closed(capsys, passing: Path, keys) -> None:
    _approved(capsys, passing, keys)
    rc, _, err = _run(capsys, "signoff", passing, "--key", keys["dave"], "--reviewer", "dave",
                      "--decision", "reject", "--comment", "no DPIA", "--trust-store",
                      keys["store"])
    assert rc == 0, err
    assert _gate(capsys, passing, keys)[0] == 1
    for p in (passing / "signoffs").glob("*dave*"):
        p.unlink()
    _run(capsys, "card", passing, "--write", "--trust-store", keys["store"])
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "records a reject by 'dave' that is missing from signoffs/" in err
    # ... and cutting the rejection out of the ledger, with the chain recomputed, is caught by
    # a head published earlier (printed by every command that appends)
    ledger = passing.parent / "ledger.jsonl"
    entries = read_ledger(ledger)
    head = entries[-1]["hash"]
    ledger.write_text(_rechain(entries[:-1]))
    rc, out, _ = _run(capsys, "verify", ledger)
    assert rc == 0 and "nothing anchors it" in out  # honest: the chain alone cannot tell
    rc, out, _ = _run(capsys, "verify", ledger, "--expect-head", head)
    assert rc == 1 and "the expected head hash is not in the ledger" in out
    rc, _, err = _gate(capsys, passing, keys, "--expect-head", head)
    assert rc == 1 and "expected head" in err


def test_a_withdrawal_is_signed_and_recorded(capsys, passing: Path, keys) -> None:
    _approved(capsys, passing, keys)
    rc, _, err = _run(capsys, "signoff", passing, "--key", keys["bob"], "--reviewer", "bob",
                      "--decision", "withdraw", "--comment", "new evidence came in",
                        "--trust-store", keys["store"])
    assert rc == 0, err
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "1 valid approval(s)" in err
    kinds = [(e["kind"], e["data"].get("decision")) for e in
             read_ledger(passing.parent / "ledger.jsonl")]
    assert kinds[-1] == ("signoff", "withdraw")
    card = json.loads((passing / "card.json").read_text())
    assert [s["state"] for s in card["human_oversight"]["signoffs"]
            if s["reviewer"] == "bob" and s["decision"] == "approve"] == ["withdrawn"]


@pytest.mark.parametrize("attack", ["html-edit", "md-edit", "json-deleted", "html-deleted"])
def test_the_card_the_officer_reads_is_enforced(capsys, failing: Path, keys,
                                                attack: str) -> None:
    waive = [c.requirement_id for c in AuditReport.load(failing).checks
             if c.status.value == "fail"]
    for who in ("bob", "carol"):
        _approve(capsys, failing, keys, who, "--waive", *waive, "--justification", "pilot")
    assert _gate(capsys, failing, keys, "--accept-waivers")[0] == 0
    if attack == "html-edit":
        page = (failing / "card.html").read_text()
        assert "FAIL" in page
        (failing / "card.html").write_text(page.replace("FAIL", "PASS"))
        want = "card.html is not the rendering of this report"
    elif attack == "md-edit":
        md = (failing / "card.md").read_text()
        (failing / "card.md").write_text(md.replace("should not be used", "may be used"))
        want = "card.md is not the rendering"
    elif attack == "json-deleted":
        (failing / "card.json").unlink()
        want = "card.json is missing"
    else:
        (failing / "card.html").unlink()
        want = "card.html is missing"
    rc, _, err = _gate(capsys, failing, keys, "--accept-waivers")
    assert rc == 1 and want in err, err


def test_a_consistent_edit_of_the_report_is_caught(capsys, failing: Path, keys) -> None:
    """The author turns FAIL into WARN everywhere in report.json before review, re-renders
    the card and even re-signs the attestation with their own key: honest approvals of the
    edited report still do not open the gate (the ledger recorded the audit's digest)."""
    d = json.loads((failing / "report.json").read_text())
    for c in d["checks"]:
        if c["status"] == "fail":
            c["status"] = c["raw_status"] = "warn"
    d["status"] = "warn"
    (failing / "report.json").write_text(json.dumps(d, indent=2))
    assert AuditReport.load(failing).status.value == "warn"
    rc, _, err = _run(capsys, "card", failing, "--write", "--trust-store", keys["store"])
    assert rc == 0, err
    rc, _, err = _gate(capsys, failing, keys)
    assert rc == 1 and "the audit's attestation" in err
    rc, _, err = _run(capsys, "attest", failing, "--key", keys["alice"])
    assert rc == 0, err
    for who in ("bob", "carol"):
        _approve(capsys, failing, keys, who)
    rc, _, err = _gate(capsys, failing, keys)
    assert rc == 1 and "it was changed after the audit" in err and "ledger (entry 1)" in err


def test_a_policy_copy_with_nothing_blocking_is_refused(capsys, tmp_path: Path, keys) -> None:
    from lea_ai_audit._resources import shipped_dir

    pack = yaml.safe_load(
        (shipped_dir("checklists") / "eu-council-2020-internal-security.yaml").read_text())
    for r in pack["requirements"]:
        r["blocking"] = False
    pack["signoff"] = {"min_approvals": 1, "author_may_approve": True}
    copy = tmp_path / "lenient.yaml"
    copy.write_text(yaml.safe_dump(pack))  # same id and version as the shipped pack
    out = tmp_path / "w" / "audit"
    rc, _, _ = _run(capsys, "demo", "--out", out, "--rows", "4000", "--bias", "0.6",
                    "--policy", copy, "--author", "alice", "--sign-key", keys["alice"],
                    "--ledger", tmp_path / "w" / "ledger.jsonl", "-q")
    assert rc == 0  # nothing blocks under the copy
    rep = AuditReport.load(out)
    assert rep.policy["id"] == "eu-council-2020-internal-security"
    _approve(capsys, out, keys, "alice")  # the copy lets the author approve alone
    rc, _, err = _gate(capsys, out, keys)
    assert rc == 1 and "is not the shipped pack of that id and version" in err
    # the card names the pack with its digest, so an officer sees it is not the shipped one
    card = json.loads((out / "card.json").read_text())
    assert card["report"]["policy"]["sha256"] == rep.policy["sha256"]
    assert card["report"]["policy"]["shipped"] is False
    assert "NOT the shipped pack of that id and version" in (out / "card.md").read_text()
    # the keeper of the trust store can allow it by digest; the gate then names it
    store = tmp_path / "trust.yaml"
    data = yaml.safe_load(keys["store"].read_text())
    data["policies"] = [{"path": str(copy), "sha256": rep.policy["sha256"]}]
    store.write_text(yaml.safe_dump(data))
    rc, out_text, err = _run(capsys, "gate", out, "--require-signoff", "--trust-store", store,
                             "--model", out / "model.skops", "-q")
    assert rc == 0 and "allowed by the trust store" in out_text, err


def test_a_swapped_key_in_the_trust_store_is_caught_by_the_pin(capsys, passing: Path, keys,
                                                              tmp_path: Path) -> None:
    _approved(capsys, passing, keys)
    rc, out, _ = _run(capsys, "trust", "show", keys["store"])
    assert rc == 0
    pin = hashlib.sha256(keys["store"].read_bytes()).hexdigest()
    assert f"SHA-256 {pin}" in out and "bob (model-risk-officer): sha256:" in out
    store = tmp_path / "trust.yaml"
    shutil.copy(keys["store"], store)
    assert _run(capsys, "gate", passing, "--require-signoff", "--trust-store", store,
                "--trust-store-sha256", pin, "--model", passing / "model.skops", "-q")[0] == 0
    # mallory swaps her key in for carol's and approves as carol
    from lea_ai_audit.signoff import read_identity, sign_report

    mal = read_identity(keys["mallory"].with_suffix(".pub"))
    data = yaml.safe_load(store.read_text())
    for e in data["reviewers"]:
        if e["id"] == "carol":
            e["public_key"], e["fingerprint"] = mal.to_dict()["public_key"], mal.fingerprint
    store.write_text(yaml.safe_dump(data))
    for p in (passing / "signoffs").glob("*carol*"):
        p.unlink()
    sign_report(passing, key=keys["mallory"], reviewer="carol",
                role="data-protection-officer", decision="approve", comment="ok",
                ledger=False, track=False)
    rc, out, err = _run(capsys, "gate", passing, "--require-signoff", "--trust-store", store,
                        "--trust-store-sha256", pin, "--model", passing / "model.skops", "-q")
    assert rc == 1 and "not the pinned" in err and "a key was added or swapped" in err
    # without the pin the gate shows whose key it was
    _run(capsys, "card", passing, "--write", "--trust-store", store)
    rc, out, err = _run(capsys, "gate", passing, "--require-signoff", "--trust-store", store,
                        "--model", passing / "model.skops", "-q")
    flat = " ".join(out.split())
    assert rc == 0 and f"carol (data-protection-officer, key {mal.fingerprint[:19]})" in flat
    assert "not pinned: pass --trust-store-sha256" in flat


def test_the_author_rule_holds_for_name_and_email(capsys, tmp_path: Path, keys) -> None:
    out = tmp_path / "w" / "audit"
    rc, _, _ = _run(capsys, "demo", "--out", out, "--rows", "4000", "--bias", "0",
                    "--author", "Bob Jones <bob@police.example>", "-q",
                    "--ledger", tmp_path / "w" / "ledger.jsonl")
    assert rc == 0
    rc, _, err = _run(capsys, "signoff", out, "--key", keys["bob"], "--reviewer", "bob",
                      "--decision", "approve", "--ledger", "off")
    assert rc == 2 and "'bob': is the report's author" in err
    # an audit nobody signed: the gate says so, and opens only with the recorded opt-out
    for who in ("carol", "dave"):
        _approve(capsys, out, keys, who)
    rc, _, err = _gate(capsys, out, keys)
    assert rc == 1 and "the audit is not signed by whoever ran it" in err
    rc, stdout, err = _gate(capsys, out, keys, "--allow-unsigned-audit", "--junit",
                            tmp_path / "j.xml")
    assert rc == 0, err
    assert "opt-out: the audit is not signed by its author" in stdout
    assert "opt-outs: the audit is not signed" in (tmp_path / "j.xml").read_text()


def test_junit_fails_when_a_rejection_closes_the_gate(capsys, passing: Path, keys,
                                                      tmp_path: Path) -> None:
    _approved(capsys, passing, keys)
    rc, _, _ = _run(capsys, "signoff", passing, "--key", keys["dave"], "--reviewer", "dave",
                    "--decision", "reject", "--comment", "no DPIA", "--trust-store",
                    keys["store"])
    assert rc == 0
    rc, _, _ = _gate(capsys, passing, keys, "--junit", tmp_path / "j.xml")
    assert rc == 1
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) >= 2  # the sign-off rule and the verdict
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert "rejected by 'dave'" in cases["gate.sign-off"].find("failure").get("message")
    assert cases["gate.verdict"].find("failure") is not None
    for name in ("gate.attestation", "gate.policy", "gate.model", "gate.model card",
                 "gate.ledger", "gate.trust store"):
        assert cases[name].find("failure") is None, name


def test_ledger_truncation_rewrite_and_checkpoints(capsys, passing: Path, keys,
                                                   tmp_path: Path) -> None:
    _approved(capsys, passing, keys)
    ledger = passing.parent / "ledger.jsonl"
    rc, out, _ = _run(capsys, "checkpoint", ledger, "--key", keys["dave"])
    assert rc == 0 and "3 entries" in out
    cp = ledger.with_name("ledger.jsonl.checkpoint.json")
    rc, out, _ = _run(capsys, "verify", ledger, "--trust-store", keys["store"])
    assert rc == 0 and "the checkpoint signed by dave" in out
    original = ledger.read_bytes()
    entries = read_ledger(ledger)
    # a cut-off tail
    ledger.write_text("".join(json.dumps(e) + "\n" for e in entries[:2]))
    rc, out, _ = _run(capsys, "verify", ledger, "--trust-store", keys["store"])
    assert rc == 1 and "fewer entries than the checkpoint signed by dave" in out
    # a rewritten, re-chained ledger (an approval's record replaced)
    forged = [dict(e) for e in entries]
    forged[1] = {**forged[1], "time": "2020-01-01T00:00:00+00:00"}
    ledger.write_text(_rechain(forged))
    rc, out, _ = _run(capsys, "verify", ledger, "--checkpoint", cp, "--trust-store",
                      keys["store"])
    assert rc == 1 and "the ledger was rewritten" in out
    rc, _, err = _gate(capsys, passing, keys)
    assert rc == 1 and "the ledger was rewritten" in err
    # truncated to 0 bytes
    ledger.write_bytes(b"")
    rc, out, _ = _run(capsys, "verify", ledger)
    assert rc == 1 and "the ledger is empty" in out
    ledger.write_bytes(original)
    assert _gate(capsys, passing, keys)[0] == 0
    # a checkpoint signed by a key outside the trust store proves nothing
    rc, _, _ = _run(capsys, "checkpoint", ledger, "--key", keys["mallory"], "--out",
                    tmp_path / "mal.json")
    rc, out, _ = _run(capsys, "verify", ledger, "--checkpoint", tmp_path / "mal.json",
                      "--trust-store", keys["store"])
    assert rc == 1 and "not in the trust store" in out


def test_bundles_say_what_they_prove(capsys, passing: Path, keys, tmp_path: Path) -> None:
    _approved(capsys, passing, keys)
    z = tmp_path / "a.zip"
    rc, _, err = _run(capsys, "export", passing, "--out", z)
    assert rc == 0, err
    rc, out, _ = _run(capsys, "verify", z, "--trust-store", keys["store"])
    assert rc == 0 and "bundle OK" in out and "the audit signed by alice" in out
    assert "approved by bob (model-risk-officer, key sha256:" in out
    rc, out, _ = _run(capsys, "verify", z)
    assert rc == 1 and "bundle NOT VERIFIED" in out

    def forge(change) -> Path:
        """Change files and regenerate the (unsigned) manifest, as a forger would."""
        bad = tmp_path / "forged.zip"
        with zipfile.ZipFile(z) as src:
            files = {n: src.read(n) for n in src.namelist()}
        files = change(files)
        man = json.loads(files["manifest.json"])
        man["files"] = [{"path": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
                        for n, b in sorted(files.items()) if n != "manifest.json"]
        rep = AuditReport.from_json(files["report.json"])
        man["report_sha256"] = rep.digest()
        files["manifest.json"] = json.dumps(man).encode()
        with zipfile.ZipFile(bad, "w") as dst:
            for n, b in files.items():
                dst.writestr(n, b)
        return bad

    def edit_report(files):
        d = json.loads(files["report.json"])
        d["checks"][0]["message"] = "all fine"
        files["report.json"] = json.dumps(d).encode()
        card = json.loads(files["card.json"])
        card["report"]["sha256"] = AuditReport.from_json(files["report.json"]).digest()
        files["card.json"] = json.dumps(card).encode()
        return files

    def handwritten_signoffs(files):
        files = {n: b for n, b in files.items()
                 if not n.startswith("signoffs/") and n != "attestation.json"}
        rep = AuditReport.from_json(files["report.json"])
        for who in ("bob", "carol"):
            files[f"signoffs/{who}.json"] = json.dumps({
                "reviewer": who, "role": "model-risk-officer", "decision": "approve",
                "report_id": rep.report_id, "report_digest": rep.digest()}).encode()
        return files

    bad = forge(edit_report)
    rc, out, _ = _run(capsys, "verify", bad, "--trust-store", keys["store"])
    assert rc == 1 and "bundle NOT OK" in out and "the report changed after it was signed" in out
    bad = forge(handwritten_signoffs)
    rc, out, _ = _run(capsys, "verify", bad, "--trust-store", keys["store"])
    assert rc == 1 and "bundle OK" not in out and "not a signed record" in out


def test_a_bad_sign_key_is_refused_before_anything_is_written(capsys, tmp_path: Path,
                                                              keys) -> None:
    out = tmp_path / "w" / "audit"
    rc, _, err = _run(capsys, "demo", "--out", out, "--rows", "2000", "--sign-key",
                      tmp_path / "nope.key", "--ledger", tmp_path / "w" / "ledger.jsonl", "-q")
    assert rc == 2 and err.startswith("error: no key file") and err.count("\n") == 1
    assert not (tmp_path / "w").exists()  # no report, no model file, no ledger entry
