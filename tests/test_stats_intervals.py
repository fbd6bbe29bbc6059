"""DeLong AUC standard errors and zero-safe ratio intervals against independent oracles."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from lea_ai_audit.stats import (
    auc_diff_interval,
    auc_interval,
    group_auc_delong,
    katz_ratio_interval,
    ratio_interval,
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


def test_ratio_interval_equals_katz_without_zeros_and_hand_with_zero():
    k1, m1, k2, m2 = np.array([3, 10]), np.array([40, 50]), np.array([7, 20]), np.array([60, 55])
    ours, katz = ratio_interval(k1, m1, k2, m2), katz_ratio_interval(k1, m1, k2, m2)
    for a, b in zip(ours, katz, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    r, lo, hi = ratio_interval(np.array([0, 5, 0, 1]), np.array([50, 50, 50, 0]),
                               np.array([5, 0, 0, 1]), np.array([50, 50, 50, 10]))
    log_r = np.log(0.5 / 5.5)
    se = np.sqrt(1 / 0.5 - 1 / 51 + 1 / 5.5 - 1 / 51)
    z = norm.ppf(0.975)
    assert r[0] == 0.0 and r[1] == np.inf and np.isnan(r[2]) and np.isnan(r[3])
    assert (lo[0], hi[0]) == pytest.approx((np.exp(log_r - z * se), np.exp(log_r + z * se)))
    assert (lo[1], hi[1]) == pytest.approx((np.exp(-log_r - z * se), np.exp(-log_r + z * se)))
    assert np.isnan(lo[3]) and np.isnan(hi[3])
