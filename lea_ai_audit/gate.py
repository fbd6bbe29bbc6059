"""The CI gate: decide whether a model may pass, with every reason, and render JUnit XML.

:func:`evaluate_gate` judges a report alone (PASS or WARN open it). :func:`evaluate` is the
whole gate ``lea-audit gate`` applies: the audit, and with ``require_signoff`` the evidence
chain around it — the author's signed attestation, the policy pin, the model file, the model
card the officers read, the ledger and the sign-off rule. It returns one :class:`GateDecision`;
the CLI and :func:`junit_xml` only render it.

The gate never trusts the report's stored ``status``: it recomputes it from the results and
refuses a report whose stored status disagrees (an edited report).

Examples
--------
>>> from lea_ai_audit.gate import evaluate                    # doctest: +SKIP
>>> d = evaluate("audit", require_signoff=True, trust_store="trust.yaml",
...              model="model.skops")                         # doctest: +SKIP
>>> d.opened, [c.name for c in d.checks if not c.ok]          # doctest: +SKIP
(False, ['sign-off'])
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._io import atomic_write_text, strict_json
from .errors import InputError, LeaAuditError, ReportError
from .results import AuditReport, Status, overall_status

__all__ = ["GateCheck", "GateDecision", "GateVerdict", "evaluate", "evaluate_gate",
           "junit_xml", "policy_pin_problems", "write_junit"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# characters XML 1.0 cannot hold at all, even escaped
# control characters XML cannot hold, and those a CI log viewer would act on (ESC, C1, CR)
_XML_INVALID = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


def _x(text: str) -> str:
    """Text that XML can hold: invalid control characters become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", str(text))


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision: ``opened`` (exit 0) or not (exit 1), and why."""

    status: Status
    opened: bool
    reasons: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.opened else EXIT_FAIL


def evaluate_gate(report: AuditReport) -> GateVerdict:
    """Open for PASS or WARN; closed for FAIL, ERROR, or a report in which nothing ran.

    Raises
    ------
    ReportError
        When the stored status disagrees with the results (the report was edited).
    """
    status = overall_status(report.checks)
    if status is not report.status:
        raise ReportError(f"the report says {report.status.value.upper()} but its results give "
                          f"{status.value.upper()}: it was edited after the audit",
                          "re-run the audit; never edit report.json by hand")
    reasons = []
    for c in report.checks:
        if c.status is Status.FAIL:
            reasons.append(f"{c.requirement_id} failed: {c.message}")
        elif c.status is Status.ERROR and c.blocking:
            reasons.append(f"{c.requirement_id} could not be checked: {c.message}")
    if status is Status.SKIPPED:
        reasons.append("no requirement was checked")
    return GateVerdict(status=status, opened=status.passed, reasons=tuple(reasons))


# -- the whole gate ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GateCheck:
    """One part of the gate's decision: ``name`` (``audit``, ``trust store``, ``attestation``,
    ``policy``, ``model``, ``model card``, ``ledger``, ``sign-off``), whether it holds, why
    not, and what it proved (``note``)."""

    name: str
    ok: bool
    reasons: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class GateDecision:
    """The gate's decision: ``opened`` (exit 0) or not (exit 1), every check and reason."""

    report: AuditReport
    status: Status
    opened: bool
    by_waiver: bool
    checks: tuple[GateCheck, ...]
    signoff: Any = None
    opt_outs: tuple[str, ...] = ()
    waived: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.opened else EXIT_FAIL

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(r for c in self.checks if not c.ok for r in c.reasons)

    def check(self, name: str) -> GateCheck | None:
        return next((c for c in self.checks if c.name == name), None)


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def policy_pin_problems(report: AuditReport, *, allowed: Sequence[Mapping[str, Any]] = ()
                        ) -> tuple[list[str], str]:
    """Whether the audit ran under a pinned policy pack: the shipped pack of its id and version
    or one the trust store allows by digest (``allowed``: ``{"sha256", "path"}``), and whether
    its results agree with that pack (each requirement present, same check, blocking flag and
    parameters; the same settings and sign-off rule). Returns (problems, what was proved)."""
    from .policy import _policy_files, load_policy

    pol = report.policy
    pid, version, digest = pol.get("id"), pol.get("version"), pol.get("sha256")
    if not digest:
        return ([f"the report does not record the digest of its policy pack {pid!r}: made by "
                 "an older lea-ai-audit or edited; re-run the audit"], "")
    candidates = []
    shipped = None
    if str(pid) in _policy_files():
        shipped = load_policy(str(pid))
        candidates.append((shipped, "the shipped pack"))
    for entry in allowed:
        try:
            pack = load_policy(str(entry.get("path")))
        except LeaAuditError as exc:
            return [f"the trust store allows policy {entry.get('path')!r}, which cannot be "
                    f"loaded: {exc.what}"], ""
        if pack.digest() != entry.get("sha256"):
            return [f"the policy file {entry.get('path')!r} the trust store allows has "
                    f"changed (SHA-256 {pack.digest()[:12]}..., allowed "
                    f"{str(entry.get('sha256'))[:12]}...)"], ""
        candidates.append((pack, f"allowed by the trust store ({entry.get('path')})"))
    match = [(p, how) for p, how in candidates if p.digest() == digest
             and p.id == pid and p.version == str(version)]
    if not match:
        if shipped is not None and shipped.version == str(version):
            why = (f"the audit's policy {pid}@{version} (SHA-256 {str(digest)[:12]}...) is not "
                   f"the shipped pack of that id and version ({shipped.digest()[:12]}...): a "
                   "modified copy or a selection of its requirements")
        else:
            why = (f"the audit's policy {pid}@{version} (SHA-256 {str(digest)[:12]}...) is "
                   "neither a shipped pack nor one the trust store allows by digest")
        return [why + " — audit with the pack itself, or have the keeper of the trust store "
                "allow it (policies: [{path, sha256}])"], ""
    pack, how = match[0]
    problems = []
    if _norm(dict(pol.get("signoff") or {})) != _norm(dict(pack.signoff)):
        problems.append(f"the report's sign-off rule {dict(pol.get('signoff') or {})} is not "
                        f"the pack's {dict(pack.signoff)}: the report was edited")
    if _norm(dict(pol.get("settings") or {})) != _norm(dict(pack.settings)):
        problems.append("the report's policy settings are not the pack's: the report was "
                        "edited")
    reqs = {r.id: r for r in pack.requirements}
    got = {c.requirement_id: c for c in report.checks}
    missing = [r for r in reqs if r not in got]
    extra = [r for r in got if r not in reqs]
    if missing:
        problems.append(f"requirement(s) of the pack missing from the report: "
                        f"{', '.join(missing)}")
    if extra:
        problems.append(f"the report holds requirement(s) the pack does not have: "
                        f"{', '.join(extra)}")
    for rid in [r for r in reqs if r in got]:
        r, c = reqs[rid], got[rid]
        if c.check_id != r.check or c.blocking != r.blocking:
            problems.append(f"{rid}: the report says check {c.check_id} blocking="
                            f"{c.blocking}, the pack {r.check} blocking={r.blocking}: edited")
            continue
        params = _norm(dict(c.params))
        for k, v in _norm(dict(r.params)).items():
            if params.get(k) != v:
                problems.append(f"{rid}: parameter {k} is {params.get(k)!r} in the report but "
                                f"{v!r} in the pack: edited")
                break
    return problems, f"policy {pid}@{version} ({how}, SHA-256 {str(digest)[:12]}...)"


