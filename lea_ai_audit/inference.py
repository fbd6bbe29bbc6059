"""Decisions from intervals: interval-inversion p-values and Holm's step-down levels.

A disparity check decides, for each group, whether its difference (ratio) to the reference
group is *demonstrated inside* the tolerance or *significantly beyond* it. Both decisions read
the same two-sided interval: at confidence ``1 - a`` the interval lies wholly inside the
tolerance (demonstrated), wholly beyond it (violation), or across its edge (undecided). The
p-value of a group is the smallest ``a`` at which its interval decides (found by inverting the
interval: Newcombe's hybrid score interval for a difference, by bisection on z; the Katz log
interval for a ratio, in closed form). A wrong decision needs an interval that misses the true
value, so the p-value is valid for either kind of decision.

Comparing many groups at once finds chance gaps, so the decisions of one family (by default
the groups of one sensitive attribute, or of the intersection) are made with **Holm's step-down
procedure** (Holm 1979), which controls the family-wise error rate like Bonferroni and is
never less powerful. Each group's verdict is then read from its interval at the level Holm's
procedure gave it, and that interval is the one reported as the decision interval, so a
printed interval and its verdict always agree.

Examples
--------
>>> import numpy as np
>>> holm_levels(np.array([0.01, 0.04, 0.03]), alpha=0.05)
array([0.01666667, 0.025     , 0.025     ])
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["decision_pvalues", "holm_adjust", "holm_levels", "katz_interval_z",
           "min_detectable_difference", "newcombe_interval_z", "wilson_interval_z",
           "z_of_level"]

#: the continuity correction added to every cell of the 2x2 when a numerator is 0 (Haldane 1956,
#: Anscombe 1956), so that the log ratio and its interval are defined
HALDANE = 0.5

METHODS = {
    "multiplicity": "Holm's step-down procedure (Holm 1979) over the comparisons of each family",
    "pvalue": "inversion of the decision interval (the smallest level at which it decides)",
    "ratio_zero": "Katz log interval with the Haldane-Anscombe correction (0.5 added to each "
                  "cell) when a numerator is 0",
    "detectable": "smallest difference a two-sided z-test at the decision level detects with "
                  "80% power (normal approximation, variance at the reference rate)",
}


def z_of_level(alpha: np.ndarray | float) -> np.ndarray:
    """The z of a two-sided interval at confidence ``1 - alpha``."""
    return norm.isf(np.asarray(alpha, dtype=float) / 2.0)


def wilson_interval_z(k: np.ndarray, m: np.ndarray, z: np.ndarray | float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k/m at a z per group (NaN where m = 0): the one implementation,
    :func:`lea_ai_audit.stats.wilson_interval` reads it at one confidence."""
    k, m = np.asarray(k, dtype=float), np.asarray(m, dtype=float)
    z = np.asarray(z, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        z2 = z * z
        denom = 1.0 + z2 / m
        centre = (p + z2 / (2 * m)) / denom
        half = z * np.sqrt(p * (1 - p) / m + z2 / (4 * m * m)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def newcombe_interval_z(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                        z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval (method 10) of p1 - p2 at a z per group.

    Equal to :func:`lea_ai_audit.stats.newcombe_diff_interval` at confidence
    ``2 * Phi(z) - 1``; NaN where a denominator is 0.
    """
    k1, m1, k2, m2 = (np.asarray(a, dtype=float) for a in (k1, m1, k2, m2))
    z = np.broadcast_to(np.asarray(z, dtype=float), k1.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = k1 / m1, k2 / m2
    l1, u1 = wilson_interval_z(k1, m1, z)
    l2, u2 = wilson_interval_z(k2, m2, z)
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    bad = (m1 <= 0) | (m2 <= 0)
    return np.where(bad, np.nan, d), np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _log_ratio(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """log(p1/p2) and its Katz standard error; Haldane-Anscombe corrected where a numerator
    is 0."""
    k1, m1, k2, m2 = (np.asarray(a, dtype=float) for a in (k1, m1, k2, m2))
    zero = (k1 == 0) | (k2 == 0)
    c = np.where(zero, HALDANE, 0.0)
    a, b = k1 + c, k2 + c
    n1, n2 = m1 + 2 * c, m2 + 2 * c
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log((a / n1) / (b / n2))
        se = np.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n2)
    bad = (m1 <= 0) | (m2 <= 0)
    return np.where(bad, np.nan, log_r), np.where(bad, np.nan, se)


def katz_interval_z(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                    z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Katz log interval of p1 / p2 at a z per group, defined when a numerator is 0 (the
    Haldane-Anscombe correction); NaN where a denominator is 0."""
    log_r, se = _log_ratio(k1, m1, k2, m2)
    z = np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.exp(log_r - z * se), np.exp(log_r + z * se)


def _invert(endpoint, boundary: np.ndarray, start: np.ndarray, z_max: float = 38.0,
            iterations: int = 64) -> np.ndarray:
    """z at which ``endpoint(z)`` (monotone, equal to ``start`` at z = 0) reaches ``boundary``;
    ``z_max`` where it never does."""
    lo = np.zeros_like(boundary)
    hi = np.full_like(boundary, z_max)
    up = start < boundary  # the endpoint moves towards the boundary as z grows
    for _ in range(iterations):
        mid = (lo + hi) / 2
        e = endpoint(mid)
        reached = np.where(up, e >= boundary, e <= boundary)
        hi = np.where(reached, mid, hi)
        lo = np.where(reached, lo, mid)
    return (lo + hi) / 2


def decision_pvalues(k: np.ndarray, m: np.ndarray, k_ref: float, m_ref: float, *,
                     max_difference: float | None = None, min_ratio: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (inside, p) — whether the point estimate meets every tolerance, and the
    p-value of the decision the interval can make.

    ``inside``: the p-value is that of *demonstrating* every tolerance (the largest over the
    tolerances: each must be shown). Otherwise: of a *violation* (the smallest over the
    tolerances the point estimate breaks: one suffices). p = 1 where nothing can be decided
    (a point exactly on the edge), NaN where a denominator is 0.
    """
    k, m = np.asarray(k, dtype=float), np.asarray(m, dtype=float)
    kr, mr = np.full_like(k, float(k_ref)), np.full_like(m, float(m_ref))
    n = len(k)
    inside = np.ones(n, dtype=bool)
    p_in = np.zeros(n)          # max over tolerances
    p_out = np.ones(n)          # min over broken tolerances
    if max_difference is not None:
        tol = float(max_difference)
        d = newcombe_interval_z(k, m, kr, mr, 0.0)[0]
        ok = np.abs(d) <= tol
        # inside: the first endpoint to leave [-tol, tol] decides; beyond: the nearer endpoint
        z_hi = _invert(lambda z: newcombe_interval_z(k, m, kr, mr, z)[2], np.full(n, tol), d)
        z_lo = _invert(lambda z: newcombe_interval_z(k, m, kr, mr, z)[1], np.full(n, -tol), d)
        z_up = _invert(lambda z: newcombe_interval_z(k, m, kr, mr, z)[1], np.full(n, tol), d)
        z_dn = _invert(lambda z: newcombe_interval_z(k, m, kr, mr, z)[2], np.full(n, -tol), d)
        z_inside = np.minimum(z_hi, z_lo)
        z_beyond = np.where(d > tol, z_up, z_dn)
        p_in = np.maximum(p_in, np.where(ok, 2 * norm.sf(z_inside), 1.0))
        p_out = np.where(ok, p_out, np.minimum(p_out, 2 * norm.sf(z_beyond)))
        inside &= ok
    if min_ratio is not None:
        bound = abs(float(np.log(min_ratio)))
        log_r, se = _log_ratio(k, m, kr, mr)
        ok = np.abs(log_r) <= bound
        with np.errstate(divide="ignore", invalid="ignore"):
            z_r = np.abs(bound - np.abs(log_r)) / se
        z_r = np.where(np.isfinite(z_r), z_r, 0.0)
        p_in = np.maximum(p_in, np.where(ok, 2 * norm.sf(z_r), 1.0))
        p_out = np.where(ok, p_out, np.minimum(p_out, 2 * norm.sf(z_r)))
        inside &= ok
    p = np.where(inside, p_in, p_out)
    return inside, np.where((m > 0) & (mr > 0), p, np.nan)


def holm_adjust(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979); NaN stays NaN and is not counted in the
    family. Equal to ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if len(idx) == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    k = len(order)
    adj = np.maximum.accumulate((k - np.arange(k)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def holm_levels(p: np.ndarray, alpha: float, *, method: str = "holm") -> np.ndarray:
    """The level at which each comparison's interval is read, so that the verdicts are those of
    the multiple-comparison ``method`` ("holm", "bonferroni" or "none") at family-wise ``alpha``.

    Holm: the comparison of rank i (1 = smallest p) among k is read at ``alpha / (k - i + 1)``
    while the step-down rejects; from the first comparison it does not reject on, every
    comparison is read at that comparison's level, where none of them decides (their p-values
    are at least its own). NaN p-values (not compared) get NaN.
    """
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    k = len(idx)
    if k == 0:
        return out
    if method == "none":
        out[idx] = alpha
        return out
    if method == "bonferroni":
        out[idx] = alpha / k
        return out
    if method != "holm":
        raise ValueError(f"unknown multiple-comparison method {method!r}")
    order = idx[np.argsort(p[idx], kind="stable")]
    levels = alpha / (k - np.arange(k))
    rejected = p[order] <= levels
    stop = int(np.argmin(rejected)) if not rejected.all() else k
    if stop < k:
        levels[stop:] = levels[stop]
    out[order] = levels
    return out


def min_detectable_difference(m: np.ndarray, m_ref: float, p_ref: float, alpha: np.ndarray, *,
                              power: float = 0.8, iterations: int = 30) -> np.ndarray:
    """Smallest increase ``d`` over the reference rate that a two-sided z-test of two
    independent proportions at level ``alpha`` detects with ``power`` (Fleiss, Levin & Paik
    2003, eq. 4.14): ``d = z_{1-alpha/2} sqrt(pbar (1 - pbar) (1/m + 1/m_ref)) +
    z_power sqrt(p1 (1 - p1) / m + p_ref (1 - p_ref) / m_ref)`` with ``p1 = p_ref + d``,
    solved by fixed-point iteration (a decrease is found the same way with p1 = p_ref - d when
    an increase cannot reach 1). NaN where a denominator is 0.
    """
    m = np.asarray(m, dtype=float)
    mr = np.float64(m_ref)  # numpy division: a reference with no case gives NaN, not a crash
    p2 = float(p_ref)
    za, zb = z_of_level(alpha), norm.ppf(power)
    sign = 1.0 if p2 <= 0.5 else -1.0  # look towards the roomier side of [0, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (za + zb) * np.sqrt(max(p2 * (1 - p2), 0.01) * (1 / m + 1 / mr))
        for _ in range(iterations):
            p1 = np.clip(p2 + sign * d, 0.0, 1.0)
            pbar = (m * p1 + mr * p2) / (m + mr)
            d = za * np.sqrt(pbar * (1 - pbar) * (1 / m + 1 / mr)) \
                + zb * np.sqrt(p1 * (1 - p1) / m + p2 * (1 - p2) / mr)
    return np.where((m > 0) & (mr > 0), np.minimum(d, 1.0), np.nan)
