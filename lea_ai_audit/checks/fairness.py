"""Group fairness (Council 13083/1/20 §26; AI Act Art. 10(2)(f)).

Every figure comes from per-group confusion counts computed once in the context (one
``np.bincount`` per grouping), so metrics for every group of every sensitive attribute and of
their intersection cost almost nothing beyond that pass. Metric definitions equal fairlearn's;
intervals are stated in :mod:`lea_ai_audit.stats`.

Checks
------
``fairness.group_metrics``
    Every metric (n, base rate, selection rate, TPR, FPR, FNR, TNR, PPV, NPV, FDR, FOR,
    accuracy) per group with 95% intervals; WARN when a group is too small to judge.
``fairness.disparity``
    One metric compared with a reference group: difference and ratio with intervals; FAIL when
    a group differs beyond the policy's threshold (by point estimate, or only when significant).
``fairness.calibration``
    AUC and calibration per group, for models with scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..inference import (
    METHODS,
    decision_pvalues,
    holm_adjust,
    holm_levels,
    koopman_interval_z,
    min_detectable_difference,
    newcombe_interval_z,
    z_of_level,
)
from ..results import CheckResult, Evidence, Status
from ..stats import (
    DECISION_DEPENDENT,
    HARMFUL_SIDE,
    INTERVAL_METHODS,
    LABELS,
    METRICS,
    SIDE_TEXT,
    ConfusionCounts,
    auc_interval,
    confusion_counts,
    group_auc_delong,
    newcombe_diff_interval,
    rate_interval,
    ratio_interval,
    undefined_when_constant,
)
from . import Check, register

if TYPE_CHECKING:
    from ..context import AuditContext, Grouping

DECISION_RULES = ("point", "significant")
DISPARITY_RULES = ("demonstrated", "significant", "point")
HARM_SIDES = ("higher", "lower", "either")
MULTIPLE_COMPARISONS = ("holm", "bonferroni", "none")
FAMILIES = ("attribute", "check")


def _f(x: Any) -> float | None:
    """A finite float or None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _r(x: Any, nd: int = 4) -> float | None:
    v = _f(x)
    return None if v is None else round(v, nd)


def _fmt(x: float | None, nd: int = 3) -> str:
    return "undefined" if x is None else f"{x:.{nd}f}"


def _validate_common(min_group_size: int, confidence: float, decision_rule: str | None = None
                     ) -> None:
    if int(min_group_size) < 1:
        raise ValueError(f"min_group_size must be at least 1, got {min_group_size}")
    if not 0.5 <= float(confidence) < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    if decision_rule is not None and decision_rule not in DECISION_RULES:
        raise ValueError(f"decision_rule must be one of {DECISION_RULES}, got {decision_rule!r}")


def _compare_instead(d: int) -> str:
    return ("compare the outcome test instead: PPV (the hit rate) and FDR by group" if d == 1
            else "compare NPV and FOR by group instead")


def decisions_only_note(ctx: AuditContext) -> str:
    """A plain statement of which rates mean nothing when every decision is the same."""
    d = ctx.constant_decision
    if d is None:
        return ""
    which = "positive" if d == 1 else "negative"
    undefined = ", ".join(LABELS[m] for m in undefined_when_constant(d))
    trivial = ", ".join(LABELS[m] for m in DECISION_DEPENDENT)
    return (f"every case received a {which} decision, so {trivial} are the same in every group "
            f"by construction and say nothing about bias, and {undefined} are undefined (no "
            f"case received the other decision); {_compare_instead(d)}")


def constant_decision_skip(ctx: AuditContext, metric: str) -> str | None:
    """Why ``metric`` cannot be compared across groups on decisions-only data, or None."""
    d = ctx.constant_decision
    if d is None:
        return None
    which = "positive" if d == 1 else "negative"
    if metric in DECISION_DEPENDENT:
        value = "1" if (metric in ("selection_rate", "tpr", "fpr")) == (d == 1) else "0"
        return (f"{LABELS[metric]} is {value} in every group by construction (every case "
                f"received a {which} decision), so it says nothing about bias; "
                f"{_compare_instead(d)}")
    if metric in undefined_when_constant(d):
        return (f"{LABELS[metric]} is undefined in every group (every case received a {which} "
                f"decision, none the other); {_compare_instead(d)}")
    return None