def _card_problems(report_dir: Path, report: AuditReport, store: Any) -> list[str]:
    """The model card files must exist and be exactly the rendering of this report, of the
    card's signed content and of the sign-offs as they verify now."""
    from .cards import FORMATS, build_card, render
    from .cards.builder import ModelCard

    files = {fmt: report_dir / f"card.{FORMATS[fmt][1]}" for fmt in FORMATS}
    gone = [p.name for p in files.values() if not p.is_file()]
    if gone:
        return [f"the model card {', '.join(gone)} is missing: the officers' card must be "
                "beside the report (re-render it with `lea-audit card DIR --write "
                "--trust-store T`)"]
    try:
        disk = strict_json(files["json"].read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return ["card.json cannot be read"]
    about = disk.get("report") if isinstance(disk, dict) else None
    if not isinstance(about, dict) or about.get("sha256") != report.digest():
        return ["card.json is not the card of this report"]
    metadata = disk.get("metadata") or {}
    if not isinstance(metadata, dict):
        return [f"card.json: its metadata is {type(metadata).__name__}, not a mapping: it was "
                "edited (re-render it with `lea-audit card DIR --write --trust-store T`)"]
    try:
        card = build_card(report, report_dir=report_dir, metadata=metadata,
                          figures=True, trust_store=store)
    except LeaAuditError as exc:
        return [f"the model card cannot be re-rendered: {exc.what}"]
    data = dict(card.data)
    for key in ("generated_at", "changes"):
        if key in disk:
            data[key] = disk[key]
    card = ModelCard(data=data, images=card.images)
    problems = []
    for fmt, path in files.items():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            problems.append(f"{path.name} cannot be read")
            continue
        if text != render(card, fmt):
            problems.append(f"{path.name} is not the rendering of this report and its "
                            "verified sign-offs: it was edited, or it is stale (re-render with "
                            "`lea-audit card DIR --write --trust-store T`)")
    return problems


def _ledger_check(report_dir: Path, report: AuditReport, store: Any, *,
                  ledger: str | os.PathLike[str] | None,
                  expect_head: str | None, checkpoint: str | os.PathLike[str] | None
                  ) -> tuple[GateCheck, list[tuple[int, dict[str, Any]]]]:
    from .ledger import checkpoint_path, default_ledger_path, verify_checkpoint, verify_ledger

    path = default_ledger_path(report_dir, ledger=ledger)
    if path is None or not path.is_file():
        return GateCheck("ledger", False, (
            f"no ledger at {str(path) if path else '(turned off)'}: the gate needs the ledger "
            "that recorded the audit and its sign-offs (pass --ledger PATH)",)), []
    chk = verify_ledger(path, expect_head=expect_head)
    problems = list(chk.problems)
    proved = [f"{chk.entries} entries, chain intact"]
    cp = Path(checkpoint) if checkpoint is not None else checkpoint_path(path)
    if checkpoint is not None or cp.is_file():
        cp_problems, who = verify_checkpoint(path, cp, store)
        problems += cp_problems
        if not cp_problems:
            proved.append(f"checkpoint signed by {who} holds")
    if expect_head and not chk.problems:
        proved.append("the expected head is in it")
    entries = [e for e in _entries(path) if isinstance(e.get("data"), dict)
               and e["data"].get("report_id") == report.report_id]
    assessed = [e for e in entries if e.get("kind") == "assessment"]
    if not assessed:
        problems.append(f"the ledger {path} holds no assessment of report {report.report_id}: "
                        "the audit was not recorded (or the entry was removed)")
    for e in assessed:
        if e["data"].get("report_digest") != report.digest():
            problems.append(f"the ledger (entry {e.get('seq')}) recorded report "
                            f"{report.report_id} with digest "
                            f"{str(e['data'].get('report_digest'))[:12]}..., but report.json "
                            f"now has {report.digest()[:12]}...: it was changed after the "
                            "audit")
    # seq is what the entry says (a whole number when the chain verifies; 0 when edited)
    records = [(_seq(e), e["data"]["record"]) for e in entries
               if e.get("kind") == "signoff" and isinstance(e["data"].get("record"), dict)]
    note = f"{path}: " + "; ".join(proved) + (f"; head {chk.head}" if chk.head else "")
    return GateCheck("ledger", not problems, tuple(problems), note), records


def _seq(entry: Mapping[str, Any]) -> int:
    seq = entry.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _entries(path: Path) -> list[dict[str, Any]]:
    from .ledger import read_ledger

    return read_ledger(path)


def evaluate(report: str | os.PathLike[str] | AuditReport, *, require_signoff: bool = False,
             trust_store: Any = None, trust_store_sha256: str | None = None,
             model: str | os.PathLike[str] | None = None, no_model_check: bool = False,
             ledger: str | os.PathLike[str] | None = None, expect_head: str | None = None,
             checkpoint: str | os.PathLike[str] | None = None,
             allow_unsigned_audit: bool = False, accept_waivers: bool = False,
             report_dir: str | os.PathLike[str] | None = None, now: Any = None
             ) -> GateDecision:
    """The gate's whole decision (``lea-audit gate``).

    Parameters
    ----------
    report : path or AuditReport
        The report directory (or its report.json).
    require_signoff : bool
        Also require the evidence chain: the audit signed by its author (``attestation.json``),
        the policy pinned, the model file (if the audit had a model), the model card intact,
        the ledger intact and recording the audit and every rejection, and the policy's
        sign-off rule. Without it only the audit's status counts.
    trust_store : path or TrustStore
        The keys whose signatures count (needed with ``require_signoff``).
    trust_store_sha256 : str, optional
        The trust store file's SHA-256 as the gate's owner pinned it: any other store closes.
    model : path, optional
        The model file to deploy. With ``require_signoff`` it is required when the audit had a
        model, unless ``no_model_check`` (an opt-out that the decision records).
    ledger, expect_head, checkpoint
        The ledger (default beside the report directory), a head hash published earlier, and a
        signed checkpoint file (default ``<ledger>.checkpoint.json`` when present).
    allow_unsigned_audit : bool
        Gate an audit that has no author attestation (recorded as an opt-out).
    accept_waivers : bool
        Open for a failed audit when the sign-off rule holds and every approval signed a
        waiver of each failed requirement.

    Raises
    ------
    ReportError
        The report's stored status disagrees with its results (edited).
    InputError
        Bad arguments (no trust store with ``require_signoff``, a missing model file).
    """
    from .signoff import evaluate_signoffs, load_signoffs, load_trust_store

    if isinstance(report, AuditReport):
        rep = report
        base = Path(report_dir) if report_dir is not None else None
    else:
        p = Path(report)
        base = Path(report_dir) if report_dir is not None else (p if p.is_dir() else p.parent)
        rep = AuditReport.load(p)
    verdict = evaluate_gate(rep)
    audit = GateCheck("audit", verdict.opened, verdict.reasons,
                      f"the audit {verdict.status.value.upper()}")
    if not require_signoff:
        if trust_store or model or accept_waivers or no_model_check or allow_unsigned_audit \
                or expect_head or checkpoint or trust_store_sha256:
            raise InputError("--trust-store, --model, --accept-waivers and the other evidence "
                             "options only count with --require-signoff",
                             "add --require-signoff")
        return GateDecision(rep, verdict.status, verdict.opened, False, (audit,))
    if not trust_store:
        raise InputError("--require-signoff needs the trust store",
                         "pass --trust-store trust.yaml (built by `lea-audit keygen "
                         "--trust-store`)")
    if base is None:
        raise InputError("the gate needs the report's directory", "pass the directory")
    store = load_trust_store(trust_store)
    checks: list[GateCheck] = [audit]
    opt_outs: list[str] = []
    pin = str(trust_store_sha256 or "").strip().lower().removeprefix("sha256:")
    if pin and pin != store.sha256:
        checks.append(GateCheck("trust store", False, (
            f"the trust store {store.path} has SHA-256 {str(store.sha256)[:12]}..., not the "
            f"pinned {pin[:12]}...: a key was added or swapped",)))
    else:
        keys = ", ".join(f"{i.reviewer} ({i.role}, {i.fingerprint[:19]})"
                         for i in store.reviewers.values())
        checks.append(GateCheck("trust store", True, (), (
            f"{store.path} (SHA-256 {str(store.sha256)[:12]}..., "
            + ("pinned" if pin else "not pinned: pass --trust-store-sha256") + f"): {keys}")))
    from .attest import verify_attestation

    att = verify_attestation(base, rep, store)
    author_fp = None
    if att is None:
        if allow_unsigned_audit:
            opt_outs.append("the audit is not signed by its author (--allow-unsigned-audit)")
            checks.append(GateCheck("attestation", True, (), "not signed: allowed by "
                                    "--allow-unsigned-audit"))
        else:
            checks.append(GateCheck("attestation", False, (
                "the audit is not signed by whoever ran it (no attestation.json): run it with "
                "--sign-key, sign it with `lea-audit attest`, or pass --allow-unsigned-audit "
                "(recorded)",)))
    elif not att.ok:
        checks.append(GateCheck("attestation", False, att.problems))
    else:
        author_fp = att.fingerprint
        checks.append(GateCheck("attestation", True, (), (
            f"signed by {att.identity.reviewer} ({att.identity.role}, key "
            f"{str(author_fp)[:19]}); every digest it binds matches")))
    problems, proved = policy_pin_problems(rep, allowed=store.policies)
    checks.append(GateCheck("policy", not problems, tuple(problems), proved))
    had_model = (rep.subject.get("prediction_source") == "model"
                 or bool(rep.subject.get("model")))
    if model is not None:
        from .signoff import model_file_problem

        sha, wrong = model_file_problem(rep, model)
        audited = (rep.subject.get("model") or {}).get("file_sha256")
        checks.append(GateCheck("model", wrong is None, (wrong,) if wrong else (),
                                f"{model} (SHA-256 {sha[:12]}...)" + (
                                    " is the audited file" if audited else
                                    ": every approval must have signed it")))
    elif had_model and not no_model_check:
        checks.append(GateCheck("model", False, (
            "the audit was made with a model, but no model file was given: pass --model FILE "
            "(the file to deploy), or --no-model-check (recorded)",)))
    elif had_model:
        opt_outs.append("the model file was not checked (--no-model-check)")
        checks.append(GateCheck("model", True, (), "not checked: --no-model-check"))
    card = _card_problems(base, rep, store)
    checks.append(GateCheck("model card", not card, tuple(card),
                            "card.html, card.md and card.json render this report and its "
                            "verified sign-offs"))
    led, records = _ledger_check(base, rep, store, ledger=ledger, expect_head=expect_head,
                                 checkpoint=checkpoint)
    checks.append(led)
    sv = evaluate_signoffs(rep, load_signoffs(base), store, model_path=model, report_dir=base,
                           author_fingerprint=author_fp, ledger_records=records, now=now)
    names = ", ".join(f"{i.reviewer} ({i.role}, key {i.fingerprint[:19]})"
                      for i in sv.approvers)
    checks.append(GateCheck("sign-off", sv.ok, sv.reasons,
                            f"approved by {names}" if sv.ok else ""))
    blocking = {c.requirement_id for c in rep.checks
                if c.status is Status.FAIL or (c.status is Status.ERROR and c.blocking)}
    others_ok = all(c.ok for c in checks[1:])
    by_waiver = (accept_waivers and not verdict.opened and others_ok and bool(blocking)
                 and blocking <= set(sv.waived) and verdict.status is not Status.SKIPPED)
    opened = (verdict.opened or by_waiver) and others_ok
    return GateDecision(rep, verdict.status, opened, by_waiver, tuple(checks), signoff=sv,
                        opt_outs=tuple(opt_outs),
                        waived=tuple(sorted(blocking)) if by_waiver else ())


def junit_xml(report: AuditReport, decision: GateDecision | None = None) -> str:
    """JUnit XML with one test case per requirement (WARN passes, with its message) and, given
    the gate's ``decision``, one per part of the evidence chain (``gate.sign-off``,
    ``gate.model``, ...) and ``gate.verdict``: a closed gate is always a failure."""
    counts = report.counts()
    extra = [c for c in (decision.checks if decision is not None else ()) if c.name != "audit"]
    if decision is not None:
        extra.append(GateCheck("verdict", decision.opened, decision.reasons or (
            "the audit itself did not pass",), "open" + (" by signed waiver"
                                                        if decision.by_waiver else "")))
        if decision.by_waiver:  # the waived FAILs are not failures of this pipeline
            counts = {**counts, "fail": 0}
    suite = ET.Element("testsuite", {
        "name": _x(f"lea-ai-audit {report.policy.get('id', '')}"),
        "tests": str(len(report.checks) + len(extra)),
        "failures": str(counts["fail"] + sum(1 for c in extra if not c.ok)),
        "errors": str(sum(1 for c in report.checks if c.status is Status.ERROR and c.blocking)),
        "skipped": str(counts["skipped"]),
        "time": f"{report.duration_s:.3f}",
        "timestamp": report.created_at,
    })
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", {
            "classname": _x(f"{report.policy.get('id', 'policy')}.{c.check_id}"),
            "name": _x(c.requirement_id),
            "time": f"{c.duration_s:.3f}",
        })
        clauses = "; ".join(c.clauses)
        msg = _x(c.message)
        if c.status is Status.FAIL:
            ET.SubElement(case, "failure", {"message": msg, "type": "fail"}).text = \
                _x(f"{c.title} ({clauses})\n") + msg
        elif c.status is Status.ERROR:
            tag = "error" if c.blocking else "system-out"
            ET.SubElement(case, tag, {"message": msg, "type": "error"} if tag == "error"
                          else {}).text = f"ERROR: {msg}"
        elif c.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", {"message": msg})
        elif c.status is Status.WARN:
            ET.SubElement(case, "system-out").text = f"WARN: {msg}"
    for g in extra:
        case = ET.SubElement(suite, "testcase", {"classname": "lea-ai-audit.gate",
                                                 "name": _x(f"gate.{g.name}"), "time": "0.000"})
        if not g.ok:
            ET.SubElement(case, "failure", {"message": _x(g.reasons[0] if g.reasons else
                                                          "closed"), "type": "gate"}).text = \
                _x("\n".join(g.reasons))
        elif g.note:
            ET.SubElement(case, "system-out").text = _x(g.note)
    if decision is not None and decision.opt_outs:
        ET.SubElement(suite, "system-out").text = _x(
            "opt-outs: " + "; ".join(decision.opt_outs))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: AuditReport, path: str | os.PathLike[str],
                decision: GateDecision | None = None) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically."""
    return atomic_write_text(path, junit_xml(report, decision))
