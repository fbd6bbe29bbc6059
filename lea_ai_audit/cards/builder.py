"""The model card's content, built from a report (and its directory) and the owner's metadata.

The card is a plain-JSON dict (valid against ``model_cards/model-card.schema.json``) plus the
images it shows (plots from the report's evidence and plots drawn here from its tables).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from .._io import safe_yaml
from ..errors import InputError
from .harm import _rows, verdict_tables
from .harm import findings as harm_findings

CARD_SCHEMA_VERSION = "1.0"

#: the keys of the metadata YAML (all optional); strings or lists of strings
METADATA_KEYS = {
    "name": "name of the model or tool",
    "version": "its version",
    "owner": "the organisation and unit responsible for it",
    "contact": "who to ask about it",
    "description": "what it does, in a sentence or two",
    "intended_use": "the uses it was built and audited for",
    "out_of_scope_uses": "uses it must not be put to",
    "users": "who uses it (e.g. case-triage officers)",
    "training_data": "the data it was trained on: source, period, known gaps",
    "ethical_considerations": "risks to people and how they are handled",
    "caveats": "further caveats and recommendations",
    "license": "licence or terms of use",
    "persons": "what the cases are, in the plural, for the card's sentences (e.g. defendants)",
    "outcome": "the outcome as a verb phrase (e.g. reoffended within two years)",
    "no_outcome": "its absence (e.g. did not reoffend within two years)",
    "flag": "what a positive decision is (e.g. labelled medium or high risk)",
}
_LIST_KEYS = {"intended_use", "out_of_scope_uses", "users", "ethical_considerations", "caveats"}

#: what each metric means, in words an oversight officer reads
METRIC_MEANING = {
    "selection_rate": "share of cases the tool flags",
    "base_rate": "share of cases with the outcome (observed)",
    "fpr": "false positive rate: people without the outcome who were flagged anyway",
    "fnr": "false negative rate: people with the outcome whom the tool missed",
    "ppv": "precision: flagged people who did have the outcome",
    "tpr": "true positive rate (recall): people with the outcome who were flagged",
    "tnr": "true negative rate: people without the outcome who were not flagged",
    "npv": "negative predictive value: people not flagged who indeed lacked the outcome",
    "fdr": "false discovery rate: flagged people who did not have the outcome",
    "for": "false omission rate: people not flagged who did have the outcome",
    "accuracy": "share of correct decisions",
    "precision": "flagged cases that had the outcome",
    "recall": "cases with the outcome that were flagged",
    "auc": "how well the scores rank cases with the outcome above those without (0.5 = chance)",
}
_UNITARY_COLUMNS = ("selection_rate", "base_rate", "fpr", "fnr", "ppv", "tpr", "accuracy")

#: AI Act Annex IV: the items an audit can fill, and those it cannot
ANNEX_IV_NOT_FILLED = (
    "1(b), 1(d)-(h) interaction with other systems, forms placed on the market, hardware, "
    "user interface, instructions for use; 2(a)-(c) development methods, design choices, "
    "architecture; 2(f) predetermined changes; 2(h) cybersecurity; 5 risk-management system; "
    "7 harmonised standards; 8 EU declaration of conformity; 9 post-market monitoring plan — "
    "these come from the provider's own technical documentation")


def load_metadata(source: str | os.PathLike[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Read and check model-card metadata (a YAML file or a mapping).

    Keys (all optional): see :data:`METADATA_KEYS`. Values are text or lists of text;
    unknown keys are refused so a typo does not silently drop a section.

    Raises
    ------
    lea_ai_audit.errors.InputError
        The file cannot be read, is not YAML, or has unknown keys or odd values.

    Examples
    --------
    >>> load_metadata({"owner": "Unit 7", "users": "triage officers"})
    {'owner': 'Unit 7', 'users': ['triage officers']}
    """
    if source is None:
        return {}
    where = "metadata"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        import yaml

        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the card metadata {where!r}: "
                             f"{getattr(exc, 'strerror', None) or exc}",
                             "pass a readable UTF-8 YAML file (see "
                             "model_cards/example-metadata.yaml)") from exc
        try:
            data = safe_yaml(text) or {}
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2024-13-45
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InputError(f"the card metadata {where!r} is not valid YAML: {first}",
                             "fix the YAML (see model_cards/example-metadata.yaml)") from None
    from .._schemas import validate

    # the declared schema (lea_ai_audit._schemas.metadata_schema): a mapping of the known
    # keys, each text (or a number) or a list of them
    validate("metadata", data, f"the card metadata {where!r}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            items = [str(v) for v in value if v is not None and str(v).strip()]
        else:
            items = [str(value)]
        if not items:
            continue
        out[key] = items if key in _LIST_KEYS else "\n".join(items)
    return out


@dataclass
class ModelCard:
    """A built card: ``data`` (plain JSON) and ``images`` (figure id -> (media type, bytes))."""

    data: dict[str, Any]
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def to_json(self) -> str:
        """The card as JSON text (valid against the shipped schema)."""
        return json.dumps(self.data, indent=2, ensure_ascii=False, allow_nan=False)


# -- helpers -----------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _tables(rep: Any, prefix: str) -> list[tuple[Any, Any]]:
    """(result, evidence) of table evidence named ``prefix<grouping>``."""
    return [(c, e) for c in rep.checks for e in c.evidence
            if e.kind == "table" and e.name.startswith(prefix)]


def _is_intersection(grouping: str, sensitive: Sequence[str]) -> bool:
    return grouping not in set(sensitive)


def _min_group_size(rep: Any) -> int:
    sizes = [c.params.get("min_group_size") for c in rep.checks]
    sizes = [s for s in sizes if isinstance(s, int)]
    settings = rep.policy.get("settings") or {}
    return max(sizes) if sizes else int(settings.get("min_group_size", 30))


def _violations(rep: Any) -> dict[tuple[str, str], list[str]]:
    """(grouping, group) -> metrics found in violation by the disparity checks."""
    out: dict[tuple[str, str], list[str]] = {}
    for c in rep.checks:
        if c.check_id != "fairness.disparity":
            continue
        metric = str(c.params.get("metric", ""))
        for e in c.evidence:
            if e.kind != "table" or ":" not in e.name:
                continue
            grouping = e.name.split(":", 1)[1]
            for r in _rows(e):
                if r.get("verdict") == "violation":
                    out.setdefault((grouping, str(r.get("group"))), []).append(metric)
    return out


def _ci(v: Any, lo: Any, hi: Any) -> str:
    if v is None:
        return "—"
    if lo is None or hi is None:
        return _fmt(v)
    return f"{_fmt(v)} [{_fmt(lo)}, {_fmt(hi)}]"


def _group_tables(rep: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-attribute tables (unitary, intersectional): one row per group, key rates with CIs."""
    sensitive = list(rep.subject.get("sensitive") or [])
    refs = rep.subject.get("reference_groups") or {}
    viol = _violations(rep)
    min_n = _min_group_size(rep)
    unitary, inter = [], []
    for _c, e in _tables(rep, "group_metrics:"):
        grouping = e.name.split(":", 1)[1]
        by_group: dict[str, dict[str, Any]] = {}
        metrics_seen: list[str] = []
        for r in _rows(e):
            g = str(r.get("group"))
            d = by_group.setdefault(g, {"n": r.get("n")})
            m = str(r.get("metric"))
            d[m] = _ci(r.get("value"), r.get("ci_low"), r.get("ci_high"))
            if m not in metrics_seen:
                metrics_seen.append(m)
        cols = [m for m in _UNITARY_COLUMNS if m in metrics_seen]
        ref = (refs.get(grouping) or {}).get("group")
        rows = []
        for g, d in by_group.items():
            notes = []
            if str(g) == str(ref):
                notes.append("reference group")
            n = d.get("n")
            if isinstance(n, int) and n < min_n:
                notes.append(f"too few cases (< {min_n}) to conclude")
            if viol.get((grouping, g)):
                notes.append("disparity: " + ", ".join(sorted(set(viol[(grouping, g)]))))
            rows.append([g, _fmt(n), *[d.get(m, "—") for m in cols], "; ".join(notes)])
        table = {"attribute": grouping, "title": f"By {grouping}",
                 "anchor": anchor(_c.requirement_id, e.name),
                 "description": e.description,
                 "columns": ["group", "cases", *cols, "notes"], "rows": rows}
        (inter if _is_intersection(grouping, sensitive) else unitary).append(table)
    if not unitary and not inter:  # no group_metrics check: use the disparity tables
        for c, e in _tables(rep, ""):
            if c.check_id != "fairness.disparity" or ":" not in e.name:
                continue
            grouping = e.name.split(":", 1)[1]
            metric = str(c.params.get("metric", ""))
            rows = [[str(r.get("group")), _fmt(r.get("n")),
                     _ci(r.get("value"), r.get("ci_low"), r.get("ci_high")),
                     str(r.get("verdict", "")), str(r.get("reason", ""))] for r in _rows(e)]
            table = {"attribute": grouping, "title": f"{metric} by {grouping}",
                     "anchor": anchor(c.requirement_id, e.name),
                     "description": e.description,
                     "columns": ["group", "cases", metric, "verdict", "reason"], "rows": rows}
            (inter if _is_intersection(grouping, sensitive) else unitary).append(table)
    return unitary, inter


def _performance_table(rep: Any) -> dict[str, Any] | None:
    for _c, e in _tables(rep, "performance"):
        rows = _rows(e)
        return {"attribute": "all", "title": "Performance overall and by group",
                "description": e.description,
                "columns": ["grouping", "group", "cases", "metric", "value [interval]"],
                "rows": [[str(r.get("grouping")), str(r.get("group")), _fmt(r.get("n")),
                          str(r.get("metric")), _ci(r.get("value"), r.get("ci_low"),
                                                    r.get("ci_high"))] for r in rows]}
    return None


def _interval(lo: Any, hi: Any, unbounded_high: bool = False) -> str:
    if lo is None and hi is None:
        return "—"
    high = "inf" if hi is None and unbounded_high else _fmt(hi)
    return f"[{_fmt(lo)}, {high}]"


def _disparity_tables(rep: Any) -> list[dict[str, Any]]:
    """Per disparity requirement and grouping: each group's verdict with the interval the
    verdict read (decision interval, at its level) beside the plain interval (labelled), the
    p-values and the smallest difference the data could have detected (#18)."""
    out = []
    for c in rep.checks:
        if c.check_id != "fairness.disparity":
            continue
        conf = c.params.get("confidence", 0.95)
        for e, rows in verdict_tables(c):
            ratio = c.params.get("min_ratio") is not None
            diff = c.params.get("max_difference") is not None
            cols = ["group", "denominator", "value"]
            if diff:
                cols += [f"difference [plain {conf:.0%} interval]",
                         "difference: decision interval"]
            if ratio:
                cols += [f"ratio [plain {conf:.0%} interval]", "ratio: decision interval"]
            cols += ["decision level", "p (adjusted)", "smallest detectable difference",
                     "verdict"]
            body = []
            for r in rows:
                ref = r.get("verdict") == "reference"
                line = [str(r.get("group")), _fmt(r.get("denominator")), _fmt(r.get("value"))]
                unbounded = r.get("ratio_ci_low") is not None and r.get("ratio_ci_high") is None
                if diff:
                    line += ["—" if ref else f"{_fmt(r.get('diff'))} "
                             f"{_interval(r.get('diff_ci_low'), r.get('diff_ci_high'))}",
                             _interval(r.get("decision_diff_low"), r.get("decision_diff_high"))]
                if ratio:
                    # no ratio: infinite when the reference's rate is 0 and this group's is not
                    ref_zero = r.get("value") and r.get("diff") == r.get("value")
                    shown = ("inf" if r.get("ratio") is None and ref_zero else
                             _fmt(r.get("ratio")))
                    plain = _interval(r.get("ratio_ci_low"), r.get("ratio_ci_high"), unbounded)
                    line += ["—" if ref else f"{shown} {plain}",
                             _interval(r.get("decision_ratio_low"), r.get("decision_ratio_high"),
                                       r.get("decision_ratio_low") is not None)]
                level = r.get("decision_confidence")
                line += ["—" if level is None else f"{level:.2%}",
                         "—" if r.get("p_value") is None else
                         f"{r['p_value']:.3g} ({_fmt_p(r.get('p_adjusted'))})",
                         _fmt(r.get("detectable_diff")),
                         str(r.get("verdict")) + (f": {r['reason']}" if r.get("reason") and
                                                  r.get("verdict") == "insufficient" else "")]
                body.append(line)
            out.append({"attribute": str(e.name), "anchor": anchor(c.requirement_id, e.name),
                        "title": f"{c.title or c.requirement_id} "
                        f"({c.requirement_id}): {e.name}",
                        "description": (
                            "the verdict reads the decision interval, at the level the "
                            "multiple-comparison procedure gave the group (decision level); "
                            f"the plain {conf:.0%} interval is shown beside it. "
                            + (e.description or "")),
                        "columns": cols, "rows": body})
    return out


def _fmt_p(p: Any) -> str:
    return "—" if p is None else f"{p:.3g}"


def _decisions_table(rep: Any) -> dict[str, Any] | None:
    """The per-decision explanations of the audit (explain.local), one row per case (§26)."""
    for c in rep.checks:
        for e in c.evidence:
            if e.name != "local_explanations_detail" or not isinstance(e.data, list):
                continue
            rows = []
            for d in e.data:
                if not isinstance(d, Mapping):
                    continue
                reasons = [str(r.get("text", "")) for r in d.get("reasons") or []
                           if isinstance(r, Mapping)]
                rows.append([_fmt(d.get("row")), str(d.get("decision", "")),
                             _fmt(d.get("score")), _fmt(d.get("average_score")),
                             "; ".join(reasons) or "none"])
            if rows:
                return {"attribute": "cases",
                        "title": "Decisions explained: the top reasons behind each score",
                        "description": (
                            f"{len(rows)} cases of the audit's stratified sample; each reason "
                            "is one input's value and how far it moved this case's score from "
                            "the average case's score (SHAP values)"),
                        "columns": ["case (row)", "decision", "score", "average case's score",
                                    "reasons, largest first"],
                        "rows": rows}
    return None


def _key_figures(c: Any, limit: int = 6) -> dict[str, float | int | None]:
    top = {k: v for k, v in c.metrics.items() if "/" not in k}
    rest = {k: v for k, v in c.metrics.items() if "/" in k}
    chosen = dict(list(top.items())[:limit])
    for k, v in rest.items():
        if len(chosen) >= limit:
            break
        chosen[k] = v
    return chosen


def _is_shipped_pack(policy: Mapping[str, Any]) -> bool | None:
    """Whether the report's policy digest is that of the shipped pack of its id and version
    (None when unknown: no digest recorded, or no shipped pack of that id)."""
    from ..policy import _policy_files, load_policy

    if not policy.get("sha256") or str(policy.get("id")) not in _policy_files():
        return None
    try:
        pack = load_policy(str(policy.get("id")))
    except Exception:  # a broken installation: say nothing rather than guess
        return None
    return pack.version == str(policy.get("version")) and pack.digest() == policy["sha256"]


def _read_signoffs(report_dir: Path | None, rep: Any, trust_store: Any = None
                   ) -> list[dict[str, Any]]:
    """Every sign-off file, as the gate judges it: only those verified against the trust store
    are counted (``state`` "valid"); the others carry the reason they are not."""
    if report_dir is None or not (Path(report_dir) / "signoffs").is_dir():
        return []
    from ..signoff import evaluate_signoffs, load_signoffs, verify_attestation_author

    items = load_signoffs(report_dir)
    if trust_store is None:
        checks = None
    else:
        author_fp = verify_attestation_author(report_dir, rep, trust_store)
        checks = {c.file: c for c in evaluate_signoffs(
            rep, items, trust_store, report_dir=report_dir,
            author_fingerprint=author_fp).checks}
    out = []
    for item in items:
        rec = item.record or {}
        c = checks.get(item.path.name) if checks is not None else None
        if item.record is None:
            state, reason = "unreadable", f"this sign-off file {item.error or 'cannot be read'}"
        elif checks is None:
            state, reason = "not verified", "no trust store was given to verify it"
        elif c is None:
            state, reason = "invalid", "not verified"
        else:
            state, reason = c.state, c.problem
        waiver = rec.get("waiver")
        if isinstance(waiver, Mapping):
            waiver = {"requirements": [str(r) for r in waiver.get("requirements") or []],
                      "justification": str(waiver.get("justification") or "")}
        else:
            waiver = None
        exp = rec.get("expires_at")
        out.append({"file": item.path.name, "reviewer": str(rec.get("reviewer") or "?"),
                    "role": str(rec.get("role") or "?"),
                    "decision": str(rec.get("decision") or "?"),
                    "comment": str(rec.get("comment") or ""),
                    "signed_at": str(rec["signed_at"]) if rec.get("signed_at") else None,
                    "expires_at": str(exp) if exp else None, "waiver": waiver,
                    "state": state, "reason": reason or "",
                    "fingerprint": (c.fingerprint if c is not None and state == "valid"
                                    else "")})
    return out


def _oversight(rep: Any, signoffs: list[dict[str, Any]]) -> dict[str, Any]:
    rule = dict(rep.policy.get("signoff") or {})
    need = int(rule.get("min_approvals") or 0) if rule else 0
    ok = [s for s in signoffs if s["state"] == "valid"]
    approvals = [s for s in ok if s["decision"] == "approve"]
    rejections = [s for s in ok if s["decision"] == "reject"]
    if not signoffs:
        summary = "No sign-off yet: no one has reviewed and approved this audit."
    else:
        parts = [f"{len(approvals)} approval(s)"]
        if rejections:
            parts.append(f"{len(rejections)} rejection(s)")
        bad = len(signoffs) - len(ok)
        if bad:
            parts.append(f"{bad} not counted (not verified against the trust store, expired, "
                         "withdrawn, the author's own, or for another report: see the table)")
        summary = "Signed off: " + ", ".join(parts) + "."
        if rejections:
            summary += " A reviewer rejected the audit."
    if need:
        roles = rule.get("required_roles") or []
        summary += (f" The policy asks for {need} approval(s)"
                    + (f" including the role(s) {', '.join(map(str, roles))}" if roles else "")
                    + ("" if rule.get("author_may_approve") else
                       ", not by the person who ran the audit") + ".")
    attest = []
    for c in rep.checks:
        if c.check_id == "oversight.attestation":
            statement = None
            for e in c.evidence:
                if e.name == "attestation" and isinstance(e.data, Mapping):
                    statement = str(e.data.get("statement", ""))
            attest.append({"item": str(c.params.get("item", c.requirement_id)),
                           "question": str(c.params.get("question", c.title)),
                           "status": c.status.value,
                           "answer": statement or "awaiting a person's answer"})
    return {"summary": summary, "rule": {k: rule.get(k) for k in
                                         ("min_approvals", "required_roles",
                                          "author_may_approve", "max_age_days")} if rule
            else None,
            "approvals": len(approvals), "signoffs": signoffs, "attestations": attest}


def _plain_summary(rep: Any, oversight: dict[str, Any], caveat_groups: int,
                   shown: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    st = rep.status.value
    pol = f"{rep.policy.get('id')} {rep.policy.get('version')}"
    fails = rep.by_status("fail")
    errors = [c for c in rep.checks if c.status.value == "error" and c.blocking]
    warns = rep.by_status("warn")
    if st == "fail":
        verdict = (f"The model does NOT meet {len(fails)} blocking requirement(s) of policy "
                   f"{pol}. It should not be used as it is.")
    elif st == "error":
        verdict = (f"{len(errors)} blocking requirement(s) of policy {pol} could not be "
                   "checked, so the audit cannot say the model is fit for use.")
    elif st == "warn":
        verdict = (f"No blocking requirement of policy {pol} failed, but {len(warns)} point(s) "
                   "need a person's attention before use.")
    elif st == "pass":
        verdict = f"The model meets every requirement of policy {pol} that was checked."
    else:
        verdict = "Nothing was checked: this audit says nothing about the model."
    def said(c: Any) -> str:  # a finding told in full under "Who is harmed" is not repeated
        return ("see 'Who is harmed' above" if c.requirement_id in shown else c.message)

    points = [f"Not met — {c.title or c.requirement_id} ({'; '.join(c.clauses)}): {said(c)}"
              for c in fails]
    points += [f"Could not be checked — {c.title or c.requirement_id}: {c.message}"
               for c in errors]
    pending = [c for c in warns if c.check_id == "oversight.attestation"]
    other = [c for c in warns if c.check_id != "oversight.attestation"]
    points += [f"Attention — {c.title or c.requirement_id}: {said(c)}" for c in other]
    if pending:
        points.append(f"{len(pending)} question(s) about human oversight and documentation "
                      "await a person's answer (see 'Human oversight').")
    if caveat_groups:
        points.append(f"{caveat_groups} group(s) have too few cases for firm conclusions; "
                      "their figures are shown but must not be relied on.")
    points.append(oversight["summary"])
    return {"status": st, "verdict": verdict, "points": points, "counts": rep.counts()}


def _changes(rep: Any, old: Any) -> dict[str, Any]:
    old_by = {c.requirement_id: c for c in old.checks}
    new_by = {c.requirement_id: c for c in rep.checks}
    reqs = []
    for rid in list(new_by) + [r for r in old_by if r not in new_by]:
        o, n = old_by.get(rid), new_by.get(rid)
        before = o.status.value if o else "absent"
        after = n.status.value if n else "absent"
        if before != after:
            reqs.append({"requirement": rid, "before": before, "after": after})
    deltas = []
    for rid, n in new_by.items():
        o = old_by.get(rid)
        if o is None:
            continue
        for k, v in n.metrics.items():
            ov = o.metrics.get(k)
            if isinstance(v, (int, float)) and isinstance(ov, (int, float)) and v != ov:
                deltas.append({"metric": f"{rid}/{k}", "before": ov, "after": v,
                               "change": round(float(v) - float(ov), 6)})
    deltas.sort(key=lambda d: -abs(d["change"]))
    what = []
    if old.status is not rep.status:
        what.append(f"The overall result changed from {old.status.value.upper()} to "
                    f"{rep.status.value.upper()}.")
    else:
        what.append(f"The overall result is unchanged ({rep.status.value.upper()}).")
    if old.data.get("sha256") != rep.data.get("sha256"):
        what.append(f"The audited data changed ({old.data.get('n_rows')} -> "
                    f"{rep.data.get('n_rows')} cases).")
    om, nm = old.subject.get("model") or {}, rep.subject.get("model") or {}
    if (om.get("params_sha256"), om.get("file_sha256")) != (nm.get("params_sha256"),
                                                            nm.get("file_sha256")):
        what.append("The model changed (its parameters or file differ).")
    if (old.policy.get("id"), old.policy.get("version")) != (rep.policy.get("id"),
                                                             rep.policy.get("version")):
        what.append(f"The policy changed ({old.policy.get('id')} {old.policy.get('version')} "
                    f"-> {rep.policy.get('id')} {rep.policy.get('version')}).")
    if reqs:
        what.append(f"{len(reqs)} requirement(s) changed status.")
    return {"previous_report_id": old.report_id, "previous_created_at": old.created_at,
            "previous_status": old.status.value, "summary": what, "requirements": reqs,
            "metrics": deltas[:25], "metrics_changed": len(deltas)}


def _text_list(meta: Mapping[str, Any], key: str) -> list[str]:
    v = meta.get(key)
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [str(v)]


def build_card(report: Any, *, report_dir: str | os.PathLike[str] | None = None,
               metadata: str | os.PathLike[str] | Mapping[str, Any] | None = None,
               previous: Any = None, figures: bool = True,
               trust_store: Any = None) -> ModelCard:
    """Build the model card of ``report``.

    Parameters
    ----------
    report : AuditReport or path
        The report (or its report.json / directory).
    report_dir : path, optional
        The report's directory: evidence files (plots are shown) and ``signoffs/*.json``.
        Default: the directory ``report`` was loaded from, if a path was given.
    trust_store : TrustStore or path, optional
        The reviewers whose sign-offs count: only sign-offs verified against it are shown as
        counted, with the key's fingerprint (without it, none is).
    metadata : path or mapping, optional
        The owner's metadata (see :func:`load_metadata`); overrides ``report.subject.metadata``
        key by key.
    previous : AuditReport or path, optional
        An earlier report of the model: adds "what changed since the previous version".
    figures : bool
        Draw the per-group plots from the report's tables (matplotlib).

    Examples
    --------
    >>> card = build_card(report, metadata={"owner": "Unit 7"})        # doctest: +SKIP
    >>> card.data["summary"]["verdict"]                                # doctest: +SKIP
    'The model does NOT meet 1 blocking requirement(s) ...'
    """
    from .. import __version__
    from ..results import AuditReport

    if not isinstance(report, AuditReport):
        p = Path(report)
        report_dir = report_dir if report_dir is not None else (p if p.is_dir() else p.parent)
        report = AuditReport.load(p)
    rep = report
    base = Path(report_dir) if report_dir is not None else None
    meta = load_metadata(rep.subject.get("metadata") or {}) if rep.subject.get("metadata") \
        else {}
    meta.update(load_metadata(metadata))
    if previous is not None and not isinstance(previous, AuditReport):
        previous = AuditReport.load(previous)

    subject, data, env = rep.subject, rep.data, rep.environment
    model = dict(subject.get("model") or {})
    unitary, inter = _group_tables(rep)
    perf = _performance_table(rep)
    signoffs = _read_signoffs(base, rep, trust_store)
    oversight = _oversight(rep, signoffs)
    min_n = _min_group_size(rep)
    small = 0
    for c in rep.checks:
        if c.check_id == "fairness.group_metrics":
            small = sum(1 for k, v in c.metrics.items()
                        if k.startswith("n/") and isinstance(v, int) and v < min_n)
    refs = subject.get("reference_groups") or {}
    groups = []
    for t in unitary + inter:
        for r in t["rows"]:
            groups.append({"attribute": t["attribute"], "group": r[0], "cases": r[1]})

    caveats = []
    if small:
        caveats.append(f"{small} group(s) have fewer than {min_n} cases; their rates carry "
                       "wide intervals and no conclusion is drawn from them.")
    caveats += _not_checked(rep)
    if subject.get("prediction_source") not in (None, "model"):
        caveats.append("The audit used the decisions and scores exported by the tool, not the "
                       "model itself: it shows what the tool did on these cases.")
    caveats.append("The figures describe the audited cases only; they hold for other cases "
                   "only as far as those resemble these. Re-audit after any change of model, "
                   "data or use.")
    caveats += _text_list(meta, "caveats")

    ethics = _text_list(meta, "ethical_considerations")
    fair_fails = [c for c in rep.checks if c.check_id.startswith("fairness.")
                  and c.status.value in ("fail", "warn") and c.raw_status.value == "fail"]
    for c in fair_fails:
        ethics.append(f"Found by the audit — {c.title or c.requirement_id}: {c.message}")
    for c in rep.checks:  # inputs that stand in for a sensitive attribute; by-group findings
        if c.check_id in ("explain.proxies", "explain.by_group", "data.quality_by_group",
                          "data.protection") and c.status.value in ("fail", "warn"):
            ethics.append(f"Found by the audit — {c.title or c.requirement_id}: {c.message}")
    if not ethics:
        ethics.append("The owner has given no ethical considerations (metadata "
                      "ethical_considerations).")

    compliance = []
    disparity = _disparity_tables(rep)
    shown_tables = {t.get("anchor") for t in disparity + unitary + inter}
    for c in rep.checks:
        ev, links = [], []
        for e in c.evidence:
            if e.kind == "file":
                path = str(e.data.get("path"))
                ev.append(f"{e.name} ({path})")
                links.append({"name": e.name, "kind": "file", "href": _safe_href(path),
                              "path": path})
            else:
                ev.append(f"{e.name} ({e.kind})")
                a = anchor(c.requirement_id, e.name)
                links.append({"name": e.name, "kind": e.kind,
                              "href": f"#{a}" if a in shown_tables else None, "path": None})
        compliance.append({"requirement": c.requirement_id, "title": c.title or "",
                           "clauses": list(c.clauses), "status": c.status.value,
                           "blocking": bool(c.blocking), "finding": c.message,
                           "figures": _key_figures(c), "evidence": ev, "links": links})

    evidence_files = []
    figures_meta: list[dict[str, Any]] = []
    images: dict[str, tuple[str, bytes]] = {}
    for c in rep.checks:
        for e in c.files():
            mt = str(e.data.get("media_type", ""))
            item = {"requirement": c.requirement_id, "name": e.name,
                    "path": str(e.data.get("path")), "sha256": str(e.data.get("sha256")),
                    "media_type": mt, "size": e.data.get("size"),
                    "href": _safe_href(str(e.data.get("path")))}
            evidence_files.append(item)
            if mt.startswith("image/"):
                try:
                    raw = e.read(base)
                except Exception as exc:  # missing or changed file: say so in the card
                    caveats.append(f"The plot {e.name!r} ({item['path']}) is missing or was "
                                   f"changed after the audit: {getattr(exc, 'what', exc)}")
                    continue
                fid = f"evidence-{len(figures_meta) + 1}"
                images[fid] = (mt, raw)
                figures_meta.append({"id": fid, "title": e.name, "source": "evidence",
                                     "description": e.description, "media_type": mt,
                                     "path": item["path"], "requirement": c.requirement_id})
    if figures:
        from .figures import group_figures

        for title, desc, png in group_figures(rep):
            fid = f"card-{len(figures_meta) + 1}"
            images[fid] = ("image/png", png)
            figures_meta.append({"id": fid, "title": title, "source": "card",
                                 "description": desc, "media_type": "image/png",
                                 "path": None, "requirement": None})

    perf_text = []
    for c in rep.checks:
        if c.check_id == "performance.metrics":
            perf_text.append(c.message)
    libs = env.get("libraries") or {}
    changes = _changes(rep, previous) if previous is not None else None
    attest = {a["item"]: a for a in oversight["attestations"]}
    annex = [
        {"item": "1(a)", "title": "Intended purpose, provider, version",
         "content": "; ".join(x for x in [
             "intended use: " + "; ".join(_text_list(meta, "intended_use"))
             if meta.get("intended_use") else "",
             f"owner: {meta['owner']}" if meta.get("owner") else "",
             f"version: {meta['version']}" if meta.get("version") else ""] if x)
         or "not given: add intended_use, owner and version to the card metadata",
         "filled": bool(meta.get("intended_use") and meta.get("owner")), "source": "metadata"},
        {"item": "1(c)", "title": "Versions of the relevant software",
         "content": f"Python {env.get('python', '?')}; "
                    + ", ".join(f"{k} {v}" for k, v in libs.items()),
         "filled": bool(libs), "source": "audit"},
        {"item": "2(d)", "title": "Data: training data, provenance, characteristics",
         "content": "; ".join(x for x in [
             meta.get("training_data", ""),
             (f"reference data: {data['reference'].get('n_rows')} rows, SHA-256 "
              f"{data['reference'].get('sha256')}") if isinstance(data.get("reference"),
                                                                  Mapping) else ""] if x)
         or "not given: add training_data to the card metadata",
         "filled": bool(meta.get("training_data")), "source": "metadata and audit"},
        {"item": "2(e)", "title": "Human oversight measures (Art. 14)",
         "content": (attest["human-decision"]["answer"] if "human-decision" in attest
                     else "no attestation in this policy") + " — " + oversight["summary"],
         "filled": "human-decision" in attest and attest["human-decision"]["status"] == "pass",
         "source": "attestation and sign-off"},
        {"item": "2(g)", "title": "Validation and testing: data, metrics, discriminatory "
                                  "impacts, dated and signed test reports",
         "content": (f"audit report {rep.report_id} of {rep.created_at} against policy "
                     f"{rep.policy.get('id')} {rep.policy.get('version')}; "
                     f"{data.get('n_rows')} cases (SHA-256 {data.get('sha256')}); "
                     f"{len(rep.checks)} requirements checked; result "
                     f"{rep.status.value.upper()}; {oversight['approvals']} approval(s)"),
         "filled": True, "source": "audit"},
        {"item": "3", "title": "Capabilities and limitations, accuracy for groups of persons, "
                              "foreseeable risks of discrimination",
         "content": " ".join(perf_text + [f"{c.title or c.requirement_id}: {c.message}"
                                          for c in fair_fails])
         or "no performance or fairness findings in this report",
         "filled": bool(perf_text), "source": "audit"},
        {"item": "4", "title": "Appropriateness of the performance metrics",
         "content": "the metrics and thresholds are those of policy "
                    f"{rep.policy.get('id')} {rep.policy.get('version')} "
                    f"({rep.policy.get('title', '')}), each tied to its clause in the "
                    "compliance table",
         "filled": True, "source": "policy"},
        {"item": "6", "title": "Changes through the lifecycle",
         "content": " ".join(changes["summary"]) if changes else
         "not filled: render the card with --compare OLD_REPORT",
         "filled": changes is not None, "source": "comparison"},
    ]

    harm = harm_findings(rep, meta)  # once: the summary and the first screen both read it
    threshold = subject.get("threshold")
    measures = sorted({str(c.params.get("metric")) for c in rep.checks
                       if c.check_id == "fairness.disparity" and c.params.get("metric")})
    measures += [m for t in unitary[:1] for m in t["columns"][2:-1] if m not in measures]
    card = {
        "schema_version": CARD_SCHEMA_VERSION,
        "generator": f"lea-ai-audit {__version__}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report": {"report_id": rep.report_id, "sha256": rep.digest(),
                   "created_at": rep.created_at, "status": rep.status.value,
                   "schema_version": rep.schema_version, "author": rep.author,
                   "policy": {**{k: rep.policy.get(k) for k in ("id", "version", "title",
                                                                "source", "sha256")},
                              "shipped": _is_shipped_pack(rep.policy)}},
        "summary": _plain_summary(rep, oversight, small,
                                  {f["requirement"] for f in harm}),
        "model_details": {
            "name": meta.get("name") or UNNAMED,
            "named": bool(meta.get("name")),
            "version": meta.get("version"), "owner": meta.get("owner"),
            "contact": meta.get("contact"), "description": meta.get("description"),
            "license": meta.get("license"), "model_class": model.get("class"),
            "params_sha256": model.get("params_sha256"),
            "file_sha256": model.get("file_sha256"),
            "prediction_source": subject.get("prediction_source"),
            "features": [str(f) for f in subject.get("features") or []],
            "audited_by": rep.author, "audited_at": rep.created_at},
        "intended_use": {"primary_uses": _text_list(meta, "intended_use"),
                         "primary_users": _text_list(meta, "users"),
                         "out_of_scope": _text_list(meta, "out_of_scope_uses")},
        "factors": {"sensitive_attributes": [str(s) for s in subject.get("sensitive") or []],
                    "reference_groups": [{"attribute": str(k),
                                          "group": str((v or {}).get("group")),
                                          "chosen": str((v or {}).get("chosen"))}
                                         for k, v in refs.items()],
                    "groups": groups, "min_group_size": min_n},
        "metrics": {"threshold": threshold if isinstance(threshold, (int, float)) else None,
                    "target": str(subject.get("target")),
                    "confidence": (rep.policy.get("settings") or {}).get("confidence"),
                    "decision_rule": (rep.policy.get("settings") or {}).get("decision_rule"),
                    "measures": [{"name": m, "meaning": METRIC_MEANING.get(m, m)}
                                 for m in measures]},
        "evaluation_data": {"n_rows": data.get("n_rows"), "n_columns": data.get("n_columns"),
                            "sha256": data.get("sha256"), "positives": data.get("positives"),
                            "predicted_positive": data.get("predicted_positive"),
                            "source": {str(k): str(v) for k, v in
                                       (data.get("source") or {}).items()}},
        "training_data": {"description": meta.get("training_data"),
                          "reference": ({"n_rows": data["reference"].get("n_rows"),
                                         "sha256": data["reference"].get("sha256")}
                                        if isinstance(data.get("reference"), Mapping)
                                        else None)},
        "quantitative_analyses": {"unitary": unitary, "intersectional": inter,
                                  "performance": perf, "decisions": _decisions_table(rep),
                                  "disparity": disparity},
        "figures": figures_meta,
        "ethical_considerations": ethics,
        "caveats_and_recommendations": caveats,
        "compliance": compliance,
        "annex_iv": annex,
        "annex_iv_not_filled": ANNEX_IV_NOT_FILLED,
        "human_oversight": oversight,
        "changes": changes,
        "evidence_files": evidence_files,
        "metadata": {k: meta[k] for k in sorted(meta)},
    }
    card["harm"] = harm
    card["next_steps"] = _next_steps(rep, oversight)
    card["signoff_binds"] = _binds(rep, oversight)
    card["caveats_and_recommendations"] = _merge(card["caveats_and_recommendations"])
    from .glossary import GLOSSARY, terms_in
    from .render import template_text

    used = terms_in([json.dumps(card, ensure_ascii=False), template_text()])
    card["glossary"] = [{"key": k, "term": GLOSSARY[k][0], "definition": GLOSSARY[k][1]}
                        for k in used]
    return ModelCard(data=card, images=images)


#: the card's title when the metadata names no tool
UNNAMED = "Unnamed tool (give it a name: name: in the card metadata, --metadata FILE)"


def anchor(requirement: str, evidence: str) -> str:
    """The id of an evidence table shown on the card (letters, digits and dashes only)."""
    import hashlib

    slug = re.sub(r"[^a-z0-9]+", "-", f"{requirement}-{evidence}".lower()).strip("-")[:60]
    digest = hashlib.sha256(f"{requirement}\n{evidence}".encode()).hexdigest()[:8]
    return f"ev-{slug}-{digest}"


def _safe_href(path: str) -> str | None:
    """A link to an evidence file beside the card: a relative path only (no scheme, no
    absolute or parent path), percent-encoded; None when the path is not one."""
    from urllib.parse import quote

    p = str(path).replace("\\", "/")
    if not p or p.startswith(("/", "~")) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", p) or \
            any(part in ("..", "") for part in p.split("/")):
        return None
    return quote(p, safe="/._-")


def _not_checked(rep: Any) -> list[str]:
    """One line per reason a requirement was skipped or errored, naming every requirement it
    stopped (not the same caveat once per requirement)."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for c in rep.checks:
        if c.status.value in ("skipped", "error"):
            by_reason.setdefault((c.status.value, c.message), []).append(
                c.title or c.requirement_id)
    out = []
    for (status, why), names in by_reason.items():
        what = "could not be checked" if status == "error" else "not checked"
        if len(names) == 1:
            out.append(f"{names[0]}: {what} — {why}")
        else:
            out.append(f"{len(names)} requirements {what} — {why}: " + "; ".join(names) + ".")
    return out


def _merge(items: list[str]) -> list[str]:
    """The caveats without repeats (the same text once)."""
    return list(dict.fromkeys(items))


def _next_steps(rep: Any, oversight: Mapping[str, Any]) -> list[str]:
    """What an oversight officer does next, for this result."""
    st = rep.status.value
    fails = [c.requirement_id for c in rep.by_status("fail")]
    errors = [c.requirement_id for c in rep.checks if c.status.value == "error" and c.blocking]
    rule = oversight.get("rule") or {}
    need = int(rule.get("min_approvals") or 0)
    steps = []
    if st == "fail":
        steps.append("Do not put the tool into use as it is: it fails "
                     f"{len(fails)} blocking requirement(s) ({', '.join(fails)}).")
        steps.append("Ask its owner to fix what fails (retrain, change the threshold, remove "
                     "an input that stands in for a sensitive attribute) and to audit it "
                     "again.")
        steps.append("Approving it anyway needs a waiver for each failed requirement ("
                     + ", ".join(fails) + "), signed with a written justification; the gate "
                     "opens only with those waivers and gate --accept-waivers.")
    elif st == "error":
        steps.append(f"Ask for a complete audit: {len(errors)} blocking requirement(s) "
                     f"({', '.join(errors)}) could not be checked, so nothing can be approved "
                     "yet (a waiver can accept the gap, with a justification).")
    elif st == "warn":
        steps.append("Read each point marked Attention and decide whether it is acceptable "
                     "for this use; answer the questions for a person.")
    elif st == "pass":
        steps.append("Check the intended use and the groups compared, then sign off.")
    else:
        steps.append("Nothing was checked: ask for an audit against a policy.")
    if need:
        steps.append(f"The policy needs {need} approval(s) by reviewers other than the person "
                     "who ran the audit (four-eyes rule) before the tool may be used: "
                     "lea-audit signoff.")
    steps.append("Reject it (lea-audit signoff --decision reject) if it must not be used: a "
                 "signed rejection closes the gate until it is withdrawn.")
    return steps


def _binds(rep: Any, oversight: Mapping[str, Any]) -> dict[str, Any]:
    """What a sign-off of this card attests, and the digests it binds."""
    model = rep.subject.get("model") or {}
    return {
        "attests": ("A sign-off is a reviewer's own decision, signed with their key: that "
                    "they read this card and approve (or reject) the use of this tool as "
                    "audited here. It does not certify the figures, which the audit computed; "
                    "it records who took responsibility for the decision, and when."),
        "binds": [
            {"what": "the audit report", "digest": rep.digest()},
            {"what": "this card's content", "digest": "card.json (signed as card.json#body)"},
            {"what": "the model file", "digest": model.get("file_sha256")
             or "no model file: the decisions and scores exported by the tool"},
            {"what": "the audited data", "digest": rep.data.get("sha256")},
            {"what": "the policy pack", "digest": rep.policy.get("sha256")},
        ],
        "voided_by": ("Any change to the report, card, model, data or policy voids it; so "
                      "does its expiry or its withdrawal."),
        "waiver_needed": [c.requirement_id for c in rep.checks if c.blocking and
                          c.status.value in ("fail", "error")],
    }


def evidence_path(path: str) -> str:
    """A report-relative evidence path, shown as POSIX text."""
    return PurePosixPath(path).as_posix()
