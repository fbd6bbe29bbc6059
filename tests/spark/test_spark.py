"""Spark audits: exact counts from Spark equal the pandas path's, on a local[2] session.

The oracle for every figure is the pandas audit of the very same rows (itself tested against
fairlearn and scikit-learn elsewhere) and plain pandas computations (group-bys, isna, duplicated).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _compare import assert_same_metrics

from lea_ai_audit import errors as E
from lea_ai_audit.context import MISSING_GROUP, AuditContext
from lea_ai_audit.datasets import make_police_triage
from lea_ai_audit.policy import load_policy
from lea_ai_audit.runner import run_policy
from lea_ai_audit.stats import METRICS

ROOT = Path(__file__).resolve().parents[2]
SENS = ["ethnicity", "sex"]
N_TINY = 12  # a group of 12 rows, far below any sampling fraction


def _data() -> pd.DataFrame:
    df = make_police_triage(50_000, seed=11)
    rng = np.random.default_rng(5)
    z = 0.45 * df["prior_contacts"] - 1.6 + rng.normal(0, 1, len(df))
    df["risk"] = 1 / (1 + np.exp(-z))
    df["flagged"] = (df["risk"] >= 0.5).astype(np.int64)
    tiny = df.iloc[:N_TINY].copy()
    tiny["ethnicity"] = "minority_c"
    tiny["case_id"] = tiny["case_id"] + "-c"
    df = pd.concat([df, tiny], ignore_index=True)
    # missing values: at random, concentrated in one group, and in a sensitive attribute
    df.loc[rng.random(len(df)) < 0.04, "months_since_last_contact"] = np.nan
    df.loc[(df["ethnicity"] == "minority_a").to_numpy() & (rng.random(len(df)) < 0.15),
           "employment"] = None
    df.loc[rng.choice(len(df), 25, replace=False), "sex"] = None
    dups = df.iloc[200:207]  # 7 exact duplicate rows
    return pd.concat([df, dups], ignore_index=True)


KW: dict[str, Any] = {"target": "reoffended", "sensitive": SENS, "prediction": "flagged",
                      "score": "risk"}


@pytest.fixture(scope="module")
def frames(spark: Any) -> tuple[pd.DataFrame, Any]:
    df = _data()
    return df, spark.createDataFrame(df)


@pytest.fixture(scope="module")
def contexts(frames: tuple[pd.DataFrame, Any]) -> tuple[Any, AuditContext]:
    from lea_ai_audit.spark import build_context

    df, sdf = frames
    sctx = build_context(sdf, sample_rows=4000, min_per_group=100, seed=3, **KW)
    return sctx, AuditContext.build(df, **KW)


def _policy(*reqs: tuple[str, dict[str, Any]]) -> Any:
    return load_policy({"id": "spark-test", "version": "1", "title": "spark test",
                        "requirements": [{"id": f"r{i}", "title": check, "clauses": ["test"],
                                          "check": check, "params": params, "blocking": True}
                                         for i, (check, params) in enumerate(reqs)]})


def test_counts_groups_and_references_equal_the_pandas_path(contexts: Any) -> None:
    sctx, pctx = contexts
    assert sctx.n < pctx.n / 5  # the rows are a sample ...
    for g, pg in zip(sctx.groupings(), pctx.groupings(), strict=True):
        assert g.name == pg.name and g.labels == pg.labels  # ... every group is in it
        assert (g.reference, g.reference_source) == (pg.reference, pg.reference_source)
        for field in ("tp", "fp", "fn", "tn"):  # ... and the counts are the whole data's
            np.testing.assert_array_equal(getattr(sctx.counts(g), field),
                                          getattr(pctx.counts(pg), field))
    assert "minority_c" in sctx.groupings()[0].labels
    assert MISSING_GROUP in sctx.groupings()[1].labels
    for field in ("tp", "fp", "fn", "tn"):
        assert getattr(sctx.overall_counts, field).tolist() == \
            getattr(pctx.overall_counts, field).tolist()
    assert sctx.constant_decision is None


def test_counts_equal_an_independent_pandas_groupby(frames: Any, contexts: Any) -> None:
    df, _ = frames
    sctx, _ = contexts
    g = sctx.groupings()[-1]  # the intersection
    keys = df[SENS].fillna(MISSING_GROUP).astype(str).agg(" & ".join, axis=1)
    y, p = df["reoffended"], df["flagged"]
    want = pd.DataFrame({"tp": (y == 1) & (p == 1), "fp": (y == 0) & (p == 1),
                         "fn": (y == 1) & (p == 0), "tn": (y == 0) & (p == 0)}
                        ).groupby(keys).sum()
    got = sctx.counts(g)
    for i, label in enumerate(g.labels):
        assert [int(getattr(got, f)[i]) for f in ("tp", "fp", "fn", "tn")] == \
            want.loc[label].tolist(), label
    assert sctx.population["group_sizes"][g.name]["minority_c & male"] == \
        int(((df["ethnicity"] == "minority_c") & (df["sex"] == "male")).sum())


def test_fairness_and_performance_results_equal_the_pandas_path(contexts: Any) -> None:
    sctx, pctx = contexts
    policy = _policy(("fairness.group_metrics", {}),
                     ("fairness.disparity", {"metric": "fpr", "max_difference": 0.05}),
                     ("fairness.disparity", {"metric": "selection_rate", "min_ratio": 0.8,
                                             "decision_rule": "point"}),
                     ("fairness.disparity", {"metric": "ppv", "max_difference": 0.1}),
                     ("performance.metrics", {"min_recall": 0.5}))
    spark_res, pandas_res = run_policy(sctx, policy), run_policy(pctx, policy)
    for s, p in zip(spark_res, pandas_res, strict=True):
        if s.check_id == "performance.metrics":  # its AUC comes from the sample
            s_m = {k: v for k, v in s.metrics.items() if not k.startswith("auc")}
            p_m = {k: v for k, v in p.metrics.items() if not k.startswith("auc")}
            assert s_m == p_m
            assert abs(s.metrics["auc"] - p.metrics["auc"]) < 0.03
            continue
        assert (s.status, s.message, s.metrics) == (p.status, p.message, p.metrics)
        assert [e.data for e in s.evidence] == [e.data for e in p.evidence]
    gm = spark_res[0]
    # every rate for every group, the tiny group included
    for metric in METRICS:
        assert f"{metric}/ethnicity/minority_c" in gm.metrics
    assert gm.metrics["n/ethnicity/minority_c"] == N_TINY
    assert "insufficient evidence" in gm.message and "minority_c" in gm.message
    assert spark_res[1].status.value == "fail"  # the injected bias is found on Spark too


def test_missing_values_duplicates_and_digest_equal_pandas(frames: Any, contexts: Any) -> None:
    from lea_ai_audit.checks.data_quality import duplicate_rows

    df, _ = frames
    pop = contexts[0].population
    assert pop["n_rows"] == len(df) and pop["n_columns"] == df.shape[1]
    assert pop["null_counts"] == {c: int(v) for c, v in df.isna().sum().items()}
    assert pop["null_counts"]["employment"] > 0 and pop["null_counts"]["sex"] == 25
    for attr in SENS:
        key = df[attr].fillna(MISSING_GROUP)
        want = df.isna().groupby(key).sum()
        got = pop["null_counts_by_group"][attr]
        assert set(got) == {c for c in df.columns if df[c].isna().any()}
        for col, per in got.items():
            assert per == {str(k): int(v) for k, v in want[col].items()}, (attr, col)
    assert pop["duplicate_rows"] == duplicate_rows(df) == int(df.duplicated().sum()) == 7
    assert pop["positives"] == int(df["reoffended"].sum())
    assert pop["predicted_positive"] == int(df["flagged"].sum())
    for label, mean in pop["mean_score_by_group"]["ethnicity"].items():
        assert math.isclose(mean, df.loc[df["ethnicity"] == label, "risk"].mean(), rel_tol=1e-9)
    assert len(pop["digest"]) == 64 and contexts[0].data_digest == pop["digest"]


def test_quality_check_counts_every_row_not_the_sample(frames: Any, contexts: Any) -> None:
    """data.quality_by_group on Spark: missing values, duplicates, label balance and the
    representation of groups are those of the whole data (the pandas path on every row),
    although the context's rows are a 4,000-row stratified sample."""
    sctx, pctx = contexts
    df, _ = frames
    declared = {"ethnicity": {"majority": 0.6, "minority_a": 0.2, "minority_b": 0.15}}
    policy = _policy(("data.quality_by_group", {"population": declared}))
    assert sctx.data.shape[0] < len(df) // 5
    sp_res, pd_res = run_policy(sctx, policy)[0], run_policy(pctx, policy)[0]
    assert pd_res.metrics["duplicate_rows"] == 7
    assert_same_metrics(sp_res.metrics, pd_res.metrics, rel=1e-9, abs=1e-12)
    for name in ("missing_values", "label_balance", "representation", "data_summary"):
        assert sp_res.evidence_named(name).data == pd_res.evidence_named(name).data, name
    assert sp_res.status is pd_res.status and sp_res.message == pd_res.message


