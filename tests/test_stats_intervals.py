"""DeLong AUC standard errors, exact and rule-based rate intervals, and zero-safe ratio
intervals against independent oracles.

- DeLong: the O(n_pos * n_neg) definition, scikit-learn, a bootstrap.
- Clopper–Pearson and the Wilson / Clopper–Pearson rule: statsmodels' ``proportion_confint``
  ("beta", "wilson") and exact binomial coverage summed with ``scipy.stats.binom``;
- Koopman's score interval and p-value: statsmodels' ``confint_proportions_2indep`` (score,
  correction=False) and ``score_test_proportions_2indep``, and exact coverage by enumerating
  both binomials.
"""

import numpy as np
import pytest
from scipy.stats import binom, norm
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    score_test_proportions_2indep,
)

from lea_ai_audit.stats import (
    EXACT_RATE_MAX_COUNT,
    auc_diff_interval,
    auc_interval,
    clopper_pearson_interval,
    group_auc_delong,
    koopman_interval_z,
    koopman_ratio_interval,
    koopman_ratio_pvalue,
    rate_interval,
    rate_interval_is_exact,
    ratio_interval,
    wilson_interval,
)


def _delong_naive(s, y):
    """O(n_pos * n_neg) DeLong with the psi kernel (ties = 1/2)."""
    x, w = s[y == 1], s[y == 0]
    psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), np.sqrt(v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(w))


def _data(seed=0, n=600, groups=4):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, groups, n)
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(y * (0.3 + 0.2 * codes), 1.0), 1)  # rounded: many ties
    return s, y, codes


def test_delong_se_and_auc_equal_naive_and_sklearn():
    s, y, codes = _data()
    y[codes == 3] = 1  # group 3 has one class
    codes[:3] = 4  # group 4: three rows
    y[:3] = [1, 0, 0]  # a single positive
    auc, se, n_pos, n_neg = group_auc_delong(s, y, codes, 6)
    for g in range(3):
        m = codes == g
        a, e = _delong_naive(s[m], y[m])
        assert auc[g] == pytest.approx(roc_auc_score(y[m], s[m]), rel=1e-12)
        assert se[g] == pytest.approx(e, rel=1e-9)
        assert a == pytest.approx(auc[g], rel=1e-12)
        assert (n_pos[g], n_neg[g]) == (y[m].sum(), (1 - y[m]).sum())
    assert np.isnan(auc[3]) and np.isnan(se[3])
    assert np.isfinite(auc[4]) and np.isnan(se[4])
    assert np.isnan(auc[5]) and n_pos[5] == n_neg[5] == 0


def test_delong_se_close_to_bootstrap():
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    s = rng.normal(y * 0.8, 1.0)
    _, se, _, _ = group_auc_delong(s, y, np.zeros(n, int), 1)
    boots = []
    for _ in range(300):
        i = rng.integers(0, n, n)
        boots.append(roc_auc_score(y[i], s[i]))
    assert se[0] == pytest.approx(np.std(boots, ddof=1), rel=0.15)


def test_auc_intervals_by_hand():
    z = norm.ppf(0.975)
    lo, hi = auc_interval(np.array([0.8, 0.99]), np.array([0.05, 0.05]))
    assert lo[0] == pytest.approx(0.8 - z * 0.05) and hi[0] == pytest.approx(0.8 + z * 0.05)
    assert hi[1] == 1.0
    d, lo, hi = auc_diff_interval(0.8, 0.03, 0.7, 0.04, confidence=0.9)
    half = norm.ppf(0.95) * 0.05
    assert (d, lo, hi) == pytest.approx((0.1, 0.1 - half, 0.1 + half))