def compare_counts(counts: ConfusionCounts, ref: int, metric: str,
                   confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Per-group value of ``metric`` with its interval, and difference and ratio (with
    intervals) against group ``ref``, from confusion counts per group."""
    k, m = counts.fraction(metric)
    lo, hi = rate_interval(k, m, confidence=confidence)
    d, dlo, dhi = newcombe_diff_interval(k, m, k[ref], m[ref], confidence)
    # Koopman's score interval: defined when a count is 0, it always holds the observed ratio
    r, rlo, rhi = ratio_interval(k, m, k[ref], m[ref], confidence)
    return {"n": counts.n, "k": k, "m": m, "value": counts.rate(metric), "lo": lo, "hi": hi,
            "diff": d, "diff_lo": dlo, "diff_hi": dhi, "ratio": r, "ratio_lo": rlo,
            "ratio_hi": rhi}


def compare_groups(ctx: AuditContext, grouping: Grouping, metric: str,
                   confidence: float = 0.95) -> dict[str, np.ndarray]:
    """:func:`compare_counts` of the groups of ``grouping`` against its reference group."""
    return compare_counts(ctx.counts(grouping), grouping.reference, metric, confidence)


#: a numeric control column with more distinct values than this is cut into quantile bins
CONTROL_MAX_VALUES = 10
#: more strata than this is refused (ERROR): each needs its own comparisons, and an identifier
#: given as a control would make one stratum per row
CONTROL_MAX_STRATA = 100


def control_strata(data: pd.DataFrame, columns: Sequence[str], bins: int
                   ) -> tuple[np.ndarray, list[str]]:
    """Strata of legitimate factors: ``(codes, labels)``, one code per row.

    A column with at most :data:`CONTROL_MAX_VALUES` distinct values (or not numeric) gives a
    stratum per value; a numeric one with more is cut at its quantiles into at most ``bins``
    bins, each labelled with the smallest and largest value it holds. Missing values form a
    stratum of their own. Several columns: every combination that occurs.

    Examples
    --------
    >>> df = pd.DataFrame({"priors": [0, 0, 1, 5, 9, 12], "c": ["F", "M", "F", "F", "M", "M"]})
    >>> control_strata(df, ["c"], 4)
    (array([0, 1, 0, 0, 1, 1]), ['c=F', 'c=M'])
    """
    combined = np.zeros(len(data), dtype=np.int64)
    parts: list[str] = [""]  # the label of each combination that occurs, by combined code
    for col in columns:
        s = data[col]
        na = s.isna().to_numpy()
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if numeric and s.nunique(dropna=True) > CONTROL_MAX_VALUES:
            v = s.to_numpy(dtype=float)
            edges = np.unique(np.nanquantile(v[~na], np.linspace(0, 1, int(bins) + 1)))
            b = np.searchsorted(edges[1:-1], v, side="right")
            b = np.where(na, -1, b)
            codes = np.full(len(v), -1, dtype=np.int64)
            names = []
            for i, j in enumerate(np.unique(b[~na])):
                inside = b == j
                codes[inside] = i
                lo, hi = float(v[inside].min()), float(v[inside].max())
                names.append(f"{col}={lo:g}" if lo == hi else f"{col} {lo:g} to {hi:g}")
        else:
            codes_f, uniques = pd.factorize(s, sort=True)
            codes, names = codes_f, [f"{col}={u}" for u in uniques]
        if na.any():
            codes = np.where(na, len(names), codes)
            names = [*names, f"{col}=(missing)"]
        # only the combinations that occur (never the product of every column's values), and
        # re-coded after each column so that the codes stay below the number of rows
        combined, uniq = pd.factorize(combined * len(names) + codes, sort=True)
        combined = combined.astype(np.int64)
        parts = [(parts[int(u) // len(names)] + ", " if parts[int(u) // len(names)] else "")
                 + names[int(u) % len(names)] for u in uniq]
    return combined, parts


@register
class GroupMetrics(Check):
    """Every group metric, per group of each sensitive attribute and their intersection.

    Parameters
    ----------
    min_group_size : int
        Groups with fewer rows are reported as insufficient evidence (WARN), never as a pass.
    confidence : float
        Confidence level of the intervals.
    intersections : bool
        Also report the intersection of all sensitive attributes.
    """

    id = "fairness.group_metrics"
    title = "Group metrics with confidence intervals"

    def __init__(self, *, min_group_size: int = 30, confidence: float = 0.95,
                 intersections: bool = True) -> None:
        self.min_group_size = min_group_size
        self.confidence = confidence
        self.intersections = intersections

    def validate(self) -> None:
        _validate_common(self.min_group_size, self.confidence)

    def run(self, ctx: AuditContext) -> CheckResult:
        metrics: dict[str, Any] = {}
        evidence: list[Evidence] = []
        small: list[str] = []
        for g in ctx.groupings(intersections=self.intersections):
            counts = ctx.counts(g)
            n_all = counts.n  # a property that sums four arrays: once, not once per group
            rows = []
            for i, label in enumerate(g.labels):
                n_i = int(n_all[i])
                metrics[f"n/{g.name}/{label}"] = n_i
                if n_i < self.min_group_size:
                    small.append(f"{g.name}={label} (n={n_i})")
            for metric in METRICS:
                k, m = counts.fraction(metric)
                value = counts.rate(metric)
                lo, hi = rate_interval(k, m, confidence=self.confidence)
                for i, label in enumerate(g.labels):
                    metrics[f"{metric}/{g.name}/{label}"] = _f(value[i])
                    rows.append([label, int(n_all[i]), metric, _r(value[i]), _r(lo[i]),
                                 _r(hi[i]), int(k[i]), int(m[i])])
            evidence.append(Evidence.table(
                f"group_metrics:{g.name}",
                ["group", "n", "metric", "value", "ci_low", "ci_high", "numerator",
                 "denominator"], rows,
                f"{g.name}: every metric per group; reference group "
                f"{g.labels[g.reference]!r} ({g.reference_source}); "
                f"{self.confidence:.0%} {INTERVAL_METHODS['rate_rule']}; "
                "value undefined (null) where the denominator is 0"))
        n_groups = sum(g.n_groups for g in ctx.groupings(intersections=self.intersections))
        note = decisions_only_note(ctx)
        if note:
            evidence.append(Evidence("decisions only", "text", note[0].upper() + note[1:] + "."))
        if small:
            shown = ", ".join(small[:8]) + (f" and {len(small) - 8} more" if len(small) > 8 else "")
            return self.result(Status.WARN,
                               f"insufficient evidence: {len(small)} of {n_groups} groups have "
                               f"fewer than {self.min_group_size} cases: {shown}",
                               metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, f"{n_groups} groups, each with at least "
                                        f"{self.min_group_size} cases"
                                        + (f"; note: {note}" if note else ""), metrics=metrics,
                           evidence=evidence)


@register
class Disparity(Check):
    """One metric compared across groups against a reference group.

    Parameters
    ----------
    metric : str
        A metric of :data:`lea_ai_audit.stats.METRICS` (``"fpr"``, ``"selection_rate"``, ...).
    max_difference : float, optional
        Largest allowed absolute difference from the reference group's value.
    min_ratio : float, optional
        Smallest allowed ratio to the reference group's value (and its inverse the largest,
        e.g. 0.8 allows [0.8, 1.25]: the four-fifths rule).
    decision_rule : {"demonstrated", "significant", "point"}
        How a group's interval decides (every rule reads the *decision interval*: the
        interval at the level the multiple-comparison procedure gave the group):

        ``"demonstrated"`` — the burden is on the tool: a group is *demonstrated* only when
        its decision interval lies wholly inside the tolerance; wholly beyond it is a
        *violation* (FAIL); across the edge is *not demonstrated* (WARN, or FAIL with
        ``if_not_demonstrated="fail"``). The police packs use it for blocking requirements.
        ``"significant"`` — a group fails only when its decision interval lies wholly beyond
        the tolerance; a point estimate beyond it whose interval reaches back inside is
        *inconclusive* (WARN); a point estimate inside is *ok*, however wide its interval.
        ``"point"`` — the point estimate alone decides (no interval, no adjustment).
    if_not_demonstrated : {"warn", "fail"}
        With ``"demonstrated"``: the status when some group is neither demonstrated nor a
        violation.
    min_group_size : int
        A group (or reference) whose denominator for this metric is smaller is "insufficient
        evidence" (WARN), never a pass.
    confidence : float
        Confidence of the plain intervals, and ``1 - alpha`` of each family's decisions.
    intersections : bool
        Also compare the groups of the intersection of all sensitive attributes.
    multiple_comparisons : {"holm", "bonferroni", "none"}
        Comparing many groups finds chance gaps, so the decisions of a family are made with
        Holm's step-down procedure (family-wise error ``1 - confidence``); ``"bonferroni"``
        reads every interval at ``alpha / k``; ``"none"`` at ``alpha``.
    family : {"attribute", "check"}
        The family of comparisons the adjustment runs over: each sensitive attribute's groups
        and the intersection's cells separately (default), or every comparison of the check.
    control : list of str, optional
        Conditional disparity: legitimate factors (e.g. ``["priors_count"]``) within whose
        strata the groups are compared, as fairlearn's ``control_features``. Each stratum
        (a value; a quantile bin of a numeric column with many values; a combination of
        several columns) compares the groups against the reference group within it, with the
        same intervals and rules; a family's Holm adjustment runs over every stratum's
        comparisons. A group too small within a stratum is insufficient evidence there.
    control_bins : int
        Quantile bins of a numeric control column with more than 10 distinct values.
    harm : {"higher", "lower", "either"}, optional
        Which side of the reference group harms a group's people. Default: the metric's side
        when a flag is a burden (:data:`lea_ai_audit.stats.HARMFUL_SIDE`: a higher FPR or
        selection rate, a lower PPV, ...); set ``"lower"`` for the selection rate of a flag that
        is a benefit. The test stays two-sided (a gap either way beyond the tolerance fails: on
        the other side the *reference* group is the one disadvantaged); the side only orders
        and words the findings: groups on the harmful side first, each row's ``side`` column.
    """

    id = "fairness.disparity"
    title = "Disparity against a reference group"

    def __init__(self, *, metric: str = "fpr", max_difference: float | None = None,
                 min_ratio: float | None = None, decision_rule: str = "significant",
                 if_not_demonstrated: str = "warn", min_group_size: int = 30,
                 confidence: float = 0.95, intersections: bool = True,
                 multiple_comparisons: str = "holm", family: str = "attribute",
                 control: Sequence[str] | str | None = None, control_bins: int = 4,
                 harm: str | None = None) -> None:
        self.metric = metric
        self.harm = harm
        # a name or a list of names; anything else is kept as given, for validate() to refuse
        self.control = [control] if isinstance(control, str) else (
            list(control) if isinstance(control, (list, tuple)) else control)
        self.control_bins = control_bins
        self.max_difference = max_difference
        self.min_ratio = min_ratio
        self.decision_rule = decision_rule
        self.if_not_demonstrated = if_not_demonstrated
        self.min_group_size = min_group_size
        self.confidence = confidence
        self.intersections = intersections
        self.multiple_comparisons = multiple_comparisons
        self.family = family

    def validate(self) -> None:
        _validate_common(self.min_group_size, self.confidence)
        for name, value, allowed in (
                ("decision_rule", self.decision_rule, DISPARITY_RULES),
                ("multiple_comparisons", self.multiple_comparisons, MULTIPLE_COMPARISONS),
                ("family", self.family, FAMILIES),
                ("if_not_demonstrated", self.if_not_demonstrated, ("warn", "fail"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if self.harm is not None and self.harm not in HARM_SIDES:
            raise ValueError(f"harm must be one of {HARM_SIDES}, got {self.harm!r}")
        if self.max_difference is None and self.min_ratio is None:
            raise ValueError("give max_difference, min_ratio or both")
        if self.control is not None and (not isinstance(self.control, list) or not self.control
                                         or not all(isinstance(c, str) and c
                                                    for c in self.control)):
            raise ValueError(f"control must be a list of column names, got {self.control!r}")
        if isinstance(self.control_bins, bool) or not isinstance(self.control_bins, int) or \
                self.control_bins < 2:
            raise ValueError(f"control_bins must be an integer >= 2, got {self.control_bins!r}")
        if self.max_difference is not None and not 0 <= float(self.max_difference) <= 1:
            raise ValueError(f"max_difference must be in [0, 1], got {self.max_difference}")
        if self.min_ratio is not None and not 0 < float(self.min_ratio) <= 1:
            raise ValueError(f"min_ratio must be in (0, 1], got {self.min_ratio}")

    @property
    def harmful_side(self) -> str:
        """"higher", "lower" or "either": the side of the reference that harms a group."""
        return self.harm or HARMFUL_SIDE.get(self.metric) or "either"

    def _side(self, diff: float | None) -> str | None:
        """Where a group's point estimate lies against its reference group: "harmful",
        "favourable" (the reference group is the disadvantaged one), "equal", or "higher" /
        "lower" when neither side is a harm (None: undefined)."""
        if diff is None:
            return None
        if diff == 0:
            return "equal"
        where = "higher" if diff > 0 else "lower"
        if self.harmful_side == "either":
            return where
        return "harmful" if where == self.harmful_side else "favourable"

    def _insufficient(self, m: np.ndarray, i: int, ref: int) -> bool:
        return bool(m[i] < self.min_group_size or m[ref] < self.min_group_size)

    def _decide(self, g: Grouping, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per group of one grouping: the point's side of the tolerance and the p-value of the
        decision its interval can make (NaN: not compared)."""
        ref = g.reference
        inside, p = decision_pvalues(t["k"], t["m"], t["k"][ref], t["m"][ref],
                                     max_difference=self.max_difference,
                                     min_ratio=self.min_ratio)
        compared = np.array([i != ref and not self._insufficient(t["m"], i, ref)
                             for i in range(g.n_groups)], dtype=bool)
        p = np.where(compared, p, np.nan)
        # two families of fixed hypotheses, each adjusted on its own: "beyond the tolerance"
        # (a violation) and "inside it" (demonstrated); p = 1 where the point estimate is on
        # the other side (its interval, which holds the point, can never decide there)
        return {"inside": inside, "p": p, "p_violation": np.where(inside & compared, 1.0, p),
                "p_demonstrated": np.where(~inside & compared, 1.0, p)}

    def _verdict(self, t: dict[str, np.ndarray], i: int, ref: int, inside: bool,
                 decided: bool) -> tuple[str, str]:
        """(verdict, reason) of group ``i``; ``t`` carries the decision intervals."""
        if i == ref:
            return "reference", ""
        if self._insufficient(t["m"], i, ref):
            which = "group" if t["m"][i] < self.min_group_size else "reference group"
            return "insufficient", (f"{which} has {int(min(t['m'][i], t['m'][ref]))} cases in "
                                    f"the denominator of {self.metric} (< {self.min_group_size})")
        parts = []
        d, dlo, dhi = _f(t["diff"][i]), _f(t["dec_diff_lo"][i]), _f(t["dec_diff_hi"][i])
        if self.max_difference is not None and d is not None:
            parts.append(f"difference {d:+.3f} [{_fmt(dlo)}, {_fmt(dhi)}] vs ±"
                         f"{self.max_difference:g}")
        if self.min_ratio is not None:
            r, rlo, rhi = _f(t["ratio"][i]), _f(t["dec_ratio_lo"][i]), _f(t["dec_ratio_hi"][i])
            shown = ("infinite (the reference group's rate is 0)" if t["ratio"][i] == np.inf
                     else _fmt(r))
            high = "inf" if t["dec_ratio_hi"][i] == np.inf else _fmt(rhi)
            parts.append(f"ratio {shown} [{_fmt(rlo)}, {high}] vs "
                         f"[{self.min_ratio:.2f}, {1 / self.min_ratio:.2f}]")
        level = f"at {t['dec_conf'][i]:.2%}"
        text = "; ".join(parts)
        if self.decision_rule == "point":
            return ("ok", "") if inside else ("violation", f"{text} (point estimate)")
        if not inside:
            if decided:
                return "violation", f"{text}: wholly beyond the tolerance {level}"
            return "inconclusive", f"{text}: the interval {level} reaches the tolerance"
        if self.decision_rule == "significant":
            return "ok", ""
        if decided:
            return "demonstrated", f"{text}: wholly inside the tolerance {level}"
        return "not demonstrated", (f"{text}: the interval {level} reaches beyond the "
                                    f"tolerance; could not have detected a difference below "
                                    f"{_fmt(_f(t['detectable'][i]))}")

    def run(self, ctx: AuditContext) -> CheckResult:
        skip = constant_decision_skip(ctx, self.metric)
        if skip:
            return self.result(Status.SKIPPED, f"does not apply: {skip}",
                               metrics={"constant_decision": ctx.constant_decision})
        alpha = 1.0 - float(self.confidence)
        groupings = ctx.groupings(intersections=self.intersections)
        control_note = ""
        if self.control:
            made = self._stratify(ctx, groupings)
            if isinstance(made, CheckResult):
                return made
            groupings, tables, families, strata = made
            control_note = f", within {len(set(strata))} strata of {', '.join(self.control)}"
        else:
            tables = [compare_groups(ctx, g, self.metric, self.confidence) for g in groupings]
            families = [g.name for g in groupings]
            strata = [None] * len(groupings)
        base_names = list(families)
        decided_by = [self._decide(g, t) for g, t in zip(groupings, tables, strict=True)]
        method = "none" if self.decision_rule == "point" else self.multiple_comparisons
        if self.family == "check":
            families = ["*"] * len(groupings)

        # the levels and adjusted p-values of each family (a grouping, its strata, or the check)
        def family_levels(key: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
            lv_out: list[np.ndarray] = [np.array([])] * len(groupings)
            adj_out: list[np.ndarray] = [np.array([])] * len(groupings)
            for fam in dict.fromkeys(families):
                idx = [j for j, f in enumerate(families) if f == fam]
                allp = np.concatenate([decided_by[j][key] for j in idx])
                lv = holm_levels(allp, alpha, method=method)
                if method == "holm":
                    adj = holm_adjust(allp)
                elif method == "bonferroni":
                    adj = np.minimum(allp * np.count_nonzero(~np.isnan(allp)), 1.0)
                else:
                    adj = allp
                cuts = np.cumsum([0] + [len(decided_by[j][key]) for j in idx])
                for n, j in enumerate(idx):
                    lv_out[j], adj_out[j] = lv[cuts[n]:cuts[n + 1]], adj[cuts[n]:cuts[n + 1]]
            return lv_out, adj_out

        lv_v, adj_v = family_levels("p_violation")
        lv_d, adj_d = family_levels("p_demonstrated")
        levels = [np.where(d["inside"], b, a) for d, a, b in zip(decided_by, lv_v, lv_d,
                                                                 strict=True)]
        adjusted_p = [np.where(d["inside"], b, a) for d, a, b in zip(decided_by, adj_v, adj_d,
                                                                     strict=True)]
        k = int(sum(np.count_nonzero(~np.isnan(d["p"])) for d in decided_by))
        metrics: dict[str, Any] = {"comparisons": k, "family_error": alpha}
        finite = [lvl[~np.isnan(lvl)] for lvl in levels]
        smallest = min((float(x.min()) for x in finite if len(x)), default=alpha)
        metrics["decision_confidence"] = 1.0 - smallest
        evidence: list[Evidence] = []
        found: dict[str, list[tuple[int, bool, float, str, str | None]]] = {
            "violation": [], "inconclusive": [], "not demonstrated": []}
        insufficient: list[str] = []
        worst = 0.0
        for g, t, dec, lvl, adjusted, base, stratum in zip(
                groupings, tables, decided_by, levels, adjusted_p, base_names, strata,
                strict=True):
            within = f" within {stratum}" if stratum else ""
            ref = g.reference
            a = np.where(np.isnan(lvl), alpha, lvl)
            z = z_of_level(a)
            _, t["dec_diff_lo"], t["dec_diff_hi"] = newcombe_interval_z(
                t["k"], t["m"], t["k"][ref], t["m"][ref], z)
            t["dec_ratio_lo"], t["dec_ratio_hi"] = koopman_interval_z(
                t["k"], t["m"], t["k"][ref], t["m"][ref], z)
            t["dec_conf"] = 1.0 - a
            t["detectable"] = min_detectable_difference(
                t["m"], float(t["m"][ref]), float(np.nan_to_num(t["value"][ref])), a)
            fam_name = ("every comparison of the check" if self.family == "check"
                        else f"the groups of {base}" + (" in every stratum of "
                                                        + ", ".join(self.control)
                                                        if self.control else ""))
            rows = []
            for i, label in enumerate(g.labels):
                decided = bool(np.isfinite(dec["p"][i]) and dec["p"][i] <= a[i])
                verdict, why = self._verdict(t, i, ref, bool(dec["inside"][i]), decided)
                key = f"{g.name}/{label}"
                metrics[f"{self.metric}/{key}"] = _f(t["value"][i])
                own = i == ref
                if not own:
                    metrics[f"{self.metric}_diff/{key}"] = _f(t["diff"][i])
                    metrics[f"{self.metric}_ratio/{key}"] = _f(t["ratio"][i])
                    if verdict != "insufficient" and _f(t["diff"][i]) is not None:
                        worst = max(worst, abs(float(t["diff"][i])))
                side = None if own else self._side(_f(t["diff"][i]))
                if verdict in found:
                    found[verdict].append((0 if side == "harmful" else 1, g.is_intersection,
                                           -abs(_f(t["diff"][i]) or 0.0),
                                           f"{base}={label}{within} "
                                           f"{_fmt(_f(t['value'][i]))} vs "
                                           f"{_fmt(_f(t['value'][ref]))} for {g.labels[ref]} "
                                           f"({why})", side))
                elif verdict == "insufficient":
                    insufficient.append(f"{base}={label}{within}")
                compared = verdict not in ("reference", "insufficient")

                def cell(x: Any, show: bool) -> float | None:
                    return _r(x) if show else None
                ratio_shown = (None if own or not np.isfinite(t["ratio"][i])
                               else _r(t["ratio"][i]))
                rows.append([
                    label, int(t["n"][i]), int(t["m"][i]), _r(t["value"][i]), _r(t["lo"][i]),
                    _r(t["hi"][i]), cell(t["diff"][i], not own), cell(t["diff_lo"][i], not own),
                    cell(t["diff_hi"][i], not own), ratio_shown,
                    cell(t["ratio_lo"][i], not own), cell(t["ratio_hi"][i], not own),
                    cell(t["dec_conf"][i], compared), cell(t["dec_diff_lo"][i], compared),
                    cell(t["dec_diff_hi"][i], compared), cell(t["dec_ratio_lo"][i], compared),
                    cell(t["dec_ratio_hi"][i], compared),
                    None if not compared else _f(dec["p"][i]),
                    None if not compared else _f(adjusted[i]),
                    cell(t["detectable"][i], compared), verdict, why, int(t["k"][i]), side])
            evidence.append(Evidence.table(
                f"{self.metric}:{g.name}",
                ["group", "n", "denominator", "value", "ci_low", "ci_high", "diff",
                 "diff_ci_low", "diff_ci_high", "ratio", "ratio_ci_low", "ratio_ci_high",
                 "decision_confidence", "decision_diff_low", "decision_diff_high",
                 "decision_ratio_low", "decision_ratio_high", "p_value", "p_adjusted",
                 "detectable_diff", "verdict", "reason", "numerator", "side"], rows,
                f"{METRICS[self.metric][0]} by {g.name}, against reference group "
                f"{g.labels[ref]!r} ({g.reference_source}); the reference row is not compared "
                f"with itself. Two-sided: a gap either way counts; side says where a group "
                f"lies (harmful: {self._harm_words()[0]} than the reference group; favourable: "
                f"{self._harm_words()[1]}, the reference group being the disadvantaged one). "
                f"Plain {self.confidence:.0%} intervals (ci_*, diff_ci_*, "
                f"ratio_ci_*): rate — {INTERVAL_METHODS['rate_rule']}; difference — "
                f"{INTERVAL_METHODS['difference']}; ratio — {INTERVAL_METHODS['ratio']} (an "
                f"empty ratio_ci_high / decision_ratio_high is unbounded: the reference "
                f"group's count is 0). The "
                f"verdict reads the decision interval (decision_*), at the level "
                + ({"holm": METHODS["multiplicity"], "bonferroni": "Bonferroni's correction",
                    "none": "of each comparison alone"}[method] if self.decision_rule != "point"
                   else "of the point estimate alone")
                + (f" (family: {fam_name})" if method != "none" else "")
                + f" gave it, family-wise error {alpha:.0%}; p_value: {METHODS['pvalue']}; "
                f"detectable_diff: {METHODS['detectable']}."))
        metrics[f"{self.metric}_max_abs_diff"] = worst
        return self._conclude(metrics, evidence, found, insufficient, worst, k, method,
                              control_note)

    def _stratify(self, ctx: AuditContext, groupings: list[Grouping]
                  ) -> tuple[list[Grouping], list[dict[str, np.ndarray]], list[str],
                             list[str]] | CheckResult:
        """Each grouping within each stratum of the control columns: (views, tables, the
        family (grouping) and the stratum of each), or an ERROR result saying why not."""
        from ..context import Grouping as _Grouping

        data = ctx.data
        sampled = (getattr(ctx, "population", None) or {}).get("sampled")
        if sampled:
            return self.result(Status.ERROR, "control= needs every row, and this audit holds a "
                               "sample of the data (a Spark frame): compare within strata on "
                               "pandas data, or filter the Spark frame to one stratum per audit")
        missing = [c for c in self.control if c not in data.columns]
        if missing:
            return self.result(Status.ERROR, f"control column {missing[0]!r} is not in the "
                               "data: name a column of the audited data (policy field control)")
        clash = [c for c in self.control if c in (ctx.target, *ctx.sensitive)]
        if clash:
            return self.result(Status.ERROR, f"control column {clash[0]!r} is the target or a "
                               "sensitive attribute: control for a legitimate factor instead")
        codes, labels = control_strata(data, self.control, int(self.control_bins))
        if len(labels) > CONTROL_MAX_STRATA:
            return self.result(Status.ERROR, f"control {', '.join(self.control)} gives "
                               f"{len(labels)} strata (at most {CONTROL_MAX_STRATA}): control "
                               "for a coarser factor, or fewer columns, or bin it first")
        views, tables, families, strata = [], [], [], []
        for g in groupings:
            both = confusion_counts(codes * g.n_groups + g.codes, len(labels) * g.n_groups,
                                    ctx.y_true, ctx.y_pred)
            for j, stratum in enumerate(labels):
                part = both.take(np.arange(j * g.n_groups, (j + 1) * g.n_groups))
                views.append(_Grouping(name=f"{g.name} | {stratum}", attributes=g.attributes,
                                       codes=g.codes, labels=g.labels, reference=g.reference,
                                       reference_source=g.reference_source))
                tables.append(compare_counts(part, g.reference, self.metric, self.confidence))
                families.append(g.name)
                strata.append(stratum)
        return views, tables, families, strata

    def _harm_words(self) -> tuple[str, str]:
        """(what the harmful side means, what the other side means) for this metric."""
        hi, lo = SIDE_TEXT.get(self.metric, ("higher", "lower"))
        if self.harmful_side == "lower":
            return lo, hi
        return hi, lo

    def _split(self, items: list[tuple[int, bool, float, str, str | None]]) -> str:
        """The groups of a finding, those on the harmful side first, then the others."""
        v = sorted(items, key=lambda x: x[:3])
        if self.harmful_side == "either":
            return f"e.g. {v[0][3]}"
        harm, other = self._harm_words()
        bad = [x for x in v if x[4] == "harmful"]
        rest = [x for x in v if x[4] != "harmful"]
        parts = []
        if bad:
            parts.append(f"{len(bad)} on the harmful side ({harm} than their reference "
                         f"group), e.g. {bad[0][3]}")
        else:
            parts.append(f"none on the harmful side ({harm} than their reference group)")
        if rest:
            parts.append(f"{len(rest)} on the other side ({other}: their reference group is "
                         f"the disadvantaged one)" + ("" if bad else f", e.g. {rest[0][3]}"))
        return "; ".join(parts)

    def _conclude(self, metrics: dict[str, Any], evidence: list[Evidence],
                  found: dict[str, list[tuple[int, bool, float, str, str | None]]],
                  insufficient: list[str],
                  worst: float, k: int, method: str, control_note: str = "") -> CheckResult:
        adj = {"holm": "Holm", "bonferroni": "Bonferroni", "none": ""}[method]
        fam = "per attribute" if self.family == "attribute" else "over the check"
        rule = ("point estimate" if self.decision_rule == "point" else
                f"rule '{self.decision_rule}' at {self.confidence:.0%}"
                + (f", {adj}-adjusted {fam}, {k} comparison(s) in all" if adj else ""))
        rule += control_note
        limits = " and ".join(x for x in (
            f"difference ≤ {self.max_difference:g}" if self.max_difference is not None else "",
            f"ratio ≥ {self.min_ratio:g}" if self.min_ratio is not None else "") if x)
        limits += ", two-sided"
        name = LABELS[self.metric]
        more = f"; {len(insufficient)} group(s) too small to judge" if insufficient else ""
        kw = {"metrics": metrics, "evidence": evidence}
        for verdict in ("violation", "inconclusive", "not demonstrated"):
            v = found[verdict]
            metrics[f"{verdict.replace(' ', '_')}_harmful_side"] = sum(
                1 for x in v if x[4] == "harmful")
        if found["violation"]:
            v = found["violation"]
            return self.result(Status.FAIL, f"{name} disparity in {len(v)} group(s) ({limits}, "
                                            f"{rule}): {self._split(v)}", **kw)
        if found["inconclusive"]:
            v = found["inconclusive"]
            return self.result(Status.WARN,
                               f"possible {name} disparity in {len(v)} group(s), not "
                               f"significantly beyond the tolerance ({limits}, {rule}): "
                               f"{self._split(v)}{more}", **kw)
        if found["not demonstrated"]:
            v = found["not demonstrated"]
            status = Status.FAIL if self.if_not_demonstrated == "fail" else Status.WARN
            return self.result(status,
                               f"{name} parity not demonstrated for {len(v)} group(s): the "
                               f"data cannot show that they are within the tolerance "
                               f"({limits}, {rule}): {self._split(v)}{more}", **kw)
        if insufficient:
            shown = ", ".join(insufficient[:3]) + (f" and {len(insufficient) - 3} more"
                                                   if len(insufficient) > 3 else "")
            return self.result(Status.WARN,
                               f"insufficient evidence for {len(insufficient)} group(s) "
                               f"(< {self.min_group_size} cases in the {name} denominator): "
                               f"{shown}; the other groups meet {limits}", **kw)
        shown = "demonstrated within" if self.decision_rule == "demonstrated" else "within"
        return self.result(Status.PASS, f"{name} {shown} limits for every group ({limits}, "
                                        f"{rule}); largest difference {worst:.3f}", **kw)


@register
class Calibration(Check):
    """Ranking quality (AUC) and calibration per group, for models with scores.

    Parameters
    ----------
    max_auc_difference : float, optional
        Largest allowed AUC difference from the reference group.
    max_calibration_gap : float, optional
        Largest allowed |mean score − observed rate| within any group (calibration in the
        large); only for scores that are probabilities.
    decision_rule : {"point", "significant"}
        As for ``fairness.disparity``: with ``"significant"`` a group fails only when the
        normal-approximation interval lies beyond the tolerance; else it is inconclusive (WARN).
    n_bins : int
        Bins of the expected calibration error (ECE), reported per group.
    """

    id = "fairness.calibration"
    title = "AUC and calibration by group"

    def __init__(self, *, max_auc_difference: float | None = None,
                 max_calibration_gap: float | None = None, n_bins: int = 10,
                 decision_rule: str = "significant", min_group_size: int = 30,
                 confidence: float = 0.95, intersections: bool = False) -> None:
        self.max_auc_difference = max_auc_difference
        self.max_calibration_gap = max_calibration_gap
        self.n_bins = n_bins
        self.decision_rule = decision_rule
        self.min_group_size = min_group_size
        self.confidence = confidence
        self.intersections = intersections

    def validate(self) -> None:
        _validate_common(self.min_group_size, self.confidence, self.decision_rule)
        if int(self.n_bins) < 2:
            raise ValueError(f"n_bins must be at least 2, got {self.n_bins}")

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.scores is None:
            return self.result(Status.SKIPPED, "no scores: AUC and calibration need score= "
                               "(--score-col) or a model with predict_proba")
        s, y = ctx.scores, ctx.y_true.astype(float)
        probabilistic = bool(np.all((s >= 0) & (s <= 1)))
        z_sig = self.decision_rule == "significant"
        from scipy.stats import norm
        z = float(norm.ppf(0.5 + self.confidence / 2))
        metrics: dict[str, Any] = {}
        evidence: list[Evidence] = []
        problems: list[str] = []
        doubts: list[str] = []
        small: list[str] = []
        resid = s - y
        bins = np.minimum((np.clip(s, 0, 1) * self.n_bins).astype(np.int64), self.n_bins - 1)
        for g in ctx.groupings(intersections=self.intersections):
            G = g.n_groups
            auc, auc_se, n_pos, n_neg = group_auc_delong(s, ctx.y_true, g.codes, G,
                                                         ctx.score_order)
            auc_lo, auc_hi = auc_interval(auc, auc_se, self.confidence)
            n = n_pos + n_neg
            mean_s = np.bincount(g.codes, weights=s, minlength=G) / np.maximum(n, 1)
            observed = n_pos / np.maximum(n, 1)
            gap = mean_s - observed
            sq = np.bincount(g.codes, weights=resid * resid, minlength=G)
            with np.errstate(divide="ignore", invalid="ignore"):
                var = (sq - n * gap * gap) / (n - 1)
                gap_se = np.where(n > 1, np.sqrt(np.maximum(var, 0)) / np.sqrt(n), np.nan)
            key = g.codes * self.n_bins + bins
            cnt_s = np.bincount(key, weights=s, minlength=G * self.n_bins).reshape(G, -1)
            cnt_y = np.bincount(key, weights=y, minlength=G * self.n_bins).reshape(G, -1)
            ece = np.abs(cnt_s - cnt_y).sum(axis=1) / np.maximum(n, 1)
            rows = []
            stats = []
            for i, label in enumerate(g.labels):
                se, lo, hi = _f(auc_se[i]), auc_lo[i], auc_hi[i]
                gi = float(gap[i]) if probabilistic else None
                gsi = _f(gap_se[i]) if probabilistic else None
                ei = float(ece[i]) if probabilistic else None
                stats.append((float(auc[i]), se, gi, gsi, int(min(n_pos[i], n_neg[i]))))
                rows.append([label, int(n[i]), int(n_pos[i]), int(n_neg[i]), _r(auc[i]), _r(lo),
                             _r(hi), _r(mean_s[i]), _r(observed[i]), _r(gi), _r(ei)])
                key_ = f"{g.name}/{label}"
                metrics[f"auc/{key_}"] = _f(auc[i])
                if probabilistic:
                    metrics[f"calibration_gap/{key_}"] = _f(gi)
                    metrics[f"ece/{key_}"] = _f(ei)
            ref = g.reference
            for i, label in enumerate(g.labels):
                auc, se, gap, gap_se, n_min = stats[i]
                if n_min < self.min_group_size:
                    small.append(f"{g.name}={label}")
                    continue
                if self.max_auc_difference is not None and i != ref \
                        and stats[ref][4] >= self.min_group_size:
                    d = auc - stats[ref][0]
                    d_se = float(np.hypot(se, stats[ref][1]))
                    if abs(d) > self.max_auc_difference:
                        beyond = not z_sig or abs(d) - z * d_se > self.max_auc_difference
                        (problems if beyond else doubts).append(
                            f"{g.name}={label}: AUC {auc:.3f} vs {stats[ref][0]:.3f} "
                            f"({g.labels[ref]}), difference {d:+.3f} ± {z * d_se:.3f}")
                if self.max_calibration_gap is not None and gap is not None \
                        and abs(gap) > self.max_calibration_gap:
                    beyond = not z_sig or (gap_se is not None
                                           and abs(gap) - z * gap_se > self.max_calibration_gap)
                    (problems if beyond else doubts).append(
                        f"{g.name}={label}: mean score off the observed rate by {gap:+.3f}"
                        + (f" ± {z * gap_se:.3f}" if gap_se is not None else ""))
            evidence.append(Evidence.table(
                f"calibration:{g.name}",
                ["group", "n", "positives", "negatives", "auc", "auc_ci_low", "auc_ci_high",
                 "mean_score", "observed_rate", "calibration_gap", "ece"], rows,
                f"AUC per group by {g.name} with {self.confidence:.0%} intervals from "
                f"{INTERVAL_METHODS['auc']}; "
                + ("calibration gap = mean score − observed rate; ECE with "
                   f"{self.n_bins} equal-width bins" if probabilistic else
                   "scores are not probabilities in [0, 1]: calibration not assessed")))
        if problems:
            return self.result(Status.FAIL, f"{len(problems)} group(s) ranked or calibrated "
                               f"worse than allowed, e.g. " + "; ".join(problems[:2]),
                               metrics=metrics, evidence=evidence)
        note = "" if probabilistic else " (scores are not probabilities: calibration not assessed)"
        if not probabilistic and self.max_calibration_gap is not None:
            return self.result(Status.WARN, "cannot decide the calibration requirement: the scores "
                               "are not probabilities in [0, 1]", metrics=metrics,
                               evidence=evidence)
        if doubts:
            return self.result(Status.WARN, f"possible miscalibration or ranking gap in "
                               f"{len(doubts)} group(s), not significantly beyond the tolerance, "
                               "e.g. " + "; ".join(doubts[:2]), metrics=metrics,
                               evidence=evidence)
        if small:
            return self.result(Status.WARN, f"insufficient evidence for {len(small)} group(s) "
                               f"(< {self.min_group_size} positives or negatives): "
                               + ", ".join(small[:6]) + note, metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, "AUC and calibration within limits for every group" + note,
                           metrics=metrics, evidence=evidence)
