"""Fuzzing of every JSON file lea-audit reads: report.json, sign-off records, attestation.json,
the ledger (JSON Lines), its signed checkpoint and the evidence bundle (.zip) — issue #23.6.

One real audit is built per module (a small fairness audit with a file evidence, attested by
its author alice, approved by bob and carol, recorded in a ledger with a signed checkpoint, and
exported as a bundle). Hypothesis then mutates each file — (a) structurally: the JSON is parsed,
a random sub-value is replaced by another type, a key deleted or added, a value nested deeply,
a huge number or a string with control characters, markup or odd Unicode put in, a key
duplicated — and re-serialised; (b) byte by byte: truncated, flipped, garbage inserted, emptied
— and reads it back through the real reader *and* the verification a user meets (the gate,
the sign-off rule, ``lea-audit verify``).

What must hold: either it works, or a :class:`lea_ai_audit.errors.LeaAuditError` is raised, or
the verdict says not ok with a reason — never another exception; and a mutation that changes
what was signed or hashed is never reported valid.

The last part drives ``lea-audit`` in a subprocess with a handful of hostile files per format:
exit code 2 and one ``error: ...`` line for bad input (1 for a closed gate / a failed
verification), never a traceback or an "internal error".
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lea_ai_audit.errors import LeaAuditError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SETTINGS = {"deadline": None, "derandomize": False,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture,
                                      HealthCheck.filter_too_much]}


# -- the world: one real, fully signed audit --------------------------------------------------
class World:
    """The module's audit: its directory, ledger, checkpoint, bundle and trust store, and what
    they held when written (a plain class: hypothesis prints its short repr)."""

    base: Path
    audit: Path           # the report directory (report.json, evidence/, signoffs/, attestation)
    ledger: Path
    checkpoint: Path
    bundle: Path
    store: Any            # TrustStore (alice, bob, carol)
    store_path: Path
    report_bytes: bytes
    digest: str
    signoff_files: tuple[str, ...]
    entries: tuple[str, ...]  # the ledger's entries as canonical JSON
    author_fp: str

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return f"World({self.base})"


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from lea_ai_audit import audit
    from lea_ai_audit.attest import attest_report, verify_attestation
    from lea_ai_audit.cards.bundle import export_bundle, verify_bundle
    from lea_ai_audit.datasets import make_demo
    from lea_ai_audit.ledger import checkpoint_path, record_assessment, sign_checkpoint
    from lea_ai_audit.results import CheckResult, Evidence, Status
    from lea_ai_audit.runner import _place_files
    from lea_ai_audit.signoff import (
        evaluate_signoffs,
        failed_requirements,
        generate_keys,
        load_signoffs,
        load_trust_store,
        sign_report,
    )

    base = tmp_path_factory.mktemp("fuzz-world")
    keys = {who: generate_keys(who, role=role, out=base / "keys",
                               trust_store=base / "keys" / "trust.yaml").private_key
            for who, role in (("alice", "data-scientist"), ("bob", "model-risk-officer"),
                              ("carol", "data-protection-officer"))}
    store_path = base / "keys" / "trust.yaml"
    store = load_trust_store(store_path)
    df = make_demo(1000, bias=0.0, seed=1).test
    rep = audit(df, target="reoffended", sensitive=["ethnicity", "sex"], prediction="flagged",
                score="risk", checks=["fairness"], track=False, author="alice")
    ev = Evidence.file("notes <b>", "notes.txt", b"the evidence\n", "a text file",
                       media_type="text/plain")
    res = CheckResult(check_id="test.file", requirement_id="file-evidence", status=Status.PASS,
                      message="a file", title="A file", clauses=("AI Act Art. 13",),
                      evidence=_place_files([ev], "file-evidence", rep.report_id))
    rep = rep.with_checks([*rep.checks, res])
    folder = base / "audit"
    rep.save(folder)
    ledger = base / "ledger.jsonl"
    record_assessment(ledger, rep, report_dir=folder)
    attest_report(folder, key=keys["alice"])
    failed = failed_requirements(rep)
    for who in ("bob", "carol"):
        sign_report(folder, key=keys[who], reviewer=who, decision="approve",
                    comment=f"reviewed by {who}", waive=failed or None,
                    justification="accepted" if failed else None, trust_store=store,
                    ledger=ledger, track=False)
    sign_checkpoint(ledger, key=keys["carol"])
    bundle = export_bundle(folder, base / "bundle.zip")
    att = verify_attestation(folder, rep, store)
    assert att is not None and att.ok, att
    verdict = evaluate_signoffs(rep, load_signoffs(folder), store, report_dir=folder,
                                author_fingerprint=att.fingerprint)
    assert verdict.ok, verdict.reasons
    check = verify_bundle(bundle, trust_store=store)
    assert check.ok and len(check.approvals) == 2, check
    lines = ledger.read_text(encoding="utf-8").splitlines()
    return World(base=base, audit=folder, ledger=ledger, checkpoint=checkpoint_path(ledger),
                 bundle=bundle, store=store, store_path=store_path,
                 report_bytes=(folder / "report.json").read_bytes(), digest=rep.digest(),
                 signoff_files=tuple(sorted(p.name for p in (folder / "signoffs").iterdir())),
                 entries=tuple(_canon(json.loads(x)) for x in lines),
                 author_fp=str(att.fingerprint))


@pytest.fixture
def scratch() -> Any:
    """A fresh directory per hypothesis example (a function fixture is shared by examples)."""
    made: list[str] = []

    def new() -> Path:
        made.append(tempfile.mkdtemp(prefix="lea-fuzz-"))
        return Path(made[-1])

    yield new
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def _copy_audit(w: World, dest: Path) -> Path:
    return Path(shutil.copytree(w.audit, dest / "audit"))


# -- mutations --------------------------------------------------------------------------------
RAW = "@@RAW:"
#: JSON tokens no Python value serialises to: beyond float, beyond int's string limit, ...
RAW_TOKENS = ["1e400", "-1e400", "1" + "0" * 5000, "9" * 400, "-0", "1E+308", "0e0",
              "123456789012345678901234567890", "NaN", "Infinity"]
HOSTILE_STRINGS = [
    "", " ", "\x00", "\x1b[2J\x1b[31mred", "line\r\nerror: forged line", "\t\n",
    "<script>alert(1)</script>", "</td></table><img src=x onerror=alert(2)>", "{{ 7*7 }}",
    "ünïcødé 🚓", "\u202eevil\u202c", "\ud800", "\udfff lone", "\ufeffbom", "a" * 5000,
    "../../etc/passwd", "/etc/passwd", "C:\\x", "pass", "fail", "approve", "sha256:" + "0" * 64,
    "0" * 64, "1.0", "2.0", "2026-01-01T00:00:00+00:00", "9999-12-31T23:59:59", "NaN", "%s%n",
]
ODD_KEYS = ["content", "__class__", "__proto__", "", "checks", "status", "payload", "envelope",
            "hash", "seq", "prev", "ü", "\x00", "signatures", "files", "path"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64 + 1, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, 0.5, 1.5]),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from([RAW + t for t in RAW_TOKENS]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=4),
                                                      st.sampled_from(ODD_KEYS)),
                                            inner, max_size=3)),
    max_leaves=6)


def _nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf} if as_dict else [leaf]
    return leaf


def _path(draw: Any, doc: Any) -> list[Any]:
    """A random path into ``doc``, biased towards shallow nodes (each step descends with 3/4)."""
    path: list[Any] = []
    node = doc
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict)
                                   else range(len(node))))
        path.append(key)
        node = node[key]
    return path


def _get(doc: Any, path: list[Any]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _set(doc: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


@st.composite
def mutated_doc(draw: Any, doc: Any) -> Any:
    """``doc`` (a fresh copy) with 1 to 3 structural mutations."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        path = _path(draw, doc)
        target = _get(doc, path)
        op = draw(st.sampled_from(["replace", "retype", "delete", "add", "copy", "deep",
                                   "empty"]))
        if op == "replace":
            doc = _set(doc, path, draw(values))
        elif op == "retype":
            doc = _set(doc, path, draw(st.sampled_from([
                str(target), [target], {"value": target}, None, len(str(target)),
                bool(target), float(len(str(target))) + 0.5])))
        elif op == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif op == "add":
            if isinstance(target, dict):
                target[draw(st.one_of(st.sampled_from(ODD_KEYS), st.text(max_size=6)))] = \
                    draw(values)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(values))
            else:
                doc = _set(doc, path, [target, draw(values)])
        elif op == "copy":
            other = _get(doc, _path(draw, doc))
            doc = _set(doc, path, json.loads(json.dumps(other)))
        elif op == "deep":
            doc = _set(doc, path, _nest(draw(st.sampled_from([5, 30, 62, 70, 200])), target,
                                        draw(st.booleans())))
        elif op == "empty":
            doc = _set(doc, path, draw(st.sampled_from([{}, [], "", 0])))
    return doc


