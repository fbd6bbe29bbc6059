"""DeLong standard errors of the AUC per group, against a brute-force DeLong, scikit-learn and
a bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lea_ai_audit.stats import auc_diff_interval, auc_interval, group_auc_delong


def _brute_delong(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) by the definition: psi(x, z) = 1 if x > z, 1/2 if equal."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    return float(psi.mean()), float(np.sqrt(var))


def _data(seed: int, n: int = 3000, ties: bool = False):
    rng = np.random.default_rng(seed)
    codes = rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05])
    y = (rng.random(n) < 0.2 + 0.1 * codes).astype(int)
    s = 1 / (1 + np.exp(-(y * (1.0 + 0.3 * codes) + rng.normal(size=n))))
    if ties:
        s = np.round(s, 1)  # about ten distinct values: many ties
    return s, y, codes


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_delong_equals_the_definition_and_sklearn(seed: int, ties: bool) -> None:
    s, y, codes = _data(seed, ties=ties)
    codes[:5], y[:5] = 4, 1  # a fifth group with positives only
    auc, se, n_pos, n_neg = group_auc_delong(s, y, codes, 5)
    for g in range(4):
        m = codes == g
        want_auc, want_se = _brute_delong(s[m], y[m])
        assert auc[g] == pytest.approx(roc_auc_score(y[m], s[m]), rel=1e-12)
        assert auc[g] == pytest.approx(want_auc, rel=1e-12)
        assert se[g] == pytest.approx(want_se, rel=1e-9)
        assert (n_pos[g], n_neg[g]) == (y[m].sum(), (1 - y[m]).sum())
    assert np.isnan(auc[4]) and np.isnan(se[4])


def test_delong_se_agrees_with_a_bootstrap_on_tied_scores() -> None:
    s, y, codes = _data(7, n=2000, ties=True)
    m = codes == 0
    s0, y0 = s[m], y[m]
    _, se, _, _ = group_auc_delong(s0, y0, np.zeros(len(s0), dtype=np.int64), 1)
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(s0), len(s0))
        boot.append(roc_auc_score(y0[i], s0[i]))
    assert se[0] == pytest.approx(np.std(boot, ddof=1), rel=0.12)


def test_intervals_are_normal_intervals_of_the_se() -> None:
    lo, hi = auc_interval(np.array([0.7, 0.99]), np.array([0.02, 0.01]))
    z = 1.959963984540054
    assert lo[0] == pytest.approx(0.7 - z * 0.02) and hi[0] == pytest.approx(0.7 + z * 0.02)
    assert hi[1] == 1.0  # clipped
    d, dlo, dhi = auc_diff_interval(np.array([0.70]), np.array([0.03]), 0.75, 0.04)
    assert d[0] - dlo[0] == pytest.approx(z * 0.05)
    assert d[0] == pytest.approx(-0.05)
    assert dhi[0] - d[0] == pytest.approx(z * 0.05)  # hypot(0.03, 0.04) = 0.05


def test_auc_difference_interval_agrees_with_a_bootstrap_of_two_groups() -> None:
    """The AUC difference of two disjoint groups (fairness.calibration's comparison): its DeLong
    standard error, hypot(se1, se2), against the spread of a bootstrap that resamples each
    group on its own; the interval is the difference ± z·se."""
    s, y, codes = _data(11, n=3000, ties=True)
    auc, se, _, _ = group_auc_delong(s, y, codes, 4)
    a, b = codes == 0, codes == 1
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(400):
        ia = rng.choice(np.flatnonzero(a), a.sum())
        ib = rng.choice(np.flatnonzero(b), b.sum())
        diffs.append(roc_auc_score(y[ia], s[ia]) - roc_auc_score(y[ib], s[ib]))
    d, lo, hi = auc_diff_interval(auc[0], se[0], auc[1], se[1])
    assert float(np.hypot(se[0], se[1])) == pytest.approx(np.std(diffs, ddof=1), rel=0.12)
    assert d == pytest.approx(auc[0] - auc[1])
    assert (hi - lo) / 2 == pytest.approx(1.959963984540054 * np.hypot(se[0], se[1]))
