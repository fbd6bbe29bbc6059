"""The explain.* checks on the demo and on data built with and without a proxy."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from lea_ai_audit import audit, load_policy
from lea_ai_audit.checks import make_check
from lea_ai_audit.context import AuditContext
from lea_ai_audit.datasets import FEATURES, make_demo
from lea_ai_audit.errors import PolicyError
from lea_ai_audit.explain import explain, explain_cases
from lea_ai_audit.results import Status

SENSITIVE = ["ethnicity", "sex", "age_band"]
CHECKS = ["explain.additivity", "explain.global_importance", "explain.local",
          "explain.by_group", "explain.proxies"]

# The requirement entries proposed for checklists/eu-council-2020-internal-security.yaml
PACK_ENTRIES = """
- id: explanation-additivity
  title: The explanations add up to the model's output (self-test)
  clauses: ["Council 13083/1/20 §26", "AI Act Art. 13(1)"]
  quote: "must be able to explain and demonstrate the results"
  description: >-
    Base value + SHAP values equal the model's own output for every explained case; a
    violation means the explanations cannot be relied on and is an error.
  check: explain.additivity
  blocking: true
- id: global-explanation
  title: Which inputs drive the score, and how stable that ranking is
  clauses: ["Council 13083/1/20 §26", "AI Act Art. 13(1)", "AI Act Art. 13(3)(b)(iv)"]
  quote: "must be able to explain and demonstrate the results"
  description: >-
    SHAP importance (mean |SHAP|) of every input on a stratified sample, with bootstrap
    intervals; the top 3 must be the same in at least 80% of bootstrap resamples.
  check: explain.global_importance
  params: {top_k: 3, min_agreement: 0.8}
  blocking: false
- id: per-decision-explanations
  title: Each decision can be explained in plain words
  clauses: ["Council 13083/1/20 §26", "AI Act Art. 13(1)", "AI Act Art. 86"]
  quote: >-
    "must have clear knowledge about their impact on individuals"
  description: >-
    The top three reasons behind the score of a sample of ten cases, in plain words, as
    evidence; any case can be explained with lea_ai_audit.explain.explain_case.
  check: explain.local
  params: {n_cases: 10, top: 3}
  blocking: false
- id: explanation-by-group
  title: Inputs weigh alike for every group
  clauses: ["Council 13083/1/20 §26", "AI Act Art. 10(2)(f)"]
  quote: >-
    "clear knowledge about their impact on individuals, on minorities and on the society as
    a whole"
  description: >-
    Mean |SHAP| of each input in each group of each sensitive attribute; an input that weighs
    twice as much (or half as much) for a group as for the reference group is reported.
  check: explain.by_group
  params: {max_ratio: 2.0, min_share: 0.05}
  blocking: false
- id: proxy-inputs
  title: No important input stands in for a sensitive attribute
  clauses: ["Council 13083/1/20 §26", "AI Act Art. 10(2)(f)"]
  quote: >-
    "clear knowledge about their impact on individuals, on minorities and on the society as
    a whole"
  description: >-
    For each input, how well it alone predicts each sensitive attribute (cross-fitted AUC);
    an input with an AUC of 0.7 or more that is among the three most important (or carries
    10% of the importance) lets the model treat groups differently without seeing the
    attribute, and is reported.
  check: explain.proxies
  params: {min_auc: 0.7, top_k: 3, min_share: 0.10}
  blocking: false