def dump(doc: Any, *, style: int = 0, dup: tuple[str, Any] | None = None) -> bytes:
    """JSON text of ``doc``; ``RAW`` placeholders become their raw tokens; ``dup`` appends a
    duplicate key to the top-level object (json keeps the last one)."""
    text = json.dumps(doc, indent=(None, 2, 0)[style % 3], ensure_ascii=style % 2 == 0,
                      sort_keys=style >= 3)
    text = re.sub(r'"@@RAW:([^"]*)"', lambda m: m.group(1), text)
    if dup is not None and text.rstrip().endswith("}") and text.strip() != "{}":
        key, value = dup
        value_text = re.sub(r'"@@RAW:([^"]*)"', lambda m: m.group(1), json.dumps(value))
        text = text.rstrip()[:-1] + f", {json.dumps(key)}: {value_text}}}"
    return text.encode("utf-8", "surrogatepass")


@st.composite
def json_mutation(draw: Any, doc: Any, keys: list[str]) -> bytes:
    new = draw(mutated_doc(doc))
    dup = None
    if draw(st.integers(0, 4)) == 0:
        dup = (draw(st.sampled_from(keys or ["x"])), draw(values))
    return dump(new, style=draw(st.integers(0, 5)), dup=dup)


@st.composite
def byte_mutation(draw: Any, raw: bytes) -> bytes:
    n = len(raw)
    op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "whole", "prefix"]))
    pos = draw(st.integers(0, max(n - 1, 0)))
    if op == "truncate":
        return raw[:pos]
    if op == "flip":
        return raw[:pos] + bytes([raw[pos] ^ draw(st.integers(1, 255))]) + raw[pos + 1:] \
            if n else b"\x00"
    if op == "insert":
        junk = draw(st.one_of(st.binary(min_size=1, max_size=8),
                              st.sampled_from([b"\xff\xfe", b"\x00", b"\n", b"{", b"]", b'"',
                                               b"\\", b"\xc3", b"\xed\xa0\x80", b" "])))
        return raw[:pos] + junk + raw[pos:]
    if op == "delete":
        return raw[:pos] + raw[pos + draw(st.integers(1, 64)):]
    if op == "prefix":
        return draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b" ", b"[", b"\x00"])) + raw
    return draw(st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"1", b"\xff" * 8,
                                 raw + raw, b"[" * 100 + b"]" * 100, b"{" * 65 + b"}" * 65]))