def test_sample_size_seed_and_tiny_groups_are_recorded(frames: Any, contexts: Any) -> None:
    df, _ = frames
    sctx, _ = contexts
    pop = sctx.population
    assert pop["engine"] == "spark" and pop["sample_seed"] == 3
    assert pop["sample_rows"] == sctx.n and pop["sample_rows_requested"] == 4000
    # strata of 12 and fewer rows are taken whole; the others about proportionally
    assert pop["strata_fractions"]["minority_c & male"] == 1.0
    assert int((sctx.data["ethnicity"] == "minority_c").sum()) == N_TINY
    small = sum(v for k, v in pop["group_sizes"]["ethnicity & sex"].items()
                if pop["strata_fractions"][k] == 1.0)
    expected = 4000 * (len(df) - small) / len(df) + small
    assert abs(sctx.n - expected) < 5 * math.sqrt(expected)
    assert pop["sampled"] and pop["exact"]
    # the checks' own samples represent the whole data, not the over-sampled strata
    g = sctx.strata
    full = np.array([pop["group_sizes"][g.name][lab] for lab in g.labels])
    idx = sctx.stratified_sample(2000, min_per_group=0)
    taken = np.bincount(g.codes[idx], minlength=g.n_groups)
    np.testing.assert_array_equal(taken, np.minimum(np.round(2000 * full / full.sum()),
                                                    np.bincount(g.codes, minlength=g.n_groups)))
    w = sctx.sample_weights(idx)
    per = np.bincount(g.codes[idx], weights=w, minlength=g.n_groups)
    np.testing.assert_allclose(per[taken > 0], full[taken > 0])


