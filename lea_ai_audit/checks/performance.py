"""Performance: accuracy, precision, recall and AUC, overall and by group (AI Act Art. 15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import CheckResult, Evidence, Status
from ..stats import INTERVAL_METHODS, auc_interval, group_auc_delong, rate_interval
from . import Check, register
from .fairness import _f, _r, _validate_common

if TYPE_CHECKING:
    from ..context import AuditContext

_RATES = {"accuracy": "accuracy", "precision": "ppv", "recall": "tpr"}


@register
class Performance(Check):
    """Accuracy, precision, recall (with Wilson intervals) and AUC (Hanley–McNeil), overall and
    per group of each sensitive attribute.

    Parameters
    ----------
    min_accuracy, min_precision, min_recall, min_auc : float, optional
        Declared minimum levels (AI Act Art. 15(3)); the overall point estimate must reach
        each one given. ``min_auc`` needs scores: without them the check cannot decide (WARN).
    """

    id = "performance.metrics"
    title = "Accuracy, precision, recall and AUC"

    def __init__(self, *, min_accuracy: float | None = None, min_precision: float | None = None,
                 min_recall: float | None = None, min_auc: float | None = None,
                 confidence: float = 0.95) -> None:
        self.min_accuracy = min_accuracy
        self.min_precision = min_precision
        self.min_recall = min_recall
        self.min_auc = min_auc
        self.confidence = confidence

    def validate(self) -> None:
        _validate_common(1, self.confidence)
        for name in ("min_accuracy", "min_precision", "min_recall", "min_auc"):
            v = getattr(self, name)
            if v is not None and not 0 <= float(v) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")

    def run(self, ctx: AuditContext) -> CheckResult:
        metrics: dict[str, Any] = {}
        rows = []
        overall = ctx.overall_counts
        groups = [("all", "all", overall)]
        for g in ctx.groupings(intersections=False):
            c = ctx.counts(g)
            groups.extend((g.name, label, c.take([i])) for i, label in enumerate(g.labels))
        for gname, label, c in groups:
            prefix = "" if gname == "all" else f"/{gname}/{label}"
            for name, metric in _RATES.items():
                k, m = c.fraction(metric)
                v = c.rate(metric)[0]
                lo, hi = rate_interval(k, m, confidence=self.confidence)
                metrics[f"{name}{prefix}"] = _f(v)
                rows.append([gname, label, int(c.n[0]), name, _r(v), _r(lo[0]), _r(hi[0])])
        if ctx.scores is not None:
            everyone = np.zeros(ctx.n, dtype=np.int64)
            auc, se, n_pos, n_neg = group_auc_delong(ctx.scores, ctx.y_true, everyone, 1,
                                                     ctx.score_order)
            lo, hi = auc_interval(auc, se, self.confidence)
            metrics["auc"] = _f(auc[0])
            rows.append(["all", "all", ctx.n, "auc", _r(auc[0]), _r(lo[0]), _r(hi[0])])
            for g in ctx.groupings(intersections=False):
                auc, se, n_pos, n_neg = group_auc_delong(ctx.scores, ctx.y_true, g.codes,
                                                         g.n_groups, ctx.score_order)
                lo, hi = auc_interval(auc, se, self.confidence)
                for i, label in enumerate(g.labels):
                    metrics[f"auc/{g.name}/{label}"] = _f(auc[i])
                    rows.append([g.name, label, int(n_pos[i] + n_neg[i]), "auc", _r(auc[i]),
                                 _r(lo[i]), _r(hi[i])])
        evidence = [Evidence.table(
            "performance", ["grouping", "group", "n", "metric", "value", "ci_low", "ci_high"],
            rows, f"overall and per group; {self.confidence:.0%} intervals: "
                  f"{INTERVAL_METHODS['rate_rule']} for rates, {INTERVAL_METHODS['auc']} for AUC")]
        below, undecided = [], []
        for name, floor in (("accuracy", self.min_accuracy), ("precision", self.min_precision),
                            ("recall", self.min_recall), ("auc", self.min_auc)):
            if floor is None:
                continue
            v = metrics.get(name)
            if v is None:
                undecided.append(f"{name} ({'no scores' if name == 'auc' else 'undefined'})")
            elif v < floor:
                below.append(f"{name} {v:.3f} < {floor:g}")
        headline = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("accuracy", "precision", "recall",
                                                              "auc")
                             if metrics.get(k) is not None)
        if below:
            return self.result(Status.FAIL, "below the declared level: " + "; ".join(below)
                               + f" ({headline})", metrics=metrics, evidence=evidence)
        if undecided:
            return self.result(Status.WARN, "cannot decide: " + ", ".join(undecided)
                               + f" ({headline})", metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, headline, metrics=metrics, evidence=evidence)