def file_mutation(raw: bytes) -> st.SearchStrategy[bytes]:
    doc = json.loads(raw)
    keys = sorted(doc) if isinstance(doc, dict) else []
    return st.one_of(json_mutation(doc, keys), json_mutation(doc, keys), byte_mutation(raw))


def typed(fn: Callable[[], Any]) -> Any:
    """``fn()``, or None when it raised a LeaAuditError (the only exception allowed)."""
    try:
        return fn()
    except LeaAuditError as exc:
        assert str(exc).strip(), "a typed error without a message"
        assert "\n" not in exc.what, f"a multi-line error: {exc!r}"
        return None


# -- report.json ------------------------------------------------------------------------------
def _use_report(w: World, folder: Path, rep: Any) -> None:
    """Everything a user does with a loaded report: must not raise anything but our errors."""
    from lea_ai_audit.attest import verify_attestation
    from lea_ai_audit.gate import evaluate, evaluate_gate, junit_xml
    from lea_ai_audit.signoff import evaluate_signoffs, load_signoffs

    rep.to_json()
    digest = rep.digest()
    repr(rep)
    rep._repr_html_()
    rep.summary_rows()
    rep.counts()
    junit_xml(rep)
    for e in rep.files():
        typed(lambda e=e: e.read(folder))
    typed(lambda: evaluate_gate(rep))
    typed(lambda: evaluate(folder))
    att = verify_attestation(folder, rep, w.store)
    assert att is not None
    v = evaluate_signoffs(rep, load_signoffs(folder), w.store, report_dir=folder,
                          author_fingerprint=att.fingerprint if att.ok else None)
    changed = (folder / "report.json").read_bytes() != w.report_bytes
    if changed:  # report.json's bytes are bound by the attestation and by every sign-off
        assert not att.ok, "an edited report.json passes its author's attestation"
        assert not v.ok, "an edited report.json passes the sign-off rule"
        assert not any(c.state == "valid" for c in v.checks), v.checks
    if digest != w.digest:
        assert not v.ok


@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_fuzz_report(world: World, scratch: Any, data: Any) -> None:
    from lea_ai_audit.results import AuditReport

    raw = data.draw(file_mutation(world.report_bytes))
    folder = _copy_audit(world, scratch())
    (folder / "report.json").write_bytes(raw)
    rep = typed(lambda: AuditReport.load(folder))
    event("report loads" if rep is not None else "report refused")
    if rep is not None:
        _use_report(world, folder, rep)
        rep2 = AuditReport.from_json(rep.to_json())  # what we write back, we read back
        assert rep2 == rep


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_fuzz_report_card(world: World, scratch: Any, data: Any) -> None:
    """``lea-audit card DIR``: a report that loads renders (or fails with our error)."""
    from lea_ai_audit.cards import build_card, render

    raw = data.draw(json_mutation(json.loads(world.report_bytes), []))
    folder = _copy_audit(world, scratch())
    (folder / "report.json").write_bytes(raw)
    card = typed(lambda: build_card(folder, figures=False, trust_store=world.store))
    if card is not None:
        for fmt in ("md", "json", "html"):
            render(card, fmt)


def test_a_file_evidence_never_takes_its_bytes_from_the_json(world: World,
                                                              tmp_path: Path) -> None:
    """A "content" key written into report.json is ignored: the evidence's bytes are read
    from its file and checked against its digest (else an edited report would carry forged
    evidence past Evidence.read)."""
    from lea_ai_audit.results import AuditReport

    folder = _copy_audit(world, tmp_path)
    d = json.loads(world.report_bytes)
    d["checks"][-1]["evidence"][0]["content"] = "forged"
    (folder / "report.json").write_text(json.dumps(d), encoding="utf-8")
    e = AuditReport.load(folder).files()[0]
    assert e.content is None
    assert e.read(folder) == b"the evidence\n"


@pytest.mark.parametrize("card", [b"[]", b'{"report": []}', b'{"report": {"sha256": 1}}',
                                  b'{"report": {"sha256": "DIGEST"}, "metadata": [1]}',
                                  b'{"report": {"sha256": "DIGEST"}, "metadata": {"owner": {}}}',
                                  b"\xff", b'{"report": {"sha256": "DIGEST"}, "x": 1e400}'])
def test_gate_refuses_a_hostile_card_json(world: World, tmp_path: Path, card: bytes) -> None:
    """The gate re-renders the officers' card from card.json's metadata: an edited card.json
    is a reason to close, never a crash."""
    from lea_ai_audit.gate import _card_problems
    from lea_ai_audit.results import AuditReport
    from lea_ai_audit.signoff import card_digest

    folder = _copy_audit(world, tmp_path)
    for name in ("card.html", "card.md"):
        (folder / name).write_text("x", encoding="utf-8")
    (folder / "card.json").write_bytes(card.replace(b"DIGEST", world.digest.encode()))
    problems = _card_problems(folder, AuditReport.load(folder), world.store)
    assert problems and all(isinstance(p, str) and p for p in problems)
    assert card_digest(folder) is not None


