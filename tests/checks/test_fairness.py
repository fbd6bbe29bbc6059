"""Fairness checks against numbers computed by hand in the test, statsmodels and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    score_test_proportions_2indep,
)

from lea_ai_audit import audit
from lea_ai_audit.checks import make_check
from lea_ai_audit.context import AuditContext
from lea_ai_audit.results import Status
from lea_ai_audit.stats import EXACT_RATE_MAX_COUNT

# -- helpers --------------------------------------------------------------------------------------


def rate_method(k: int, m: int) -> str:
    """statsmodels' name of the interval the tables use: Clopper-Pearson ("beta") where
    min(k, m - k) <= 3, where Wilson's coverage dips; Wilson elsewhere."""
    return "beta" if min(k, m - k) <= EXACT_RATE_MAX_COUNT else "wilson"


def frame(spec: dict[str, tuple[int, int, int, int]], attr: str = "g") -> pd.DataFrame:
    """Rows with exactly the confusion counts ``spec[group] = (tp, fp, fn, tn)``."""
    parts = []
    for group, (tp, fp, fn, tn) in spec.items():
        y = [1] * tp + [0] * fp + [1] * fn + [0] * tn
        p = [1] * tp + [1] * fp + [0] * fn + [0] * tn
        parts.append(pd.DataFrame({attr: group, "y": y, "p": p}))
    return pd.concat(parts, ignore_index=True)


def context(df: pd.DataFrame, sensitive=("g",), **kw) -> AuditContext:
    return AuditContext.build(df, target="y", sensitive=list(sensitive), prediction="p", **kw)


def run(ctx: AuditContext, check_id: str, **params):
    return make_check(check_id, params).run(ctx)


def table(result, name: str) -> dict[str, dict]:
    """Evidence table ``name`` as {group label: {column: value}}."""
    ev = [e for e in result.evidence if e.name == name]
    assert len(ev) == 1, [e.name for e in result.evidence]
    cols = ev[0].data["columns"]
    return {row[0]: dict(zip(cols, row, strict=True)) for row in ev[0].data["rows"]}


def hand_counts(df: pd.DataFrame, key: pd.Series) -> dict[str, dict[str, int]]:
    """Confusion counts per group, by explicit counting."""
    out = {}
    for label in sorted(key.unique()):
        sub = df[key == label]
        y, p = sub["y"], sub["p"]
        out[label] = {"tp": int(((y == 1) & (p == 1)).sum()),
                      "fp": int(((y == 0) & (p == 1)).sum()),
                      "fn": int(((y == 1) & (p == 0)).sum()),
                      "tn": int(((y == 0) & (p == 0)).sum())}
    return out


def hand_fraction(c: dict[str, int], metric: str) -> tuple[int, int]:
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    n = tp + fp + fn + tn
    return {
        "base_rate": (tp + fn, n), "selection_rate": (tp + fp, n),
        "tpr": (tp, tp + fn), "fpr": (fp, fp + tn), "fnr": (fn, tp + fn), "tnr": (tn, fp + tn),
        "ppv": (tp, tp + fp), "npv": (tn, fn + tn), "fdr": (fp, tp + fp), "for": (fn, fn + tn),
        "accuracy": (tp + tn, n),
    }[metric]


def hand_rate(c: dict[str, int], metric: str) -> float | None:
    k, m = hand_fraction(c, metric)
    return None if m == 0 else k / m


HAND_METRICS = ("base_rate", "selection_rate", "tpr", "fpr", "fnr", "tnr", "ppv", "npv", "fdr",
                "for", "accuracy")


# -- 3. group metrics end to end ------------------------------------------------------------------

