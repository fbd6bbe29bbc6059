"""Pipelines explained with each original column as one Shapley player, and the uncertainty of
every SHAP value due to the background sample.

Oracles, none of them the library's own code:
- brute-force interventional Shapley values over the ORIGINAL columns: every coalition of the
  p <= 6 original columns, each against every background row, the whole Pipeline called on
  the hybrid rows (``_brute``);
- shap's own interventional TreeExplainer (a different implementation) where the players are
  the same;
- for the standard errors: the per-background-row Shapley values computed by brute force
  (their standard deviation / sqrt(n), times sqrt(1 - n/N)), the exact population formula of
  a linear model, and the spread of the values over hundreds of independently drawn
  backgrounds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lea_ai_audit.explain import explain, explain_case, explain_cases, reason_text

Z95 = 1.959963984540054


def _per_reference(f, x: pd.DataFrame, bg: pd.DataFrame) -> np.ndarray:
    """Shapley values of one row against each background row alone, shape (n_bg, p).

    Every coalition S of the original columns: the hybrid rows take S's columns from x and
    the others from each background row; the Shapley formula over all coalitions.
    """
    cols = list(x.columns)
    p = len(cols)
    out: dict[tuple[int, ...], np.ndarray] = {}
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


def _brute(f, x: pd.DataFrame, bg: pd.DataFrame) -> np.ndarray:
    """Interventional Shapley values of one row over the original columns (mean over bg)."""
    return _per_reference(f, x, bg).mean(axis=0)


@pytest.fixture(scope="module")
def cases() -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers and two categories that interact (district D02 matters only with kind b)."""
    rng = np.random.default_rng(21)
    n = 1500
    X = pd.DataFrame({"prior": rng.poisson(2, n), "age": rng.integers(16, 70, n),
                      "district": rng.choice(["D01", "D02", "D03", "D04"], n),
                      "kind": rng.choice(["a", "b", "c"], n)})
    logit = (0.5 * X["prior"] - 0.03 * X["age"] + (X["district"] == "D04") * 1.0
             + ((X["district"] == "D02") & (X["kind"] == "b")) * 2.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _pipe(final) -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), ["prior", "age"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"),
                              ["district", "kind"])])
    return Pipeline([("prep", pre), ("clf", final)])