@pytest.mark.parametrize("card", [b"[]", b'"a card"', b'{"metadata": [1]}', b"\xff",
                                  b'{"metadata": {}, "x": NaN}'])
def test_card_write_refuses_a_hostile_card_json(world: World, tmp_path: Path, card: bytes
                                                ) -> None:
    """``lea-audit card DIR --write`` keeps the metadata of the card.json beside the report:
    one that is not a model card is the one-line error and the cards stay as they were."""
    folder = _copy_audit(world, tmp_path)
    (folder / "card.json").write_bytes(card)
    (folder / "card.md").write_text("old card", encoding="utf-8")
    rc, out, err = _cli_in_process("card", folder, "--write")
    assert "card.json" in _one_error("card --write", rc, out, err)
    assert (folder / "card.json").read_bytes() == card
    assert (folder / "card.md").read_text(encoding="utf-8") == "old card"


# -- sign-off records -------------------------------------------------------------------------
def _same_signed(new: Any, old: dict[str, Any]) -> bool:
    """Whether the record ``new`` holds what ``old`` signed: the same signed statement, and
    every field repeated at the top level (a copy for readers; it may be left out) equal to the
    signed one."""
    from lea_ai_audit.signoff import TOP_FIELDS

    if not isinstance(new, dict) or not isinstance(new.get("envelope"), dict):
        return False
    env = new["envelope"]
    try:
        payload = base64.b64decode(str(env.get("payload")), validate=True)
    except ValueError:
        return False
    if payload != base64.b64decode(old["envelope"]["payload"]) or \
            env.get("payloadType") != old["envelope"]["payloadType"]:
        return False
    return all(new[k] == old[k] for k in (*TOP_FIELDS, "payload") if k in new)


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_fuzz_signoff(world: World, scratch: Any, data: Any) -> None:
    from lea_ai_audit.results import AuditReport
    from lea_ai_audit.signoff import check_signoffs, evaluate_signoffs, load_signoffs

    name = data.draw(st.sampled_from(world.signoff_files))
    original = (world.audit / "signoffs" / name).read_bytes()
    raw = data.draw(file_mutation(original))
    folder = _copy_audit(world, scratch())
    (folder / "signoffs" / name).write_bytes(raw)
    if data.draw(st.booleans()):  # a second file beside the real ones
        (folder / "signoffs" / "zz-extra.json").write_bytes(raw)
    rep = AuditReport.load(folder)
    items = load_signoffs(folder)
    v = evaluate_signoffs(rep, items, world.store, report_dir=folder,
                          author_fingerprint=world.author_fp)
    v2 = typed(lambda: check_signoffs(folder, trust_store=world.store))
    assert v2 is not None and v2.ok == v.ok
    try:
        new = json.loads(raw)
    except ValueError:
        new = None
    same = _same_signed(new, json.loads(original))
    states = {c.file: c.state for c in v.checks}
    event(f"signed content {'kept' if same else 'changed'}: {states.get(name)}")
    if not same:
        assert states.get(name) != "valid", (name, v.checks)
        assert states.get("zz-extra.json") != "valid", v.checks
        assert not v.ok, "a tampered sign-off counts"
    assert len(v.approvals) <= 2
    if data.draw(st.integers(0, 3)) == 0:  # `lea-audit card DIR --trust-store T` shows them
        from lea_ai_audit.cards import build_card, render

        card = typed(lambda: build_card(folder, figures=False, trust_store=world.store))
        if card is not None:
            shown = {x["file"]: x["state"] for x in card.data["human_oversight"]["signoffs"]}
            assert shown.get(name) in (None, states.get(name), "unreadable"), (shown, states)
            render(card, "md")
    # the same records handed over as plain dicts (the API's other form), and as ledger records
    dicts = [s.record for s in items if s.record is not None]
    evaluate_signoffs(rep, dicts, world.store)
    if isinstance(new, dict):
        evaluate_signoffs(rep, [], world.store, ledger_records=[(7, new)])


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_fuzz_attestation(world: World, scratch: Any, data: Any) -> None:
    from lea_ai_audit.attest import load_attestation, verify_attestation
    from lea_ai_audit.results import AuditReport
    from lea_ai_audit.signoff import verify_attestation_author

    original = (world.audit / "attestation.json").read_bytes()
    raw = data.draw(file_mutation(original))
    folder = _copy_audit(world, scratch())
    (folder / "attestation.json").write_bytes(raw)
    rep = AuditReport.load(folder)
    typed(lambda: load_attestation(folder))
    att = verify_attestation(folder, rep, world.store)
    assert att is not None
    event(f"attestation {'ok' if att.ok else 'refused'}")
    fp = verify_attestation_author(folder, rep, world.store)
    assert (fp is not None) == att.ok
    try:
        new = json.loads(raw)
    except ValueError:
        new = None
    if att.ok:
        old = json.loads(original)
        assert isinstance(new, dict)
        assert base64.b64decode(str(new.get("payload"))) == base64.b64decode(old["payload"])
        assert new.get("payloadType") == old["payloadType"]
    else:
        assert att.problems and all(isinstance(p, str) and p for p in att.problems)