def _hand_built() -> pd.DataFrame:
    """Two attributes; group b=w has no positives; combination (y, w) is absent."""
    rows = []
    # (a, b, y, p, times)
    for a, b, y, p, times in [
        ("x", "u", 1, 1, 7), ("x", "u", 1, 0, 3), ("x", "u", 0, 1, 4), ("x", "u", 0, 0, 20),
        ("x", "v", 1, 1, 2), ("x", "v", 0, 0, 5), ("x", "v", 0, 1, 1),
        ("x", "w", 0, 0, 6), ("x", "w", 0, 1, 2),
        ("y", "u", 1, 1, 12), ("y", "u", 1, 0, 9), ("y", "u", 0, 1, 2), ("y", "u", 0, 0, 14),
        ("y", "v", 1, 0, 4), ("y", "v", 0, 0, 3),
    ]:
        rows += [{"a": a, "b": b, "y": y, "p": p}] * times
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


def _random_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame({"a": rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1]),
                         "b": rng.choice(["u", "v"], n),
                         "y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n)})


@pytest.mark.parametrize("make", [_hand_built, lambda: _random_frame(1), lambda: _random_frame(2)],
                         ids=["hand-built", "random-1", "random-2"])
def test_group_metrics_end_to_end_equal_hand_counts(make):
    df = make()
    report = audit(df, target="y", sensitive=["a", "b"], prediction="p",
                   checks=["fairness.group_metrics"])
    found = [c for c in report.checks if c.check_id == "fairness.group_metrics"]
    assert len(found) == 1
    res = found[0]
    groupings = {"a": df["a"].astype(str), "b": df["b"].astype(str),
                 "a & b": df["a"].astype(str) + " & " + df["b"].astype(str)}
    sizes = []
    for gname, key in groupings.items():
        counts = hand_counts(df, key)
        # every present group (and only those) is reported
        reported = {k.split("/", 2)[2] for k in res.metrics if k.startswith(f"n/{gname}/")}
        assert reported == set(counts)
        rows = _evidence_rows(res, f"group_metrics:{gname}")
        for label, c in counts.items():
            n = sum(c.values())
            sizes.append(n)
            assert res.metrics[f"n/{gname}/{label}"] == n
            for metric in HAND_METRICS:
                expected = hand_rate(c, metric)
                got = res.metrics[f"{metric}/{gname}/{label}"]
                if expected is None:
                    assert got is None, (gname, label, metric)
                else:
                    assert got == pytest.approx(expected, abs=1e-12), (gname, label, metric)
                # evidence row: numerator, denominator and the Wilson interval (statsmodels)
                row = [r for r in rows if r["group"] == label and r["metric"] == metric]
                assert len(row) == 1
                k, m = hand_fraction(c, metric)
                assert (row[0]["numerator"], row[0]["denominator"], row[0]["n"]) == (k, m, n)
                if m:
                    lo, hi = proportion_confint(k, m, alpha=0.05, method=rate_method(k, m))
                    assert row[0]["ci_low"] == pytest.approx(lo, abs=5.1e-5)
                    assert row[0]["ci_high"] == pytest.approx(hi, abs=5.1e-5)
                else:
                    assert row[0]["value"] is None and row[0]["ci_low"] is None
    too_small = min(sizes) < res.params["min_group_size"]
    assert res.raw_status is (Status.WARN if too_small else Status.PASS)
    if too_small:
        assert "insufficient evidence" in res.message


def _evidence_rows(result, name):
    ev = [e for e in result.evidence if e.name == name]
    assert len(ev) == 1
    cols = ev[0].data["columns"]
    return [dict(zip(cols, r, strict=True)) for r in ev[0].data["rows"]]


def test_group_metrics_hand_built_edge_cases_are_reported():
    report = audit(_hand_built(), target="y", sensitive=["a", "b"], prediction="p",
                   checks=["fairness.group_metrics"])
    res = next(c for c in report.checks if c.check_id == "fairness.group_metrics")
    # group b=w holds no positives: TPR/FNR undefined, FPR 2/8
    assert res.metrics["tpr/b/w"] is None and res.metrics["fnr/b/w"] is None
    assert res.metrics["fpr/b/w"] == pytest.approx(2 / 8)
    # y & v flags nobody: PPV undefined, FOR 4/7
    assert res.metrics["ppv/a & b/y & v"] is None
    assert res.metrics["for/a & b/y & v"] == pytest.approx(4 / 7)
    # the absent combination is not a group
    assert "n/a & b/y & w" not in res.metrics
    assert res.metrics["n/a & b/x & u"] == 34


