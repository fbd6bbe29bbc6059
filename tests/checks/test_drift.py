"""data.drift: injected drift found, undrifted columns not flagged, against independent oracles.

evidently's statistics are recomputed with scipy (normed Wasserstein distance, Jensen-Shannon
distance of the category shares) on the same rows; PSI by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from lea_ai_audit import Status, audit
from lea_ai_audit.checks.drift import STATTESTS, psi
from lea_ai_audit.datasets import FEATURES, make_demo, make_police_triage
from lea_ai_audit.errors import PolicyError
from lea_ai_audit.policy import load_policy


def _policy(**params):
    return load_policy({"id": "test", "version": "1", "title": "drift", "requirements": [
        {"id": "drift", "clauses": ["AI Act Art. 10"], "check": "data.drift",
         "params": params}]})


def _audit(df, reference, *, html=False, **kw):
    args = {"target": "reoffended", "sensitive": ["ethnicity", "sex"],
            "prediction": "rearrested", **kw}
    rep = audit(df, reference=reference, policy=_policy(html=html), track=False, **args)
    (res,) = rep.checks
    return rep, res


def _rows(rep, name="drift"):
    return {r["column"]: r for r in rep.table(name)}


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return make_police_triage(4000, seed=21)


@pytest.fixture(scope="module")
def cur() -> pd.DataFrame:
    return make_police_triage(4000, seed=22)


def test_psi_by_hand():
    r = np.array(["a"] * 50 + ["b"] * 50)
    c = np.array(["a"] * 80 + ["b"] * 20)
    want = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(r, c, categorical=True) == pytest.approx(want, abs=1e-12)
    x = np.arange(1000, dtype=float)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    # numbers: deciles of the reference; all of the current in the top decile
    top = psi(x, np.full(200, 999.0))
    want = (1 - 0.1) * np.log(1 / 0.1) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert top == pytest.approx(want, rel=1e-9)


def test_no_reference_is_skipped(cur):
    rep = audit(cur, target="reoffended", sensitive=["ethnicity"], prediction="rearrested",
                policy=_policy(), track=False)
    # undecided: SKIPPED, or ERROR where the requirement blocks (a closed gate)
    assert rep.checks[0].raw_status is Status.SKIPPED
    assert rep.checks[0].status is (Status.ERROR if rep.checks[0].blocking else Status.SKIPPED)
    assert "no reference data" in rep.checks[0].message


def test_drifted_feature_found_undrifted_not_flagged(ref, cur):
    drifted = cur.assign(age=cur["age"] + 6)  # 6 years older: a clear shift
    rep, res = _audit(drifted, ref)
    assert res.raw_status is Status.FAIL
    rows = _rows(rep)
    assert rows["age"]["drift"] is True
    assert "age" in res.message
    for col in ("prior_contacts", "prior_convictions", "months_since_last_contact",
                "offence_type", "district", "employment"):
        assert rows[col]["drift"] is False, rows[col]
    assert res.metrics["drifted_inputs"] == 1
    # the case number is an identifier: left out, with the reason
    assert rows["case_id"]["type"] == "not compared" and "identifier" in rows["case_id"]["test"]
    # oracle: evidently's normed Wasserstein distance, recomputed with scipy on the same rows
    assert rows["age"]["test"] == "Wasserstein distance (normed)"
    want = wasserstein_distance(ref["age"], drifted["age"]) / np.std(ref["age"])
    assert rows["age"]["statistic"] == pytest.approx(want, abs=1e-6)
    assert rows["age"]["statistic_kind"] == "distance" and rows["age"]["threshold"] == 0.1
    # ... and the Jensen-Shannon distance of the offence types' shares
    keys = sorted(set(ref["offence_type"]) | set(cur["offence_type"]))
    p = ref["offence_type"].value_counts(normalize=True).reindex(keys, fill_value=0)
    q = cur["offence_type"].value_counts(normalize=True).reindex(keys, fill_value=0)
    assert rows["offence_type"]["test"] == "Jensen-Shannon distance"
    assert rows["offence_type"]["statistic"] == pytest.approx(jensenshannon(p, q), abs=1e-6)

    rep, res = _audit(cur, ref)  # the same process, other seed: nothing drifted
    assert res.raw_status is Status.PASS, res.message
    assert not any(r["drift"] for r in rep.table("drift"))
    assert not any(r["verdict"] == "drift" for r in rep.table("drift_by_group"))


def test_drift_confined_to_one_group_is_found_within_it(ref, cur):
    df = cur.copy()
    mb = df["ethnicity"] == "minority_b"
    df.loc[mb, "age"] = df.loc[mb, "age"] + 5  # five years older, in one group only
    rep, res = _audit(df, ref)
    assert _rows(rep)["age"]["drift"] is False  # diluted overall
    hits = [(r["grouping"], r["group"], r["column"]) for r in rep.table("drift_by_group")
            if r["verdict"] == "drift"]
    assert hits == [("ethnicity", "minority_b", "age")]
    assert res.raw_status is Status.FAIL and "ethnicity=minority_b" in res.message
    row = next(r for r in rep.table("drift_by_group") if r["group"] == "minority_b"
               and r["column"] == "age")
    assert row["test"] == "Kolmogorov-Smirnov" and row["p_value"] < 1e-6
    # PSI recomputed by hand on the rows compared (every row: the groups are under 5000)
    want = psi(ref.loc[ref["ethnicity"] == "minority_b", "age"], df.loc[mb, "age"])
    assert row["psi"] == pytest.approx(want, abs=1e-6)
    assert row["n_audited"] == int(mb.sum())


def test_prediction_drift_with_a_model_and_from_a_score_column():
    demo = make_demo(6000, seed=3)
    test = demo.test.assign(prior_contacts=demo.test["prior_contacts"] + 3)
    rep = audit(test.drop(columns=["risk", "flagged"]), target="reoffended",
                sensitive=["ethnicity"], model=demo.model, features=FEATURES,
                reference=demo.train, policy=_policy(html=False), track=False)
    (res,) = rep.checks
    rows = _rows(rep)
    assert rows["model score"]["role"] == "model output" and rows["model score"]["drift"] is True
    assert res.metrics["prediction_drift"] == 1 and "model's output drifted" in res.message
    # oracle: the model's scores on the reference, against those on the audited rows
    ref_scores = demo.model.predict_proba(demo.train[FEATURES])[:, 1]
    cur_scores = demo.model.predict_proba(test[FEATURES])[:, 1]
    want = wasserstein_distance(ref_scores, cur_scores) / np.std(ref_scores)
    assert rows["model score"]["statistic"] == pytest.approx(want, abs=1e-6)

    # no model: the reference's own score column
    train = demo.train.assign(risk=demo.model.predict_proba(demo.train[FEATURES])[:, 1])
    same = demo.test
    rep = audit(same, target="reoffended", sensitive=["ethnicity"], score="risk",
                reference=train, policy=_policy(html=False), track=False)
    rows = _rows(rep)
    assert rows["model score"]["drift"] is False
    assert rep.checks[0].metrics["prediction_drift"] == 0


def test_large_data_is_sampled_with_sizes_and_seed_reported():
    big_ref = make_police_triage(30_000, seed=31)
    big_cur = make_police_triage(30_000, seed=32)
    pol = load_policy({"id": "t", "version": "1", "title": "t", "requirements": [
        {"id": "drift", "clauses": ["x"], "check": "data.drift",
         "params": {"sample_size": 4000, "group_sample": 1000, "html": False}}]})
    reps = [audit(big_cur, target="reoffended", sensitive=["ethnicity"],
                  prediction="rearrested", reference=big_ref, policy=pol, seed=s, track=False)
            for s in (7, 7, 8)]
    m = reps[0].checks[0].metrics
    assert (m["sample_audited"], m["sample_reference"], m["seed"]) == (4000, 4000, 7)
    assert (m["rows_audited"], m["rows_reference"]) == (30_000, 30_000)
    assert "4000 reference vs 4000 audited rows, seed 7" in reps[0].checks[0].message
    assert reps[0].table("drift") == reps[1].table("drift")  # same seed, same figures
    assert reps[0].table("drift") != reps[2].table("drift")
    ns = {r["n_audited"] for r in reps[0].table("drift_by_group") if r["n_audited"]}
    assert max(ns) <= 1000 * 1.15  # about group_sample rows per group (Bernoulli sample)


def test_html_report_saved_as_evidence(ref, cur, tmp_path):
    rep, res = _audit(cur, ref, html=True)
    (f,) = res.files()
    assert f.data["media_type"] == "text/html" and f.data["size"] > 100_000
    html = f.read()
    assert b"<html" in html.lower()[:2000]
    assert b'"column_name": "age"' in html and b"Wasserstein distance (normed)" in html
    rep.save(tmp_path)
    assert rep.checks[0].files()[0].read(tmp_path) == html


def test_policy_validation_and_the_stattest_list():
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

    text_only = {"abs_text_content_drift", "perc_text_content_drift"}
    assert set(STATTESTS) == set(_registered_stat_tests) - text_only
    with pytest.raises(PolicyError, match="unknown drift method"):
        _policy(method="magic")
    with pytest.raises(PolicyError, match="sample_size"):
        _policy(sample_size=5)
    with pytest.raises(PolicyError, match="max_drifted_share"):
        _policy(max_drifted_share=2)


def test_a_named_method_is_used(ref, cur):
    rep = audit(cur.assign(age=cur["age"] + 6), target="reoffended", sensitive=["ethnicity"],
                prediction="rearrested", reference=ref,
                policy=_policy(method="psi", threshold=0.2, html=False), track=False)
    rows = _rows(rep)
    assert rows["age"]["test"].lower() == "psi" and rows["age"]["threshold"] == 0.2
    assert rows["age"]["drift"] is True and rows["district"]["drift"] is False


def test_reference_without_a_sensitive_attribute_says_so(ref, cur):
    rep, res = _audit(cur, ref.drop(columns=["sex"]))
    assert "no within-group comparison for sex (not in the reference)" in res.message
    assert {r["grouping"] for r in rep.table("drift_by_group")} == {"ethnicity"}


@pytest.mark.parametrize("seed", range(6))
def test_group_ks_equals_scipy(seed):
    """The within-group KS test is scipy's ks_2samp(method="asymp"), computed without its
    wrapper: same statistic and p-value, ties and unequal sizes included."""
    from scipy.stats import ks_2samp

    from lea_ai_audit.checks.drift import _ks_asymp

    rng = np.random.default_rng(seed)
    a = rng.normal(size=int(rng.integers(50, 3000)))
    b = rng.normal(0.1 * seed, size=int(rng.integers(50, 3000)))
    if seed % 2:  # ties, as in counts
        a, b = np.round(a * 2), np.round(b * 2)
    want = ks_2samp(a, b, method="asymp")
    d, p = _ks_asymp(a, b)
    assert d == pytest.approx(want.statistic, abs=1e-15)
    assert p == pytest.approx(want.pvalue, rel=1e-12, abs=1e-300)