# -- the ledger -------------------------------------------------------------------------------
@st.composite
def ledger_mutation(draw: Any, text: str) -> bytes:
    lines = text.split("\n")[:-1]  # the file ends with a newline
    op = draw(st.sampled_from(["json", "json", "drop", "dup", "swap", "cut", "blank", "junk",
                               "bytes"]))
    i = draw(st.integers(0, len(lines) - 1))
    if op == "json":
        doc = json.loads(lines[i])
        new = dump(draw(mutated_doc(doc)), style=draw(st.sampled_from([1, 4])))
        lines[i] = new.decode("utf-8", "surrogatepass").replace("\n", " ")
    elif op == "drop":
        del lines[i]
    elif op == "dup":
        lines.insert(i, lines[i])
    elif op == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "cut":  # a write cut off half-way
        out = "\n".join(lines[:i + 1])
        return out[:draw(st.integers(0, len(out)))].encode("utf-8")
    elif op == "blank":
        lines.insert(i, draw(st.sampled_from(["", " ", "\r", "\t"])))
    elif op == "junk":
        lines.insert(i, draw(st.sampled_from(["null", "[]", "{}", '{"hash": 1}', "1e400",
                                              '"x"', "{" * 70, "\x00", "\ufeff{}"])))
    else:
        return draw(byte_mutation(text.encode("utf-8")))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def _entries_now(path: Path) -> list[str] | None:
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            out.append(_canon(json.loads(line)))
        except ValueError:
            return None
    return out


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_fuzz_ledger(world: World, scratch: Any, data: Any) -> None:
    from lea_ai_audit.gate import _ledger_check
    from lea_ai_audit.ledger import append_entry, read_ledger, verify_checkpoint, verify_ledger
    from lea_ai_audit.results import AuditReport
    from lea_ai_audit.signoff import evaluate_signoffs, load_signoffs

    raw = data.draw(ledger_mutation(world.ledger.read_text(encoding="utf-8")))
    base = scratch()
    folder = _copy_audit(world, base)
    path = base / "ledger.jsonl"
    path.write_bytes(raw)
    cp = base / "ledger.jsonl.checkpoint.json"
    shutil.copy(world.checkpoint, cp)
    head = world.entries[-1] and json.loads(world.entries[-1])["hash"]
    chk = typed(lambda: verify_ledger(path))
    anchored = typed(lambda: verify_ledger(path, expect_head=head))
    typed(lambda: read_ledger(path))
    cp_problems = typed(lambda: verify_checkpoint(path, cp, world.store))
    now = _entries_now(path)
    event("ledger refused" if chk is None else "ledger ok" if chk.ok else "ledger not ok")
    if chk is not None:
        assert isinstance(chk.problems, list) and all(isinstance(p, str) for p in chk.problems)
        if chk.ok:  # an intact chain: at most the tail was cut off
            assert now is not None and now == list(world.entries[:len(now)]), now
    if anchored is not None and anchored.ok:
        assert now == list(world.entries), "a changed ledger verifies against its head"
    if chk is not None and chk.ok and cp_problems is not None and not cp_problems[0]:
        assert now == list(world.entries), "a changed ledger verifies against its checkpoint"
    # what the gate does with it (lea-audit gate --require-signoff)
    rep = AuditReport.load(folder)
    got = typed(lambda: _ledger_check(folder, rep, world.store, ledger=path,
                                      expect_head=None, checkpoint=None))
    if got is not None:
        led, records = got
        if led.ok:
            assert now is not None and now == list(world.entries[:len(now)])
        evaluate_signoffs(rep, load_signoffs(folder), world.store, report_dir=folder,
                          ledger_records=records)
    # appending to a damaged ledger: refused with our error, or appended to an intact one
    typed(lambda: append_entry(path, "note", {"x": 1}))


@settings(max_examples=50, **SETTINGS)
@given(data=st.data())
def test_fuzz_checkpoint(world: World, scratch: Any, data: Any) -> None:
    """The signed checkpoint (``lea-audit verify LEDGER --checkpoint``): a changed statement
    never holds."""
    from lea_ai_audit.ledger import verify_checkpoint

    original = world.checkpoint.read_bytes()
    raw = data.draw(file_mutation(original))
    base = scratch()
    cp = base / "cp.json"
    cp.write_bytes(raw)
    got = typed(lambda: verify_checkpoint(world.ledger, cp, world.store))
    if got is not None and not got[0]:
        new, old = json.loads(raw), json.loads(original)
        assert base64.b64decode(new["payload"]) == base64.b64decode(old["payload"])


# -- the bundle -------------------------------------------------------------------------------
ODD_NAMES = ["../evil.json", "/abs.json", "a\\b.json", "C:evil", "c:/x", "evidence/../../x",
             "signoffs/../../x.json", "x\x00y.json", "ü/ñ 🚓.json", "a" * 300, "report.json/x",
             "signoffs", "signoffs/", "./report.json", "manifest.json", "", ".", "sub/./x",
             "signoffs/zz.json", "attestation.json", "card.json", "evidence"]


def _members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i, zf.read(i)) for i in zf.infolist()]


def _write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, raw in members:
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, raw)