# -- 4. disparity ---------------------------------------------------------------------------------

BIG_GAP = {"A": (50, 10, 50, 190), "B": (50, 100, 50, 100)}


@pytest.mark.parametrize("rule", ["point", "significant"])
def test_large_fpr_gap_fails(rule):
    ctx = context(frame(BIG_GAP))
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, decision_rule=rule)
    assert res.status is Status.FAIL
    assert res.metrics["fpr/g/A"] == pytest.approx(10 / 200)
    assert res.metrics["fpr/g/B"] == pytest.approx(100 / 200)
    t = table(res, "fpr:g")
    assert t["B"]["verdict"] == "violation"


@pytest.mark.parametrize("rule", ["point", "significant"])
@pytest.mark.parametrize("metric", ["fpr", "fnr", "selection_rate", "ppv"])
def test_equal_groups_pass(rule, metric):
    ctx = context(frame({"A": (40, 20, 10, 130), "B": (40, 20, 10, 130)}))
    res = run(ctx, "fairness.disparity", metric=metric, max_difference=0.05, min_ratio=0.8,
              decision_rule=rule)
    assert res.status is Status.PASS
    assert res.metrics[f"{metric}_max_abs_diff"] == 0.0
    assert {r["verdict"] for r in table(res, f"{metric}:g").values()} == {"reference", "ok"}


@pytest.mark.parametrize("rule", ["point", "significant"])
@pytest.mark.parametrize("small_fp", [0, 1, 5])  # equal to, near, far from the reference FPR
def test_small_group_is_insufficient_evidence_never_pass(rule, small_fp):
    spec = {"A": (40, 20, 10, 130), "B": (40, 20, 10, 130), "C": (3, small_fp, 2, 5 - small_fp)}
    ctx = context(frame(spec))
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, decision_rule=rule,
              min_group_size=30)
    assert res.status is Status.WARN
    assert "insufficient evidence" in res.message
    assert table(res, "fpr:g")["C"]["verdict"] == "insufficient"


def test_small_reference_group_makes_every_comparison_insufficient():
    spec = {"A": (40, 20, 10, 130), "B": (10, 90, 10, 110), "C": (3, 1, 2, 4)}
    ctx = context(frame(spec), reference_groups={"g": "C"})
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, min_group_size=30)
    assert res.status is Status.WARN
    t = table(res, "fpr:g")
    assert t["C"]["verdict"] == "reference"
    assert t["A"]["verdict"] == t["B"]["verdict"] == "insufficient"
    assert res.metrics["comparisons"] == 0


def test_point_rule_is_stricter_than_significant_on_a_small_moderate_gap():
    # FPR 4/40 (reference) vs 9/40: a gap of 0.125 > 0.1, but the 95% interval of the
    # difference reaches back inside the tolerance (and even includes 0)
    spec = {"A": (30, 4, 30, 36), "B": (5, 9, 5, 31)}
    k_ref, m_ref, k_b, m_b = 4, 40, 9, 40
    lo, hi = confint_proportions_2indep(k_b, m_b, k_ref, m_ref, method="newcomb", compare="diff")
    assert k_b / m_b - k_ref / m_ref > 0.1 and lo < 0 < hi  # precondition (statsmodels)
    ctx = context(frame(spec), reference_groups={"g": "A"})
    point = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1,
                decision_rule="point", min_group_size=30)
    sig = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1,
              decision_rule="significant", min_group_size=30)
    assert point.status is Status.FAIL
    assert table(point, "fpr:g")["B"]["verdict"] == "violation"
    # not shown beyond the tolerance: never a FAIL under "significant"
    assert sig.status in (Status.PASS, Status.WARN)
    assert table(sig, "fpr:g")["B"]["verdict"] in ("ok", "inconclusive")
    # the same for the ratio: 2.25 is outside [0.8, 1.25] but its Katz interval includes 1
    rlo, rhi = confint_proportions_2indep(k_b, m_b, k_ref, m_ref, method="log", compare="ratio")
    assert rlo < 1 < rhi
    assert run(ctx, "fairness.disparity", metric="fpr", min_ratio=0.8, decision_rule="point",
               min_group_size=30).status is Status.FAIL
    assert run(ctx, "fairness.disparity", metric="fpr", min_ratio=0.8,
               decision_rule="significant", min_group_size=30).status in (Status.PASS,
                                                                           Status.WARN)


