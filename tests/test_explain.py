"""lea_ai_audit.explain: SHAP values on real models, checked against independent oracles.

Oracles: the model's own outputs (decision_function, predict_proba, LightGBM raw scores,
XGBoost margins) for additivity; closed forms for linear models (coef x (x - background
mean)); brute-force interventional Shapley values (every coalition, averaged over the
background) for the tree and model-agnostic paths; analytic AUCs for proxy strength.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler
from sklearn.svm import SVC, LinearSVC

from lea_ai_audit.errors import InputError, ModelError
from lea_ai_audit.explain import (
    Explanation,
    Reason,
    explain,
    explain_case,
    explain_cases,
    explainer_kind,
    global_importance,
    importance_by_group,
    plot_case,
    plot_importance,
    plot_importance_by_group,
    proxy_strength,
    reason_text,
)


@pytest.fixture(scope="module")
def numeric() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(1500, 4)), columns=["a", "b", "c", "d"])
    logit = 1.2 * X["a"] - 0.8 * X["b"] + 0.5 * X["a"] * X["c"]
    y = (rng.random(1500) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers and text, as police case data comes."""
    rng = np.random.default_rng(11)
    n = 1200
    X = pd.DataFrame({
        "prior_contacts": rng.poisson(2, n),
        "age": rng.integers(16, 70, n),
        "district": rng.choice(["D01", "D02", "D03", "D04"], n),
    })
    logit = 0.5 * X["prior_contacts"] - 0.03 * X["age"] + (X["district"] == "D04") * 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _brute_shapley(f, x: pd.DataFrame, bg: pd.DataFrame) -> np.ndarray:
    """Interventional Shapley values of one row, by enumerating every coalition."""
    cols = list(x.columns)
    m = len(cols)

    def v(S: tuple[int, ...]) -> float:
        z = bg.copy()
        for j in S:
            z[cols[j]] = x.iloc[0, j]
        return float(np.mean(f(z)))

    phi = np.zeros(m)
    for j in range(m):
        others = [k for k in range(m) if k != j]
        for size in range(m):
            w = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for S in itertools.combinations(others, size):
                phi[j] += w * (v((*S, j)) - v(S))
    return phi


# -- additivity on real models, against the model's own output ----------------------------------
def _lgbm():
    lgb = pytest.importorskip("lightgbm")
    return lgb.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, random_state=0)


def _xgb():
    xgb = pytest.importorskip("xgboost")
    return xgb.XGBClassifier(n_estimators=40, max_depth=3, random_state=0)


