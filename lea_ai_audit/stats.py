"""Group rates from confusion counts, with confidence intervals.

Everything here works on *sufficient statistics*: per-group confusion counts (tp, fp, fn, tn).
They are additive, so the same functions serve a pandas group-by today and a Spark aggregation
tomorrow. All functions are vectorised over groups; an undefined value (a rate whose
denominator is 0) is NaN.

Interval methods (stated in every report that uses them):

- a rate k/m: **Wilson score interval** (Wilson 1927), good coverage for small m and extreme p;
- a difference of two independent rates: **Newcombe's hybrid score interval** (Newcombe 1998,
  method 10), built from the two Wilson intervals;
- a ratio of two independent rates: **Katz log interval** (Katz et al. 1978); undefined when
  either numerator is 0.

Also here, for the checks to choose from: the Clopper–Pearson exact interval and
:func:`rate_interval` (Wilson, Clopper–Pearson where min(k, m - k) <= 3, where Wilson's coverage
dips: Brown, Cai & DasGupta 2001); Koopman's (1984) score interval for a ratio, defined with a
zero count, and its inversion p-value; the AUC per group with its DeLong (1988) standard error.

Metric definitions equal fairlearn's and scikit-learn's (``selection_rate``,
``true_positive_rate``, ``false_positive_rate``, ``precision_score``, ...).

Examples
--------
>>> import numpy as np
>>> lo, hi = wilson_interval(np.array([8]), np.array([10]))
>>> round(float(lo[0]), 4), round(float(hi[0]), 4)
(0.4902, 0.9433)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .inference import (
    _koopman_statistic,  # noqa: F401 - part of the documented method
    koopman_interval_z,
    koopman_ratio_pvalue,
    newcombe_interval_z,
    wilson_interval_z,
)

__all__ = [
    "EXACT_RATE_MAX_COUNT",
    "METRICS",
    "ConfusionCounts",
    "auc_diff_interval",
    "auc_interval",
    "clopper_pearson_interval",
    "confusion_counts",
    "group_auc_delong",
    "katz_ratio_interval",
    "koopman_interval_z",
    "koopman_ratio_interval",
    "koopman_ratio_pvalue",
    "newcombe_diff_interval",
    "rate_interval",
    "rate_interval_is_exact",
    "ratio_interval",
    "wilson_interval",
]

INTERVAL_METHODS = {
    "rate": "Wilson score interval",
    "difference": "Newcombe hybrid score interval (method 10) from Wilson intervals",
    "ratio": "Koopman (1984) asymptotic score interval (defined when a count is 0; statsmodels' "
             "method='score')",
    "ratio_katz": "Katz log interval (undefined when a numerator is 0)",
    "auc": "DeLong (1988) standard error, fast mid-rank algorithm of Sun & Xu (2014)",
    "rate_exact": "Clopper-Pearson exact interval",
    "rate_rule": "Wilson score interval; Clopper-Pearson exact interval where min(k, m - k) <= 3 "
                 "(Wilson's coverage dips there: Brown, Cai & DasGupta 2001)",
    "ratio_score": "Koopman (1984) asymptotic score interval (defined when a count is 0)",
}

#: metric name -> (description, numerator, denominator), both as names of ConfusionCounts fields.
METRICS: dict[str, tuple[str, str, str]] = {
    "base_rate": ("share of actual positives", "pos", "n"),
    "selection_rate": ("share predicted positive", "pred_pos", "n"),
    "tpr": ("true positive rate (recall): positives flagged", "tp", "pos"),
    "fpr": ("false positive rate: negatives wrongly flagged", "fp", "neg"),
    "fnr": ("false negative rate: positives missed", "fn", "pos"),
    "tnr": ("true negative rate: negatives left alone", "tn", "neg"),
    "ppv": ("precision (PPV): flagged cases that were positive", "tp", "pred_pos"),
    "npv": ("negative predictive value: unflagged cases that were negative", "tn", "pred_neg"),
    "fdr": ("false discovery rate: flagged cases that were negative", "fp", "pred_pos"),
    "for": ("false omission rate: unflagged cases that were positive", "fn", "pred_neg"),
    "accuracy": ("share of correct decisions", "correct", "n"),
}


#: metrics that only describe how decisions vary with the outcome: with one decision for every
#: case (every stop is a "positive" decision) they are 0 or 1 in every group by construction
DECISION_DEPENDENT = ("selection_rate", "tpr", "fpr", "fnr", "tnr")


def undefined_when_constant(decision: int) -> tuple[str, ...]:
    """Metrics whose denominator is 0 in every group when every decision is ``decision``."""
    return ("npv", "for") if decision == 1 else ("ppv", "fdr")


#: which side of the reference group harms the people of a group, when a flag is a burden
#: (a police risk flag: a stop, a search, detention): "higher" or "lower"; None where neither
#: side is a harm in itself (a policy sets ``harm:`` on its requirement to say otherwise, e.g.
#: ``harm: lower`` for a flag that is a benefit, such as a referral to support)
HARMFUL_SIDE: dict[str, str | None] = {
    "selection_rate": "higher", "fpr": "higher", "tnr": "lower", "fdr": "higher",
    "ppv": "lower", "accuracy": "lower",
    # a missed risk harms the public and victims (under-protection) rather than the person
    "fnr": "higher", "tpr": "lower",
    "npv": None, "for": None, "base_rate": None}

#: per metric: (whom it counts, what happened to them), in words for a sentence
#: "<k> of <m> <group> <persons> <whom> <what>"; {pos}/{neg} are the outcome and its absence,
#: {flag} what a positive decision is (card metadata outcome, no_outcome, flag)
SENTENCE: dict[str, tuple[str, str]] = {
    "selection_rate": ("", "were {flag}"),
    "tpr": ("who {pos}", "were {flag}"),
    "fpr": ("who {neg}", "were {flag}"),
    "fnr": ("who {pos}", "were not {flag}"),
    "tnr": ("who {neg}", "were not {flag}"),
    "ppv": ("who were {flag}", "{pos}"),
    "npv": ("who were not {flag}", "{neg}"),
    "fdr": ("who were {flag}", "{neg}"),
    "for": ("who were not {flag}", "{pos}"),
    "accuracy": ("", "were decided correctly"),
    "base_rate": ("", "{pos}"),
}

#: per metric and side: what a group on that side of the reference group experiences
SIDE_TEXT: dict[str, tuple[str, str]] = {
    "selection_rate": ("flagged more often", "flagged less often"),
    "tpr": ("caught more often when they had the outcome",
            "missed more often when they had the outcome"),
    "fpr": ("wrongly flagged more often", "wrongly flagged less often"),
    "fnr": ("missed more often when they had the outcome",
            "missed less often when they had the outcome"),
    "tnr": ("rightly left alone more often", "wrongly flagged more often"),
    "ppv": ("flagged on firmer grounds, a flag being right more often",
            "flagged on weaker grounds, a flag being right less often"),
    "npv": ("rightly not flagged more often", "rightly not flagged less often"),
    "fdr": ("flagged wrongly more often, of those flagged",
            "flagged wrongly less often, of those flagged"),
    "for": ("missed more often, of those not flagged", "missed less often, of those not "
            "flagged"),
    "accuracy": ("decided correctly more often", "decided correctly less often"),
    "base_rate": ("recorded with the outcome more often", "recorded with the outcome less "
                  "often"),
}


#: short names for people
LABELS = {"base_rate": "base rate", "selection_rate": "selection rate", "tpr": "TPR",
          "fpr": "FPR", "fnr": "FNR", "tnr": "TNR", "ppv": "PPV", "npv": "NPV", "fdr": "FDR",
          "for": "FOR", "accuracy": "accuracy"}


@dataclass(frozen=True)
class ConfusionCounts:
    """Confusion counts per group (arrays of equal length, one entry per group)."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def pos(self) -> np.ndarray:
        return self.tp + self.fn

    @property
    def neg(self) -> np.ndarray:
        return self.fp + self.tn

    @property
    def pred_pos(self) -> np.ndarray:
        return self.tp + self.fp

    @property
    def pred_neg(self) -> np.ndarray:
        return self.fn + self.tn

    @property
    def correct(self) -> np.ndarray:
        return self.tp + self.tn

    def __len__(self) -> int:
        return len(self.tp)

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        return ConfusionCounts(self.tp + other.tp, self.fp + other.fp,
                               self.fn + other.fn, self.tn + other.tn)

    def total(self) -> ConfusionCounts:
        """The counts of all groups together (one group)."""
        return ConfusionCounts(*(np.array([a.sum()]) for a in (self.tp, self.fp, self.fn, self.tn)))

    def take(self, index: np.ndarray | list[int]) -> ConfusionCounts:
        """The counts of the groups at ``index``."""
        return ConfusionCounts(self.tp[index], self.fp[index], self.fn[index], self.tn[index])

    def fraction(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(numerator, denominator) of ``metric`` per group."""
        try:
            _, num, den = METRICS[metric]
        except KeyError:
            raise KeyError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}") from None
        return getattr(self, num), getattr(self, den)

    def rate(self, metric: str) -> np.ndarray:
        """``metric`` per group; NaN where its denominator is 0."""
        k, m = self.fraction(metric)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(m > 0, k / np.maximum(m, 1), np.nan)


def confusion_counts(codes: np.ndarray, n_groups: int, y_true: np.ndarray,
                     y_pred: np.ndarray) -> ConfusionCounts:
    """Confusion counts per group in one pass (``np.bincount``).

    ``codes`` are group indices in ``[0, n_groups)``; ``y_true`` and ``y_pred`` are 0/1.
    """
    idx = codes.astype(np.int64, copy=False) * 4 + y_true.astype(np.int64, copy=False) * 2 \
        + y_pred.astype(np.int64, copy=False)
    c = np.bincount(idx, minlength=4 * n_groups).reshape(n_groups, 4)
    # layout per group: [y=0 p=0 (tn), y=0 p=1 (fp), y=1 p=0 (fn), y=1 p=1 (tp)]
    return ConfusionCounts(tp=c[:, 3], fp=c[:, 1], fn=c[:, 2], tn=c[:, 0])


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(k: np.ndarray, m: np.ndarray, confidence: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in m trials (vectorised; NaN where m = 0)."""
    return wilson_interval_z(k, m, _z(confidence))


def newcombe_diff_interval(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                           confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference p1 - p2 of two independent rates with Newcombe's hybrid score interval.

    Returns ``(difference, low, high)``, NaN where either denominator is 0.
    """
    return newcombe_interval_z(k1, m1, k2, m2, _z(confidence))


def katz_ratio_interval(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                        confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio p1 / p2 of two independent rates with the Katz log interval.

    Returns ``(ratio, low, high)``. The ratio is NaN where a denominator or p2 is 0; the
    interval is NaN where either numerator is 0 (the log method is undefined there).
    """
    k1, m1, k2, m2 = (np.asarray(a, dtype=float) for a in (k1, m1, k2, m2))
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = k1 / m1, k2 / m2
        ratio = np.where((m1 > 0) & (m2 > 0) & (k2 > 0), p1 / p2, np.nan)
        se = np.sqrt(1 / k1 - 1 / m1 + 1 / k2 - 1 / m2)
        ok = (k1 > 0) & (k2 > 0) & (m1 > 0) & (m2 > 0)
        lo = np.where(ok, np.exp(np.log(ratio) - z * se), np.nan)
        hi = np.where(ok, np.exp(np.log(ratio) + z * se), np.nan)
    return ratio, lo, hi


def auc_hanley_mcneil(auc: float, n_pos: int, n_neg: int, confidence: float = 0.95
                      ) -> tuple[float, float, float]:
    """Standard error and interval of an AUC (Hanley & McNeil 1982). NaN when undefined."""
    if not np.isfinite(auc) or n_pos < 1 or n_neg < 1:
        return float("nan"), float("nan"), float("nan")
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) \
        / (n_pos * n_neg)
    se = float(np.sqrt(max(var, 0.0)))
    z = _z(confidence)
    return se, max(0.0, auc - z * se), min(1.0, auc + z * se)


def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices that sort ``scores`` ascending (stable): compute once, reuse for every grouping."""
    return np.argsort(scores, kind="stable")


def group_auc(scores: np.ndarray, y_true: np.ndarray, codes: np.ndarray, n_groups: int,
              order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC AUC of ``scores`` within each group, with ties counted as one half.

    Mann–Whitney U from mid-ranks within each group: equal to scikit-learn's
    ``roc_auc_score`` on each group's rows. One global sort of the scores (``order``, reusable
    across groupings) and one stable radix sort of the group codes; no per-group Python loop.

    Returns ``(auc, n_pos, n_neg)`` per group; AUC is NaN where a group lacks either class.
    """
    n = len(scores)
    if order is None:
        order = score_order(scores)
    small = np.int16 if n_groups < np.iinfo(np.int16).max else np.int64
    c_by_score = codes[order].astype(small, copy=False)
    by_group = np.argsort(c_by_score, kind="stable")  # radix sort for int16
    idx = order[by_group]  # sorted by group, then by score
    c = codes[idx]
    s = scores[idx]
    y = y_true[idx].astype(np.float64, copy=False)
    sizes = np.bincount(c, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    # tie blocks: runs of equal (group, score)
    new_block = np.ones(n, dtype=bool)
    if n > 1:
        new_block[1:] = (c[1:] != c[:-1]) | (s[1:] != s[:-1])
    block_id = np.cumsum(new_block) - 1
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, n - 1)
    first_in_group = first - starts[c[first]]
    last_in_group = last - starts[c[first]]
    midrank_block = (first_in_group + last_in_group) / 2.0 + 1.0
    midrank = midrank_block[block_id]
    n_pos = np.bincount(c, weights=y, minlength=n_groups)
    n_neg = sizes - n_pos
    rank_sum = np.bincount(c, weights=midrank * y, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return auc, n_pos.astype(np.int64), n_neg.astype(np.int64)


def ratio_interval(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                   confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio p1 / p2 of two independent rates with an interval defined when a count is 0.

    Method: Koopman's (1984) asymptotic score interval (:func:`koopman_ratio_interval`,
    statsmodels' ``confint_proportions_2indep(..., compare="ratio", method="score")``). It
    needs no continuity correction and always holds the observed ratio: ``[0, high]`` when
    ``k1 = 0 < k2``, ``[low, inf)`` when ``k2 = 0 < k1``, ``[0, inf)`` when both are 0. (The
    Katz log interval with the Haldane-Anscombe correction, used before, put 0/10 vs 5/5000 at
    [2.43, 703] around an observed ratio of 0; its coverage there was 5%.) The point ratio is
    the uncorrected ``p1 / p2``: 0 when ``k1 = 0 < k2``, ``inf`` when ``k2 = 0 < k1``, NaN when
    both are 0. Everything is NaN where a denominator is 0.

    Returns ``(ratio, low, high)``.

    Examples
    --------
    >>> r, lo, hi = ratio_interval(np.array([0]), np.array([50]), np.array([5]), np.array([50]))
    >>> float(r[0]), float(lo[0]), round(float(hi[0]), 4)
    (0.0, 0.0, 0.7355)
    """
    return koopman_ratio_interval(k1, m1, k2, m2, confidence=confidence)


def _segment_midranks(seg: np.ndarray, s: np.ndarray) -> np.ndarray:
    """1-based mid-ranks of ``s`` within each run of equal ``seg`` (both already sorted by
    ``(seg, s)``); ties (equal seg and s) share their mean rank."""
    n = len(s)
    new_seg = np.ones(n, dtype=bool)
    new_block = np.ones(n, dtype=bool)
    if n > 1:
        new_seg[1:] = seg[1:] != seg[:-1]
        new_block[1:] = new_seg[1:] | (s[1:] != s[:-1])
    seg_start = np.flatnonzero(new_seg)
    start_of = seg_start[np.cumsum(new_seg) - 1]  # start of each row's segment
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, n - 1)
    base = start_of[first]
    mid = (first - base + last - base) / 2.0 + 1.0
    return mid[np.cumsum(new_block) - 1]


def group_auc_delong(scores: np.ndarray, y_true: np.ndarray, codes: np.ndarray, n_groups: int,
                     order: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ROC AUC within each group with its DeLong (1988) standard error.

    The fast mid-rank algorithm of Sun & Xu (2014), vectorised over groups: with ``R`` the
    mid-ranks within a group, a positive's placement is
    ``V10 = (R(all) - R(among positives)) / n_neg`` and a negative's is
    ``V01 = 1 - (R(all) - R(among negatives)) / n_pos``; the AUC is the mean of V10 and
    ``var = S10 / n_pos + S01 / n_neg`` with S the sample variances (ddof=1). Ties count one
    half. ``order`` is :func:`score_order` of ``scores`` (reusable across groupings).

    Returns ``(auc, se, n_pos, n_neg)`` per group. AUC is NaN where a group lacks a class; the
    standard error is NaN also where a class has a single case.

    Examples
    --------
    >>> auc, se, n_pos, n_neg = group_auc_delong(
    ...     np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), np.zeros(4, int), 1)
    >>> float(auc[0]), round(float(se[0]), 4)
    (0.75, 0.3536)
    """
    scores = np.asarray(scores)
    codes = np.asarray(codes).astype(np.int64, copy=False)
    y_true = np.asarray(y_true)
    if order is None:
        order = score_order(scores)
    idx = order[np.argsort(codes[order], kind="stable")]  # by group, then by score
    c = codes[idx]
    s = scores[idx]
    y = y_true[idx].astype(np.int64, copy=False)
    r_all = _segment_midranks(c, s)
    by_class = np.argsort(c * 2 + y, kind="stable")  # by (group, class), then by score
    r_cls = np.empty(len(s))
    r_cls[by_class] = _segment_midranks((c * 2 + y)[by_class], s[by_class])
    sizes = np.bincount(c, minlength=n_groups).astype(float)
    n_pos = np.bincount(c, weights=y.astype(float), minlength=n_groups)
    n_neg = sizes - n_pos
    pos = y == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(pos, (r_all - r_cls) / n_neg[c], 1.0 - (r_all - r_cls) / n_pos[c])
        auc = np.bincount(c[pos], weights=v[pos], minlength=n_groups) / n_pos
        m01 = np.bincount(c[~pos], weights=v[~pos], minlength=n_groups) / n_neg
        mean = np.where(pos, auc[c], m01[c])
        dev2 = (v - mean) ** 2
        s10 = np.bincount(c[pos], weights=dev2[pos], minlength=n_groups) / (n_pos - 1)
        s01 = np.bincount(c[~pos], weights=dev2[~pos], minlength=n_groups) / (n_neg - 1)
        se = np.sqrt(s10 / n_pos + s01 / n_neg)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    se = np.where((n_pos > 1) & (n_neg > 1), se, np.nan)
    return auc, se, n_pos.astype(np.int64), n_neg.astype(np.int64)


def auc_interval(auc: np.ndarray, se: np.ndarray, confidence: float = 0.95
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Normal (Wald) interval ``auc ± z se`` clipped to [0, 1]; NaN where either is NaN.

    Examples
    --------
    >>> lo, hi = auc_interval(np.array([0.8]), np.array([0.05]))
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.702, 0.898)
    """
    auc = np.asarray(auc, dtype=float)
    se = np.asarray(se, dtype=float)
    z = _z(confidence)
    return np.clip(auc - z * se, 0.0, 1.0), np.clip(auc + z * se, 0.0, 1.0)


def auc_diff_interval(auc1: np.ndarray, se1: np.ndarray, auc2: np.ndarray, se2: np.ndarray,
                      confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference ``auc1 - auc2`` of the AUCs of two *disjoint* groups with a normal interval.

    The samples are independent, so ``var = se1**2 + se2**2`` (no covariance term: this is not
    the paired DeLong test of two scores on the same cases). Returns ``(diff, low, high)``.

    Examples
    --------
    >>> d, lo, hi = auc_diff_interval(0.8, 0.03, 0.7, 0.04)
    >>> round(float(d), 2), round(float(lo), 4), round(float(hi), 4)
    (0.1, 0.002, 0.198)
    """
    auc1, se1, auc2, se2 = (np.asarray(a, dtype=float) for a in (auc1, se1, auc2, se2))
    d = auc1 - auc2
    half = _z(confidence) * np.sqrt(se1 ** 2 + se2 ** 2)
    return d, d - half, d + half


# -- a rate: the exact interval where Wilson is known to be poor --------------------------------

#: ``rate_interval`` uses Clopper–Pearson where ``min(k, m - k) <= EXACT_RATE_MAX_COUNT``
EXACT_RATE_MAX_COUNT = 3


def clopper_pearson_interval(k: np.ndarray, m: np.ndarray, *, confidence: float = 0.95
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson "exact" interval for k successes in m trials (vectorised).

    Method: Clopper & Pearson (1934), from beta quantiles: ``low = Beta(a/2; k, m - k + 1)``
    (0 when k = 0) and ``high = Beta(1 - a/2; k + 1, m - k)`` (1 when k = m), ``a = 1 -
    confidence``. Its coverage is never below the nominal level (it is conservative). Equal to
    ``statsmodels.stats.proportion.proportion_confint(k, m, method="beta")``.

    Returns ``(low, high)``; NaN where m = 0.

    Examples
    --------
    >>> lo, hi = clopper_pearson_interval(np.array([0, 8]), np.array([10, 10]))
    >>> [round(float(x), 4) for x in lo], [round(float(x), 4) for x in hi]
    ([0.0, 0.4439], [0.3085, 0.9748])
    """
    from scipy.stats import beta

    k = np.asarray(k, dtype=float)
    m = np.asarray(m, dtype=float)
    a = 1.0 - confidence
    with np.errstate(divide="ignore", invalid="ignore"):
        # the other branch's beta parameters are made valid so no warning is raised
        lo = np.where(k > 0, beta.ppf(a / 2, np.maximum(k, 1.0), np.maximum(m - k + 1, 1.0)),
                      0.0)
        hi = np.where(k < m, beta.ppf(1 - a / 2, np.maximum(k + 1, 1.0),
                                      np.maximum(m - k, 1.0)), 1.0)
    bad = ~(m > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def rate_interval_is_exact(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Where :func:`rate_interval` uses Clopper–Pearson: ``m > 0`` and
    ``min(k, m - k) <= 3`` (:data:`EXACT_RATE_MAX_COUNT`); every group when m <= 7."""
    k = np.asarray(k, dtype=float)
    m = np.asarray(m, dtype=float)
    return (m > 0) & (np.minimum(k, m - k) <= EXACT_RATE_MAX_COUNT)


def rate_interval(k: np.ndarray, m: np.ndarray, *, confidence: float = 0.95
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Interval for a rate k/m: Wilson, and Clopper–Pearson where Wilson's coverage is poor.

    The rule: Clopper–Pearson where ``min(k, m - k) <= 3`` (:func:`rate_interval_is_exact`),
    the Wilson score interval elsewhere. Brown, Cai & DasGupta (2001, *Statist. Sci.* 16:101,
    §4.1.1) recommend Wilson but show that its coverage has deep downward spikes for p very
    close to 0 or 1, caused by the intervals of x = 1, 2, 3 successes (or failures); they
    replace those lower bounds by a one-sided Poisson bound for x <= x* (x* = 2 for n <= 50,
    3 for 51 <= n <= 100). Here the whole interval of those counts is Clopper–Pearson's,
    which never covers less than the nominal level, and x* = 3 at every m, because the spike
    is a Poisson-limit effect (np fixed) that does not shrink as m grows. Exact binomial
    coverage at 95% (minimum over p, computed for m = 10 ... 10,000): Wilson alone dips to
    0.838 at every m (near np = 0.05); this rule's minimum is 0.926-0.932, the size of
    Wilson's own oscillation away from the edges. k = 0 and k = m always use Clopper–Pearson.

    Returns ``(low, high)``; NaN where m = 0.

    Examples
    --------
    >>> lo, hi = rate_interval(np.array([1, 40]), np.array([200, 200]))
    >>> [round(float(x), 4) for x in lo], [round(float(x), 4) for x in hi]
    ([0.0001, 0.1505], [0.0275, 0.2609])
    """
    k = np.asarray(k, dtype=float)
    m = np.asarray(m, dtype=float)
    wl, wh = wilson_interval(k, m, confidence)
    cl, ch = clopper_pearson_interval(k, m, confidence=confidence)
    exact = rate_interval_is_exact(k, m)
    return np.where(exact, cl, wl), np.where(exact, ch, wh)


def koopman_ratio_interval(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray, *,
                           confidence: float = 0.95
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio p1 / p2 of two independent rates with Koopman's asymptotic score interval.

    Method: Koopman (1984, *Biometrics* 40:513), the inversion of the score test of
    ``p1 / p2 = theta`` (:func:`_koopman_statistic`), without Miettinen & Nurminen's (1985)
    ``n / (n - 1)`` factor; recommended for the ratio of two independent proportions by
    Fagerland, Lydersen & Laake (2015, *Stat. Methods Med. Res.* 24:224). Unlike the Katz log
    interval it needs no continuity correction when a count is 0, and it always contains the
    observed ratio: with ``k1 = 0 < k2`` it is ``[0, high]``; with ``k2 = 0 < k1`` it is
    ``[low, inf)`` (the data put no upper bound on the ratio); with both 0 it is
    ``[0, inf)``. Equal to ``confint_proportions_2indep(..., compare="ratio",
    method="score", correction=False)`` of statsmodels wherever that is defined (statsmodels
    starts its root search from the log interval, so it fails when a count is 0).

    The point ratio is the uncorrected ``p1 / p2``: 0 when ``k1 = 0 < k2``, ``inf`` when
    ``k2 = 0 < k1``, NaN when both are 0. Everything is NaN where a denominator is 0.

    Returns ``(ratio, low, high)``.

    Examples
    --------
    >>> r, lo, hi = koopman_ratio_interval(np.array([0]), np.array([10]), np.array([5]),
    ...                                    np.array([5000]))
    >>> float(r[0]), float(lo[0]), round(float(hi[0]), 1)
    (0.0, 0.0, 315.6)
    """
    k1, m1, k2, m2 = (np.asarray(a, dtype=float) for a in (k1, m1, k2, m2))
    lo, hi = koopman_interval_z(k1, m1, k2, m2, _z(confidence))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(k2 > 0, (k1 / m1) / (k2 / m2), np.where(k1 > 0, np.inf, np.nan))
    return np.where((m1 > 0) & (m2 > 0), ratio, np.nan), lo, hi