def test_same_seed_same_sample_other_seed_other_sample(spark: Any) -> None:
    from lea_ai_audit.spark import build_context

    df = _data().iloc[:6000]
    sdf = spark.createDataFrame(df).repartition(2, "case_id").cache()
    a, b, c = (build_context(sdf, sample_rows=1500, min_per_group=20, seed=s, **KW)
               for s in (1, 1, 2))
    ids = [set(x.data["case_id"]) for x in (a, b, c)]
    assert ids[0] == ids[1] and ids[0] != ids[2]
    assert a.population["digest"] == c.population["digest"]
    # the digest ignores row order and partitioning, and sees a changed value
    shuffled = spark.createDataFrame(df.sample(frac=1.0, random_state=0))
    changed = df.copy()
    changed.loc[17, "age"] += 1
    d = build_context(shuffled, sample_rows=10_000, **KW)
    e = build_context(spark.createDataFrame(changed), sample_rows=10_000, **KW)
    assert d.population["digest"] == a.population["digest"] != e.population["digest"]
    # the whole data fits the sample: nothing sampled, the AUCs equal the pandas path's
    assert d.population["sampled"] == [] and d.n == len(df)
    policy = _policy(("fairness.calibration", {"max_auc_difference": 0.1}))
    pd_res = run_policy(AuditContext.build(df, **KW), policy)[0]
    sp_res = run_policy(d, policy)[0]
    for k, v in pd_res.metrics.items():
        assert sp_res.metrics[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
    sdf.unpersist()


def test_audit_spark_report_and_spark_reference(spark: Any, frames: Any,
                                                tmp_path: Path) -> None:
    from lea_ai_audit.results import AuditReport
    from lea_ai_audit.spark import audit_spark

    df, sdf = frames
    ref = make_police_triage(20_000, seed=12)
    ref_sdf = spark.createDataFrame(ref)
    rep = audit_spark(sdf, reference=ref_sdf, checks=["fairness.disparity", "data.drift"],
                      sample_rows=4000, min_per_group=100, reference_rows=3000, seed=3,
                      track=False, out=tmp_path, **KW)
    assert rep.data["engine"] == "spark" and rep.data["n_rows"] == len(df)
    assert rep.data["positives"] == int(df["reoffended"].sum())
    pop = rep.data["population"]
    assert pop["sample_seed"] == 3 and 3000 < pop["sample_rows"] < 5000
    assert rep.data["reference"]["n_rows"] == 20_000
    assert 2400 < rep.data["reference"]["sample_rows"] < 3600
    assert {c.check_id for c in rep.checks} == {"fairness.disparity", "data.drift"}
    drift = next(c for c in rep.checks if c.check_id == "data.drift")
    assert drift.status.value not in ("error", "skipped"), drift.message
    back = AuditReport.from_json((tmp_path / "report.json").read_text())
    assert back.data["sha256"] == pop["digest"]


def test_audit_takes_a_spark_frame_like_a_pandas_one(spark: Any, frames: Any) -> None:
    """The one entry point: audit(spark_df, ...) gives the pandas path's fairness figures."""
    from lea_ai_audit import audit

    df, sdf = frames
    checks = ["fairness.group_metrics", "fairness.disparity"]
    on_spark = audit(sdf, checks=checks, track=False, **KW)
    on_pandas = audit(df, checks=checks, track=False, **KW)
    assert on_spark.data["engine"] == "spark" and on_spark.data["n_rows"] == len(df)
    assert [c.status for c in on_spark.checks] == [c.status for c in on_pandas.checks]
    for a, b in zip(on_spark.checks, on_pandas.checks, strict=True):
        assert a.metrics.keys() == b.metrics.keys()
        assert_same_metrics(a.metrics, b.metrics, rel=1e-12, abs=1e-12)


def test_model_with_spark_data_and_bad_input_are_typed_errors(spark: Any, frames: Any) -> None:
    from sklearn.dummy import DummyClassifier

    from lea_ai_audit.spark import audit_spark, build_context

    df, sdf = frames
    model = DummyClassifier().fit(df[["age"]], df["reoffended"])
    with pytest.raises(E.InputError, match="a model cannot be run on Spark data"):
        build_context(sdf, target="reoffended", sensitive=SENS, model=model)
    with pytest.raises(E.InputError, match="a model cannot be run on Spark data"):
        audit_spark(sdf, target="reoffended", sensitive=SENS, model=model, track=False)
    with pytest.raises(E.ColumnNotFoundError, match=r"reoffend'.*did you mean 'reoffended'"):
        build_context(sdf, target="reoffend", sensitive=SENS, prediction="flagged")
    with pytest.raises(E.DataError, match="score column 'sex' is not numeric"):
        build_context(sdf, target="reoffended", sensitive=["ethnicity"], score="sex")
    with pytest.raises(E.DataError, match="target column 'age' must hold two values"):
        build_context(sdf, target="age", sensitive=SENS, prediction="flagged")
    with pytest.raises(E.DataError, match="prediction column 'age' must hold two values"):
        build_context(sdf, target="reoffended", sensitive=SENS, prediction="age")


def test_is_spark_frame_does_not_import_pyspark_for_pandas(frames: Any) -> None:
    from lea_ai_audit.spark import is_spark_frame

    assert is_spark_frame(frames[1]) and not is_spark_frame(frames[0])
    r = subprocess.run([sys.executable, "-c",
                        "import sys, pandas as pd\n"
                        "from lea_ai_audit.spark import is_spark_frame\n"
                        "assert not is_spark_frame(pd.DataFrame({'a': [1]}))\n"
                        "assert not is_spark_frame(None)\n"
                        "assert 'pyspark' not in sys.modules, 'pyspark imported'\n"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