def test_ratio_interval_is_koopman_score_with_and_without_zeros():
    """Equal to statsmodels' score interval where that is defined; with a zero count, the
    interval holds the observed ratio and its open end is 0 or inf."""
    k1, m1, k2, m2 = np.array([3, 10]), np.array([40, 50]), np.array([7, 20]), np.array([60, 55])
    r, lo, hi = ratio_interval(k1, m1, k2, m2)
    for i in range(2):
        want = confint_proportions_2indep(int(k1[i]), int(m1[i]), int(k2[i]), int(m2[i]),
                                          compare="ratio", method="score", correction=False)
        assert (lo[i], hi[i]) == pytest.approx(want, rel=1e-7)
        assert r[i] == pytest.approx((k1[i] / m1[i]) / (k2[i] / m2[i]), rel=1e-12)
    r, lo, hi = ratio_interval(np.array([0, 5, 0, 1]), np.array([50, 50, 50, 0]),
                               np.array([5, 0, 0, 1]), np.array([50, 50, 50, 10]))
    assert r[0] == 0.0 and r[1] == np.inf and np.isnan(r[2]) and np.isnan(r[3])
    assert lo[0] == 0.0 and 0 < hi[0] < np.inf and 0 < lo[1] < np.inf and hi[1] == np.inf
    assert (lo[2], hi[2]) == (0.0, np.inf)
    assert np.isnan(lo[3]) and np.isnan(hi[3])
    # the finite ends are where the score test at that ratio has p = 0.05 (statsmodels)
    for bound, (a1, n1, a2, n2) in ((hi[0], (0, 50, 5, 50)), (lo[1], (5, 50, 0, 50))):
        p = score_test_proportions_2indep(a1, n1, a2, n2, value=float(bound),
                                          compare="ratio", correction=False).pvalue
        assert p == pytest.approx(0.05, abs=1e-6)


# -- DeLong against a published implementation ------------------------------------------------

