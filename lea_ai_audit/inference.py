"""Decisions from intervals: interval-inversion p-values and Holm's step-down levels.

A disparity check decides, for each group, whether its difference (ratio) to the reference
group is *demonstrated inside* the tolerance or *significantly beyond* it. Both decisions read
the same two-sided interval: at confidence ``1 - a`` the interval lies wholly inside the
tolerance (demonstrated), wholly beyond it (violation), or across its edge (undecided). The
p-value of a group is the smallest ``a`` at which its interval decides (found by inverting the
interval: Newcombe's hybrid score interval for a difference, by bisection on z; Koopman's score
interval for a ratio, in closed form, as the score statistic at the tolerance's edge). A wrong
decision needs an interval that misses the true value, so the p-value is valid for either kind
of decision.

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

__all__ = ["decision_pvalues", "holm_adjust", "holm_levels", "koopman_interval_z",
           "koopman_ratio_pvalue", "min_detectable_difference", "newcombe_interval_z",
           "wilson_interval_z", "z_of_level"]

METHODS = {
    "multiplicity": "Holm's step-down procedure (Holm 1979) over the comparisons of each family",
    "pvalue": "inversion of the decision interval (the smallest level at which it decides)",
    "ratio": "Koopman (1984) score interval of the ratio (statsmodels' method='score'): no "
             "continuity correction, defined when a count is 0, always holds the observed ratio",
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


# -- a ratio: Koopman's score interval, defined when a count is 0 -----------------------------

def _koopman_statistic(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                       theta: np.ndarray) -> np.ndarray:
    """Koopman's (1984) score statistic of H0: p1 / p2 = theta (arrays broadcast).

    ``(p1 - theta p2) / sqrt(q1 (1 - q1) / m1 + theta^2 q2 (1 - q2) / m2)`` with (q1, q2) the
    maximum-likelihood rates under H0 (q1 = theta q2; q2 the root in [0, 1] of
    ``(m1 + m2) theta q^2 - (m1 theta + k1 + m2 + k2 theta) q + k1 + k2``, Miettinen &
    Nurminen 1985, written without cancellation), without Miettinen–Nurminen's
    ``n / (n - 1)`` factor. Decreasing in theta; NaN where k1 + k2 = 0.
    """
    n = m1 + m2
    c = k1 + k2
    a = n * theta
    b = -(m1 * theta + k1 + m2 + k2 * theta)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q2 = 2.0 * c / (np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0)) - b)
        q1 = theta * q2
        var = q1 * (1.0 - q1) / m1 + theta * theta * q2 * (1.0 - q2) / m2
        return (k1 / m1 - theta * k2 / m2) / np.sqrt(var)


def koopman_interval_z(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray,
                       z: np.ndarray | float, *, iterations: int = 90
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Koopman's score interval of p1 / p2 at a z per group.

    See :func:`lea_ai_audit.stats.koopman_ratio_interval`.

    The set of ratios theta whose score statistic satisfies ``|Z(theta)| <= z``, found by
    vectorised bisection on log(theta) in [-40, 40]. The low end is 0 where k1 = 0 and the
    high end is ``inf`` where k2 = 0; (0, inf) where both are 0; NaN where a denominator is 0.
    """
    k1, m1, k2, m2 = (np.asarray(a, dtype=float) for a in (k1, m1, k2, m2))
    shape = np.broadcast_shapes(k1.shape, m1.shape, k2.shape, m2.shape, np.shape(z))
    k1, m1, k2, m2, z = (np.broadcast_to(a, shape) for a in (k1, m1, k2, m2,
                                                              np.asarray(z, dtype=float)))
    valid = (m1 > 0) & (m2 > 0)
    # the bisection runs on a defined table everywhere (a stand-in 1/2 vs 1/2 where a
    # denominator or both numerators are 0); the ends that are 0 or inf are set afterwards
    stand_in = ~valid | (k1 + k2 <= 0)
    a1, n1 = np.where(stand_in, 1.0, k1), np.where(stand_in, 2.0, m1)
    a2, n2 = np.where(stand_in, 1.0, k2), np.where(stand_in, 2.0, m2)
    bounds = []
    for target in (z, -z):  # Z(low) = z, Z(high) = -z: Z decreases in theta
        lo_t = np.full(shape, -40.0)
        hi_t = np.full(shape, 40.0)
        for _ in range(iterations):
            mid = (lo_t + hi_t) / 2
            reached = _koopman_statistic(a1, n1, a2, n2, np.exp(mid)) <= target
            hi_t = np.where(reached, mid, hi_t)
            lo_t = np.where(reached, lo_t, mid)
        bounds.append(np.exp((lo_t + hi_t) / 2))
    lo = np.where(k1 > 0, bounds[0], 0.0)
    hi = np.where(k2 > 0, bounds[1], np.inf)
    return np.where(valid, lo, np.nan), np.where(valid, hi, np.nan)



def koopman_ratio_pvalue(k1: np.ndarray, m1: np.ndarray, k2: np.ndarray, m2: np.ndarray, *,
                         boundary: np.ndarray | float) -> np.ndarray:
    """Two-sided level at which Koopman's ratio interval just touches ``boundary``.

    Closed form: ``2 (1 - Phi(|Z(boundary)|))`` with Z the score statistic, because the
    interval at a given z is ``{theta : |Z(theta)| <= z}``: at confidence ``1 - p`` its end
    nearest to the boundary equals it, and at any higher confidence the interval contains it.
    So p is the p-value of "the ratio lies beyond ``boundary``, on the side of the observed
    ratio" read as a two-sided interval (a one-sided test at p / 2). Equal to statsmodels'
    ``score_test_proportions_2indep(..., value=boundary, compare="ratio",
    correction=False).pvalue``. 1 where both numerators are 0 (the interval is always
    [0, inf)); NaN where a denominator is 0. ``boundary`` must be positive.

    Examples
    --------
    >>> p = koopman_ratio_pvalue(np.array([0]), np.array([10]), np.array([5]), np.array([5000]),
    ...                          boundary=0.8)
    >>> round(float(p[0]), 4)
    0.9287
    """
    k1, m1, k2, m2 = (np.asarray(a, dtype=float) for a in (k1, m1, k2, m2))
    b = np.asarray(boundary, dtype=float)
    if not np.all(b > 0):
        raise ValueError(f"boundary must be a positive ratio, got {boundary!r}")
    valid = (m1 > 0) & (m2 > 0)
    stat = _koopman_statistic(k1, np.where(valid, m1, 1.0), k2, np.where(valid, m2, 1.0), b)
    p = np.where(k1 + k2 > 0, np.minimum(2.0 * norm.sf(np.abs(stat)), 1.0), 1.0)
    return np.where(valid, p, np.nan)


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
        r0 = float(min_ratio)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(kr > 0, (k / m) / (kr / mr), np.where(k > 0, np.inf, np.nan))
        ok = (ratio >= r0) & (ratio <= 1 / r0)  # NaN (both rates 0): not inside
        p_low = koopman_ratio_pvalue(k, m, kr, mr, boundary=r0)
        p_high = koopman_ratio_pvalue(k, m, kr, mr, boundary=1 / r0)
        # inside: both edges must be excluded; beyond: the edge on the observed side
        p_in = np.maximum(p_in, np.where(ok, np.maximum(p_low, p_high), 1.0))
        p_beyond = np.where(np.isnan(ratio), 1.0, np.where(ratio < r0, p_low, p_high))
        p_out = np.where(ok, p_out, np.minimum(p_out, p_beyond))
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