# reference A: FPR 20/200; B: 20/60, whose difference 0.233 is beyond the tolerance 0.1 with
# 95% confidence but not with the Bonferroni-adjusted 1 - 0.05/3; C, D: 6/60
BONF = {"A": (100, 20, 100, 180), "B": (20, 20, 20, 40), "C": (20, 6, 20, 54),
        "D": (20, 6, 20, 54)}


def test_bonferroni_adjusts_the_decision_over_several_comparisons():
    k = 3
    lo95, _ = confint_proportions_2indep(20, 60, 20, 200, method="newcomb", alpha=0.05)
    lo_adj, _ = confint_proportions_2indep(20, 60, 20, 200, method="newcomb", alpha=0.05 / k)
    assert lo95 > 0.1 > lo_adj  # precondition (statsmodels): beyond only without adjustment
    ctx = context(frame(BONF))
    adjusted = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1,
                   decision_rule="significant", min_group_size=30)
    plain = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1,
                decision_rule="significant", min_group_size=30, multiple_comparisons="none")
    assert adjusted.metrics["comparisons"] == k
    assert adjusted.metrics["decision_confidence"] > 0.95
    assert adjusted.metrics["decision_confidence"] == pytest.approx(1 - 0.05 / k)
    assert plain.metrics["decision_confidence"] == pytest.approx(0.95)
    assert plain.status is Status.FAIL
    assert adjusted.status is not Status.FAIL
    assert table(adjusted, "fpr:g")["B"]["verdict"] != "violation"
    # reported intervals stay at 95% in both
    assert table(adjusted, "fpr:g")["B"]["diff_ci_low"] == pytest.approx(lo95, abs=5.1e-5)
    assert table(plain, "fpr:g")["B"]["diff_ci_low"] == pytest.approx(lo95, abs=5.1e-5)


def test_bonferroni_counts_only_comparisons_with_sufficient_evidence():
    spec = {**BONF, "E": (2, 1, 2, 4)}  # too small: not a comparison
    ctx = context(frame(spec))
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, min_group_size=30)
    assert res.metrics["comparisons"] == 3
    assert res.metrics["decision_confidence"] == pytest.approx(1 - 0.05 / 3)
    point = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1,
                decision_rule="point", min_group_size=30)
    assert point.metrics["decision_confidence"] == pytest.approx(0.95)