"""


def _policy(entries: str = PACK_ENTRIES, **extra) -> dict:
    reqs = yaml.safe_load(entries)
    for r in reqs:
        r.setdefault("params", {}).update(extra.get(r["check"], {}))
    return {"id": "explain-test", "version": "1", "title": "explainability",
            "settings": {"min_group_size": 30, "confidence": 0.95}, "requirements": reqs}


@pytest.fixture(scope="module")
def demo():
    return make_demo()


@pytest.fixture(scope="module")
def demo_report(demo):
    return audit(demo.test, target="reoffended", sensitive=SENSITIVE, model=demo.model,
                 reference=demo.train, policy=_policy(), track=False)


@pytest.fixture(scope="module")
def demo_ctx(demo):
    return AuditContext.build(demo.test, target="reoffended", sensitive=SENSITIVE,
                              model=demo.model, reference=demo.train)


def test_the_proposed_pack_entries_load() -> None:
    pol = load_policy(_policy())
    assert [r.check for r in pol.requirements] == CHECKS
    assert all("Council 13083/1/20 §26" in r.clauses for r in pol.requirements)


def test_district_is_named_as_a_proxy_of_ethnicity(demo_report) -> None:
    r = demo_report.result("proxy-inputs")
    assert r.raw_status is Status.FAIL and r.status is Status.WARN  # non-blocking
    assert "district is a strong proxy of ethnicity" in r.message
    assert r.metrics["auc/district/ethnicity"] > 0.85
    rows = {(x["feature"], x["attribute"]): x for x in demo_report.table("proxies")}
    assert rows[("district", "ethnicity")]["finding"] is True
    # inputs that do not predict a group are not findings
    assert rows[("employment", "ethnicity")]["auc"] < 0.6
    assert not rows[("employment", "ethnicity")]["strong_proxy"]
    # age predicts the age band but hardly matters to the model: reported, not a finding
    assert rows[("age", "age_band")]["strong_proxy"] and not rows[("age", "age_band")]["finding"]


def test_additivity_holds_and_is_recorded(demo_report) -> None:
    r = demo_report.result("explanation-additivity")
    assert r.status is Status.PASS
    assert r.metrics["max_additivity_error"] < 1e-9
    assert r.metrics["sample_size"] >= 2000 and r.metrics["sample_seed"] == 0
    rows = demo_report.table("additivity")
    assert {x["explanation"] for x in rows} == {"sample", "cases"}
    assert {x["output_space"] for x in rows} == {"log-odds", "probability"}


def test_global_importance_equals_the_public_api(demo, demo_ctx, demo_report) -> None:
    r = demo_report.result("global-explanation")
    assert r.status is Status.PASS
    assert r.metrics["top_k_agreement"] >= 0.8
    # recompute from the public API: same stratified sample, same background, weighted mean
    idx = demo_ctx.stratified_sample(2000, min_per_group=50, seed=0)
    assert r.metrics["sample_size"] == len(idx)
    rng = np.random.default_rng(0)
    bg = demo.train.iloc[np.sort(rng.choice(len(demo.train), 100, replace=False))][FEATURES]
    e = explain(demo.model, demo.test.iloc[idx][FEATURES], background=bg)
    w = demo_ctx.sample_weights(idx)
    want = (w[:, None] * np.abs(e.values)).sum(0) / w.sum()
    for j, f in enumerate(FEATURES):
        assert r.metrics[f"importance/{f}"] == pytest.approx(want[j], rel=1e-9)
    top = [x["feature"] for x in demo_report.table("global_importance")][:3]
    assert "district" in top and "prior_contacts" in top
    assert "mean |SHAP" in r.evidence_named("global_importance").description


def test_local_explanations_in_plain_words(demo, demo_report) -> None:
    r = demo_report.result("per-decision-explanations")
    assert r.status is Status.PASS and r.metrics["n_cases"] == 10
    rows = demo_report.table("local_explanations")
    assert len(rows) == 10
    assert {x["decision"] for x in rows} == {"flagged", "not flagged"}
    detail = r.evidence_named("local_explanations_detail").data
    cases = [x["row"] for x in rows]
    # the same reasons come out of the public function for those rows
    again = explain_cases(demo.model, demo.test.iloc[cases][FEATURES],
                          background=demo.train[FEATURES], top=3, seed=0)
    for row, d, reasons in zip(rows, detail, again, strict=True):
        assert [x["text"] for x in d["reasons"]] == [x.text for x in reasons]
        assert row["reason_1"] == reasons[0].text
        for x in d["reasons"]:
            v = x["value"]
            shown = f"{v:.4g}" if isinstance(v, float) else str(v)
            assert x["text"].startswith(f"{x['feature']} = {shown} ")
            assert ("raised" in x["text"]) == (x["contribution"] > 0)
        assert row["score"] == pytest.approx(demo.model.predict_proba(
            demo.test.iloc[[row["row"]]][FEATURES])[0, 1], abs=1e-6)


def test_importance_by_group_reports_district(demo_ctx, demo_report) -> None:
    r = demo_report.result("explanation-by-group")
    assert r.raw_status is Status.FAIL
    assert "district weighs" in r.message and "ethnicity=minority" in r.message
    rows = demo_report.table("importance_by_group:ethnicity")
    flagged = {(x["group"], x["feature"]) for x in rows if x["flagged"]}
    assert ("minority_a", "district") in flagged and ("minority_b", "district") in flagged
    assert not any(x["flagged"] for x in demo_report.table("importance_by_group:sex"))
    # the per-group means equal a pandas group-by of the weighted |SHAP| values
    cache = demo_ctx.__dict__.get("_shap_cache") or {}
    assert not cache  # nothing ran on this context yet
    check = make_check("explain.by_group", {})
    res = check.run(demo_ctx)
    shared = demo_ctx._shap_cache[("global", 2000, 50, 100, 0)]
    df = pd.DataFrame(np.abs(shared.explanation.values), columns=FEATURES)
    df["w"] = shared.weights
    df["g"] = demo_ctx.data["ethnicity"].to_numpy()[shared.idx]
    part = df[df["g"] == "minority_b"]
    want = (part["district"] * part["w"]).sum() / part["w"].sum()
    assert res.metrics["importance/ethnicity/minority_b/district"] == pytest.approx(want)


def test_plots_are_saved_as_evidence(demo_report, tmp_path) -> None:
    import matplotlib.image as mpimg

    names = {e.name for e in demo_report.files()}
    assert {"global importance plot", "local explanation plot",
            "importance by group plot"} <= names
    demo_report.save(tmp_path)
    from lea_ai_audit.results import AuditReport

    back = AuditReport.load(tmp_path)
    for e in back.files():
        png = e.read(tmp_path)
        assert e.data["media_type"] == "image/png"
        assert mpimg.imread(io.BytesIO(png), format="png").shape[0] > 100


def test_shap_is_computed_once_per_audit(demo, monkeypatch) -> None:
    import lea_ai_audit.explain as ex

    calls = []
    real = ex.explain

    def counting(*args, **kwargs):
        calls.append(kwargs.get("output"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ex, "explain", counting)
    rep = audit(demo.test, target="reoffended", sensitive=SENSITIVE, model=demo.model,
                reference=demo.train, policy=_policy(), track=False)
    assert rep.status is not Status.ERROR
    assert sorted(calls) == ["auto", "raw"]  # the sample once, the ten cases once


def test_no_proxy_flagged_on_data_built_without_one() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    df = pd.DataFrame({
        "ethnicity": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "sex": rng.choice(["f", "m"], n),
        "x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.poisson(3, n),
        "area": rng.choice([f"A{i}" for i in range(12)], n),
    })
    logit = 1.5 * df["x1"] - df["x2"] + 0.3 * df["x3"] + (df["area"] == "A3") * 0.8 - 1
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    feats = ["x1", "x2", "x3", "area"]
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(), ["area"])],
                                                 remainder="passthrough")),
                      ("clf", LogisticRegression(max_iter=1000))]).fit(df[feats], df["y"])
    rep = audit(df, target="y", sensitive=["ethnicity", "sex"], model=model, features=feats,
                policy=_policy(), track=False)
    r = rep.result("proxy-inputs")
    assert r.status is Status.PASS, r.message
    assert r.metrics["n_findings"] == 0 and r.metrics["n_strong_proxies"] == 0
    aucs = [v for k, v in r.metrics.items() if k.startswith("auc/")]
    assert len(aucs) == 8 and max(aucs) < 0.56
    assert rep.result("explanation-by-group").status is Status.PASS
    assert rep.result("explanation-additivity").status is Status.PASS


def test_without_a_model(demo) -> None:
    df = demo.test
    rep = audit(df, target="reoffended", sensitive=SENSITIVE, score="risk", policy=_policy(),
                track=False)
    for rid in ("explanation-additivity", "global-explanation", "per-decision-explanations",
                "explanation-by-group"):
        r = rep.result(rid)
        assert r.raw_status is Status.SKIPPED and "no model to explain" in r.message
        # a blocking requirement that cannot be decided closes the gate
        assert r.status is (Status.ERROR if r.blocking else Status.SKIPPED)
    r = rep.result("proxy-inputs")
    assert r.status is Status.SKIPPED and "features=" in r.message
    # the vendor's inputs declared: proxies measured, their weight unknown -> WARN
    rep = audit(df, target="reoffended", sensitive=SENSITIVE, score="risk",
                features=FEATURES, policy=_policy(), track=False)
    r = rep.result("proxy-inputs")
    assert r.status is Status.WARN and "district predicts ethnicity" in r.message
    assert "no model" in r.message


def test_unstable_top_k_is_a_warning() -> None:
    rng = np.random.default_rng(4)
    n = 1500  # below the explanation sample size: every row is explained
    v = rng.normal(size=n)
    # three inputs weigh exactly alike: the same coefficient on the same values (permuted), so
    # their importances are equal on these rows and only resampling orders them (the warning
    # holds for any seed, not just for a lucky sample)
    X = pd.DataFrame({"a": v, "b": rng.permutation(v), "c": rng.permutation(v),
                      "d": rng.normal(size=n)})
    y = (rng.random(n) < 0.4).astype(int)
    model = LogisticRegression().fit(X, y)
    model.coef_ = np.array([[1.0, 1.0, 1.0, 0.1]])
    df = X.assign(y=y, g=rng.choice(["p", "q"], n))
    rep = audit(df, target="y", sensitive=["g"], model=model,
                policy=_policy(**{"explain.global_importance": {"top_k": 2}}),
                checks=["explain.global_importance"], track=False)
    r = rep.result("global-explanation")
    assert r.status is Status.WARN and "not stable" in r.message
    assert r.metrics["top_k_agreement"] < 0.8
    stable = audit(df, target="y", sensitive=["g"], model=model,
                   policy=_policy(**{"explain.global_importance": {"top_k": 3}}),
                   checks=["explain.global_importance"], track=False)
    assert stable.result("global-explanation").status is Status.PASS  # a, b, c vs d: clear


def test_additivity_violation_is_an_error() -> None:
    """A model whose output changes from call to call cannot be explained: ERROR, not PASS."""
    rng = np.random.default_rng(5)
    n = 800
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "g": rng.choice(["p", "q"], n)})
    df["y"] = (rng.random(n) < 0.5).astype(int)
    model = DummyClassifier(strategy="stratified").fit(df[["x1", "x2"]], df["y"])
    rep = audit(df, target="y", sensitive=["g"], model=model, features=["x1", "x2"],
                policy=_policy(), checks=["explain.additivity"], track=False)
    r = rep.result("explanation-additivity")
    assert r.status is Status.ERROR
    assert "do not add up" in r.message and r.metrics["max_additivity_error"] > 0.1
    assert rep.status is Status.ERROR  # blocking


def test_a_model_that_cannot_be_explained_gives_an_error_result() -> None:
    rng = np.random.default_rng(6)
    n = 600
    df = pd.DataFrame({"x1": rng.normal(size=n), "g": rng.choice(["p", "q"], n)})
    df["y"] = (df["x1"] + rng.normal(size=n) > 0).astype(int)
    model = LogisticRegression().fit(df[["x1"]], df["y"])
    ctx = AuditContext.build(df, target="y", sensitive=["g"], model=model, features=["x1"])
    ctx.model = LogisticRegression().fit(np.c_[df["x1"]], np.arange(n) % 3)  # 3 classes
    res = make_check("explain.global_importance", {}).run(ctx)
    assert res.status is Status.ERROR and "3 classes" in res.message
    # the proxies are still measured; their weight cannot be judged
    df["x1"] = np.where(df["g"] == "p", 1.0, -1.0) + rng.normal(0, 0.3, n)
    ctx.data = df
    res = make_check("explain.proxies", {}).run(ctx)
    assert res.status is Status.WARN and "x1 predicts g" in res.message
    assert "could not be explained" in res.message


@pytest.mark.parametrize("check,params,match", [
    ("explain.global_importance", {"min_agreement": 1.5}, "min_agreement"),
    ("explain.global_importance", {"sample_size": 5}, "sample_size"),
    ("explain.by_group", {"max_ratio": 1.0}, "max_ratio"),
    ("explain.proxies", {"min_auc": 0.4}, "min_auc"),
    ("explain.local", {"n_cases": 0}, "n_cases"),
    ("explain.additivity", {"tolerance": 0}, "tolerance"),
])
def test_bad_parameters_are_refused(check, params, match) -> None:
    with pytest.raises(PolicyError, match=match):
        make_check(check, params)


def test_tiny_data_is_insufficient_evidence_not_a_pass() -> None:
    rng = np.random.default_rng(8)
    n = 20
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "g": ["solo", *rng.choice(["a", "b"], n - 1)]})
    df["y"] = (df["x1"] + rng.normal(size=n) > 0).astype(int)
    model = LogisticRegression().fit(df[["x1", "x2"]], df["y"])
    rep = audit(df, target="y", sensitive=["g"], model=model, features=["x1", "x2"],
                policy=_policy(), track=False)
    g = rep.result("global-explanation")
    assert g.status is Status.WARN and "insufficient evidence: only 20 cases" in g.message
    b = rep.result("explanation-by-group")
    assert b.status is Status.WARN and "g=solo (1 explained)" in b.message
    assert rep.result("explanation-additivity").status is Status.PASS


# -- the background, the uncertainty of the reasons, inputs derived from the grouping ----------
def _per_reference(f, x: pd.DataFrame, bg: pd.DataFrame) -> np.ndarray:
    """Brute force: each background row alone, every coalition of the original columns,
    Shapley values (n_bg, p)."""
    import itertools
    import math

    cols = list(x.columns)
    p = len(cols)
    out = {}
    for size in range(p + 1):
        for S in itertools.combinations(range(p), size):
            z = bg.copy().reset_index(drop=True)
            for j in S:
                z[cols[j]] = x.iloc[0, j]
            out[S] = np.asarray(f(z), dtype=float)
    phi = np.zeros((len(bg), p))
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for S in itertools.combinations(others, size):
                phi[:, j] += w * (out[tuple(sorted((*S, j)))] - out[S])
    return phi


def test_every_explanation_result_records_its_background(demo, demo_report, tmp_path) -> None:
    from lea_ai_audit.results import AuditReport

    demo_report.save(tmp_path)
    back = AuditReport.load(tmp_path)  # what report.json says
    for rep in (demo_report, back):
        for rid in ("explanation-additivity", "global-explanation", "per-decision-explanations",
                    "explanation-by-group", "proxy-inputs"):
            m = rep.result(rid).metrics
            assert m["background_size"] == 100, rid
            assert m["background_population"] == len(demo.train), rid  # drawn from train
            assert m["background_seed"] == 0 and m["background_stratified"] == 0, rid
            assert m["columns_as_players"] == 1, rid
    method = demo_report.result("global-explanation").evidence_named("explanation method").data
    assert (f"simple random sample without replacement (not stratified) of 100 of the "
            f"{len(demo.train)} rows of the reference (training) data, seed 0") in method
    assert "exactly the Shapley value of the original column" in method


def test_local_reasons_carry_their_margin_against_brute_force(demo, demo_report) -> None:
    r = demo_report.result("per-decision-explanations")
    detail = r.evidence_named("local_explanations_detail").data
    # the background the audit drew: 100 rows of the training data, seed 0
    rng = np.random.default_rng(0)
    bg = demo.train.iloc[np.sort(rng.choice(len(demo.train), 100, replace=False))][FEATURES]
    case = detail[0]
    per = _per_reference(lambda z: demo.model.predict_proba(z)[:, 1],
                         demo.test.iloc[[case["row"]]][FEATURES], bg)
    se = per.std(axis=0, ddof=1) / 10 * np.sqrt(1 - 100 / len(demo.train))
    for x in case["reasons"]:
        j = FEATURES.index(x["feature"])
        assert x["contribution"] == pytest.approx(per[:, j].mean(), abs=1e-12)
        assert x["se"] == pytest.approx(se[j], rel=1e-9)
        assert x["margin95"] == pytest.approx(1.959964 * se[j], rel=1e-6)
        assert x["text"].endswith(")") and "(± " in x["text"]
    margins = [x["margin95"] for d in detail for x in d["reasons"]]
    assert r.metrics["reason_margin95_max"] == pytest.approx(max(margins))
    assert 0 < r.metrics["reason_margin95_max"] < 0.1
    unsure = sum(abs(x["contribution"]) <= x["margin95"] for d in detail for x in d["reasons"])
    assert r.metrics["n_reasons_sign_uncertain"] == unsure
    assert "± is the 95% margin" in r.message
    assert all(row["reason_1"].endswith(")") for row in demo_report.table("local_explanations"))


def _table(result, name: str) -> list[dict]:
    data = result.evidence_named(name).data
    return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]


def _compas_ctx(shared_data):
    import importlib.util
    from pathlib import Path

    from sklearn.model_selection import train_test_split

    example = Path(__file__).resolve().parents[2] / "examples" / "compas_audit.py"
    spec = importlib.util.spec_from_file_location("compas_audit_explain", example)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    df = ex.load_compas(str(shared_data / "compas" / "compas-scores-two-years.csv"))
    train, test = train_test_split(df, test_size=0.5, random_state=0, stratify=df[ex.TARGET])
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    for part in (train, test):
        part["days_b_screening_arrest"] = part["days_b_screening_arrest"].fillna(0)
    model = ex.train_own_model(train, 0)
    ctx = AuditContext.build(test, target=ex.TARGET, sensitive=ex.SENSITIVE, model=model,
                             features=ex.FEATURES, reference=train,
                             reference_groups=ex.REFERENCE)
    return df, ctx


def test_by_group_leaves_out_age_within_compas_age_categories(shared_data) -> None:
    df, ctx = _compas_ctx(shared_data)
    # the oracle: ProPublica's age_cat is a function of age (bands < 25, 25-44, 45+)
    bands = np.select([df["age"] < 25, df["age"] <= 44], ["Less than 25", "25 - 45"],
                      "Greater than 45")
    assert (bands == df["age_cat"].to_numpy()).all()
    res = make_check("explain.by_group", {}).run(ctx)
    assert res.metrics["derived_from_group/age_cat/age"] == 1.0
    assert res.metrics["n_excluded_derived"] == 1  # age for age_cat, nothing else
    assert "not compared, as derived from the grouping: age for age_cat" in res.message
    derived = {(x["attribute"], x["feature"]): x for x in _table(res, "derived_from_group")}
    assert derived[("age_cat", "age")]["excluded"] is True
    for (attr, feat), x in derived.items():
        if (attr, feat) != ("age_cat", "age"):
            assert not x["excluded"] and x["balanced_accuracy"] < 0.75, (attr, feat)
    rows = [x for x in _table(res, "importance_by_group:age_cat") if x["feature"] == "age"]
    assert rows and all(x["derived_from_group"] and not x["flagged"] for x in rows)
    # without the rule, the tautology is what the check reported: age weighs more in the
    # age bands far from the average age
    plain = make_check("explain.by_group", {"exclude_derived": False}).run(ctx)
    assert plain.raw_status is Status.FAIL and "age weighs" in plain.message
    assert "age_cat=" in plain.message and "derived_from_group" not in {
        e.name for e in plain.evidence}
    # with the intersections: age is left out of every intersection containing age_cat
    inter = make_check("explain.by_group", {"intersections": True}).run(ctx)
    names = [k for k in inter.metrics if k.startswith("derived_from_group/")]
    assert "derived_from_group/age_cat/age" in names
    assert any("age_cat" in k and "&" in k for k in names), names


def test_by_group_keeps_an_input_independent_of_the_group() -> None:
    rng = np.random.default_rng(17)
    n = 3000
    score = rng.normal(50, 15, n)  # the group is cut from it: derived
    df = pd.DataFrame({
        "score": score,
        "indep": rng.normal(size=n),  # independent of the group: must stay
        "case_no": rng.permutation(n).astype(float),  # one value per row: must stay
        "g": np.select([score < 40, score < 60], ["low", "mid"], "high"),
    })
    # a noisy measurement of the group: tells it often, not always (must stay)
    code = pd.Series(df["g"]).map({"low": 0, "mid": 1, "high": 2}).to_numpy()
    df["noisy"] = np.where(rng.random(n) < 0.75, code, rng.integers(0, 3, n)).astype(float)
    logit = 0.05 * (df["score"] - 50) + 1.2 * df["indep"] + 0.4 * df["noisy"] - 0.5
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    feats = ["score", "indep", "case_no", "noisy"]
    model = LogisticRegression(max_iter=2000).fit(df[feats], df["y"])
    ctx = AuditContext.build(df, target="y", sensitive=["g"], model=model, features=feats)
    res = make_check("explain.by_group", {}).run(ctx)
    derived = {x["feature"]: x for x in _table(res, "derived_from_group")}
    # a continuous score: the thresholds learnt on one half can miss a case or two by a hair
    assert derived["score"]["excluded"] and derived["score"]["balanced_accuracy"] >= 0.99
    assert not derived["indep"]["excluded"] and derived["indep"]["balanced_accuracy"] < 0.4
    assert not derived["case_no"]["excluded"] and derived["case_no"]["balanced_accuracy"] < 0.4
    # the noisy measurement recovers about 0.75 + 0.25/3 of each group, not 0.99
    assert not derived["noisy"]["excluded"]
    assert derived["noisy"]["balanced_accuracy"] == pytest.approx(0.75 + 0.25 / 3, abs=0.04)
    rows = _table(res, "importance_by_group:g")
    assert not any(x["derived_from_group"] for x in rows if x["feature"] != "score")
    assert res.metrics["n_excluded_derived"] == 1
