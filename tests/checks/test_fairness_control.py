"""Conditional disparity (``fairness.disparity`` with ``control=``) against fairlearn's
``MetricFrame(control_features=...)``, statsmodels' intervals and counts made by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from lea_ai_audit import audit
from lea_ai_audit.checks import make_check
from lea_ai_audit.checks.fairness import control_strata
from lea_ai_audit.context import AuditContext
from lea_ai_audit.policy import load_policy
from lea_ai_audit.results import Status


def simpson() -> pd.DataFrame:
    """Negatives only (so FPR = share flagged). Within each prior-record stratum both groups
    are flagged at exactly the same rate; group b has far more people with many priors, so
    its pooled FPR is much higher: a pooled comparison finds a disparity that the legitimate
    factor explains."""
    rows = []
    # stratum: (rate flagged, people in a, people in b)
    for stratum, (flagged_share, n_a, n_b) in {"none": (0.1, 3000, 500),
                                               "some": (0.3, 1000, 1000),
                                               "many": (0.6, 500, 3000)}.items():
        for group, n in (("a", n_a), ("b", n_b)):
            k = round(flagged_share * n)
            rows.append(pd.DataFrame({"g": group, "priors": stratum, "y": 0,
                                      "p": [1] * k + [0] * (n - k)}))
    df = pd.concat(rows, ignore_index=True)
    df.loc[df.index[::97], "y"] = 1  # a few positives, so the target has both classes
    return df


def ctx_of(df: pd.DataFrame, **kw) -> AuditContext:
    return AuditContext.build(df, target="y", sensitive=["g"], prediction="p", **kw)


def run(ctx: AuditContext, **params):
    return make_check("fairness.disparity", {"metric": "fpr", **params}).run(ctx)


def tables(result) -> dict[str, dict[str, dict]]:
    out = {}
    for ev in result.evidence:
        cols = ev.data["columns"]
        out[ev.name] = {row[0]: dict(zip(cols, row, strict=True)) for row in ev.data["rows"]}
    return out


def test_pooled_disparity_explained_by_a_legitimate_factor() -> None:
    ctx = ctx_of(simpson())
    pooled = run(ctx, max_difference=0.05, decision_rule="demonstrated")
    assert pooled.status == Status.FAIL
    within = run(ctx, max_difference=0.05, decision_rule="demonstrated", control=["priors"])
    assert within.status == Status.PASS, within.message
    assert "within 3 strata of priors" in within.message
    assert within.metrics["comparisons"] == 3  # b against a in each stratum


def test_stratum_values_equal_fairlearn_control_features_and_statsmodels_intervals() -> None:
    rng = np.random.default_rng(7)
    n = 6000
    df = pd.DataFrame({"g": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
                       "priors": rng.choice(["0", "1-3", "4+"], n),
                       "y": rng.integers(0, 2, n)})
    df["p"] = (rng.random(n) < np.where(df["g"] == "b", 0.45, 0.35)).astype(int)
    ctx = ctx_of(df)
    res = run(ctx, max_difference=0.1, control="priors", min_group_size=1)
    mf = MetricFrame(metrics=false_positive_rate, y_true=df["y"], y_pred=df["p"],
                     sensitive_features=df["g"], control_features=df["priors"])
    t = tables(res)
    assert sorted(t) == ["fpr:g | priors=0", "fpr:g | priors=1-3", "fpr:g | priors=4+"]
    for stratum in ("0", "1-3", "4+"):
        rows = t[f"fpr:g | priors={stratum}"]
        sub = df[df["priors"] == stratum]
        ref = sub["g"].value_counts().idxmax()  # the grouping's reference: largest overall
        assert ref == "a" and rows["a"]["verdict"] == "reference"
        neg_ref = sub[(sub["g"] == ref) & (sub["y"] == 0)]
        for g in ("a", "b", "c"):
            assert rows[g]["value"] == pytest.approx(mf.by_group[(stratum, g)], abs=5e-5)
            if g == ref:
                continue
            neg = sub[(sub["g"] == g) & (sub["y"] == 0)]
            lo, hi = confint_proportions_2indep(int(neg["p"].sum()), len(neg),
                                                int(neg_ref["p"].sum()), len(neg_ref),
                                                method="newcomb")
            assert rows[g]["denominator"] == len(neg)
            assert (rows[g]["diff_ci_low"], rows[g]["diff_ci_high"]) == \
                pytest.approx((lo, hi), abs=5.1e-5)


def test_holm_runs_over_every_stratum_of_an_attribute() -> None:
    rng = np.random.default_rng(3)
    n = 9000
    df = pd.DataFrame({"g": rng.choice(["a", "b"], n), "priors": rng.choice(["x", "y", "z"], n),
                       "y": 0})
    # b is flagged more in stratum z only
    shift = np.where((df["g"] == "b") & (df["priors"] == "z"), 0.25, 0.0)
    df["p"] = (rng.random(n) < 0.2 + shift).astype(int)
    df.loc[df.index[:30], "y"] = 1
    ctx = ctx_of(df, reference_groups={"g": "a"})
    res = run(ctx, max_difference=0.05, control=["priors"], min_group_size=1)
    t = tables(res)
    ps = np.array([t[f"fpr:g | priors={s}"]["b"]["p_value"] for s in "xyz"])
    adjusted = np.array([t[f"fpr:g | priors={s}"]["b"]["p_adjusted"] for s in "xyz"])
    # one family over the three strata's comparisons, in its two halves (README): Holm over
    # the "beyond" hypotheses (p = 1 where the point is inside) and over the "inside" ones
    # (p = 1 where it is beyond), each by statsmodels
    inside = np.array([t[f"fpr:g | priors={s}"]["b"]["verdict"] == "ok" for s in "xyz"])
    assert inside.tolist() == [True, True, False]
    beyond_adj = multipletests(np.where(inside, 1.0, ps), method="holm")[1]
    inside_adj = multipletests(np.where(inside, ps, 1.0), method="holm")[1]
    np.testing.assert_allclose(adjusted, np.where(inside, inside_adj, beyond_adj), rtol=1e-9)
    assert res.metrics["comparisons"] == 3
    assert t["fpr:g | priors=z"]["b"]["verdict"] == "violation"
    assert res.status == Status.FAIL and "g=b within priors=z" in res.message


def test_a_numeric_control_is_cut_at_its_quantiles_and_missing_is_a_stratum() -> None:
    v = pd.Series([float(x) for x in range(100)] + [np.nan] * 5)
    codes, labels = control_strata(pd.DataFrame({"age": v}), ["age"], 4)
    assert labels == ["age 0 to 24", "age 25 to 49", "age 50 to 74", "age 75 to 99",
                      "age=(missing)"]
    assert np.bincount(codes).tolist() == [25, 25, 25, 25, 5]
    # a few values: one stratum each; two columns: the combinations that occur
    df = pd.DataFrame({"a": [1, 1, 2, 2, 3], "b": ["x", "y", "x", "x", "y"]})
    codes, labels = control_strata(df, ["a", "b"], 4)
    assert labels == ["a=1, b=x", "a=1, b=y", "a=2, b=x", "a=3, b=y"]
    assert codes.tolist() == [0, 1, 2, 2, 3]


def test_a_small_stratum_is_insufficient_evidence_not_a_pass() -> None:
    df = simpson()
    extra = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 5, "priors": "rare", "y": 0, "p": 0})
    ctx = ctx_of(pd.concat([df, extra], ignore_index=True))
    res = run(ctx, max_difference=0.05, decision_rule="demonstrated", control=["priors"])
    assert res.status == Status.WARN
    assert "insufficient" in res.message and "g=b within priors=rare" in res.message


def test_control_errors_say_what_to_do() -> None:
    ctx = ctx_of(simpson())
    missing = run(ctx, max_difference=0.05, control=["prior_count"])
    assert missing.status == Status.ERROR and "'prior_count' is not in the data" in \
        missing.message
    df = simpson()
    df["case_id"] = [f"c{i}" for i in range(len(df))]  # an identifier: one stratum per row
    too_many = run(ctx_of(df), max_difference=0.05, control=["case_id"])
    assert too_many.status == Status.ERROR and f"{len(df)} strata (at most 100)" in \
        too_many.message
    clash = run(ctx, max_difference=0.05, control=["g"])
    assert clash.status == Status.ERROR and "sensitive attribute" in clash.message
    for bad in ({"control": []}, {"control": [3]}, {"control": 5}, {"control": {"a": 1}},
                {"control_bins": 1},
                {"control_bins": True}):
        with pytest.raises(ValueError, match="control"):
            make_check("fairness.disparity", {"metric": "fpr", "max_difference": 0.1,
                                              **bad}).validate()


def test_control_from_a_policy_field_through_audit() -> None:
    policy = load_policy({"id": "within", "version": "1", "title": "within strata",
                          "requirements": [{
                              "id": "fpr-within-priors", "title": "FPR parity within priors",
                              "clauses": ["Council conclusions §27"], "blocking": True,
                              "check": "fairness.disparity",
                              "params": {"metric": "fpr", "max_difference": 0.05,
                                         "decision_rule": "demonstrated",
                                         "control": ["priors"]}}]})
    rep = audit(simpson(), target="y", sensitive=["g"], prediction="p", policy=policy,
                track=False)
    (res,) = rep.checks
    assert res.status == Status.PASS and res.params["control"] == ["priors"]