@pytest.mark.parametrize("metric", ["fpr", "tpr", "selection_rate", "ppv", "npv", "accuracy"])
@pytest.mark.parametrize("reference", [None, "A", "B", "C"])
def test_reference_group_and_reported_differences_equal_hand_values(metric, reference):
    spec = {"A": (30, 12, 20, 140), "B": (45, 30, 15, 90), "C": (25, 5, 5, 60)}
    df = frame(spec)
    ctx = context(df, reference_groups=None if reference is None else {"g": reference})
    res = run(ctx, "fairness.disparity", metric=metric, max_difference=0.05, min_ratio=0.8,
              min_group_size=1)
    counts = hand_counts(df, df["g"])
    # default reference: the largest group
    ref = reference or max(counts, key=lambda g: sum(counts[g].values()))
    t = table(res, f"{metric}:g")
    assert [g for g, r in t.items() if r["verdict"] == "reference"] == [ref]
    k_ref, m_ref = hand_fraction(counts[ref], metric)
    for g, c in counts.items():
        k, m = hand_fraction(c, metric)
        assert res.metrics[f"{metric}/g/{g}"] == pytest.approx(k / m)
        assert t[g]["denominator"] == m
        if g == ref:
            assert f"{metric}_diff/g/{g}" not in res.metrics
            continue
        assert res.metrics[f"{metric}_diff/g/{g}"] == pytest.approx(k / m - k_ref / m_ref)
        assert res.metrics[f"{metric}_ratio/g/{g}"] == pytest.approx((k / m) / (k_ref / m_ref))
        # the reported intervals equal statsmodels' Newcombe and Koopman score intervals
        dlo, dhi = confint_proportions_2indep(k, m, k_ref, m_ref, method="newcomb")
        rlo, rhi = confint_proportions_2indep(k, m, k_ref, m_ref, method="score",
                                              compare="ratio", correction=False)
        assert t[g]["diff_ci_low"] == pytest.approx(dlo, abs=5.1e-5)
        assert t[g]["diff_ci_high"] == pytest.approx(dhi, abs=5.1e-5)
        assert t[g]["ratio_ci_low"] == pytest.approx(rlo, abs=5.1e-5)
        assert t[g]["ratio_ci_high"] == pytest.approx(rhi, abs=5.1e-5)
    # the verdicts: Holm's step-down over the 2 comparisons, done here with statsmodels'
    # intervals: at level alpha / (k - r) (r = violations found so far) a group whose Newcombe
    # (or Koopman score) interval lies wholly beyond the tolerance is a violation; repeat until
    # none is added. Beyond by point estimate only: inconclusive.
    others = [g for g in counts if g != ref]

    def beyond(g: str, alpha: float) -> bool:
        k, m = hand_fraction(counts[g], metric)
        d, r = k / m - k_ref / m_ref, (k / m) / (k_ref / m_ref)
        alo, ahi = confint_proportions_2indep(k, m, k_ref, m_ref, method="newcomb", alpha=alpha)
        arlo, arhi = confint_proportions_2indep(k, m, k_ref, m_ref, method="score",
                                                compare="ratio", correction=False, alpha=alpha)
        return bool((abs(d) > 0.05 and (alo > 0.05 or ahi < -0.05))
                    or ((r < 0.8 or r > 1.25) and (arhi < 0.8 or arlo > 1.25)))

    violations: set[str] = set()
    while len(violations) < len(others):
        new = {g for g in others if g not in violations
               and beyond(g, 0.05 / (len(others) - len(violations)))}
        if not new:
            break
        violations |= new
    for g in others:
        k, m = hand_fraction(counts[g], metric)
        d, r = k / m - k_ref / m_ref, (k / m) / (k_ref / m_ref)
        out = abs(d) > 0.05 or r < 0.8 or r > 1.25
        expected = "violation" if g in violations else "inconclusive" if out else "ok"
        assert t[g]["verdict"] == expected, (g, d, r)


