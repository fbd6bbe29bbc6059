"""Decision rules of fairness.disparity: interval inversion, Holm's step-down, the
"demonstrated" rule, detectable differences — against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    power_proportions_2indep,
    score_test_proportions_2indep,
)

from lea_ai_audit.checks import get_check
from lea_ai_audit.context import AuditContext
from lea_ai_audit.inference import (
    decision_pvalues,
    holm_adjust,
    holm_levels,
    koopman_interval_z,
    min_detectable_difference,
    newcombe_interval_z,
    z_of_level,
)
from lea_ai_audit.results import Status


@pytest.mark.parametrize("seed", range(5))
def test_holm_adjusted_pvalues_equal_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.2, 12) ** 2
    p[[2, 7]] = np.nan  # not compared: outside the family
    ours = holm_adjust(p)
    ok = ~np.isnan(p)
    want = multipletests(p[ok], method="holm")[1]
    assert np.allclose(ours[ok], want, rtol=1e-12)
    assert np.isnan(ours[~ok]).all()
    # the levels give exactly statsmodels' rejections, for Holm and for Bonferroni
    for method in ("holm", "bonferroni"):
        reject = multipletests(p[ok], alpha=0.05, method=method)[0]
        assert np.array_equal(p[ok] <= holm_levels(p, 0.05, method=method)[ok], reject), method


def test_holm_levels_never_print_an_interval_that_disagrees_with_its_verdict() -> None:
    # ranks 1, 2 rejected; rank 3 is not; rank 4 (p below its own Holm level 0.05 but after a
    # non-rejection) must be read at rank 3's level, where it does not decide either
    p = np.array([0.001, 0.012, 0.03, 0.04])
    lv = holm_levels(p, 0.05)
    assert np.allclose(lv, [0.05 / 4, 0.05 / 3, 0.05 / 2, 0.05 / 2])
    assert list(p <= lv) == list(multipletests(p, alpha=0.05, method="holm")[0])


@pytest.mark.parametrize(("k1", "m1", "k2", "m2", "tol"), [
    (40, 60, 20, 200, 0.1),    # beyond +tol
    (2, 60, 60, 200, 0.1),     # beyond -tol
    (22, 200, 20, 200, 0.1),   # inside
    (30, 400, 33, 410, 0.05),  # inside, large
])
def test_difference_pvalue_inverts_the_newcombe_interval(k1, m1, k2, m2, tol) -> None:
    inside, p = decision_pvalues(np.array([k1]), np.array([m1]), k2, m2, max_difference=tol)
    p = float(p[0])
    lo, hi = confint_proportions_2indep(k1, m1, k2, m2, method="newcomb", alpha=p)
    d = k1 / m1 - k2 / m2
    if inside[0]:
        # the first endpoint to leave [-tol, tol] touches the edge at confidence 1 - p
        assert min(tol - hi, lo + tol) == pytest.approx(0.0, abs=1e-9)
    else:
        assert (lo if d > 0 else hi) == pytest.approx(tol if d > 0 else -tol, abs=1e-9)
    # ours equals statsmodels' at a per-group z
    _, olo, ohi = newcombe_interval_z(np.array([k1]), np.array([m1]), np.array([k2]),
                                      np.array([m2]), z_of_level(p))
    assert (olo[0], ohi[0]) == pytest.approx((lo, hi), abs=1e-12)


def test_ratio_pvalue_inverts_the_koopman_interval() -> None:
    """Beyond: p is the level at which the score interval's near end reaches the edge (1.25);
    inside: the larger of the two edges' score-test p-values (both must be excluded)."""
    k1, m1, k2, m2 = 40, 100, 20, 100
    inside, p = decision_pvalues(np.array([k1]), np.array([m1]), k2, m2, min_ratio=0.8)
    assert not inside[0]
    lo, _ = confint_proportions_2indep(k1, m1, k2, m2, method="score", compare="ratio",
                                       correction=False, alpha=float(p[0]))
    assert lo == pytest.approx(1.25, rel=1e-6)
    a, b = koopman_interval_z(np.array([k1]), np.array([m1]), np.array([k2]), np.array([m2]),
                              z_of_level(0.05))
    want = confint_proportions_2indep(k1, m1, k2, m2, method="score", compare="ratio",
                                      correction=False)
    assert (a[0], b[0]) == pytest.approx(want, rel=1e-7)
    inside, p = decision_pvalues(np.array([300]), np.array([1000]), 310, 1000, min_ratio=0.8)
    assert inside[0]
    want = max(score_test_proportions_2indep(300, 1000, 310, 1000, value=v, compare="ratio",
                                             correction=False).pvalue for v in (0.8, 1.25))
    assert p[0] == pytest.approx(want, rel=1e-9)


