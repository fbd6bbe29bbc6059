"""Human oversight (Council 13083/1/20 §27, §28; AI Act Art. 14).

``oversight.attestation``: items that no computation can decide. ``oversight.decisions``: a
review of the officers' decisions on the tool's recommendations (see :class:`DecisionReview`).

An attestation requirement stays WARN ("awaiting attestation") until a person states how it
is met: ``audit(..., attestations={"officer-training": "course X, 2026-10"})`` or
``lea-audit run --attest officer-training="..."``. The statement is recorded as evidence, with
the report's author; the sign-off of the report by reviewers confirms it.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from ..results import CheckResult, Evidence, Status
from . import Check, register

if TYPE_CHECKING:
    from ..context import AuditContext


def _r(x: Any, nd: int = 4) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v, nd) if math.isfinite(v) else None


@register
class Attestation(Check):
    """A question a person must answer; no check can decide it.

    Parameters
    ----------
    item : str
        Stable key of the item (the key of ``attestations=``).
    question : str
        What the person attests, in plain words.
    """

    id = "oversight.attestation"
    title = "Manual attestation"

    def __init__(self, *, item: str = "", question: str = "") -> None:
        self.item = item
        self.question = question

    def validate(self) -> None:
        if not self.item or not self.question:
            raise ValueError("an attestation needs an item key and a question")

    def run(self, ctx: AuditContext) -> CheckResult:
        statement = ctx.attestations.get(self.item)
        if statement and str(statement).strip():
            return self.result(
                Status.PASS, f"attested: {statement}",
                evidence=[Evidence("attestation", "json",
                                   {"item": self.item, "question": self.question,
                                    "statement": str(statement)},
                                   "stated by the report's author; confirmed by sign-off")])
        return self.result(Status.WARN, f"awaiting human attestation ({self.item}): "
                                        f"{self.question}",
                           evidence=[Evidence("question", "text", self.question)])


def _median(values: list[float]) -> float | None:
    vals = sorted(v for v in values if v is not None and math.isfinite(v))
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def _pct(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.0%}" if x in (0.0, 1.0) else f"{x:.1%}"


def _secs(x: float | None) -> str:
    if x is None:
        return "undefined"
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"


def _positive(value: Any) -> bool | None:
    """1/True as positive, 0/False as negative, else None (outcomes that are not 0/1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return None


@register
class DecisionReview(Check):
    """How officers decide on the tool's recommendations (Council 13083/1/20 §27; AI Act
    Art. 14(4)(b): awareness of "automation bias").

    Reads the decision log given as ``audit(..., decisions=DecisionLog(url))`` (``lea-audit
    run --decisions URL``): acceptance and override rates overall, per officer and per group of
    each sensitive attribute (Wilson intervals, Clopper-Pearson where min(k, m - k) <= 3), time
    from recommendation to decision, pending cases. Findings (FAIL; the default pack makes the
    requirement advisory):

    - automation-bias signs: with at least ``min_decisions`` decisions, acceptance at or above
      ``max_acceptance`` while the median time to decision is below ``min_review_seconds`` —
      overall, or for one officer;
    - officers override the tool for one group markedly more or less often than for the
      reference group (the audit's reference group, else the largest): the difference exceeds
      ``max_override_difference`` and its Newcombe interval excludes 0.

    Groups come from the audited rows when ``case_id`` names the column of the audited data
    that holds the case ids given to ``OverseenModel.recommend`` (the decisions are joined to
    the rows on it); otherwise from the attributes recorded with each recommendation
    (``OverseenModel(..., groups=[...])``), matched to the audit's sensitive attribute names.
    SKIPPED without a decision log; WARN (insufficient evidence) with fewer than
    ``min_decisions`` decisions or a group below ``min_group_size``.

    Parameters
    ----------
    case_id : str, optional
        Column of the audited data with the case ids.
    model_id : str, optional
        Review only the recommendations of this model (default: every model in the log).
    min_decisions : int
        Decisions needed before rates are judged (overall and per officer).
    max_acceptance : float
        Acceptance rate at or above which, with short reviews, automation bias is suspected.
    min_review_seconds : float
        Median time to decision below which a review counts as very short.
    max_override_difference : float
        Tolerated difference of a group's override rate from the reference group's.
    min_group_size : int
        Decisions a group needs to be compared.
    confidence : float
        Level of the intervals.
    """

    id = "oversight.decisions"
    title = "Officers' decisions on the tool's recommendations"

    def __init__(self, *, case_id: str | None = None, model_id: str | None = None,
                 min_decisions: int = 30, max_acceptance: float = 0.98,
                 min_review_seconds: float = 10.0, max_override_difference: float = 0.10,
                 min_group_size: int = 30, confidence: float = 0.95) -> None:
        self.case_id = case_id
        self.model_id = model_id
        self.min_decisions = min_decisions
        self.max_acceptance = max_acceptance
        self.min_review_seconds = min_review_seconds
        self.max_override_difference = max_override_difference
        self.min_group_size = min_group_size
        self.confidence = confidence

    def validate(self) -> None:
        if int(self.min_decisions) < 1:
            raise ValueError(f"min_decisions must be at least 1, got {self.min_decisions}")
        if int(self.min_group_size) < 1:
            raise ValueError(f"min_group_size must be at least 1, got {self.min_group_size}")
        if not 0 < float(self.max_acceptance) <= 1:
            raise ValueError(f"max_acceptance must be in (0, 1], got {self.max_acceptance}")
        if float(self.min_review_seconds) < 0:
            raise ValueError("min_review_seconds must be >= 0")
        if not 0 <= float(self.max_override_difference) <= 1:
            raise ValueError("max_override_difference must be in [0, 1]")
        if not 0.5 <= float(self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        for name in ("case_id", "model_id"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ValueError(f"{name} must be a non-empty string")

    # -- helpers -------------------------------------------------------------------------------
    def _log(self, ctx: AuditContext) -> Any:
        log = ctx.decisions
        if isinstance(log, (str, os.PathLike)):
            from ..decisions import DecisionLog

            log = DecisionLog(log, create=False)
        if not hasattr(log, "outcomes") or not hasattr(log, "counts"):
            raise TypeError(f"decisions must be a lea_ai_audit.decisions.DecisionLog, got "
                            f"{type(log).__name__}")
        return log

    def _groups(self, ctx: AuditContext, frame: Any) -> tuple[dict[str, list[str | None]],
                                                              dict[str, str], list[str]]:
        """Per sensitive attribute: each decision's group label (None if unknown); the
        reference label per attribute; notes."""
        notes: list[str] = []
        out: dict[str, list[str | None]] = {}
        refs: dict[str, str] = {}
        groupings = {g.name: g for g in ctx.groupings(intersections=False)}
        for s in ctx.sensitive:
            g = groupings.get(s)
            if g is not None:
                refs[s] = g.labels[g.reference]
        if self.case_id is not None:
            if self.case_id not in ctx.data.columns:
                from ..errors import ColumnNotFoundError
                raise ColumnNotFoundError("case id", self.case_id, ctx.data.columns)
            ids = ctx.data[self.case_id].astype(str)
            first = {cid: i for i, cid in reversed(list(enumerate(ids.tolist())))}
            if len(first) < len(ids):
                notes.append(f"{len(ids) - len(first)} audited row(s) repeat a case id; the "
                             "first row of each id was used")
            rows = [first.get(str(c)) for c in frame["case_id"].tolist()]
            unmatched = sum(r is None for r in rows)
            if unmatched:
                notes.append(f"{unmatched} decision(s) concern cases not in the audited data "
                             "(left out of the group figures)")
            for s in ctx.sensitive:
                g = groupings.get(s)
                if g is None:
                    continue
                out[s] = [None if r is None else g.labels[int(g.codes[r])] for r in rows]
            return out, refs, notes
        recorded = frame["groups"].tolist()
        for s in ctx.sensitive:
            vals = [None if not isinstance(d, dict) or d.get(s) is None else str(d.get(s))
                    for d in recorded]
            if all(v is None for v in vals):
                notes.append(f"the log recorded no {s!r} for its cases: record it at recommend "
                             f"time (OverseenModel(groups=[{s!r}])) or set case_id to join "
                             "the decisions to the audited rows")
                continue
            out[s] = vals
        return out, refs, notes

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.decisions is None:
            return self.result(Status.SKIPPED, "no decision log given: pass audit(..., "
                                               "decisions=DecisionLog(url)) or `lea-audit run "
                                               "--decisions URL` to review officers' decisions")
        import numpy as np

        from ..stats import newcombe_diff_interval, rate_interval

        log = self._log(ctx)
        frame = log.outcomes(model_id=self.model_id)
        counts = log.counts(model_id=self.model_id)
        pending = int(counts.get("pending", 0))
        n = len(frame)
        where = getattr(log, "safe_url", "the decision log")
        metrics: dict[str, Any] = {"decisions": n, "pending": pending}
        if n == 0:
            return self.result(Status.WARN, f"insufficient evidence: no decision recorded yet in "
                                            f"{where} ({pending} recommendation(s) pending)",
                               metrics=metrics)
        conf = float(self.confidence)
        min_n, min_g = int(self.min_decisions), int(self.min_group_size)
        decisions = frame["decision"].tolist()
        secs = [float(x) for x in frame["seconds_to_decision"].tolist()]
        officers = frame["officer"].astype(str).tolist()
        overridden = [d == "override" for d in decisions]
        k_over = int(sum(overridden))
        acc = _share(n - k_over, n)
        med = _median(secs)
        short = _share(sum(s < float(self.min_review_seconds) for s in secs), n)
        lo, hi = rate_interval(np.array([n - k_over]), np.array([n]), confidence=conf)
        metrics.update({"officers": len(set(officers)), "acceptance_rate": acc,
                        "override_rate": _share(k_over, n),
                        "median_seconds_to_decision": med,
                        "share_reviews_under_min_seconds": short})
        findings: list[str] = []
        thin: list[str] = []

        def biased(k_acc: int, m: int, median: float | None) -> bool:
            return (m >= min_n and median is not None and k_acc / m >= self.max_acceptance
                    and median < float(self.min_review_seconds))

        if biased(n - k_over, n, med):
            findings.append(f"automation-bias signs overall: {_pct(acc)} of {n} recommendations "
                            f"accepted with a median review of {_secs(med)}")
        overall_rows = [["decisions", n], ["pending", pending], ["officers", len(set(officers))],
                        ["acceptance_rate", acc], ["acceptance_ci_low", float(lo[0])],
                        ["acceptance_ci_high", float(hi[0])], ["override_rate", _share(k_over, n)],
                        ["median_seconds_to_decision", med],
                        ["share_reviews_under_min_seconds", short]]
        # -- per officer --
        by_off: dict[str, list[int]] = {}
        for i, o in enumerate(officers):
            by_off.setdefault(o, []).append(i)
        off_rows, flagged = [], []
        for o in sorted(by_off):
            idx = by_off[o]
            m = len(idx)
            k = sum(overridden[i] for i in idx)
            omed = _median([secs[i] for i in idx])
            olo, ohi = rate_interval(np.array([m - k]), np.array([m]), confidence=conf)
            flag = biased(m - k, m, omed)
            if flag:
                flagged.append(f"officer {o} accepted {_pct((m - k) / m)} of {m} with a median "
                               f"review of {_secs(omed)}")
            off_rows.append([o, m, round((m - k) / m, 4), _r(olo[0]), _r(ohi[0]),
                             round(k / m, 4), _r(omed, 1), "yes" if flag else
                             ("too few" if m < min_n else "no")])
        metrics["officers_with_automation_bias_signs"] = len(flagged)
        if flagged:
            findings.append("automation-bias signs: " + "; ".join(flagged))
        # -- per group --
        groups, refs, notes = self._groups(ctx, frame)
        labels = frame["label"].tolist()
        outcomes = frame["outcome"].tolist()
        group_rows = []
        for attr, vals in groups.items():
            per: dict[str, list[int]] = {}
            for i, v in enumerate(vals):
                if v is not None:
                    per.setdefault(v, []).append(i)
            if not per:
                continue
            ref = refs.get(attr)
            if ref not in per:
                ref = max(per, key=lambda g: len(per[g]))
            k_ref = sum(overridden[i] for i in per[ref])
            m_ref = len(per[ref])
            for grp in sorted(per, key=str):
                idx = per[grp]
                m = len(idx)
                k = sum(overridden[i] for i in idx)
                glo, ghi = rate_interval(np.array([k]), np.array([m]), confidence=conf)
                d, dlo, dhi = newcombe_diff_interval(np.array([k]), np.array([m]),
                                                     np.array([k_ref]), np.array([m_ref]), conf)
                rec_pos = [_positive(labels[i]) for i in idx]
                fin_pos = [_positive(outcomes[i]) for i in idx]
                rec_rate = (sum(bool(x) for x in rec_pos) / m
                            if all(x is not None for x in rec_pos) else None)
                fin_rate = (sum(bool(x) for x in fin_pos) / m
                            if all(x is not None for x in fin_pos) else None)
                key = f"{attr}/{grp}"
                metrics[f"n/{key}"] = m
                metrics[f"override_rate/{key}"] = k / m
                small = m < min_g or m_ref < min_g
                if grp != ref:
                    metrics[f"override_rate_difference/{key}"] = None if small else _r(d[0])
                    if small:
                        thin.append(f"{attr}={grp} ({m} decisions)" if m < min_g else
                                    f"{attr}={ref} ({m_ref} decisions)")
                    elif (abs(float(d[0])) > float(self.max_override_difference)
                          and (float(dlo[0]) > 0 or float(dhi[0]) < 0)):
                        findings.append(
                            f"officers override the tool for {attr}={grp} in {_pct(k / m)} of "
                            f"{m} cases against {_pct(k_ref / m_ref)} for {attr}={ref} "
                            f"(difference {float(d[0]):+.2f}, {conf:.0%} interval "
                            f"{float(dlo[0]):+.2f} to {float(dhi[0]):+.2f})")
                group_rows.append([attr, grp, "yes" if grp == ref else "no", m, m - k, k,
                                   _r(k / m), _r(glo[0]), _r(ghi[0]),
                                   None if grp == ref else _r(d[0]),
                                   None if grp == ref else _r(dlo[0]),
                                   None if grp == ref else _r(dhi[0]),
                                   _r(_median([secs[i] for i in idx]), 1),
                                   _r(rec_rate), _r(fin_rate)])
        evidence = [
            Evidence.table("decisions:overall", ["measure", "value"],
                           [[k, _r(v) if isinstance(v, float) else v] for k, v in overall_rows],
                           f"decisions in {where}; {conf:.0%} Wilson interval of the "
                           "acceptance rate (Clopper-Pearson where min(k, m - k) <= 3)"),
            Evidence.table("decisions:by_officer",
                           ["officer", "decisions", "acceptance_rate", "ci_low", "ci_high",
                            "override_rate", "median_seconds", "automation_bias_signs"],
                           off_rows, f"automation-bias signs: at least {min_n} decisions, "
                                     f"acceptance >= {self.max_acceptance:g} and median time "
                                     f"to decision < {float(self.min_review_seconds):g} s"),
            Evidence.table("decisions:by_group",
                           ["attribute", "group", "reference", "decisions", "accepted",
                            "overridden", "override_rate", "ci_low", "ci_high", "difference",
                            "diff_ci_low", "diff_ci_high", "median_seconds",
                            "recommended_positive_rate", "final_positive_rate"],
                           group_rows, "override rate per group against the reference group "
                                       "(Newcombe interval of the difference); positive rates "
                                       "of the recommendation and of the officers' final "
                                       "outcome"
                                       + (" — groups " + ("from the audited rows joined on "
                                                          f"{self.case_id!r}" if self.case_id
                                                          else "recorded with the "
                                                               "recommendations"))),
        ]
        if notes:
            evidence.append(Evidence("notes", "json", notes, "what the review could not use"))
        head = (f"{n} decision(s) by {len(set(officers))} officer(s): {_pct(acc)} accepted, "
                f"{_pct(_share(k_over, n))} overridden, median time to decision {_secs(med)}; "
                f"{pending} pending")
        if findings:
            evidence.append(Evidence("findings", "json", findings, "what a reviewer should "
                                                                   "look into"))
            return self.result(Status.FAIL, head + ". " + "; ".join(findings),
                               metrics=metrics, evidence=evidence)
        if n < min_n:
            return self.result(Status.WARN, f"insufficient evidence: {head} (fewer than "
                                            f"{min_n} decisions to judge)",
                               metrics=metrics, evidence=evidence)
        if thin:
            return self.result(Status.WARN, f"{head}; insufficient evidence to compare "
                                            f"{', '.join(thin)} (fewer than {min_g})",
                               metrics=metrics, evidence=evidence)
        extra = "; ".join(notes)
        return self.result(Status.PASS, f"{head}; no sign of automation bias, override rates "
                                        "comparable across groups" + (f" ({extra})" if extra
                                                                      else ""),
                           metrics=metrics, evidence=evidence)