def _manifest_for(members: list[tuple[str, bytes]], old: Any) -> bytes:
    import hashlib

    doc = dict(old) if isinstance(old, dict) else {}
    doc["files"] = [{"path": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
                    for n, b in members if n != "manifest.json"]
    return json.dumps(doc).encode("utf-8")


def _patch_central(raw: bytes, field: str, value: int) -> bytes:
    """Overwrite a field of the first central-directory entry (sizes, method, flags)."""
    at = raw.find(b"PK\x01\x02")
    if at < 0:
        return raw
    offset, fmt = {"method": (10, "<H"), "flags": (8, "<H"), "crc": (16, "<I"),
                   "csize": (20, "<I"), "usize": (24, "<I")}[field]
    return raw[:at + offset] + struct.pack(fmt, value) + raw[at + offset + struct.calcsize(fmt):]


@st.composite
def bundle_mutation(draw: Any, zpath: Path) -> tuple[bytes, bool]:
    """(the new archive's bytes, whether the manifest was rewritten to match)."""
    members = [(i.filename, b) for i, b in _members(zpath)]
    names = [n for n, _ in members]
    manifest = json.loads(dict(members)["manifest.json"])
    op = draw(st.sampled_from(["member", "member", "member", "add", "remove", "dup", "rename",
                               "central", "bytes"]))
    rewrite = draw(st.booleans())
    if op == "member":
        i = draw(st.sampled_from(range(len(members))))
        name, raw = members[i]
        try:
            json.loads(raw)
            strat = file_mutation(raw)
        except ValueError:
            strat = byte_mutation(raw)
        members[i] = (name, draw(strat))
    elif op == "add":
        members.append((draw(st.sampled_from(ODD_NAMES)),
                        draw(st.sampled_from([b"{}", b"x", dict(members)["report.json"],
                                              b"\x00" * 10]))))
    elif op == "remove":
        del members[draw(st.sampled_from(range(len(members))))]
    elif op == "dup":
        members.append(members[draw(st.sampled_from(range(len(members))))])
    elif op == "rename":
        i = draw(st.sampled_from(range(len(members))))
        members[i] = (draw(st.sampled_from(ODD_NAMES)), members[i][1])
    if rewrite and op != "bytes":
        members = [(n, b) for n, b in members if n != "manifest.json"]
        members.insert(0, ("manifest.json", _manifest_for(members, manifest)))
    buf = zpath.parent / f".tmp-{os.getpid()}.zip"
    try:
        _write_zip(buf, [(n, b) for n, b in members if n != ""] if op != "rename"
                   else [(n or "empty", b) for n, b in members])
        out = buf.read_bytes()
    finally:
        buf.unlink(missing_ok=True)
    if op == "central":
        field = draw(st.sampled_from(["method", "flags", "crc", "csize", "usize"]))
        value = draw(st.sampled_from([0, 1, 8, 12, 99, 0xFFFF, 2**31, 2**32 - 1, 5]))
        out = _patch_central(out, field, value if field not in ("method", "flags")
                             else value & 0xFFFF)
    elif op == "bytes":
        out = draw(byte_mutation(zpath.read_bytes()))
    assert names  # the original had members
    return out, rewrite


@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_fuzz_bundle(world: World, scratch: Any, data: Any) -> None:
    from lea_ai_audit.cards.bundle import verify_bundle

    raw, _ = data.draw(bundle_mutation(world.bundle))
    path = scratch() / "bundle.zip"
    path.write_bytes(raw)
    plain = typed(lambda: verify_bundle(path))
    check = typed(lambda: verify_bundle(path, trust_store=world.store))
    event("bundle refused" if check is None else "bundle ok" if check.ok else "bundle not ok")
    if check is None:
        assert plain is None
        return
    assert all(isinstance(p, str) and p for p in check.problems), check.problems
    if check.ok:
        with zipfile.ZipFile(path) as zf:
            assert zf.read("report.json") == world.report_bytes, "an edited report verifies"
        assert len(check.approvals) <= 2
        assert check.author is None or check.author.startswith("alice ")
    if raw == world.bundle.read_bytes():
        assert check.ok


# -- the CLI, as a user meets it --------------------------------------------------------------
def _cli(*args: Any, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "LEA_AUDIT_TRACKING": "off", "LEA_AUDIT_LEDGER": "off",
           "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"}
    p = subprocess.run([sys.executable, "-m", "lea_ai_audit.cli", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, env=env, timeout=180)
    return p.returncode, p.stdout, p.stderr


def _cli_in_process(*args: Any) -> tuple[int, str, str]:
    """``lea_ai_audit.cli.main`` in this process (the same code, without the start-up cost)."""
    import contextlib
    import io

    from lea_ai_audit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def _cli_all(calls: dict[str, tuple[Any, ...]], cwd: Path, *, real: int = 2
             ) -> dict[str, tuple[int, str, str]]:
    """Run every ``lea-audit`` call (name -> argv): all in this process, and the first
    ``real`` ones also as a user does, ``python -m lea_ai_audit.cli`` in a subprocess (in the
    background meanwhile), which must end the same way."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        spawned = {name: pool.submit(_cli, *argv, cwd=cwd)
                   for name, argv in list(calls.items())[:real]}
        got = {name: _cli_in_process(*argv) for name, argv in calls.items()}
        for name, future in spawned.items():
            rc, out, err = future.result()
            _no_crash(f"{name} (subprocess)", rc, out, err)
            assert rc == got[name][0], (name, rc, got[name], out, err)
            if rc == 2:
                assert err.strip() == got[name][2].strip(), (name, err, got[name][2])
    return got


def _no_crash(name: str, rc: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, (name, err)
    assert "internal error" not in out + err, (name, err)


def _one_error(name: str, rc: int, out: str, err: str) -> str:
    """Bad input: exit code 2 and one line ``error: <what> — <how to fix>`` on stderr."""
    _no_crash(name, rc, out, err)
    assert rc == 2, (name, rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and " — " in lines[0], \
        (name, err)
    return lines[0]


def _edited_report(world: World, change: Callable[[Any], None]) -> bytes:
    d = json.loads(world.report_bytes)
    change(d)
    return json.dumps(d).encode("utf-8")


def _first_table(d: Any) -> Any:
    return next(e for c in d["checks"] for e in c["evidence"] if e["kind"] == "table")


def test_cli_refuses_a_hostile_report(world: World, tmp_path: Path) -> None:
    """``lea-audit gate DIR`` and ``lea-audit card DIR``: exit 2, one line naming the file."""
    cases = {
        "empty": b"",
        "a list": b"[]",
        "not utf-8": b'{"checks": [], "author": "\xff"}',
        "deep": b'{"checks": ' + b"[" * 80 + b"]" * 80 + b"}",
        "version a number": b'{"checks": [], "schema_version": 1}',
        "huge int": b'{"checks": [], "schema_version": "1.0", "seed": 1' + b"0" * 5000 + b"}",
        "lone surrogate": b'{"checks": [], "schema_version": "1.0", "report_id": "\\ud800"}',
        "1e400": b'{"checks": [], "schema_version": "1.0", "duration_s": 1e400}',
        "message a list": _edited_report(world, lambda d: d["checks"][0].update(message=["x"])),
        "metric a string": _edited_report(world, lambda d: d["checks"][0]["metrics"].update(
            {next(iter(d["checks"][0]["metrics"])): "high"})),
        "clauses a string": _edited_report(world, lambda d: d["checks"][0].update(
            clauses="Art. 10")),
        "file evidence a string": _edited_report(world, lambda d: d["checks"][-1][
            "evidence"][0].update(data="x")),
        "subject.model a string": _edited_report(world, lambda d: d["subject"].update(
            model="x")),
        "sign-off rule a list": _edited_report(world, lambda d: d["policy"].update(
            signoff=[1])),
        "ragged table": _edited_report(world, lambda d: _first_table(d)["data"][
            "rows"].append([1])),
        "created_at true": _edited_report(world, lambda d: d.update(created_at=True)),
    }
    calls = {}
    for name, raw in cases.items():
        folder = _copy_audit(world, tmp_path / name.replace(" ", "-"))
        (folder / "report.json").write_bytes(raw)
        calls[f"gate {name}"] = ("gate", folder)
        if name in ("empty", "lone surrogate", "message a list", "ragged table"):
            calls[f"card {name}"] = ("card", folder, "--format", "md")
    for name, got in _cli_all(calls, tmp_path).items():
        line = _one_error(name, *got)
        assert "report.json" in line, (name, line)


def test_cli_gate_closes_on_a_hostile_signoff_or_attestation(world: World,
                                                             tmp_path: Path) -> None:
    """``lea-audit gate DIR --require-signoff``: a bad sign-off or attestation file closes
    the gate (exit 1, its reason on stderr), and is never a crash."""
    rec = json.loads((world.audit / "signoffs" / world.signoff_files[0]).read_bytes())

    def edited(change: Callable[[Any], None]) -> bytes:
        d = json.loads(json.dumps(rec))
        change(d)
        return json.dumps(d).encode("utf-8")

    signoffs = {
        "empty": b"",
        "not utf-8": b"\xff\xfe{}",
        "a list": b"[1, 2]",
        "envelope a string": b'{"reviewer": "bob", "envelope": "abc"}',
        "signatures a dict": edited(lambda d: d["envelope"].update(signatures={"keyid": 1})),
        "payload not base64": edited(lambda d: d["envelope"].update(payload="%%%")),
        "top field edited": edited(lambda d: d.update(comment="<b>changed</b>")),
        "deep": b'{"envelope": ' + b"[" * 70 + b"]" * 70 + b"}",
    }
    attestations = {
        "empty": b"",
        "a list": b"[]",
        "wrong types": b'{"payload": 1, "payloadType": []}',
        "signatures a string": b'{"payloadType": "application/vnd.in-toto+json", '
                               b'"payload": "e30=", "signatures": "x"}',
    }
    calls = {}
    for name, raw in signoffs.items():
        folder = _copy_audit(world, tmp_path / f"s-{name.replace(' ', '-')}")
        (folder / "signoffs" / world.signoff_files[0]).write_bytes(raw)
        calls[f"signoff {name}"] = ("gate", folder, "--require-signoff", "--trust-store",
                                    world.store_path, "--ledger", world.ledger)
    for name, raw in attestations.items():
        folder = _copy_audit(world, tmp_path / f"a-{name.replace(' ', '-')}")
        (folder / "attestation.json").write_bytes(raw)
        calls[f"attestation {name}"] = ("gate", folder, "--require-signoff", "--trust-store",
                                        world.store_path, "--ledger", world.ledger)
    for name, (rc, out, err) in _cli_all(calls, tmp_path).items():
        _no_crash(name, rc, out, err)
        assert rc == 1 and "gate closed: " in err, (name, rc, out, err)
        what = "approval" if name.startswith("signoff") else "attestation"
        assert what in err, (name, err)


def test_cli_verify_a_hostile_ledger(world: World, tmp_path: Path) -> None:
    """``lea-audit verify LEDGER``: a damaged ledger is NOT OK (exit 1), a file that is no
    ledger exit 2; the gate closes on a damaged one; never a crash."""
    lines = world.ledger.read_text(encoding="utf-8").splitlines()
    damaged = {
        "seq a string": "\n".join(re.sub(r'"seq":(\d+)', r'"seq":"\1x"', x) for x in lines),
        "data a list": "\n".join([lines[0].replace('"data":{', '"data":[{', 1)
                                  .replace('},"hash"', '}],"hash"', 1), *lines[1:]]),
        "huge seq": "\n".join([lines[0].replace('"seq":1', '"seq":1' + "0" * 5000),
                               *lines[1:]]),
        "1e400": "\n".join([lines[0].replace('"seq":1', '"seq":1e400'), *lines[1:]]),
        "a list line": "\n".join(["[]", *lines]),
    }
    calls = {}
    for name, text in damaged.items():
        path = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        path.write_text(text + "\n", encoding="utf-8")
        calls[f"verify {name}"] = ("verify", path)
        folder = _copy_audit(world, tmp_path / name.replace(" ", "-"))
        calls[f"gate {name}"] = ("gate", folder, "--require-signoff", "--trust-store",
                                 world.store_path, "--ledger", path)
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines)[:-40], encoding="utf-8")
    calls["verify truncated"] = ("verify", truncated)
    for name, raw in {"checkpoint a list": b"[]", "checkpoint 1e400": b'{"payload": 1e400}',
                      "checkpoint not utf-8": b"\xff"}.items():
        cp = tmp_path / f"{name.replace(' ', '-')}.json"
        cp.write_bytes(raw)
        calls[f"verify {name}"] = ("verify", world.ledger, "--checkpoint", cp,
                                   "--trust-store", world.store_path)
    not_ledgers = {"binary": b"\x00\xff" * 8, "no entry": b"[]\n{}\n"}
    for name, raw in not_ledgers.items():
        path = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        path.write_bytes(raw)
        calls[f"no ledger {name}"] = ("verify", path)
    for name, (rc, out, err) in _cli_all(calls, tmp_path).items():
        if name.startswith("no ledger"):
            _one_error(name, rc, out, err)
        elif name.startswith("verify"):
            _no_crash(name, rc, out, err)
            assert rc == 1 and "ledger NOT OK" in out, (name, rc, out, err)
        else:
            _no_crash(name, rc, out, err)
            assert rc == 1 and "gate closed: " in err, (name, rc, out, err)


def test_cli_verify_a_hostile_bundle(world: World, tmp_path: Path) -> None:
    """``lea-audit verify BUNDLE --trust-store T``: a damaged or crafted bundle is NOT OK
    (exit 1) or not a bundle (exit 2), never a crash."""
    members = [(i.filename, b) for i, b in _members(world.bundle)]
    manifest = json.loads(dict(members)["manifest.json"])
    cases: dict[str, tuple[bytes, tuple[int, ...]]] = {}

    def build(name: str, items: list[tuple[str, bytes]], rcs: tuple[int, ...] = (1,),
              rewrite: bool = True) -> None:
        if rewrite:  # the attacker also rewrites the (unsigned) manifest
            items = [(n, b) for n, b in items if n != "manifest.json"]
            items.insert(0, ("manifest.json", _manifest_for(items, manifest)))
        p = tmp_path / "case.zip"
        _write_zip(p, items)
        cases[name] = (p.read_bytes(), rcs)

    build("path traversal", [*members, ("../evil.json", b"{}")])
    build("a long sign-off name", [*members, ("signoffs/" + "a" * 300 + ".json", b"{}")])
    # a name under a file's name: no file system can unpack it; nothing signed covers it
    build("file and folder", [*members, ("report.json/x", b"{}")], rcs=(0, 1))
    build("card.json a list", [(n, b"[]" if n == "card.json" else b) for n, b in members])
    build("manifest a list", [(n, b"[]" if n == "manifest.json" else b) for n, b in members],
          rewrite=False)
    build("report edited", [(n, b.replace(b'"alice"', b'"mallory"', 1) if n == "report.json"
                             else b) for n, b in members])
    raw = world.bundle.read_bytes()
    cases["truncated"] = (raw[: len(raw) // 2], (2,))
    cases["compression method 99"] = (_patch_central(raw, "method", 99), (1,))
    cases["encrypted flag"] = (_patch_central(raw, "flags", 1), (1,))
    cases["huge size"] = (_patch_central(raw, "usize", 2**32 - 1), (1, 2))
    calls = {}
    for name, (blob, _) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.zip"
        path.write_bytes(blob)
        calls[name] = ("verify", path, "--trust-store", world.store_path)
    for name, (rc, out, err) in _cli_all(calls, tmp_path).items():
        _no_crash(name, rc, out, err)
        assert rc in cases[name][1], (name, rc, out, err)
        if rc == 2:
            _one_error(name, rc, out, err)
        elif rc == 1:
            assert "bundle NOT" in out, (name, out)