def test_given_reference_groups_set_the_intersection_reference():
    rng = np.random.default_rng(5)
    n = 600
    df = pd.DataFrame({"a": rng.choice(["x", "y"], n, p=[0.7, 0.3]),
                       "b": rng.choice(["u", "v"], n, p=[0.7, 0.3]),
                       "y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n)})
    ctx = context(df, sensitive=["a", "b"], reference_groups={"a": "y", "b": "v"})
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, min_group_size=1)
    assert [g for g, r in table(res, "fpr:a").items() if r["verdict"] == "reference"] == ["y"]
    assert [g for g, r in table(res, "fpr:b").items() if r["verdict"] == "reference"] == ["v"]
    inter = table(res, "fpr:a & b")
    assert [g for g, r in inter.items() if r["verdict"] == "reference"] == ["y & v"]
    key = df["a"] + " & " + df["b"]
    counts = hand_counts(df, key)
    k_ref, m_ref = hand_fraction(counts["y & v"], "fpr")
    for g, c in counts.items():
        k, m = hand_fraction(c, "fpr")
        if g != "y & v":
            assert res.metrics[f"fpr_diff/a & b/{g}"] == pytest.approx(k / m - k_ref / m_ref)


# -- 5. calibration -------------------------------------------------------------------------------

def _scored(seed: int, deciles: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 900
    g = rng.choice(["A", "B", "C"], n, p=[0.5, 0.35, 0.15])
    shift = pd.Series(g).map({"A": 0.0, "B": 0.4, "C": -0.3}).to_numpy()
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.2 * x + shift)))).astype(int)
    s = 1 / (1 + np.exp(-(x + 0.2 * rng.normal(size=n))))
    if deciles:
        s = np.ceil(pd.Series(s).rank(pct=True).to_numpy() * 10).clip(1, 10)
    return pd.DataFrame({"g": g, "y": y, "s": s, "p": (s >= np.median(s)).astype(int)})


def test_calibration_skipped_without_scores():
    ctx = context(_scored(0))
    res = run(ctx, "fairness.calibration", max_auc_difference=0.05)
    assert res.status is Status.SKIPPED


def _hand_ece(y: np.ndarray, s: np.ndarray, n_bins: int) -> float:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        last = b == n_bins - 1
        inb = (s >= edges[b]) & ((s <= edges[b + 1]) if last else (s < edges[b + 1]))
        if inb.any():
            total += inb.sum() / len(s) * abs(s[inb].mean() - y[inb].mean())
    return total


@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_auc_gap_and_ece_per_group_equal_hand_values(seed):
    df = _scored(seed)
    ctx = AuditContext.build(df, target="y", sensitive=["g"], prediction="p", score="s")
    res = run(ctx, "fairness.calibration", min_group_size=1)
    assert res.status is Status.PASS
    for label, sub in df.groupby("g"):
        y, s = sub["y"].to_numpy(), sub["s"].to_numpy()
        assert res.metrics[f"auc/g/{label}"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert res.metrics[f"calibration_gap/g/{label}"] == pytest.approx(s.mean() - y.mean())
        assert res.metrics[f"ece/g/{label}"] == pytest.approx(_hand_ece(y, s, 10))


def test_calibration_auc_undefined_for_a_one_class_group():
    df = _scored(2)
    df.loc[df["g"] == "C", "y"] = 0
    ctx = AuditContext.build(df, target="y", sensitive=["g"], prediction="p", score="s")
    res = run(ctx, "fairness.calibration", min_group_size=1)
    assert res.metrics["auc/g/C"] is None
    sub = df[df["g"] == "A"]
    assert res.metrics["auc/g/A"] == pytest.approx(roc_auc_score(sub["y"], sub["s"]))


def test_calibration_large_gap_fails():
    df = _scored(3)
    df["s"] = np.clip(df["s"] + np.where(df["g"] == "B", 0.3, 0.0), 0, 1)  # B over-scored
    ctx = AuditContext.build(df, target="y", sensitive=["g"], prediction="p", score="s")
    res = run(ctx, "fairness.calibration", max_calibration_gap=0.1, min_group_size=1)
    sub = df[df["g"] == "B"]
    assert sub["s"].mean() - sub["y"].mean() > 0.1  # precondition
    assert res.status is Status.FAIL


def test_decile_scores_calibration_not_assessed():
    df = _scored(4, deciles=True)
    assert set(df["s"].unique()) == set(range(1, 11))
    ctx = AuditContext.build(df, target="y", sensitive=["g"], prediction="p", score="s")
    plain = run(ctx, "fairness.calibration", min_group_size=1)
    assert plain.status is Status.PASS
    assert "not assessed" in plain.message
    assert not any(k.startswith(("calibration_gap/", "ece/")) for k in plain.metrics)
    for label, sub in df.groupby("g"):  # AUC is still assessed on decile scores
        assert plain.metrics[f"auc/g/{label}"] == pytest.approx(roc_auc_score(sub["y"],
                                                                              sub["s"]))
    with_gap = run(ctx, "fairness.calibration", max_calibration_gap=0.05, min_group_size=1)
    assert with_gap.status is Status.WARN
    assert "not probabilities" in with_gap.message


def test_hand_built_frame_is_what_the_spec_says():
    # guards the helper the disparity tests rely on
    df = frame({"A": (1, 2, 3, 4)})
    c = hand_counts(df, df["g"])["A"]
    assert c == {"tp": 1, "fp": 2, "fn": 3, "tn": 4}
    assert math.isclose(hand_rate(c, "fpr"), 2 / 6)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.99])
