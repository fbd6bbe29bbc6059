"""lea_ai_audit.stats against independent oracles.

- group rates: fairlearn's MetricFrame with fairlearn / scikit-learn metric functions;
- confusion counts: scikit-learn's confusion_matrix per group;
- intervals: statsmodels' proportion_confint (Wilson) and confint_proportions_2indep
  (Newcombe hybrid score, "newcomb"; Katz log, "log" — the unadjusted log interval, whereas
  statsmodels' default "log-adjusted" adds 0.5 to every count);
- textbook values: Wilson (1927) 8/10 and Newcombe (1998) 56/70 vs 48/80.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from lea_ai_audit.stats import (
    METRICS,
    confusion_counts,
    katz_ratio_interval,
    newcombe_diff_interval,
    wilson_interval,
)

HYP = settings(max_examples=50, deadline=None)
CONFIDENCES = st.sampled_from([0.8, 0.9, 0.95, 0.99])


# -- oracles --------------------------------------------------------------------------------------

def _base_rate(y_true, y_pred):
    # share of actual positives = fairlearn's selection rate of the labels themselves
    return selection_rate(y_true, y_true, pos_label=1)


def _for(y_true, y_pred):
    # false omission rate = 1 - NPV = 1 - precision of the negative class
    return 1.0 - precision_score(y_true, y_pred, pos_label=0, zero_division=0)


def _fdr(y_true, y_pred):
    return 1.0 - precision_score(y_true, y_pred, pos_label=1, zero_division=0)


ORACLES = {
    "base_rate": _base_rate,
    "selection_rate": partial(selection_rate, pos_label=1),
    "tpr": partial(true_positive_rate, pos_label=1),
    "fpr": partial(false_positive_rate, pos_label=1),
    "fnr": partial(false_negative_rate, pos_label=1),
    "tnr": partial(true_negative_rate, pos_label=1),
    "ppv": partial(precision_score, pos_label=1, zero_division=0),
    "npv": partial(precision_score, pos_label=0, zero_division=0),
    "fdr": _fdr,
    "for": _for,
    "accuracy": accuracy_score,
}

# the denominator of each metric, computed from the raw arrays of one group (not from the library)
DENOMINATORS = {
    "base_rate": lambda yt, yp: len(yt),
    "selection_rate": lambda yt, yp: len(yt),
    "tpr": lambda yt, yp: int((yt == 1).sum()),
    "fpr": lambda yt, yp: int((yt == 0).sum()),
    "fnr": lambda yt, yp: int((yt == 1).sum()),
    "tnr": lambda yt, yp: int((yt == 0).sum()),
    "ppv": lambda yt, yp: int((yp == 1).sum()),
    "npv": lambda yt, yp: int((yp == 0).sum()),
    "fdr": lambda yt, yp: int((yp == 1).sum()),
    "for": lambda yt, yp: int((yp == 0).sum()),
    "accuracy": lambda yt, yp: len(yt),
}


def test_every_library_metric_has_an_oracle():
    assert set(ORACLES) == set(METRICS) == set(DENOMINATORS)


@st.composite
def labelled_groups(draw):
    """(codes, n_groups, y_true, y_pred): small data with tiny and one-class groups."""
    n_groups = draw(st.integers(1, 5))
    n = draw(st.integers(1, 60))
    codes = np.array(draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n)))
    y_true = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y_pred = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    # sometimes force a group to hold no positives, no negatives, or only flagged cases
    mode = draw(st.sampled_from(["free", "no_pos", "no_neg", "all_flagged", "none_flagged"]))
    g0 = codes == 0
    if mode == "no_pos":
        y_true[g0] = 0
    elif mode == "no_neg":
        y_true[g0] = 1
    elif mode == "all_flagged":
        y_pred[g0] = 1
    elif mode == "none_flagged":
        y_pred[g0] = 0
    return codes, n_groups, y_true.astype(np.int8), y_pred.astype(np.int8)


# -- confusion counts -----------------------------------------------------------------------------

@HYP
@given(labelled_groups())
def test_confusion_counts_equal_sklearn_confusion_matrix(data):
    codes, n_groups, y_true, y_pred = data
    c = confusion_counts(codes, n_groups, y_true, y_pred)
    assert len(c) == n_groups
    for g in range(n_groups):
        mask = codes == g
        tn, fp, fn, tp = confusion_matrix(y_true[mask], y_pred[mask], labels=[0, 1]).ravel() \
            if mask.any() else (0, 0, 0, 0)
        assert (c.tp[g], c.fp[g], c.fn[g], c.tn[g]) == (tp, fp, fn, tn)
        assert c.n[g] == mask.sum()
    total = c.total()
    assert (int(total.tp[0]), int(total.fp[0]), int(total.fn[0]), int(total.tn[0])) == \
        (int(((y_true == 1) & (y_pred == 1)).sum()), int(((y_true == 0) & (y_pred == 1)).sum()),
         int(((y_true == 1) & (y_pred == 0)).sum()), int(((y_true == 0) & (y_pred == 0)).sum()))


# -- every metric per group vs fairlearn MetricFrame ----------------------------------------------

@HYP
@given(labelled_groups())
def test_rates_per_group_equal_fairlearn_metricframe(data):
    codes, n_groups, y_true, y_pred = data
    c = confusion_counts(codes, n_groups, y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(metrics=ORACLES, y_true=y_true, y_pred=y_pred,
                         sensitive_features=pd.Series(codes, name="group"))
        by_group = mf.by_group
    present = set(np.unique(codes).tolist())
    for metric in METRICS:
        got = c.rate(metric)
        assert got.shape == (n_groups,)
        for g in range(n_groups):
            if g not in present:  # an empty group: every rate undefined
                assert np.isnan(got[g]), (metric, g)
                continue
            mask = codes == g
            den = DENOMINATORS[metric](y_true[mask], y_pred[mask])
            if den == 0:
                assert np.isnan(got[g]), (metric, g)
            else:
                expected = float(by_group.loc[g, metric])
                assert got[g] == pytest.approx(expected, abs=1e-12), (metric, g)


@HYP
@given(labelled_groups())
def test_fraction_is_the_rate_numerator_and_denominator(data):
    codes, n_groups, y_true, y_pred = data
    c = confusion_counts(codes, n_groups, y_true, y_pred)
    for metric in METRICS:
        k, m = c.fraction(metric)
        assert np.all((k >= 0) & (k <= m))
        for g in range(n_groups):
            mask = codes == g
            assert m[g] == DENOMINATORS[metric](y_true[mask], y_pred[mask])


def test_unknown_metric_raises():
    c = confusion_counts(np.zeros(2, dtype=int), 1, np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(KeyError, match="unknown metric"):
        c.rate("f1")


# -- Wilson ---------------------------------------------------------------------------------------

@st.composite
def k_of_m(draw, max_m=300):
    m = draw(st.integers(1, max_m))
    k = draw(st.integers(0, m))
    return k, m


@HYP
@given(st.lists(k_of_m(), min_size=1, max_size=8), CONFIDENCES)
def test_wilson_equals_statsmodels(pairs, confidence):
    k = np.array([p[0] for p in pairs])
    m = np.array([p[1] for p in pairs])
    lo, hi = wilson_interval(k, m, confidence)
    slo, shi = proportion_confint(k, m, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(lo, slo, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hi, shi, rtol=1e-9, atol=1e-12)
    assert np.all(lo <= k / m + 1e-12) and np.all(k / m <= hi + 1e-12)


def test_wilson_textbook_8_of_10():
    lo, hi = wilson_interval(np.array([8]), np.array([10]))
    assert round(float(lo[0]), 4) == 0.4902
    assert round(float(hi[0]), 4) == 0.9433


def test_wilson_undefined_without_trials():
    lo, hi = wilson_interval(np.array([0, 3]), np.array([0, 5]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    assert np.isfinite(lo[1]) and np.isfinite(hi[1])


# -- Newcombe -------------------------------------------------------------------------------------

@HYP
@given(k_of_m(), k_of_m(), CONFIDENCES)
def test_newcombe_equals_statsmodels(a, b, confidence):
    (k1, m1), (k2, m2) = a, b
    d, lo, hi = newcombe_diff_interval(np.array([k1]), np.array([m1]), np.array([k2]),
                                       np.array([m2]), confidence)
    slo, shi = confint_proportions_2indep(k1, m1, k2, m2, method="newcomb", compare="diff",
                                          alpha=1 - confidence)
    assert float(d[0]) == pytest.approx(k1 / m1 - k2 / m2, abs=1e-12)
    assert float(lo[0]) == pytest.approx(float(slo), abs=1e-10)
    assert float(hi[0]) == pytest.approx(float(shi), abs=1e-10)
    assert lo[0] <= d[0] + 1e-12 and d[0] <= hi[0] + 1e-12


def test_newcombe_textbook_1998_example():
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 vs 48/80, method 10
    d, lo, hi = newcombe_diff_interval(np.array([56]), np.array([70]), np.array([48]),
                                       np.array([80]))
    assert round(float(d[0]), 4) == 0.2000
    assert round(float(lo[0]), 4) == 0.0524
    assert round(float(hi[0]), 4) == 0.3339


def test_newcombe_undefined_when_a_group_is_empty():
    d, lo, hi = newcombe_diff_interval(np.array([0, 3]), np.array([0, 10]), np.array([2, 2]),
                                       np.array([10, 10]))
    assert np.isnan(d[0]) and np.isnan(lo[0]) and np.isnan(hi[0])
    assert np.isfinite(d[1]) and np.isfinite(lo[1]) and np.isfinite(hi[1])


# -- Katz -----------------------------------------------------------------------------------------

@HYP
@given(k_of_m(), k_of_m(), CONFIDENCES)
def test_katz_equals_statsmodels_log(a, b, confidence):
    (k1, m1), (k2, m2) = a, b
    r, lo, hi = katz_ratio_interval(np.array([k1]), np.array([m1]), np.array([k2]),
                                    np.array([m2]), confidence)
    if k2 == 0:
        assert np.isnan(r[0])
    else:
        assert float(r[0]) == pytest.approx((k1 / m1) / (k2 / m2), rel=1e-12)
    if k1 == 0 or k2 == 0:  # the log method is undefined with a zero numerator
        assert np.isnan(lo[0]) and np.isnan(hi[0])
        return
    with np.errstate(all="ignore"):
        slo, shi = confint_proportions_2indep(k1, m1, k2, m2, method="log", compare="ratio",
                                              alpha=1 - confidence)
    assert float(lo[0]) == pytest.approx(float(slo), rel=1e-9)
    assert float(hi[0]) == pytest.approx(float(shi), rel=1e-9)
    assert lo[0] <= r[0] * (1 + 1e-12) and r[0] <= hi[0] * (1 + 1e-12)


def test_katz_is_not_the_adjusted_log_interval():
    # guard against a silent switch to statsmodels' default "log-adjusted" (adds 0.5 to counts)
    _, lo, hi = katz_ratio_interval(np.array([5]), np.array([20]), np.array([10]), np.array([30]))
    alo, ahi = confint_proportions_2indep(5, 20, 10, 30, method="log-adjusted", compare="ratio")
    assert abs(float(lo[0]) - float(alo)) > 1e-3 or abs(float(hi[0]) - float(ahi)) > 1e-3