@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_clopper_pearson_equals_statsmodels_beta(confidence):
    k = np.array([0, 1, 2, 3, 5, 10, 0, 7, 100, 999, 1000, 1])
    m = np.array([1, 1, 10, 10, 10, 10, 1000, 7, 1000, 1000, 1000, 2])
    lo, hi = clopper_pearson_interval(k, m, confidence=confidence)
    want_lo, want_hi = proportion_confint(k, m, alpha=1 - confidence, method="beta")
    np.testing.assert_allclose(lo, want_lo, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(hi, want_hi, rtol=1e-10, atol=1e-15)
    assert lo[0] == 0.0 and hi[7] == 1.0  # k = 0 and k = m by definition
    lo, hi = clopper_pearson_interval(np.array([0]), np.array([0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def test_rate_interval_is_clopper_pearson_at_the_edges_and_wilson_elsewhere():
    rng = np.random.default_rng(4)
    m = np.concatenate([np.arange(1, 40), rng.integers(40, 5000, 200)])
    k = np.array([rng.integers(0, mi + 1) for mi in m])
    k[:12] = np.minimum(np.arange(12) % 5, m[:12])  # many small counts
    k[-20:] = m[-20:] - np.arange(20) % 6  # and many near m
    lo, hi = rate_interval(k, m)
    cp = proportion_confint(k, m, alpha=0.05, method="beta")
    wi = proportion_confint(k, m, alpha=0.05, method="wilson")
    # the rule, counted by hand: the smaller of successes and failures is at most 3
    exact = np.array([min(a, b - a) <= 3 for a, b in zip(k, m, strict=True)])
    assert EXACT_RATE_MAX_COUNT == 3
    assert exact.any() and (~exact).any()
    np.testing.assert_array_equal(rate_interval_is_exact(k, m), exact)
    np.testing.assert_allclose(lo, np.where(exact, cp[0], wi[0]), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(hi, np.where(exact, cp[1], wi[1]), rtol=1e-10, atol=1e-15)
    assert rate_interval_is_exact(np.arange(8), np.full(8, 7)).all()  # m <= 7: always exact
    assert not rate_interval_is_exact(np.array([4]), np.array([8]))[0]
    lo, hi = rate_interval(np.array([0]), np.array([0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def _exact_coverage(lo, hi, m, ps):
    """Coverage of the intervals (lo[k], hi[k]) of k = 0..m at each true p, summed exactly."""
    k = np.arange(m + 1)
    pmf = binom.pmf(k[None, :], m, ps[:, None])
    inside = (lo[None, :] <= ps[:, None]) & (ps[:, None] <= hi[None, :])
    return (pmf * inside).sum(axis=1)


@pytest.mark.parametrize("m", [20, 200, 2000])
def test_rate_interval_repairs_wilsons_coverage_dip_near_zero(m):
    """Brown, Cai & DasGupta (2001): Wilson's coverage has a spike down to about 0.84 near
    p = 0 at every n. The rule lifts the minimum to that of Wilson's ordinary oscillation."""
    ps = np.geomspace(1e-5, 0.5, 3000)
    k, mm = np.arange(m + 1), np.full(m + 1, m)
    wilson = _exact_coverage(*wilson_interval(k, mm), m, ps)
    rule = _exact_coverage(*rate_interval(k, mm), m, ps)
    assert wilson.min() < 0.85
    assert rule.min() > 0.92
    cp = _exact_coverage(*clopper_pearson_interval(k, mm), m, ps)
    assert cp.min() >= 0.95 - 1e-9  # the exact interval is never below the nominal level


# -- Koopman's score interval for a ratio -----------------------------------------------------

@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_koopman_interval_equals_statsmodels_score(confidence):
    rng = np.random.default_rng(5)
    m1 = rng.integers(5, 3000, 25)
    m2 = rng.integers(5, 3000, 25)
    k1 = np.maximum(1, (rng.random(25) * m1 * 0.5).astype(int))
    k2 = np.maximum(1, (rng.random(25) * m2 * 0.5).astype(int))
    k1[:3], m1[:3], k2[:3], m2[:3] = [1, 15, 50], [10, 20, 60], [1, 3, 55], [10000, 200, 60]
    r, lo, hi = koopman_ratio_interval(k1, m1, k2, m2, confidence=confidence)
    for i in range(25):
        want = confint_proportions_2indep(k1[i], m1[i], k2[i], m2[i], compare="ratio",
                                          method="score", correction=False,
                                          alpha=1 - confidence)
        assert (lo[i], hi[i]) == pytest.approx(want, rel=1e-9)
        assert r[i] == pytest.approx((k1[i] / m1[i]) / (k2[i] / m2[i]), rel=1e-12)
    # a z per group gives each group's interval at its own confidence
    z = norm.ppf(0.5 + np.array([0.8, 0.95, 0.99]) / 2)
    zlo, zhi = koopman_interval_z(k1[:3], m1[:3], k2[:3], m2[:3], z)
    for i, c in enumerate([0.8, 0.95, 0.99]):
        _, lo1, hi1 = koopman_ratio_interval(k1[i:i + 1], m1[i:i + 1], k2[i:i + 1],
                                             m2[i:i + 1], confidence=c)
        assert (zlo[i], zhi[i]) == pytest.approx((lo1[0], hi1[0]), rel=1e-12)


def test_koopman_interval_with_zero_counts():
    """statsmodels cannot compute these (its search starts from the log interval), so the
    finite end is checked with its score test: at that ratio the two-sided p-value is alpha."""
    k1, m1 = np.array([0, 0, 3, 5, 0, 0, 2]), np.array([10, 20, 3000, 40, 50, 7, 0])
    k2, m2 = np.array([5, 2, 0, 0, 0, 3, 1]), np.array([5000, 20, 20, 40, 60, 0, 10])
    r, lo, hi = koopman_ratio_interval(k1, m1, k2, m2, confidence=0.95)
    assert list(r[:4]) == [0.0, 0.0, np.inf, np.inf]
    assert np.isnan(r[4]) and (lo[4], hi[4]) == (0.0, np.inf)  # both 0: no information
    assert np.isnan(r[5:]).all() and np.isnan(lo[5:]).all() and np.isnan(hi[5:]).all()
    assert (lo[:2] == 0).all() and (hi[2:4] == np.inf).all()
    for i, end in [(0, hi[0]), (1, hi[1]), (2, lo[2]), (3, lo[3])]:
        assert np.isfinite(end) and end > 0
        p = score_test_proportions_2indep(k1[i], m1[i], k2[i], m2[i], value=end,
                                          compare="ratio", correction=False).pvalue
        assert p == pytest.approx(0.05, abs=1e-9)
    # the observed ratio is always inside
    assert (lo[:4] <= r[:4]).all() and (r[:4] <= hi[:4]).all()


@pytest.mark.parametrize("boundary", [0.5, 0.8, 1.25, 3.0])
def test_koopman_pvalue_equals_the_score_test_and_inverts_the_interval(boundary):
    k1, m1 = np.array([0, 3, 3, 15, 50, 1]), np.array([10, 3000, 40, 20, 60, 10])
    k2, m2 = np.array([5, 0, 7, 3, 55, 1]), np.array([5000, 20, 60, 200, 60, 10000])
    p = koopman_ratio_pvalue(k1, m1, k2, m2, boundary=boundary)
    r, _, _ = koopman_ratio_interval(k1, m1, k2, m2)
    for i in range(len(p)):
        want = score_test_proportions_2indep(k1[i], m1[i], k2[i], m2[i], value=boundary,
                                             compare="ratio", correction=False)
        assert norm.isf(p[i] / 2) == pytest.approx(abs(want.statistic), rel=1e-10)
        assert p[i] == pytest.approx(want.pvalue, rel=1e-6)  # p can be 1e-219: tail digits
        if not 1e-8 < p[i] < 1 - 1e-8:
            continue
        # at confidence 1 - p the end nearest the boundary touches it; just above, it crosses
        _, lo, hi = koopman_ratio_interval(k1[i:i + 1], m1[i:i + 1], k2[i:i + 1], m2[i:i + 1],
                                           confidence=1 - p[i])
        end = lo[0] if r[i] > boundary else hi[0]
        assert end == pytest.approx(boundary, rel=1e-9)
        _, lo, hi = koopman_ratio_interval(k1[i:i + 1], m1[i:i + 1], k2[i:i + 1], m2[i:i + 1],
                                           confidence=min(1 - p[i] + 1e-4, 1 - 1e-12))
        assert lo[0] < boundary < hi[0]
    both_zero = koopman_ratio_pvalue(np.array([0]), np.array([5]), np.array([0]),
                                     np.array([9]), boundary=boundary)
    no_data = koopman_ratio_pvalue(np.array([1]), np.array([0]), np.array([1]),
                                   np.array([9]), boundary=boundary)
    assert both_zero[0] == 1.0 and np.isnan(no_data[0])
    with pytest.raises(ValueError, match="positive"):
        koopman_ratio_pvalue(k1, m1, k2, m2, boundary=0.0)


def _ratio_coverage(interval, m1, m2, p1, p2):
    """Exact coverage of an interval for p1 / p2: every (k1, k2) weighted by its probability."""
    k1, k2 = np.meshgrid(np.arange(m1 + 1), np.arange(m2 + 1), indexing="ij")
    _, lo, hi = interval(k1.ravel(), np.full(k1.size, m1), k2.ravel(), np.full(k1.size, m2))
    w = (binom.pmf(k1, m1, p1) * binom.pmf(k2, m2, p2)).ravel()
    return float((w * ((lo <= p1 / p2) & (p1 / p2 <= hi))).sum())


@pytest.mark.parametrize(("m1", "m2", "p1", "p2", "least"), [
    (10, 2000, 0.001, 0.001, 0.98),  # a small group against a large reference, rare events
    (20, 500, 0.05, 0.02, 0.95),
    (30, 30, 0.1, 0.1, 0.94),
    (100, 2000, 0.004, 0.002, 0.93),
    (10, 2000, 0.01, 0.005, 0.90),   # an asymptotic interval: it can fall below 95% too
])
def test_koopman_coverage_where_counts_are_often_zero(m1, m2, p1, p2, least):
    """Exact 95% coverage (0.990, 0.953, 0.946, 0.934, 0.906 in these five settings)."""
    assert _ratio_coverage(koopman_ratio_interval, m1, m2, p1, p2) > least


def test_ratio_interval_covers_when_a_small_group_has_no_event():
    """The Katz interval with the Haldane-Anscombe correction, used before, gave [2.43, 703]
    here, around an observed ratio of 0 (exact coverage 0.05); Koopman's holds the ratio."""
    r, lo, hi = ratio_interval(np.array([0]), np.array([10]), np.array([5]), np.array([5000]))
    assert lo[0] <= r[0] <= hi[0]
    assert _ratio_coverage(ratio_interval, 10, 2000, 0.001, 0.001) > 0.9