def test_group_metrics_intervals_at_other_confidence_levels(confidence):
    df = _random_frame(4)
    ctx = context(df, sensitive=["a"])
    res = run(ctx, "fairness.group_metrics", confidence=confidence, min_group_size=1)
    assert res.status is Status.PASS
    rows = _evidence_rows(res, "group_metrics:a")
    counts = hand_counts(df, df["a"])
    for row in rows:
        k, m = hand_fraction(counts[row["group"]], row["metric"])
        lo, hi = proportion_confint(k, m, alpha=1 - confidence, method=rate_method(k, m))
        assert row["ci_low"] == pytest.approx(lo, abs=5.1e-5)
        assert row["ci_high"] == pytest.approx(hi, abs=5.1e-5)


def test_group_metrics_states_the_confidence_level_it_used():
    # regression: int(0.57 * 100) once printed "56%"
    df = _random_frame(4)
    res = run(context(df, sensitive=["a"]), "fairness.group_metrics", confidence=0.57,
              min_group_size=1)
    ev = next(e for e in res.evidence if e.name == "group_metrics:a")
    assert "57% Wilson" in ev.description


def test_infinite_ratio_has_a_score_interval_and_fails_when_significant():
    import pandas as pd
    # reference group "r": 60 negatives, none flagged (FPR 0); group "g": 60 negatives, 30 flagged
    df = pd.DataFrame({"y": [0] * 120, "p": [0] * 60 + [1] * 30 + [0] * 30,
                       "s": ["r"] * 60 + ["g"] * 60})
    df.loc[len(df)] = {"y": 1, "p": 1, "s": "r"}
    df.loc[len(df)] = {"y": 1, "p": 1, "s": "g"}
    ctx = context(df, sensitive=["s"], reference_groups={"s": "r"})
    point = run(ctx, "fairness.disparity", metric="fpr", min_ratio=0.8, decision_rule="point",
                min_group_size=10)
    assert point.status.value == "fail" and "infinite" in point.message
    sig = run(ctx, "fairness.disparity", metric="fpr", min_ratio=0.8, min_group_size=10)
    # the ratio 0.5 / 0 is infinite, and so is its interval's upper end (Koopman's score
    # interval, no continuity correction); its lower end is where the score test gives 0.05
    assert sig.status.value == "fail" and "infinite" in sig.message
    row = table(sig, "fpr:s")["g"]
    p_at_low = score_test_proportions_2indep(30, 60, 0, 60, value=row["ratio_ci_low"],
                                             compare="ratio", correction=False).pvalue
    assert p_at_low == pytest.approx(0.05, abs=1e-3)
    assert row["ratio_ci_high"] is None and row["decision_ratio_high"] is None  # unbounded
    assert row["ratio_ci_low"] > 1.25 and "inf]" in sig.message
    assert row["ratio"] is None and row["verdict"] == "violation"
