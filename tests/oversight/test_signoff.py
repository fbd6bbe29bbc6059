"""Signed four-eyes sign-off: keys, trust store, records bound to the report, the rule.

Oracles: the signature is re-verified with ``cryptography`` directly over DSSE's
pre-authentication encoding written out by hand, and by an independent DSSE implementation
(securesystemslib); report digests recomputed with hashlib; failed requirements read off the
report.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lea_ai_audit.errors import InputError, ReportError
from lea_ai_audit.ledger import read_ledger, verify_ledger
from lea_ai_audit.results import AuditReport
from lea_ai_audit.signoff import (
    SIGNOFF_DIR,
    add_to_trust_store,
    card_digest,
    check_signoffs,
    evaluate_signoffs,
    generate_keys,
    load_private_key,
    load_signoffs,
    load_trust_store,
    parse_expiry,
    sign_report,
)


def _sign(report: Path, keys: dict[str, Path], who: str, decision: str = "approve", **kw):
    kw.setdefault("comment", f"{who} reviewed the evidence")
    kw.setdefault("ledger", False)
    return sign_report(report, key=keys[who], reviewer=who, decision=decision, **kw)


def _reasons(report: Path, keys: dict[str, Path], **kw) -> tuple[bool, str]:
    v = check_signoffs(report, trust_store=keys["store"], **kw)
    return v.ok, "\n".join(v.reasons)


# -- keys and the trust store ----------------------------------------------------------------
def test_keygen_private_key_is_0600_and_the_trust_store_holds_the_public_key(tmp_path: Path
                                                                            ) -> None:
    kp = generate_keys("bob", role="model-risk-officer", out=tmp_path / "k",
                       trust_store=tmp_path / "trust.yaml")
    assert stat.S_IMODE(kp.private_key.stat().st_mode) == 0o600
    priv = serialization.load_pem_private_key(kp.private_key.read_bytes(), password=None)
    raw = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    data = yaml.safe_load((tmp_path / "trust.yaml").read_text())
    (entry,) = data["reviewers"]
    assert entry["id"] == "bob" and entry["role"] == "model-risk-officer"
    assert base64.b64decode(entry["public_key"]) == raw
    assert entry["fingerprint"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    pub = yaml.safe_load(kp.public_key.read_text())
    assert pub["public_key"] == entry["public_key"]
    assert b"PRIVATE" not in kp.public_key.read_bytes()
    # never overwritten
    before = kp.private_key.read_bytes()
    with pytest.raises(InputError, match="never overwritten"):
        generate_keys("bob", role="x", out=tmp_path / "k")
    assert kp.private_key.read_bytes() == before
    # another key for a known reviewer is refused, and nothing is written for it
    with pytest.raises(InputError, match="another key"):
        generate_keys("bob", role="model-risk-officer", out=tmp_path / "k2",
                      trust_store=tmp_path / "trust.yaml")
    assert not (tmp_path / "k2" / "bob.key").exists()
    assert len(load_trust_store(tmp_path / "trust.yaml")) == 1


def test_passphrase_protects_the_key(tmp_path: Path) -> None:
    kp = generate_keys("carol", role="dpo", out=tmp_path, passphrase="correct horse")
    pem = kp.private_key.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem and kp.encrypted
    with pytest.raises(TypeError):  # cryptography itself refuses it without the passphrase
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(InputError, match="protected by a passphrase"):
        load_private_key(kp.private_key)
    with pytest.raises(InputError, match="wrong passphrase"):
        load_private_key(kp.private_key, passphrase="wrong")
    key = load_private_key(kp.private_key, passphrase="correct horse")
    sig = key.sign(b"x")
    Ed25519PublicKey.from_public_bytes(kp.identity.public_key).verify(sig, b"x")
    plain = generate_keys("dan", role="dpo", out=tmp_path)
    with pytest.raises(InputError, match="not protected"):
        load_private_key(plain.private_key, passphrase="x")
    with pytest.raises(InputError, match="empty"):
        generate_keys("erin", role="dpo", out=tmp_path, passphrase="")


@pytest.mark.parametrize(("text", "match"), [
    ("reviewers: [", "not valid YAML"),
    ("!!python/object:os.system {}", "not valid YAML"),
    ("- just a list", "not a trust store"),
    ("reviewers:\n- {id: bob, role: r, public_key: bm90IGEga2V5}", "not a base64"),
    ("reviewers:\n- {id: bob, public_key: " + "A" * 43 + "=}", "needs an id and a role"),
])
def test_bad_trust_stores_are_refused_with_a_fix(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "trust.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_trust_store(p)
    assert " — " in str(exc.value)
    with pytest.raises(InputError, match="no trust store"):
        load_trust_store(tmp_path / "missing.yaml")


def test_trust_store_refuses_duplicates_and_edited_fingerprints(tmp_path: Path) -> None:
    a = generate_keys("a", role="r", out=tmp_path)
    entry = a.identity.to_dict()
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"reviewers": [entry, dict(entry, id="b")]}))
    with pytest.raises(InputError, match="share one key"):
        load_trust_store(p)
    p.write_text(yaml.safe_dump({"reviewers": [entry, entry]}))
    with pytest.raises(InputError, match="twice"):
        load_trust_store(p)
    p.write_text(yaml.safe_dump({"reviewers": [dict(entry, fingerprint="sha256:00")]}))
    with pytest.raises(InputError, match="fingerprint"):
        load_trust_store(p)
    add_to_trust_store(tmp_path / "new.yaml", a.public_key)  # from the .pub file
    add_to_trust_store(tmp_path / "new.yaml", a.public_key)  # again: a no-op
    assert list(load_trust_store(tmp_path / "new.yaml").reviewers) == ["a"]


def test_adding_a_reviewer_keeps_the_stores_pinned_policies(tmp_path: Path) -> None:
    a = generate_keys("a", role="r", out=tmp_path)
    b = generate_keys("b", role="r", out=tmp_path / "b")
    pin = {"path": "packs/ours.yaml", "sha256": "ab" * 32}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"reviewers": [a.identity.to_dict()], "policies": [pin]}))
    add_to_trust_store(p, b.public_key)
    store = load_trust_store(p)
    assert list(store.reviewers) == ["a", "b"] and [dict(x) for x in store.policies] == [pin]


# -- a valid four-eyes sign-off --------------------------------------------------------------
def test_two_distinct_approvals_hold_and_the_signature_verifies_independently(
        passing: Path, keys: dict[str, Path]) -> None:
    s1 = _sign(passing, keys, "bob", expires=30)
    s2 = _sign(passing, keys, "carol")
    assert s1.path.parent == passing / SIGNOFF_DIR and s1.path != s2.path
    rep = AuditReport.load(passing)
    rec = json.loads(s1.path.read_text())
    # the fields another engineer's model card reads
    for k in ("reviewer", "role", "decision", "comment", "signed_at", "expires_at", "waiver"):
        assert k in rec
    assert rec["reviewer"] == "bob" and rec["role"] == "model-risk-officer"
    assert rec["decision"] == "approve" and rec["waiver"] is None
    signed = datetime.fromisoformat(rec["signed_at"])
    assert signed.tzinfo is not None and abs(datetime.now(UTC) - signed) < timedelta(minutes=2)
    assert datetime.fromisoformat(rec["expires_at"]) - signed == timedelta(days=30)
    # independent oracle: the report digest by hashlib, the signature by cryptography
    canon = json.dumps(json.loads(rep.to_json()), sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False)
    assert rec["payload"]["report_digest"] == hashlib.sha256(canon.encode()).hexdigest()
    assert rec["payload"]["report_id"] == rep.report_id
    store = yaml.safe_load(keys["store"].read_text())
    entry = next(e for e in store["reviewers"] if e["id"] == "bob")
    env = rec["envelope"]
    payload = base64.b64decode(env["payload"])
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicate"] == rec["payload"]
    names = {x["name"]: x["digest"]["sha256"] for x in statement["subject"]}
    assert names["report.json"] == hashlib.sha256((passing / "report.json").read_bytes()
                                                  ).hexdigest()
    assert names["model"] == hashlib.sha256((passing / "model.skops").read_bytes()).hexdigest()
    # DSSE v1: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, written out by hand
    ptype = env["payloadType"].encode()
    pae = b"DSSEv1 " + str(len(ptype)).encode() + b" " + ptype + b" " + \
        str(len(payload)).encode() + b" " + payload
    (sig,) = env["signatures"]
    assert sig["keyid"] == entry["fingerprint"]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"])).verify(
        base64.b64decode(sig["sig"]), pae)
    # an independent DSSE implementation verifies our envelope too
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    key = SSlibKey(entry["fingerprint"], "ed25519", "ed25519",
                   {"public": base64.b64decode(entry["public_key"]).hex()})
    assert list(Envelope.from_dict(env).verify([key], 1)) == [entry["fingerprint"]]
    assert len(rec["payload"]["nonce"]) == 32
    v = check_signoffs(passing, trust_store=keys["store"])
    assert v.ok, v.reasons
    assert v.approvals == ("bob", "carol") and v.reasons == ()


def test_missing_and_single_approval_are_refused(passing: Path, keys: dict[str, Path]) -> None:
    ok, why = _reasons(passing, keys)
    assert not ok and "0 valid approval(s)" in why and "needs 2" in why
    _sign(passing, keys, "bob")
    ok, why = _reasons(passing, keys)
    assert not ok and "1 valid approval(s)" in why
    _sign(passing, keys, "bob")  # the same reviewer twice is still one pair of eyes
    ok, why = _reasons(passing, keys)
    assert not ok and "1 valid approval(s)" in why


def test_the_authors_own_approval_is_refused(passing: Path, keys: dict[str, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import lea_ai_audit.signoff as so

    assert AuditReport.load(passing).author == "alice"
    with pytest.raises(InputError, match=r"report's author.*this key signed the audit"):
        _sign(passing, keys, "alice")  # refused at signing time, by key
    assert not (passing / SIGNOFF_DIR).exists()
    # an insider's modified tool signs it anyway: the gate still refuses it, by key (the
    # attestation's author key), whatever name the record carries
    att = (passing / "attestation.json").read_bytes()
    (passing / "attestation.json").unlink()
    monkeypatch.setattr(so, "_same_person", lambda *a: False)
    _sign(passing, keys, "alice")
    monkeypatch.undo()
    (passing / "attestation.json").write_bytes(att)
    _sign(passing, keys, "bob")
    _sign(passing, keys, "carol")
    ok, why = _reasons(passing, keys)
    assert not ok and "'alice': is the report's author" in why
    # a pack that allows it (author_may_approve: true) counts her
    v = check_signoffs(passing, trust_store=keys["store"], rule={"author_may_approve": True})
    assert v.ok and v.approvals == ("alice", "bob", "carol")


def test_an_unknown_key_is_refused(passing: Path, keys: dict[str, Path]) -> None:
    _sign(passing, keys, "bob")
    _sign(passing, keys, "carol")
    _sign(passing, keys, "mallory")
    ok, why = _reasons(passing, keys)
    assert not ok and "'mallory': signed with a key that is not in the trust store" in why
    # signing with someone else's id: the key is known, but it is bob's
    _ = sign_report(passing, key=keys["bob"], reviewer="dave", role="model-risk-officer",
                    decision="approve", ledger=False)
    v = check_signoffs(passing, trust_store=keys["store"])
    assert any("key of 'bob', who is not the reviewer it names" in r for r in v.reasons)
    with pytest.raises(InputError, match="not the key of reviewer 'dave'"):
        sign_report(passing, key=keys["bob"], reviewer="dave", decision="approve",
                    trust_store=keys["store"], ledger=False)


def test_a_report_changed_after_signing_is_refused(passing: Path, keys: dict[str, Path]
                                                   ) -> None:
    _sign(passing, keys, "bob")
    _sign(passing, keys, "carol")
    assert _reasons(passing, keys)[0]
    d = json.loads((passing / "report.json").read_text())
    d["checks"][0]["message"] += " (reworded)"  # status unchanged: only the signature sees it
    (passing / "report.json").write_text(json.dumps(d, indent=2))
    ok, why = _reasons(passing, keys)
    assert not ok and why.count("the report changed after it was signed") == 2


def test_an_edited_record_is_refused(passing: Path, keys: dict[str, Path]) -> None:
    s = _sign(passing, keys, "bob")
    _sign(passing, keys, "carol")
    rec = json.loads(s.path.read_text())
    rec["comment"] = "I never said that"  # the top-level copy the card shows
    s.path.write_text(json.dumps(rec))
    ok, why = _reasons(passing, keys)
    assert not ok and "'comment'" in why and "edited" in why
    rec["payload"]["comment"] = "I never said that"  # and the signed payload too
    s.path.write_text(json.dumps(rec))
    ok, why = _reasons(passing, keys)
    assert not ok and "the signature does not match" in why
    s.path.write_text("{not json")
    ok, why = _reasons(passing, keys)
    assert not ok and "cannot be read" in why


def test_a_signoff_copied_from_another_report_is_refused(passing: Path, tmp_path: Path,
                                                         report_sources: dict[str, Path],
                                                         keys: dict[str, Path]) -> None:
    other = Path(shutil.copytree(report_sources["passing"], tmp_path / "other")) / "audit"
    d = json.loads((other / "report.json").read_text())
    d["report_id"] = "f" * 32
    (other / "report.json").write_text(json.dumps(d))
    a = _sign(other, keys, "bob")
    b = _sign(other, keys, "carol")
    assert check_signoffs(other, trust_store=keys["store"]).ok
    (passing / SIGNOFF_DIR).mkdir()
    for s in (a, b):
        shutil.copy(s.path, passing / SIGNOFF_DIR / s.path.name)
    ok, why = _reasons(passing, keys)
    assert not ok and why.count("a sign-off copied from another report") == 2


def test_an_expired_signoff_does_not_count(passing: Path, keys: dict[str, Path]) -> None:
    past = datetime.now(UTC) - timedelta(days=10)
    _sign(passing, keys, "bob", now=past, expires=3)
    _sign(passing, keys, "carol")
    ok, why = _reasons(passing, keys)
    assert not ok and "'bob': the sign-off expired on" in why and "1 valid approval" in why
    # it counted while it was valid
    assert check_signoffs(passing, trust_store=keys["store"],
                          now=past + timedelta(days=1)).ok is False  # carol signed later
    _sign(passing, keys, "dave", expires="2999-01-01")
    assert _reasons(passing, keys)[0]
    # a policy's max_age_days: an approval older than that no longer counts
    v = check_signoffs(passing, trust_store=keys["store"], rule={"max_age_days": 5},
                       now=datetime.now(UTC) + timedelta(days=6))
    assert not v.ok and "more than the policy's 5 days ago" in "\n".join(v.reasons)
    with pytest.raises(InputError, match="not after the signing time"):
        _sign(passing, keys, "dave", expires=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InputError, match="neither a number of days"):
        parse_expiry("next tuesday")


def test_a_rejection_keeps_the_gate_closed_and_needs_a_comment(passing: Path,
                                                               keys: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="rejection needs a comment"):
        _sign(passing, keys, "dave", "reject", comment="  ")
    assert not (passing / SIGNOFF_DIR).exists()  # nothing written for a refused sign-off
    _sign(passing, keys, "bob")
    _sign(passing, keys, "carol")
    _sign(passing, keys, "dave", "reject", comment="the FNR gap for women is not explained")
    v = check_signoffs(passing, trust_store=keys["store"])
    assert not v.ok and v.rejections == ("dave",)
    assert "rejected by 'dave' (model-risk-officer, key sha256:" in "\n".join(v.reasons)
    assert "): the FNR gap" in "\n".join(v.reasons)
    # dave withdraws his rejection (signed): it no longer counts, and only he can do it
    with pytest.raises(InputError, match="no sign-off of this report to withdraw"):
        _sign(passing, keys, "mallory", "withdraw", comment="not mine")
    _sign(passing, keys, "dave", "withdraw", comment="the gap is explained in annex 3")
    v = check_signoffs(passing, trust_store=keys["store"])
    assert v.ok and v.rejections == () and v.approvals == ("bob", "carol"), v.reasons
    assert {c.decision: c.state for c in v.checks if c.reviewer == "dave"} == {
        "reject": "withdrawn", "withdraw": "valid"}
    # bob withdraws his approval: one approval is left
    _sign(passing, keys, "bob", "withdraw", comment="new evidence came in")
    v = check_signoffs(passing, trust_store=keys["store"])
    assert not v.ok and v.approvals == ("carol",)


def test_a_model_changed_after_signing_is_refused(passing: Path, keys: dict[str, Path],
                                                  tmp_path: Path) -> None:
    model = passing / "model.skops"
    _sign(passing, keys, "bob", model_path=model)
    _sign(passing, keys, "carol", model_path=model)
    assert check_signoffs(passing, trust_store=keys["store"], model_path=model).ok
    other = tmp_path / "model.skops"
    other.write_bytes(model.read_bytes() + b"v2")
    v = check_signoffs(passing, trust_store=keys["store"], model_path=other)
    new = hashlib.sha256(other.read_bytes()).hexdigest()
    assert not v.ok and "the model changed after signing" in "\n".join(v.reasons)
    assert new[:12] in "\n".join(v.reasons)


def test_a_model_file_other_than_the_audited_one_cannot_be_signed(tmp_path: Path,
                                                                  keys: dict[str, Path]) -> None:
    import joblib

    from lea_ai_audit import audit
    from lea_ai_audit.datasets import FEATURES, make_demo

    demo = make_demo(n_rows=4000, seed=3)
    path = tmp_path / "model.joblib"
    joblib.dump(demo.model, path)
    rep = audit(demo.test, target="reoffended", sensitive=["sex"], model=demo.model,
                features=FEATURES, model_file=str(path), checks=["performance"],
                author="alice", track=False)
    rep.save(tmp_path / "r")
    assert rep.subject["model"]["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    other = tmp_path / "other.joblib"
    other.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(InputError, match="not the one audited"):
        _sign(tmp_path / "r", keys, "bob", model_path=other)
    s = _sign(tmp_path / "r", keys, "bob")  # without --model: the audited file's digest
    assert s.record["model_sha256"] == rep.subject["model"]["file_sha256"]
    _sign(tmp_path / "r", keys, "carol", model_path=path)
    assert check_signoffs(tmp_path / "r", trust_store=keys["store"], model_path=path).ok
    v = check_signoffs(tmp_path / "r", trust_store=keys["store"], model_path=other)
    assert not v.ok and "is not the one audited" in "\n".join(v.reasons)


# -- a failed audit and its waiver -----------------------------------------------------------
def test_a_failed_audit_is_approved_only_with_a_waiver_of_each_failed_requirement(
        failing: Path, keys: dict[str, Path]) -> None:
    rep = AuditReport.load(failing)
    failed = [c.requirement_id for c in rep.checks if c.status.value == "fail"]
    assert failed, "the demo at bias 0.6 fails"
    with pytest.raises(InputError, match="needs a waiver of " + failed[0]):
        _sign(failing, keys, "bob")
    with pytest.raises(InputError, match="not in the report"):
        _sign(failing, keys, "bob", waive=["no-such-requirement"], justification="x")
    with pytest.raises(InputError, match="needs a justification"):
        _sign(failing, keys, "bob", waive=failed)
    if len(failed) > 1:
        with pytest.raises(InputError, match="needs a waiver"):
            _sign(failing, keys, "bob", waive=failed[:1], justification="x")
    why = "pilot in one district with every flag reviewed by two officers"
    _sign(failing, keys, "bob", waive=failed, justification=why)
    _sign(failing, keys, "carol", waive=failed, justification=why)
    v = check_signoffs(failing, trust_store=keys["store"])
    assert v.ok and v.waived == tuple(failed)
    rec = load_signoffs(failing)[0].record
    assert rec["waiver"] == {"requirements": failed, "justification": why}
    # the model card shows the waiver
    from lea_ai_audit.cards import build_card

    card = build_card(failing, figures=False, trust_store=keys["store"]).data
    shown = [s for s in card["human_oversight"]["signoffs"] if s["waiver"]]
    assert len(shown) == 2 and shown[0]["waiver"]["requirements"] == failed
    assert all(s["state"] == "valid" for s in shown)


# -- roles -----------------------------------------------------------------------------------
def test_a_pack_can_demand_a_role(tmp_path: Path, keys: dict[str, Path]) -> None:
    from lea_ai_audit import audit
    from lea_ai_audit._resources import shipped_dir
    from lea_ai_audit.datasets import FEATURES, make_demo
    from lea_ai_audit.policy import load_policy

    pack = yaml.safe_load(
        (shipped_dir("checklists") / "eu-council-2020-internal-security.yaml").read_text())
    pack["signoff"] = {"min_approvals": 2, "required_roles": ["data-protection-officer"]}
    pack["requirements"] = [r for r in pack["requirements"]
                            if r["check"] == "performance.metrics"]
    demo = make_demo(n_rows=4000, seed=0)
    rep = audit(demo.test, target="reoffended", sensitive=["sex"], model=demo.model,
                features=FEATURES, policy=load_policy(pack), author="alice", track=False)
    assert rep.policy["signoff"]["required_roles"] == ["data-protection-officer"]
    rep.save(tmp_path / "r")
    _sign(tmp_path / "r", keys, "bob")
    _sign(tmp_path / "r", keys, "dave")
    v = check_signoffs(tmp_path / "r", trust_store=keys["store"])
    assert not v.ok and v.approvals == ("bob", "dave")
    assert "no valid approval by a reviewer with the role 'data-protection-officer'" \
        in "\n".join(v.reasons)
    _sign(tmp_path / "r", keys, "carol")
    assert check_signoffs(tmp_path / "r", trust_store=keys["store"]).ok
    # a claimed role is not enough: the trust store's role counts
    s = sign_report(tmp_path / "r", key=keys["dave"], reviewer="dave",
                    role="data-protection-officer", decision="approve", ledger=False)
    v = check_signoffs(tmp_path / "r", trust_store=keys["store"])
    assert not v.ok and "signed as 'data-protection-officer' but the trust store lists" \
        in "\n".join(v.reasons)
    s.path.unlink()


# -- the model card, the ledger, MLflow ------------------------------------------------------
def test_rerendered_card_keeps_its_digest_and_a_changed_card_is_refused(
        passing: Path, keys: dict[str, Path]) -> None:
    from lea_ai_audit.cards import write_cards

    before = card_digest(passing)
    assert before is not None
    _sign(passing, keys, "bob")
    _sign(passing, keys, "carol")
    write_cards(passing, passing, report_dir=passing)  # no trust store: nothing is counted
    md = (passing / "card.md").read_text()
    assert "Signed off: 0 approval(s), 2 not counted" in md
    assert md.count("no: no trust store was given to verify it") == 2
    write_cards(passing, passing, report_dir=passing, trust_store=keys["store"])
    assert "Signed off: 2 approval(s)" in (passing / "card.md").read_text()
    assert card_digest(passing) == before
    assert _reasons(passing, keys)[0]
    write_cards(passing, passing, report_dir=passing,
                metadata={"intended_use": "any purpose at all"})
    ok, why = _reasons(passing, keys)
    assert not ok and "the model card (card.json) changed after it was signed" in why


def test_every_signoff_goes_to_the_ledger(passing: Path, keys: dict[str, Path],
                                          tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    s1 = _sign(passing, keys, "bob", ledger=ledger)
    s2 = _sign(passing, keys, "carol", ledger=ledger)
    assert s1.ledger == ledger and s1.ledger_error is None
    entries = read_ledger(ledger)
    assert [e["kind"] for e in entries] == ["signoff", "signoff"]
    assert [e["data"]["record"] for e in entries] == [s1.record, s2.record]
    assert entries[1]["prev"] == entries[0]["hash"]
    assert verify_ledger(ledger).ok
    # the default: ledger.jsonl beside the report directory
    s3 = sign_report(passing, key=keys["dave"], reviewer="dave", decision="approve")
    assert s3.ledger == passing.parent.resolve() / "ledger.jsonl"
    assert read_ledger(s3.ledger)[-1]["data"]["reviewer"] == "dave"


def test_mlflow_failure_never_fails_the_signoff(passing: Path, keys: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import lea_ai_audit.tracking as tracking

    def broken(report_dir, record, **kw):  # MLflow raising something unexpected
        raise ConnectionError("server went away")

    monkeypatch.setattr(tracking, "log_signoff", broken)
    s = _sign(passing, keys, "bob")
    assert s.path.is_file() and s.tracked is False and "server went away" in s.tracking_note
    monkeypatch.undo()
    s = _sign(passing, keys, "carol")  # the real function: the report was never logged
    assert s.tracked is False and "no MLflow run" in s.tracking_note


def test_evidence_files_changed_after_the_audit_are_refused(tmp_path: Path,
                                                            keys: dict[str, Path]) -> None:
    from lea_ai_audit.results import CheckResult, Evidence, Status

    chk = CheckResult(check_id="performance.metrics", requirement_id="perf", status=Status.PASS,
                      message="ok", evidence=(Evidence.file("plot", "p.png", b"PNG bytes",
                                                            media_type="image/png"),))
    rep = AuditReport(checks=(chk,), status=Status.PASS, report_id="a" * 32, author="alice",
                      policy={"id": "p", "signoff": {"min_approvals": 2}})
    rep.save(tmp_path / "r")
    _sign(tmp_path / "r", keys, "bob")
    _sign(tmp_path / "r", keys, "carol")
    assert check_signoffs(tmp_path / "r", trust_store=keys["store"]).ok
    plot = tmp_path / "r" / rep.files()[0].data["path"]
    assert plot.read_bytes() == b"PNG bytes"
    plot.write_bytes(b"another picture")
    v = check_signoffs(tmp_path / "r", trust_store=keys["store"])
    assert not v.ok and "changed after the audit" in "\n".join(v.reasons)
    with pytest.raises(ReportError, match="evidence is not as audited"):
        _sign(tmp_path / "r", keys, "dave")


def test_evaluate_accepts_plain_records(passing: Path, keys: dict[str, Path]) -> None:
    a = _sign(passing, keys, "bob").record
    b = _sign(passing, keys, "carol").record
    rep = AuditReport.load(passing)
    assert evaluate_signoffs(rep, [a, b], keys["store"]).ok
    assert not evaluate_signoffs(rep, [a], keys["store"]).ok
    assert evaluate_signoffs(rep, [a], keys["store"], rule={"min_approvals": 1}).ok


def test_a_signoff_is_logged_to_the_reports_mlflow_run(tmp_path: Path, keys: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A real local MLflow store: the audit logs its run, the sign-off lands on that run."""
    from mlflow import MlflowClient

    from lea_ai_audit import audit
    from lea_ai_audit.datasets import FEATURES, make_demo

    monkeypatch.delenv("LEA_AUDIT_TRACKING", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    demo = make_demo(n_rows=4000, seed=0)
    audit(demo.test, target="reoffended", sensitive=["sex"], model=demo.model,
          features=FEATURES, checks=["performance"], author="alice", out=tmp_path / "r",
          track=uri)
    s = _sign(tmp_path / "r", keys, "bob", ledger=tmp_path / "ledger.jsonl")
    assert s.tracked is True, s.tracking_note
    run_id = json.loads((tmp_path / "r" / "mlflow.json").read_text())["run_id"]
    client = MlflowClient(uri)
    tags = client.get_run(run_id).data.tags
    # the ledger's head after the sign-off, kept in the run: an anchor outside the folder
    last = read_ledger(tmp_path / "ledger.jsonl")[-1]
    assert tags["lea.ledger.head"] == f"{last['seq']}:{last['hash']}"
    assert tags["lea.signoff.latest"].startswith("approve by bob (model-risk-officer) at "
                                                 + s.record["signed_at"])
    (art,) = client.list_artifacts(run_id, "signoffs")
    got = json.loads(Path(client.download_artifacts(run_id, art.path, str(tmp_path))).read_text())
    assert got["envelope"] == s.record["envelope"]


def test_concurrent_keygens_all_land_in_one_trust_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from lea_ai_audit.signoff import generate_keys; "
            "generate_keys(sys.argv[1], role='reviewer', out=sys.argv[2], "
            "trust_store=sys.argv[3])")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"r{i}", str(tmp_path / "k"),
                               str(tmp_path / "trust.yaml")]) for i in range(5)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 5
    assert sorted(load_trust_store(tmp_path / "trust.yaml").reviewers) == \
        [f"r{i}" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "trust.yaml"]  # no lock file
