"""performance.metrics against scikit-learn and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from lea_ai_audit.checks import make_check
from lea_ai_audit.context import AuditContext
from lea_ai_audit.results import Status
from lea_ai_audit.stats import EXACT_RATE_MAX_COUNT


def _data(seed: int, n: int = 700) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["A", "B", "C"], n, p=[0.55, 0.3, 0.15])
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x - 0.3)))).astype(int)
    s = 1 / (1 + np.exp(-(x + 0.8 * rng.normal(size=n))))
    p = (s >= rng.uniform(0.4, 0.6)).astype(int)
    return pd.DataFrame({"g": g, "y": y, "s": s, "p": p})


def _ctx(df: pd.DataFrame, score: bool = True) -> AuditContext:
    return AuditContext.build(df, target="y", sensitive=["g"], prediction="p",
                              score="s" if score else None)


def _run(ctx: AuditContext, **params):
    return make_check("performance.metrics", params).run(ctx)


SKLEARN = {
    "accuracy": accuracy_score,
    "precision": lambda y, p: precision_score(y, p, zero_division=np.nan),
    "recall": lambda y, p: recall_score(y, p, zero_division=np.nan),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overall_and_group_metrics_equal_sklearn(seed):
    df = _data(seed)
    res = _run(_ctx(df))
    y, p, s = df["y"].to_numpy(), df["p"].to_numpy(), df["s"].to_numpy()
    for name, fn in SKLEARN.items():
        assert res.metrics[name] == pytest.approx(fn(y, p), abs=1e-12), name
    assert res.metrics["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    for label, sub in df.groupby("g"):
        for name, fn in SKLEARN.items():
            assert res.metrics[f"{name}/g/{label}"] == pytest.approx(fn(sub["y"], sub["p"]),
                                                                     abs=1e-12)
        assert res.metrics[f"auc/g/{label}"] == pytest.approx(roc_auc_score(sub["y"], sub["s"]),
                                                              abs=1e-12)


def test_evidence_intervals_equal_statsmodels_wilson():
    df = _data(3)
    res = _run(_ctx(df))
    ev = next(e for e in res.evidence if e.name == "performance")
    cols = ev.data["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in ev.data["rows"]]
    y, p = df["y"], df["p"]
    fractions = {"accuracy": (int((y == p).sum()), len(df)),
                 "precision": (int(((y == 1) & (p == 1)).sum()), int((p == 1).sum())),
                 "recall": (int(((y == 1) & (p == 1)).sum()), int((y == 1).sum()))}
    for name, (k, m) in fractions.items():
        row = [r for r in rows if r["grouping"] == "all" and r["metric"] == name]
        assert len(row) == 1
        method = "beta" if min(k, m - k) <= EXACT_RATE_MAX_COUNT else "wilson"
        lo, hi = proportion_confint(k, m, alpha=0.05, method=method)
        assert row[0]["value"] == pytest.approx(k / m, abs=5.1e-5)
        assert row[0]["ci_low"] == pytest.approx(lo, abs=5.1e-5)
        assert row[0]["ci_high"] == pytest.approx(hi, abs=5.1e-5)


def test_undefined_group_metrics_are_none():
    df = _data(4)
    df.loc[df["g"] == "C", "p"] = 0  # C flags nobody: precision undefined
    df.loc[df["g"] == "B", "y"] = 0  # B has no positives: recall and AUC undefined
    res = _run(_ctx(df))
    assert res.metrics["precision/g/C"] is None
    assert res.metrics["recall/g/B"] is None
    assert res.metrics["auc/g/B"] is None
    sub = df[df["g"] == "A"]
    assert res.metrics["recall/g/A"] == pytest.approx(recall_score(sub["y"], sub["p"]))


def test_fails_below_min_auc_and_passes_above():
    df = _data(5)
    auc = roc_auc_score(df["y"], df["s"])
    ctx = _ctx(df)
    assert _run(ctx, min_auc=min(1.0, auc + 0.05)).status is Status.FAIL
    assert _run(ctx, min_auc=max(0.0, auc - 0.05)).status is Status.PASS


def test_fails_below_min_accuracy_precision_recall():
    df = _data(6)
    y, p = df["y"], df["p"]
    ctx = _ctx(df)
    for param, value in (("min_accuracy", accuracy_score(y, p)),
                         ("min_precision", precision_score(y, p)),
                         ("min_recall", recall_score(y, p))):
        assert _run(ctx, **{param: min(1.0, value + 0.02)}).status is Status.FAIL, param
        assert _run(ctx, **{param: max(0.0, value - 0.02)}).status is Status.PASS, param


def test_min_auc_without_scores_warns():
    df = _data(7)
    res = _run(_ctx(df, score=False), min_auc=0.6)
    assert res.status is Status.WARN
    assert "auc" not in res.metrics
    assert res.metrics["accuracy"] == pytest.approx(accuracy_score(df["y"], df["p"]))
    # without a declared AUC level, no scores is no reason to warn
    assert _run(_ctx(df, score=False)).status is Status.PASS


def test_auc_intervals_are_delong_computed_by_brute_force():
    """The AUC rows' intervals: AUC ± z·se with DeLong's (1988) variance, computed here from
    its definition (every positive against every negative, ties one half)."""
    from scipy.stats import norm

    df = _data(4, n=500)
    df["s"] = df["s"].round(1)  # ties
    res = _run(_ctx(df))
    ev = next(e for e in res.evidence if e.name == "performance")
    rows = [dict(zip(ev.data["columns"], r, strict=True)) for r in ev.data["rows"]]
    z = norm.ppf(0.975)
    for grouping, label, sub in [("all", "all", df), *(("g", g, df[df["g"] == g])
                                                       for g in ("A", "B", "C"))]:
        pos, neg = sub.loc[sub["y"] == 1, "s"].to_numpy(), sub.loc[sub["y"] == 0, "s"].to_numpy()
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        auc = psi.mean()
        se = np.sqrt(psi.mean(axis=1).var(ddof=1) / len(pos)
                     + psi.mean(axis=0).var(ddof=1) / len(neg))
        (row,) = [r for r in rows if r["grouping"] == grouping and r["group"] == label
                  and r["metric"] == "auc"]
        assert row["value"] == pytest.approx(auc, abs=5.1e-5)
        assert row["ci_low"] == pytest.approx(max(0.0, auc - z * se), abs=5.1e-5)
        assert row["ci_high"] == pytest.approx(min(1.0, auc + z * se), abs=5.1e-5)