def test_ratio_decision_with_a_zero_count() -> None:
    """0 events in 10 against 20 in 5000: the ratio 0 is beyond 0.8 but nothing is shown (the
    old Katz+Haldane interval put such a 0 far above the edge)."""
    inside, p = decision_pvalues(np.array([0, 0]), np.array([10, 5000]), 20, 5000, min_ratio=0.8)
    assert not inside.any()
    assert p[0] > 0.5  # 0/10 is what a rate of 1 in 1000 gives 99% of the time
    assert p[1] < 0.05  # 0/5000 against 20/5000 is evidence of a lower rate
    want = score_test_proportions_2indep(0, 5000, 20, 5000, value=0.8, compare="ratio",
                                         correction=False).pvalue
    assert p[1] == pytest.approx(want, rel=1e-9)


def test_detectable_difference_has_the_stated_power() -> None:
    p_ref, m, m_ref = 0.3, 500, 800
    d = float(min_detectable_difference(np.array([m]), m_ref, p_ref, np.array([0.05]))[0])
    power = power_proportions_2indep(d, p_ref, m, ratio=m_ref / m, alpha=0.05).power
    assert power == pytest.approx(0.8, abs=0.02)
    # smaller groups, stricter levels: a larger detectable difference
    d_small = min_detectable_difference(np.array([50]), m_ref, p_ref, np.array([0.05]))[0]
    d_strict = min_detectable_difference(np.array([m]), m_ref, p_ref, np.array([0.005]))[0]
    assert d_small > d and d_strict > d


def _ctx(spec: dict[str, tuple[int, int, int, int]]) -> AuditContext:
    """Rows with the given (tp, fp, fn, tn) per group of column g."""
    rows = []
    for g, (tp, fp, fn, tn) in spec.items():
        for y, p, n in ((1, 1, tp), (0, 1, fp), (1, 0, fn), (0, 0, tn)):
            rows += [{"g": g, "y": y, "p": p}] * n
    return AuditContext.build(pd.DataFrame(rows), target="y", sensitive=["g"], prediction="p",
                              reference_groups={"g": "A"})


def _run(ctx: AuditContext, **params):
    check = get_check("fairness.disparity")(metric="fpr", max_difference=0.1,
                                            min_group_size=30, **params)
    check.validate()
    return check.run(ctx)


def _rows(res, name="fpr:g"):
    ev = next(e for e in res.evidence if e.name == name)
    cols = ev.data["columns"]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in ev.data["rows"]}


def test_demonstrated_needs_the_interval_inside_the_tolerance() -> None:
    # equal FPR 0.1 in both groups: with 50 negatives each the interval of the difference is
    # about ±0.12, reaching beyond ±0.1; with 2,000 it is about ±0.02
    small = _ctx({"A": (50, 5, 50, 45), "B": (50, 5, 50, 45)})
    large = _ctx({"A": (500, 200, 500, 1800), "B": (500, 200, 500, 1800)})
    sig = _run(small, decision_rule="significant")
    assert sig.status is Status.PASS  # "significant" passes a point estimate inside
    dem = _run(small, decision_rule="demonstrated")
    row = _rows(dem)["B"]
    lo, hi = confint_proportions_2indep(5, 50, 5, 50, method="newcomb")
    assert lo < -0.1 and hi > 0.1  # precondition (statsmodels): reaches beyond the tolerance
    assert dem.status is Status.WARN and row["verdict"] == "not demonstrated"
    assert "not demonstrated" in dem.message and row["detectable_diff"] > 0.1
    assert _run(small, decision_rule="demonstrated",
                if_not_demonstrated="fail").status is Status.FAIL
    big = _run(large, decision_rule="demonstrated")
    lo, hi = confint_proportions_2indep(200, 2000, 200, 2000, method="newcomb")
    assert lo > -0.1 and hi < 0.1
    assert big.status is Status.PASS and _rows(big)["B"]["verdict"] == "demonstrated"
    # the reference row is not compared with itself
    ref = _rows(big)["A"]
    assert ref["verdict"] == "reference" and ref["diff"] is None and ref["ratio_ci_low"] is None
    assert ref["decision_confidence"] is None


def test_decision_interval_is_the_one_the_verdict_used() -> None:
    # B: 20/60 vs 20/200, beyond +0.1 at 95% but not at 1 - 0.05/3; C, D inside
    ctx = _ctx({"A": (100, 20, 100, 180), "B": (20, 20, 20, 40), "C": (20, 6, 20, 54),
                "D": (20, 6, 20, 54)})
    for method, level in (("holm", 0.05 / 3), ("bonferroni", 0.05 / 3), ("none", 0.05)):
        res = _run(ctx, multiple_comparisons=method)
        b = _rows(res)["B"]
        lo, hi = confint_proportions_2indep(20, 60, 20, 200, method="newcomb", alpha=level)
        assert b["decision_confidence"] == pytest.approx(1 - level, abs=5.1e-5)
        assert (b["decision_diff_low"], b["decision_diff_high"]) == pytest.approx((lo, hi),
                                                                                 abs=5.1e-5)
        assert b["verdict"] == ("violation" if lo > 0.1 else "inconclusive"), method
        # the plain interval stays at 95%, labelled as such in the description
        lo95, _ = confint_proportions_2indep(20, 60, 20, 200, method="newcomb")
        assert b["diff_ci_low"] == pytest.approx(lo95, abs=5.1e-5)
    assert "Plain 95% intervals" in next(e for e in res.evidence if e.name == "fpr:g").description