MODELS = {
    "gradient_boosting": (lambda: GradientBoostingClassifier(n_estimators=40, random_state=0),
                          "log-odds", lambda m, X: m.decision_function(X)),
    "random_forest": (lambda: RandomForestClassifier(n_estimators=30, max_depth=6,
                                                     random_state=0),
                      "probability", lambda m, X: m.predict_proba(X)[:, 1]),
    "lightgbm": (_lgbm, "log-odds", lambda m, X: m.predict(X, raw_score=True)),
    "xgboost": (_xgb, "log-odds", lambda m, X: m.predict(X, output_margin=True)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_tree_models_add_up_to_their_own_output(name, numeric) -> None:
    make, space, own_output = MODELS[name]
    X, y = numeric
    model = make().fit(X, y)
    rows = X.iloc[:300]
    e = explain(model, rows, background=X)
    assert e.method.startswith("tree (") and "path-dependent" in e.method
    assert e.output_space == space
    assert e.values.shape == (300, 4) and e.features == ["a", "b", "c", "d"]
    truth = np.asarray(own_output(model, rows), dtype=float)
    tol = 1e-5 if name == "xgboost" else 1e-9  # XGBoost computes in float32
    np.testing.assert_allclose(e.base_value + e.values.sum(axis=1), truth, atol=tol)
    np.testing.assert_allclose(e.output, truth, atol=1e-12)
    # the informative inputs dominate: a and b matter, d (noise) hardly
    imp = np.abs(e.values).mean(axis=0)
    assert imp[0] > 3 * imp[3] and imp[1] > 3 * imp[3]


@pytest.mark.parametrize("name", ["gradient_boosting", "random_forest", "lightgbm"])
def test_tree_probability_equals_brute_force_shapley(name, numeric) -> None:
    make, _, _ = MODELS[name]
    X, y = numeric
    model = make().fit(X, y)
    bg = X.iloc[:40]
    e = explain(model, X.iloc[100:103], background=bg, output="probability",
                max_background=40)
    assert e.output_space == "probability" and e.background_size == 40
    np.testing.assert_allclose(e.base_value + e.values.sum(axis=1),
                               model.predict_proba(X.iloc[100:103])[:, 1], atol=1e-9)
    f = lambda z: model.predict_proba(z)[:, 1]  # noqa: E731
    for i in range(3):
        want = _brute_shapley(f, X.iloc[[100 + i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-7)


def test_positive_label_is_the_first_class(numeric) -> None:
    X, y = numeric
    labels = np.where(y == 1, "high", "low")  # classes_ = ['high', 'low']: positive first
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, labels)
    raw = explain(model, X.iloc[:50], background=X, positive_label="high")
    # decision_function scores classes_[1] ('low'): the explanation of 'high' is its negative
    np.testing.assert_allclose(raw.base_value + raw.values.sum(1),
                               -model.decision_function(X.iloc[:50]), atol=1e-9)
    prob = explain(model, X.iloc[:5], background=X.iloc[:40], output="probability",
                   positive_label="high", max_background=40)
    np.testing.assert_allclose(prob.base_value + prob.values.sum(1),
                               model.predict_proba(X.iloc[:5])[:, 0], atol=1e-9)
    other = explain(model, X.iloc[:5], background=X.iloc[:40], output="probability",
                    positive_label="low", max_background=40)
    np.testing.assert_allclose(prob.values, -other.values, atol=1e-9)
    with pytest.raises(ModelError, match="positive_label 'medium'"):
        explain(model, X.iloc[:5], background=X, positive_label="medium")


# -- linear models and models without predict_proba ---------------------------------------------
def test_linear_svc_without_predict_proba(numeric) -> None:
    X, y = numeric
    model = LinearSVC(random_state=0).fit(X, y)
    assert not hasattr(model, "predict_proba")
    bg = X.iloc[:100]
    e = explain(model, X.iloc[200:400], background=bg, max_background=100)
    assert e.output_space == "decision function" and e.method.startswith("linear")
    # closed form of interventional SHAP for a linear model: coef_j (x_j - mean of background)
    want = model.coef_[0] * (X.iloc[200:400].to_numpy() - bg.to_numpy().mean(axis=0))
    np.testing.assert_allclose(e.values, want, atol=1e-10)
    np.testing.assert_allclose(e.base_value + e.values.sum(1),
                               model.decision_function(X.iloc[200:400]), atol=1e-10)
    # reasons for a model with no probability: its decision score, in plain words
    reasons = explain_cases(model, X.iloc[[200]], background=bg, top=2)[0]
    assert all("the decision score" in r.text for r in reasons)
    with pytest.raises(ModelError, match="no probabilities"):
        explain(model, X.iloc[:5], background=bg, output="probability")


def test_kernel_svm_without_predict_proba_is_exact_shapley(numeric) -> None:
    X, y = numeric
    model = SVC(kernel="rbf", random_state=0).fit(X.iloc[:600], y[:600])
    assert not hasattr(model, "predict_proba") and explainer_kind(model) == "model-agnostic"
    bg = X.iloc[:30]
    e = explain(model, X.iloc[700:703], background=bg, max_background=30)
    assert e.output_space == "decision function" and e.method.startswith("model-agnostic (exact")
    assert "exact Shapley values" in e.method
    np.testing.assert_allclose(e.base_value + e.values.sum(1),
                               model.decision_function(X.iloc[700:703]), atol=1e-9)
    for i in range(3):
        want = _brute_shapley(model.decision_function, X.iloc[[700 + i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-6)


def test_logistic_regression_log_odds_closed_form(numeric) -> None:
    X, y = numeric
    model = LogisticRegression().fit(X, y)
    bg = X.iloc[:100]
    e = explain(model, X.iloc[:50], background=bg)
    assert e.output_space == "log-odds"
    want = model.coef_[0] * (X.iloc[:50].to_numpy() - bg.to_numpy().mean(axis=0))
    np.testing.assert_allclose(e.values, want, atol=1e-10)


# -- pipelines: explained in the user's original columns ----------------------------------------
def _onehot_pipeline(final) -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), ["prior_contacts", "age"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["district"])])
    return Pipeline([("prep", pre), ("clf", final)])


def test_pipeline_with_one_hot_encoding_in_original_columns(mixed) -> None:
    X, y = mixed
    model = _onehot_pipeline(LogisticRegression()).fit(X, y)
    bg = X.iloc[:100]
    e = explain(model, X.iloc[200:260], background=bg)
    assert e.features == ["prior_contacts", "age", "district"]
    assert e.values.shape == (60, 3)
    assert any("summed" in n for n in e.notes)
    # oracle: coef x (transformed - background mean), the one-hot columns summed by hand
    pre, clf = model[:-1], model[-1]
    t = np.asarray(pre.transform(X.iloc[200:260]), dtype=float)
    t_bg = np.asarray(pre.transform(bg), dtype=float)
    per_col = clf.coef_[0] * (t - t_bg.mean(axis=0))
    names = list(pre.get_feature_names_out())
    onehot = [k for k, nm in enumerate(names) if nm.startswith("cat__district_")]
    assert len(onehot) == 4
    np.testing.assert_allclose(e.values[:, 0], per_col[:, names.index("num__prior_contacts")],
                               atol=1e-10)
    np.testing.assert_allclose(e.values[:, 1], per_col[:, names.index("num__age")], atol=1e-10)
    np.testing.assert_allclose(e.values[:, 2], per_col[:, onehot].sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(e.base_value + e.values.sum(1),
                               model.decision_function(X.iloc[200:260]), atol=1e-10)


def test_pipeline_with_tree_model_and_probability(mixed) -> None:
    X, y = mixed
    model = _onehot_pipeline(GradientBoostingClassifier(n_estimators=30, random_state=0))
    model.fit(X, y)
    bg = X.iloc[:30]
    raw = explain(model, X.iloc[300:400], background=bg, max_background=30)
    assert raw.features == ["prior_contacts", "age", "district"]
    assert "interventional" in raw.method
    # scikit-learn's trees compare in float32, shap in float64: agreement to float32 precision
    np.testing.assert_allclose(raw.base_value + raw.values.sum(1),
                               model.decision_function(X.iloc[300:400]), atol=1e-6)
    prob = explain(model, X.iloc[[300]], background=bg, output="probability", max_background=30)
    np.testing.assert_allclose(prob.base_value + prob.values.sum(1),
                               model.predict_proba(X.iloc[[300]])[:, 1], atol=1e-9)
    # probability of a one-hot pipeline, each original column one player: brute force
    want = _brute_shapley(lambda z: model.predict_proba(z)[:, 1], X.iloc[[300]], bg)
    np.testing.assert_allclose(prob.values[0], want, atol=1e-6)


def test_pipeline_probability_of_a_linear_model_is_exact_shapley(mixed) -> None:
    X, y = mixed
    model = _onehot_pipeline(LogisticRegression()).fit(X, y)
    bg = X.iloc[:25]
    e = explain(model, X.iloc[[500, 501]], background=bg, output="probability",
                max_background=25)
    assert e.output_space == "probability" and e.method.startswith("model-agnostic (exact")
    for i in range(2):
        want = _brute_shapley(lambda z: model.predict_proba(z)[:, 1], X.iloc[[500 + i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-6)


def test_pipeline_that_mixes_columns_is_explained_on_the_original_frame(mixed) -> None:
    X, y = mixed
    pre = ColumnTransformer([("num", PolynomialFeatures(2, include_bias=False),
                              ["prior_contacts", "age"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["district"])])
    model = Pipeline([("prep", pre), ("scale", StandardScaler()),
                      ("clf", LogisticRegression(max_iter=2000))]).fit(X, y)
    bg = X.iloc[:25]
    e = explain(model, X.iloc[[10, 11]], background=bg, max_background=25)
    assert any("mixes original columns" in n for n in e.notes)
    assert e.features == ["prior_contacts", "age", "district"]
    assert e.output_space == "probability" and e.method.startswith("model-agnostic (exact")
    np.testing.assert_allclose(e.base_value + e.values.sum(1),
                               model.predict_proba(X.iloc[[10, 11]])[:, 1], atol=1e-9)
    want = _brute_shapley(lambda z: model.predict_proba(z)[:, 1], X.iloc[[10]], bg)
    np.testing.assert_allclose(e.values[0], want, atol=1e-6)


# -- reasons in plain words ---------------------------------------------------------------------
def test_reasons_match_the_shap_numbers(mixed) -> None:
    X, y = mixed
    model = _onehot_pipeline(GradientBoostingClassifier(n_estimators=30, random_state=0))
    model.fit(X, y)
    rows = X.iloc[40:46]
    e = explain(model, rows, background=X, output="probability", seed=3)
    out = explain_cases(model, rows, background=X, top=2, seed=3)
    assert len(out) == 6 and all(len(r) == 2 for r in out)
    pattern = re.compile(r"^(\w+) = (\S+) (raised|lowered) the risk score by (\d+\.\d\d)"
                         r" \(± (\d\S*)\)$")
    for i, reasons in enumerate(out):
        order = np.argsort(-np.abs(e.values[i]))
        assert [r.feature for r in reasons] == [e.features[j] for j in order[:2]]
        for r in reasons:
            assert isinstance(r, Reason)
            j = e.features.index(r.feature)
            assert r.contribution == pytest.approx(e.values[i, j], abs=1e-12)
            assert r.value == rows.iloc[i][r.feature]
            feat, value, verb, amount, margin = pattern.match(r.text).groups()
            assert feat == r.feature and value == str(r.value)
            assert verb == ("raised" if r.contribution > 0 else "lowered")
            assert float(amount) == pytest.approx(abs(r.contribution), abs=0.005)
            assert r.margin == pytest.approx(1.959964 * r.se) and r.se > 0
            assert float(margin) == pytest.approx(r.margin, rel=0.05, abs=0.005)
            assert r.background_size == 100
    one = explain_case(model, rows.iloc[2], background=X, top=2, seed=3)
    assert one == out[2]
    assert explain_case(model, rows.iloc[2].to_dict(), background=X, top=2, seed=3) == out[2]


def test_reason_text_words() -> None:
    assert reason_text("prior_contacts", 7, 0.1812, "probability") == \
        "prior_contacts = 7 raised the risk score by 0.18"
    assert reason_text("age", 52.0, -0.0034, "log-odds") == \
        "age = 52 lowered the risk score (log-odds) by 0.0034"
    assert reason_text("district", None, 0.5, "decision function") == \
        "district = missing raised the decision score by 0.50"


def test_explain_cases_input_errors(mixed) -> None:
    X, y = mixed
    model = _onehot_pipeline(LogisticRegression()).fit(X, y)
    with pytest.raises(InputError, match="lacks the model's input column"):
        explain_cases(model, X.drop(columns="age").head(2), background=X)
    with pytest.raises(InputError, match="no background"):
        explain_cases(model, X.head(2), background=None)
    with pytest.raises(InputError, match="one case"):
        explain_case(model, X.head(2), background=X)
    with pytest.raises(InputError, match="output must be one of"):
        explain(model, X.head(2), background=X, output="odds")
    three = LogisticRegression().fit(np.arange(30.0).reshape(-1, 1), np.arange(30) % 3)
    with pytest.raises(ModelError, match="3 classes"):
        explain(three, np.ones((2, 1)), background=np.ones((5, 1)))


# -- importance, by group, proxies --------------------------------------------------------------
def _synthetic(values: np.ndarray) -> Explanation:
    n, m = values.shape
    data = pd.DataFrame(np.zeros((n, m)), columns=[f"f{j}" for j in range(m)])
    return Explanation(values, 0.0, values.sum(1), list(data.columns), data, "log-odds",
                       "synthetic")


def test_global_importance_and_its_stability() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    scales = np.array([3.0, 1.0, 1.0, 0.2])  # f1 and f2 tie for second place
    e = _synthetic(rng.normal(size=(n, 4)) * scales)
    w = rng.uniform(0.5, 2.0, n)
    imp = global_importance(e, weights=w, k=1, n_bootstrap=100, seed=1)
    np.testing.assert_allclose(imp.mean_abs, (w[:, None] * np.abs(e.values)).sum(0) / w.sum())
    assert imp.top_k == [0] and imp.top_k_agreement == 1.0
    assert np.all(imp.ci_low <= imp.mean_abs) and np.all(imp.mean_abs <= imp.ci_high)
    tied = global_importance(e, weights=w, k=2, n_bootstrap=200, seed=1)
    assert 0.1 < tied.top_k_agreement < 0.9  # f1/f2 swap places across resamples
    assert 0.1 < tied.in_top_k[1] < 0.9 and 0.1 < tied.in_top_k[2] < 0.9
    assert tied.in_top_k[0] == 1.0 and tied.in_top_k[3] == 0.0
    assert imp.rank("f0") == 1 and imp.rank("f3") == 4


def test_importance_by_group_equals_pandas() -> None:
    rng = np.random.default_rng(2)
    n = 500
    e = _synthetic(rng.normal(size=(n, 3)))
    codes = rng.integers(0, 3, n)
    w = rng.uniform(0.5, 3, n)
    by = importance_by_group(e, codes, 3, weights=w)
    df = pd.DataFrame(np.abs(e.values), columns=["a", "b", "c"]).assign(g=codes, w=w)
    for g, part in df.groupby("g"):
        want = (part[["a", "b", "c"]].mul(part["w"], axis=0)).sum() / part["w"].sum()
        np.testing.assert_allclose(by["mean"][g], want.to_numpy())
        assert by["n"][g] == len(part)
    unweighted = importance_by_group(e, codes, 3)
    sd = df.groupby("g")[["a", "b", "c"]].std(ddof=0).to_numpy()
    counts = np.bincount(codes)[:, None]
    np.testing.assert_allclose(unweighted["se"], sd / np.sqrt(counts - 1))


def test_proxy_strength_analytic_auc() -> None:
    rng = np.random.default_rng(5)
    n = 40_000
    group = rng.choice(["x", "y"], n)
    agree = rng.random(n) < 0.8
    # a binary feature equal to the group 80% of the time: the AUC is exactly 0.8 in theory
    proxy = np.where(agree, group, np.where(group == "x", "y", "x"))
    df = pd.DataFrame({"g": group, "proxy": proxy, "noise": rng.normal(size=n),
                       "ident": np.arange(n), "copy": np.where(group == "x", 1.0, 2.0)})
    rows = {r["feature"]: r for r in proxy_strength(df, ["proxy", "noise", "ident", "copy"],
                                                    ["g"])}
    assert rows["proxy"]["auc"] == pytest.approx(0.8, abs=0.01)
    assert rows["copy"]["auc"] == pytest.approx(1.0, abs=1e-9)
    assert rows["copy"]["uncertainty"] == pytest.approx(1.0, abs=1e-9)
    assert abs(rows["noise"]["auc"] - 0.5) < 0.02
    # an identifier cannot predict out of fold (every value is seen once)
    assert abs(rows["ident"]["auc"] - 0.5) < 0.02


def test_auc_from_counts_equals_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    from lea_ai_audit.explain import _auc_from_counts

    rng = np.random.default_rng(9)
    score = rng.integers(0, 6, 300).astype(float)  # many ties
    pos = rng.integers(0, 5, 300).astype(float)
    neg = rng.integers(0, 5, 300).astype(float)
    y = np.r_[np.ones(300), np.zeros(300)]
    want = roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[pos, neg])
    assert _auc_from_counts(score, pos, neg) == pytest.approx(want, abs=1e-12)


def test_plots_are_png() -> None:
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    e = _synthetic(rng.normal(size=(200, 3)))
    imp = global_importance(e, k=2, n_bootstrap=30)
    for png in (plot_importance(imp, space="log-odds"), plot_case(e, 0),
                plot_importance_by_group([("sex", ["f", "m"], e.features,
                                           np.ones((2, 3)))], space="log-odds")):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        import io

        img = mpimg.imread(io.BytesIO(png), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 200


def test_auto_explains_the_probability_only_when_exact() -> None:
    rng = np.random.default_rng(12)
    X = pd.DataFrame(rng.normal(size=(800, 13)), columns=[f"v{j}" for j in range(13)])
    y = (X["v0"] - X["v1"] + rng.normal(size=800) > 0).astype(int)
    gb = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    # 13 inputs: too many coalitions to enumerate, so the exact log-odds are explained
    reasons = explain_cases(gb, X.iloc[:2], background=X, top=2)
    assert all("the risk score (log-odds)" in r.text for case in reasons for r in case)
    rf = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    e = explain(rf, X.iloc[:3], background=X.iloc[:50], output="auto", max_background=50)
    assert e.output_space == "probability" and "interventional" in e.method
    f = lambda z: rf.predict_proba(z)[:, 1]  # noqa: E731
    small = X.iloc[:, :3]
    rf3 = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(small, y)
    e3 = explain(rf3, small.iloc[[5]], background=small.iloc[:20], output="auto",
                 max_background=20)
    want = _brute_shapley(lambda z: rf3.predict_proba(z)[:, 1], small.iloc[[5]],
                          small.iloc[:20])
    np.testing.assert_allclose(e3.values[0], want, atol=1e-9)
    np.testing.assert_allclose(e.base_value + e.values.sum(1), f(X.iloc[:3]), atol=1e-9)


def test_one_case_as_a_series_keeps_its_types(mixed) -> None:
    X, y = mixed
    num = X[["prior_contacts", "age"]].assign(score=np.linspace(0, 1, len(X)))
    model = _lgbm().fit(num, y)
    row = num.iloc[7]  # a Series of floats and ints: LightGBM refuses object columns
    reasons = explain_case(model, row, background=num, top=3)
    e = explain(model, num.iloc[[7]], background=num, output="auto")
    assert [r.contribution for r in reasons] == sorted(
        e.values[0], key=lambda v: -abs(v))[:len(reasons)]
    assert {r.feature for r in reasons} <= {"prior_contacts", "age", "score"}
    age = next(r for r in reasons if r.feature == "age") if any(
        r.feature == "age" for r in reasons) else None
    if age is not None:
        assert isinstance(age.value, int) and age.value == int(num["age"].iloc[7])