# -- one player per original column ------------------------------------------------------------
def test_one_hot_tree_pipeline_gives_the_shapley_value_of_each_original_column(cases) -> None:
    import shap

    X, y = cases
    model = _pipe(GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0))
    model.fit(X, y)
    bg, rows = X.iloc[:40], X.iloc[500:506]
    e = explain(model, rows, background=bg, max_background=40)
    assert e.output_space == "log-odds" and e.columns_as_players
    assert "each original column one player" in e.method
    # the oracle: every coalition of the 4 ORIGINAL columns against every background row
    for i in range(len(rows)):
        want = _brute(model.decision_function, rows.iloc[[i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-9)
    np.testing.assert_allclose(e.base_value + e.values.sum(1), model.decision_function(rows),
                               atol=1e-9)
    # what the issue described: the sum of the one-hot columns' SHAP values (each one-hot
    # column a player of its own, shap's interventional Tree SHAP) is NOT that value here
    pre, clf = model[:-1], model[-1]
    names = list(pre.get_feature_names_out())
    sv = shap.TreeExplainer(clf, data=pre.transform(bg),
                            feature_perturbation="interventional").shap_values(
        pre.transform(rows), check_additivity=False)
    summed = np.column_stack([sv[:, [k for k, nm in enumerate(names) if nm.startswith(p)]]
                              .sum(axis=1) for p in ("num__prior", "num__age",
                                                     "cat__district_", "cat__kind_")])
    np.testing.assert_allclose(summed.sum(1), e.values.sum(1), atol=1e-6)  # both add up ...
    assert np.abs(summed - e.values).max() > 1e-3  # ... but split the score differently


@pytest.mark.parametrize("positive_label", [None, 0])
def test_forest_pipeline_probability_each_column_one_player(cases, positive_label) -> None:
    X, y = cases
    model = _pipe(RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0))
    model.fit(X, y)
    bg, rows = X.iloc[:30], X.iloc[[700, 701, 702]]
    e = explain(model, rows, background=bg, max_background=30, output="auto",
                positive_label=positive_label)
    assert e.output_space == "probability" and e.columns_as_players
    k = 1 if positive_label is None else 0
    for i in range(len(rows)):
        want = _brute(lambda z: model.predict_proba(z)[:, k], rows.iloc[[i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-9)


def test_linear_pipeline_sum_is_exactly_the_shapley_value_of_the_column(cases) -> None:
    X, y = cases
    model = _pipe(LogisticRegression(max_iter=1000)).fit(X, y)
    bg, rows = X.iloc[:25], X.iloc[[10, 11, 12]]
    e = explain(model, rows, background=bg, max_background=25)
    assert e.method.startswith("linear") and e.columns_as_players
    assert any("exactly the Shapley value of the original column" in n for n in e.notes)
    for i in range(len(rows)):
        want = _brute(model.decision_function, rows.iloc[[i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-9)


def test_grouped_trees_with_missing_values_and_an_imputer() -> None:
    """An imputed column and its missing flag are one player; a forest's own NaN routing."""
    rng = np.random.default_rng(5)
    n = 1200
    a = rng.normal(size=n)
    a[rng.random(n) < 0.2] = np.nan
    b = rng.normal(size=n)
    b[rng.random(n) < 0.15] = np.nan  # passed through: the trees route NaN themselves
    X = pd.DataFrame({"a": a, "b": b, "c": rng.choice(["u", "v", "w"], n)})
    yv = (np.nan_to_num(a, nan=1.5) + np.where(np.isnan(b), -1.0, b) * (X["c"] == "v")
          + rng.normal(0, 0.3, n))
    pre = ColumnTransformer([("imp", SimpleImputer(add_indicator=True), ["a"]),
                             ("pass", "passthrough", ["b"]),
                             ("oh", OneHotEncoder(handle_unknown="ignore"), ["c"])])
    model = Pipeline([("prep", pre), ("rf", RandomForestRegressor(
        n_estimators=20, max_depth=6, random_state=0))]).fit(X, yv)
    bg = X.iloc[:30]
    rows = X.iloc[np.r_[np.flatnonzero(np.isnan(a))[:2], np.flatnonzero(np.isnan(b))[:2]]]
    e = explain(model, rows, background=bg, max_background=30)
    assert e.output_space == "prediction" and e.columns_as_players
    assert "interventional" in e.method
    for i in range(len(rows)):
        want = _brute(model.predict, rows.iloc[[i]], bg)
        np.testing.assert_allclose(e.values[i], want, atol=1e-9)
    np.testing.assert_allclose(e.base_value + e.values.sum(1), model.predict(rows), atol=1e-9)


def test_forest_without_pipeline_agrees_with_shaps_interventional_tree_explainer(cases) -> None:
    import shap

    X, y = cases
    # whole numbers only: every threshold is then some k + 0.5, the same in float32
    # (scikit-learn's trees) and float64 (shap), so both route every row alike
    num = X[["prior", "age"]].assign(z=np.arange(len(X)) % 97)
    rf = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(num, y)
    bg = num.iloc[:50]
    e = explain(rf, num.iloc[:20], background=bg, output="probability", max_background=50)
    sv = shap.TreeExplainer(rf, data=bg, feature_perturbation="interventional").shap_values(
        num.iloc[:20], check_additivity=False)
    # shap keeps the leaf values in float32: agreement to float32 precision
    np.testing.assert_allclose(e.values, np.asarray(sv)[:, :, 1], atol=1e-7)
    # on other numbers shap routes some rows differently from the forest itself (measured:
    # up to 3e-4 off); these values follow the forest (brute force over its predict_proba)
    num64 = num.assign(z=np.linspace(-1, 1, len(X)))
    rf64 = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(num64, y)
    e64 = explain(rf64, num64.iloc[:3], background=num64.iloc[:50], output="probability",
                  max_background=50)
    for i in range(3):
        want = _brute(lambda d: rf64.predict_proba(d)[:, 1], num64.iloc[[i]], num64.iloc[:50])
        np.testing.assert_allclose(e64.values[i], want, atol=1e-12)


def test_lightgbm_pipeline_says_its_values_are_a_sum(cases) -> None:
    pytest.importorskip("lightgbm")
    import lightgbm as lgb

    X, y = cases
    model = _pipe(lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1,
                                     random_state=0)).fit(X, y)
    bg, rows = X.iloc[:30], X.iloc[[300, 301]]
    e = explain(model, rows, background=bg, max_background=30)
    assert not e.columns_as_players
    assert any("NOT in general the Shapley value" in n for n in e.notes)
    # and it is honest: over the original columns the Shapley values differ from that sum
    f = model.predict_proba  # the raw score is its logit
    want = [_brute(lambda z: np.log(f(z)[:, 1] / f(z)[:, 0]), rows.iloc[[i]], bg)
            for i in range(2)]
    np.testing.assert_allclose(e.values.sum(1), np.sum(want, axis=1), atol=1e-5)
    assert np.abs(e.values - np.array(want)).max() > 1e-4


# -- the uncertainty of each value -------------------------------------------------------------
def test_standard_error_is_the_spread_of_the_per_row_shapley_values(cases) -> None:
    """Exact model-agnostic path, grouped trees and linear models: the same oracle."""
    X, y = cases
    bg, rows = X.iloc[:20], X.iloc[[900, 901]]
    big = 500  # the 20 background rows stand for a sample of 500
    fpc = math.sqrt(1 - 20 / big) / math.sqrt(20)
    models = {
        "agnostic": (_pipe(LogisticRegression(max_iter=1000)).fit(X, y), "probability",
                     lambda m: (lambda z: m.predict_proba(z)[:, 1])),
        "trees": (_pipe(GradientBoostingClassifier(n_estimators=30, random_state=0)).fit(X, y),
                  "raw", lambda m: m.decision_function),
        "linear": (_pipe(LogisticRegression(max_iter=1000)).fit(X, y), "raw",
                   lambda m: m.decision_function),
    }
    for name, (model, output, fn) in models.items():
        e = explain(model, rows, background=bg, max_background=20, output=output,
                    uncertainty=True, background_population=big)
        assert e.background_population == big and e.values_se is not None, name
        assert "finite-population correction" in e.uncertainty
        for i in range(len(rows)):
            per = _per_reference(fn(model), rows.iloc[[i]], bg)
            np.testing.assert_allclose(e.values[i], per.mean(0), atol=1e-9, err_msg=name)
            np.testing.assert_allclose(e.values_se[i], per.std(0, ddof=1) * fpc, atol=1e-9,
                                       err_msg=name)
        np.testing.assert_allclose(e.margin, Z95 * e.values_se)


def test_standard_error_predicts_how_far_another_background_moves_the_values() -> None:
    """Draw 300 backgrounds of 40 rows from 3,000: the values' spread is the reported se."""
    rng = np.random.default_rng(9)
    N = 3000
    pop = pd.DataFrame({"a": rng.normal(size=N), "b": rng.exponential(size=N),
                        "c": rng.choice(["p", "q", "r"], N, p=[0.7, 0.2, 0.1])})
    yy = (pop["a"] + pop["b"] * (pop["c"] == "q") + rng.normal(size=N) > 0.8).astype(int)
    pre = ColumnTransformer([("num", "passthrough", ["a", "b"]),
                             ("oh", OneHotEncoder(), ["c"])])
    model = Pipeline([("prep", pre), ("gb", GradientBoostingClassifier(
        n_estimators=30, max_depth=3, random_state=0))]).fit(pop, yy)
    rows = pop.iloc[[3, 4]]
    vals, ses = [], []
    for s in range(300):
        e = explain(model, rows, background=pop, max_background=40, output="probability",
                    seed=s, uncertainty=True)
        vals.append(e.values)
        ses.append(e.values_se)
    vals, ses = np.array(vals), np.array(ses)
    spread = vals.std(axis=0, ddof=1)
    reported = np.sqrt((ses ** 2).mean(axis=0))
    # 300 draws: the spread itself is known to about +-4% (1/sqrt(2 x 299))
    np.testing.assert_allclose(reported, spread, rtol=0.15)
    # and the exact value: the per-row values against all 3,000 rows, sd / sqrt(40) x fpc
    f = lambda z: model.predict_proba(z)[:, 1]  # noqa: E731
    exact = np.array([_per_reference(f, rows.iloc[[i]], pop).std(0, ddof=1)
                      for i in range(2)]) / math.sqrt(40) * math.sqrt(1 - 40 / N)
    np.testing.assert_allclose(reported, exact, rtol=0.1)


def test_lightgbm_pipeline_uncertainty_from_disjoint_parts_of_the_background(cases) -> None:
    pytest.importorskip("lightgbm")
    import lightgbm as lgb

    X, y = cases
    model = _pipe(lgb.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1,
                                     random_state=0)).fit(X, y)
    bg, rows = X.iloc[:50].reset_index(drop=True), X.iloc[[600, 601, 602]]
    e = explain(model, rows, background=bg, max_background=50, uncertainty=True,
                background_population=1000, seed=4)
    assert "5 disjoint parts" in e.uncertainty
    # the oracle: explain against each fifth separately, the spread of those values
    perm = np.random.default_rng(5).permutation(50)
    parts = [explain(model, rows, background=bg.iloc[np.sort(p)], max_background=10).values
             for p in np.array_split(perm, 5)]
    want = np.std(parts, axis=0, ddof=1) / math.sqrt(5) * math.sqrt(1 - 50 / 1000)
    np.testing.assert_allclose(e.values_se, want, atol=1e-9)
    assert (e.values_se > 0).all()


def test_reasons_carry_their_margin(cases) -> None:
    X, y = cases
    model = _pipe(LogisticRegression(max_iter=1000)).fit(X, y)
    reasons = explain_cases(model, X.iloc[[5, 6]], background=X, top=2)
    e = explain(model, X.iloc[[5, 6]], background=X, output="auto", uncertainty=True)
    for i, rs in enumerate(reasons):
        for r in rs:
            j = e.features.index(r.feature)
            assert r.se == pytest.approx(e.values_se[i, j], rel=1e-12)
            assert r.margin == pytest.approx(Z95 * r.se)
            assert r.background_size == 100
            assert r.text == reason_text(r.feature, r.value, r.contribution, "probability",
                                         margin=r.margin)
            assert r.text.endswith(")") and " (± " in r.text
    plain = explain_case(model, X.iloc[5], background=X, top=2, uncertainty=False)
    assert all(r.se is None and "±" not in r.text for r in plain)
    # the whole background: no sample, no uncertainty; said as "± 0"
    whole = explain_case(model, X.iloc[5], background=X.iloc[:60], top=1)
    assert whole[0].se == 0.0 and whole[0].text.endswith("(± 0)")


def test_reason_text_margin_format() -> None:
    assert reason_text("age", 30, 0.1812, "probability", margin=0.0123) == \
        "age = 30 raised the risk score by 0.18 (± 0.01)"
    assert reason_text("age", 30, 0.04, "probability", margin=0.0028) == \
        "age = 30 raised the risk score by 0.04 (± 0.003)"
    assert reason_text("age", 30, -0.2, "log-odds") == \
        "age = 30 lowered the risk score (log-odds) by 0.20"


def test_path_dependent_tree_shap_has_no_background_uncertainty(cases) -> None:
    X, y = cases
    num = X[["prior", "age"]]
    gb = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(num, y)
    e = explain(gb, num.iloc[:5], background=num, uncertainty=True)
    assert e.background_size == 0 and e.values_se is None
    assert "path-dependent Tree SHAP uses no background sample" in e.uncertainty
    assert e.background_sampling.startswith("no background sample")
