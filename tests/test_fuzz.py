"""Fuzzing: random frames and policies either give a report or a typed lea_ai_audit error.

Nothing else may escape: no KeyError, ZeroDivisionError, numpy warning turned error, or a
report that cannot be serialised. Every result that comes back round-trips through JSON and
its HTML rendering escapes the data's markup.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lea_ai_audit import audit
from lea_ai_audit.context import ID_LIKE_SHARE
from lea_ai_audit.errors import DataError, LeaAuditError
from lea_ai_audit.policy import load_policy
from lea_ai_audit.results import AuditReport, Status

LABELS = st.sampled_from(["a", "b", "<b>x</b>", "ünï", "", " ", "NaN", "&amp;", "x" * 40, "🚓"])
METRICS = ["base_rate", "selection_rate", "tpr", "fpr", "fnr", "tnr", "ppv", "npv", "fdr", "for",
           "accuracy"]


@st.composite
def frames(draw):
    n = draw(st.integers(1, 60))
    y = draw(st.lists(st.sampled_from([0, 1, 2, None, True, "yes"]), min_size=n, max_size=n)
             if draw(st.booleans()) and draw(st.booleans())
             else st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    p = draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n)
             if draw(st.integers(0, 5)) else
             st.lists(st.sampled_from([0, 1, 0.5, None, "z"]), min_size=n, max_size=n))
    score = (st.one_of(st.floats(-2, 2), st.just(float("nan"))) if draw(st.booleans())
             else st.floats(-2, 2))
    s = draw(st.lists(score, min_size=n, max_size=n))
    df = pd.DataFrame({"y": y, "p": p, "s": s})
    n_groups = draw(st.integers(1, 4))
    for k in range(draw(st.integers(1, 3))):
        labels = draw(st.lists(LABELS, min_size=n_groups, max_size=n_groups))
        col = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
        if draw(st.integers(0, 4)) == 0:
            col[0] = None
        df[f"g{k}<i>"] = col
    return df


@st.composite
def policies(draw):
    reqs = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["disparity", "group_metrics", "performance", "calibration"]))
        if kind == "disparity":
            params = {"metric": draw(st.sampled_from(METRICS)),
                      "decision_rule": draw(st.sampled_from(["point", "significant",
                                                             "demonstrated"])),
                      "multiple_comparisons": draw(st.sampled_from(["holm", "bonferroni",
                                                                    "none"])),
                      "min_group_size": draw(st.integers(1, 40))}
            if draw(st.booleans()):
                params["max_difference"] = draw(st.floats(0, 1))
            else:
                params["min_ratio"] = draw(st.floats(0.01, 1))
            check = "fairness.disparity"
        elif kind == "group_metrics":
            check, params = "fairness.group_metrics", {"min_group_size": draw(st.integers(1, 40))}
        elif kind == "performance":
            check, params = "performance.metrics", {"min_auc": draw(st.floats(0, 1))}
        else:
            check, params = "fairness.calibration", {"max_auc_difference": draw(st.floats(0, 1))}
        reqs.append({"id": f"r{i}", "clauses": ["fuzz"], "check": check, "params": params,
                     "blocking": draw(st.booleans())})
    return load_policy({"id": "fuzz", "version": "0", "title": "fuzz", "requirements": reqs})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(), policy=policies(), use_score=st.booleans(), data=st.data())
def test_audit_returns_a_report_or_a_typed_error(df, policy, use_score, data):
    sensitive = [c for c in df.columns if c.startswith("g")]
    sensitive = data.draw(st.lists(st.sampled_from(sensitive), min_size=1, max_size=3,
                                   unique=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent division by zero
        try:
            rep = audit(df, target="y", sensitive=sensitive, prediction="p",
                        score="s" if use_score else None, policy=policy)
        except LeaAuditError as exc:
            assert str(exc).count(" — ") >= 1 and "\n" not in str(exc)
            event(f"typed error: {type(exc).__name__}")
            return
    event("report")
    assert isinstance(rep, AuditReport)
    assert len(rep.checks) == len(policy.requirements)
    # a check's own crash would be an ERROR result: the fuzzer treats that as a bug (a blocking
    # requirement its check could not decide is an ERROR too, but its raw status is SKIPPED)
    errors = [c for c in rep.checks if c.status is Status.ERROR]
    assert all(c.raw_status is Status.SKIPPED and c.blocking for c in errors), \
        errors[0].evidence
    assert all(c.status is Status.ERROR for c in rep.checks
               if c.raw_status is Status.SKIPPED and c.blocking)
    assert AuditReport.from_json(rep.to_json()) == rep
    html = rep._repr_html_()
    assert "<b>x</b>" not in html.replace("<b>Audit", "")


@settings(max_examples=40, deadline=None)
@given(n_groups=st.integers(50, 120), n=st.integers(200, 800), seed=st.integers(0, 10))
def test_many_groups_and_groups_of_one(n_groups, n, seed):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n).astype(str)
    g[0] = "alone"  # a group of one
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n), "g": g})
    df.loc[df["g"] == "3", "y"] = 1  # a group with no negatives: FPR undefined there
    if df["g"].nunique() > ID_LIKE_SHARE * n:  # a distinct value in most rows: an identifier
        with pytest.raises(DataError, match="looks like an identifier"):
            audit(df, target="y", sensitive=["g"], prediction="p", checks=["fairness"])
        return
    rep = audit(df, target="y", sensitive=["g"], prediction="p", checks=["fairness"])
    fpr = rep.result("fpr-parity")
    assert fpr.status in (Status.WARN, Status.FAIL)  # tiny groups are never a silent pass
    assert "insufficient evidence" in fpr.message or fpr.status is Status.FAIL
    rows = {r["group"]: r for r in rep.table("group_metrics:g") if r["metric"] == "fpr"}
    assert rows["alone"]["denominator"] <= 1
    if "3" in rows:
        assert rows["3"]["value"] is None and rows["3"]["denominator"] == 0
