"""Explanations of a model's scores with SHAP, in the user's own columns (Council 13083/1/20 §26).

§26 asks that the users of a law-enforcement AI tool "be able to explain and demonstrate the
results". This module is the public explanation API; the checks in
:mod:`lea_ai_audit.checks.explainability` build on it.

How a model is explained
------------------------
- **Tree models** (scikit-learn trees and ensembles, LightGBM, XGBoost), raw output, no
  Pipeline: shap's fast ``TreeExplainer`` (path-dependent Tree SHAP; no background needed).
  With a background (a Pipeline, or the probability of a forest): interventional Shapley
  values; for scikit-learn trees and ensembles computed here, exactly, by the leaf-pattern
  form of interventional Tree SHAP (see ``_leaf_table``), which also lets a group of columns
  act as one player; for LightGBM and XGBoost by shap's interventional ``TreeExplainer``.
- **Linear models** (``coef_``: logistic regression, linear SVMs, ...) take shap's
  ``LinearExplainer`` (interventional, exact) on a background sample.
- **Anything else** is explained model-agnostically on the user's original columns against
  a bounded background sample (``max_background`` rows): up to 11 inputs by enumerating
  every coalition of inputs against every background row (exact Shapley values, computed
  here); beyond, shap's ``KernelExplainer`` samples ``max_coalitions`` coalitions (an
  estimate). (shap's ``Permutation`` and ``Exact`` explainers were measured too: each costs
  about 6 s of numba compilation in every new process.)
- **Pipelines** are explained in the user's original columns, **each original column one
  player** of the Shapley game (its derived columns — one-hot columns, a scaled value, an
  imputed value and its missing flag — taken together from the explained row or from the
  background row): the value of a column is its Shapley value, not the sum of the Shapley
  values of its one-hot columns computed as separate players (which differs for models that
  are not additive across them, e.g. trees: mixing the one-hot columns of two rows makes
  cases with two categories at once, or none). When every derived column comes from one
  original column (scaling, one-hot encoding, imputing, ...), which derived column comes from
  which is *measured* (each original column is shifted by one row and the changed outputs are
  recorded), not guessed from names, and the final estimator is explained on the transformed
  matrix: a linear estimator by summing its derived columns' SHAP values (exact: a linear
  model is additive in them), a scikit-learn tree model by the grouped tree algorithm, any
  other by the model-agnostic explainer over the original columns. Only LightGBM and XGBoost
  in a Pipeline (and scikit-learn forests too large for the grouped algorithm) fall back to
  the sum of separate derived-column values; :attr:`Explanation.columns_as_players` is then
  False and the notes say so. A preprocessing that mixes columns is explained
  model-agnostically on the original frame.

The SHAP values are additive in the explainer's output space: ``base_value + values.sum(1)``
equals the model's output (log-odds for boosted trees and logistic regression, the probability
for random forests, the decision function for linear SVMs, ...).
:attr:`Explanation.additivity_error` measures that against an independent call of the model.
``output="probability"`` explains the probability of the positive class instead, which is
what plain-words reasons use when it can be done exactly (``output="auto"``): interventional
Tree SHAP for forests and single trees (their probability is an average of the trees', so it
is exact), else the model-agnostic explainer, whose values are exact Shapley values up to 11
inputs; beyond, "auto" explains the raw output, which the fast explainers give exactly. (shap's
``TreeExplainer(model_output="probability")`` for boosted trees is additive, but its values
differ from the Shapley values of the probability by about 5%, measured against brute force
on every coalition, so it is not used.)

How much the values depend on the background sample
----------------------------------------------------
An interventional SHAP value is the mean, over the background rows, of the Shapley values
against each background row alone; with a random sample of ``n`` of ``N`` rows as background,
its standard error is the standard deviation of those per-row values / sqrt(n), times the
finite-population correction sqrt(1 - n/N) (0 when the whole background is used).
:attr:`Explanation.values_se` holds it: computed alongside the values by the exact
model-agnostic explainer, in closed form for linear models (``coef * column`` over the
background), from the per-row values of the grouped tree algorithm (``uncertainty=True``),
and otherwise (``uncertainty=True``) estimated by explaining the rows again against five
disjoint fifths of the background. Plain-words reasons carry it as the half-width of the 95%
interval: ``"prior_contacts = 7 raised the risk score by 0.18 (± 0.01)"``.

Examples
--------
>>> from lea_ai_audit.datasets import make_demo, FEATURES
>>> from lea_ai_audit.explain import explain_case
>>> demo = make_demo(n_rows=2000, seed=1)
>>> reasons = explain_case(demo.model, demo.test[FEATURES].iloc[0],
...                        background=demo.train[FEATURES])
>>> reasons[0].text  # doctest: +SKIP
'district = D11 raised the risk score by 0.12 (± 0.01)'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, ModelError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Explanation",
    "Importance",
    "Reason",
    "explain",
    "explain_case",
    "explain_cases",
    "explainer_kind",
    "global_importance",
    "group_determination",
    "importance_by_group",
    "plot_case",
    "plot_importance",
    "plot_importance_by_group",
    "proxy_strength",
    "reason_text",
]

OUTPUTS = ("raw", "probability", "auto")
#: the normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054

#: output space -> what the text calls the model's output
SCORE_NAMES = {
    "probability": "the risk score",
    "log-odds": "the risk score (log-odds)",
    "decision function": "the decision score",
    "prediction": "the prediction",
}

# Tree models shap's TreeExplainer handles. HistGradientBoosting's interventional values break
# additivity in shap 0.51 (measured), so in a Pipeline it is explained model-agnostically.
_SKLEARN_TREES = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
                  "ExtraTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
                  "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
                  "GradientBoostingRegressor", "HistGradientBoostingClassifier",
                  "HistGradientBoostingRegressor", "IsolationForest")
#: tree classifiers whose raw (path-dependent) output is the class probability
_PROBA_RAW = ("DecisionTreeClassifier", "ExtraTreeClassifier", "RandomForestClassifier",
              "ExtraTreesClassifier")


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reason:
    """One reason behind one score: a feature's value and how much it moved the score.

    Attributes
    ----------
    feature : str
        The input (an original column, also for a Pipeline).
    value : Any
        The case's value of it (a plain Python value; None when missing).
    contribution : float
        Its SHAP value: how far it moved the score from the average case's (the base value),
        in the explanation's output space (see :attr:`Explanation.output_space`).
    text : str
        The reason in plain words, e.g. ``"prior_contacts = 7 raised the risk score by 0.18
        (± 0.01)"``; the ``±`` is :attr:`margin`, shown when it is known.
    se : float or None
        Standard error of ``contribution`` due to the finite background sample (see
        :attr:`Explanation.values_se`); None when it was not estimated.
    margin : float or None
        Half-width of the 95% interval, ``1.96 * se``: another background sample of the same
        size, drawn the same way, would move ``contribution`` by about this much or less, 19
        times out of 20.
    background_size : int
        Background rows the contribution was computed against (0: none, path-dependent
        Tree SHAP).
    """

    feature: str
    value: Any
    contribution: float
    text: str
    se: float | None = None
    margin: float | None = None
    background_size: int = 0


@dataclass(frozen=True, eq=False)
class Explanation:
    """SHAP values of some rows, one column per original feature.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_features)
        SHAP value of each feature for each row.
    base_value : float
        The explainer's expected output (the average case's score).
    output : ndarray, shape (n_rows,)
        The model's own output for each row in the same space, from an independent call of the
        model (not from shap): what the additivity self-test compares against.
    features : list of str
        The original columns explained.
    data : DataFrame
        The explained rows (original columns).
    output_space : str
        ``"log-odds"``, ``"probability"``, ``"decision function"`` or ``"prediction"``.
    method : str
        Which explainer was used, in words.
    background_size : int
        Rows of background data the explainer compared against (0: the trees' own record).
    seed : int
        Seed of the background sample (a simple random sample without replacement, not
        stratified) and of any sampling the explainer does.
    notes : tuple of str
        Anything the reader should know (a fallback, a transformed-column mapping).
    values_se : ndarray, shape (n_rows, n_features), or None
        Standard error of each SHAP value due to the finite background sample: how much the
        value would move with another background sample of the same size drawn the same way
        (None when not estimated; see :attr:`uncertainty` for how it was obtained).
    uncertainty : str
        How :attr:`values_se` was obtained, or why there is none.
    background_population : int
        Rows the background sample was drawn from (equal to ``background_size`` when the whole
        background was used; then the values do not depend on a sample and ``values_se`` is 0).
    columns_as_players : bool
        True when each original column is one player of the Shapley game, so that its value is
        the Shapley value of the column (for a Pipeline: of all the columns derived from it
        together). False only for a Pipeline whose derived-column SHAP values had to be
        summed for a model that is not additive across them (see :attr:`notes`).
    """

    values: np.ndarray = field(repr=False)
    base_value: float
    output: np.ndarray = field(repr=False)
    features: list[str]
    data: Any = field(repr=False)
    output_space: str
    method: str
    background_size: int = 0
    seed: int = 0
    notes: tuple[str, ...] = ()
    values_se: np.ndarray | None = field(default=None, repr=False)
    uncertainty: str = ""
    background_population: int = 0
    columns_as_players: bool = True

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def margin(self) -> np.ndarray | None:
        """Half-width of the 95% interval of each SHAP value (``1.96 * values_se``)."""
        return None if self.values_se is None else Z95 * self.values_se

    @property
    def background_sampling(self) -> str:
        """How the background was drawn, in words."""
        n, big = self.background_size, self.background_population
        if n == 0:
            return ("no background sample (path-dependent Tree SHAP uses the training "
                    "distribution recorded in the trees)")
        if big > n:
            return (f"a simple random sample without replacement (not stratified) of {n} of "
                    f"{big} rows, seed {self.seed}")
        return f"all {n} background rows"

    @property
    def additivity_error(self) -> np.ndarray:
        """Per row ``|base_value + sum of SHAP values - model output|``."""
        return np.abs(self.base_value + self.values.sum(axis=1) - self.output)

    @property
    def max_additivity_error(self) -> float:
        """The largest additivity error over the rows (0.0 for no rows)."""
        err = self.additivity_error
        return float(err.max()) if err.size else 0.0

    def relative_additivity_error(self) -> float:
        """Largest additivity error relative to the output's scale (``max(1, |output|)``)."""
        if not self.output.size:
            return 0.0
        scale = np.maximum(1.0, np.abs(self.output))
        return float((self.additivity_error / scale).max())

    def reasons(self, *, top: int = 3) -> list[list[Reason]]:
        """The ``top`` reasons of each row, largest ``|contribution|`` first (zeros left out).

        Examples
        --------
        >>> expl.reasons(top=2)[0][0].text  # doctest: +SKIP
        'prior_contacts = 7 raised the risk score by 0.18'
        """
        return [_row_reasons(self, i, top) for i in range(self.n_rows)]


# -- model plumbing ----------------------------------------------------------------------------
def _module(obj: Any) -> str:
    return type(obj).__module__ or ""


def _tree_kind(est: Any) -> str | None:
    """'sklearn', 'lightgbm' or 'xgboost' for a tree model shap's TreeExplainer handles."""
    name, mod = type(est).__name__, _module(est)
    if mod.startswith("sklearn.") and name in _SKLEARN_TREES:
        return "sklearn"
    if mod.startswith("lightgbm"):
        return "lightgbm"
    if mod.startswith("xgboost"):
        return "xgboost"
    return None


def _is_linear(est: Any) -> bool:
    coef = getattr(est, "coef_", None)
    if coef is None or not hasattr(est, "intercept_"):
        return False
    mod = _module(est)
    if not (mod.startswith("sklearn.linear_model") or mod.startswith("sklearn.svm")
            or mod.startswith("sklearn.discriminant_analysis")):
        return False
    if mod.startswith("sklearn.svm") and getattr(est, "kernel", "linear") != "linear":
        return False
    return np.asarray(coef).ndim == 1 or np.asarray(coef).shape[0] == 1


def _is_classifier(est: Any) -> bool:
    return getattr(est, "_estimator_type", None) == "classifier" or hasattr(est, "classes_")


def _positive_index(model: Any, positive_label: Any) -> int:
    """Index of the positive class in ``model.classes_`` (the last class by default)."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return 1
    classes = list(np.asarray(classes).tolist())
    if len(classes) != 2:
        raise ModelError(f"the model has {len(classes)} classes ({classes[:5]})",
                         "explain a binary classifier (one outcome against the rest)")
    if positive_label is None:
        return 1
    for i, c in enumerate(classes):
        if c == positive_label or str(c) == str(positive_label):
            return i
    raise ModelError(f"positive_label {positive_label!r} is not one of the model's classes "
                     f"{classes}", "pass one of the model's classes")


def _split_pipeline(model: Any) -> tuple[Any, Any]:
    """(preprocessing or None, final estimator)."""
    steps = getattr(model, "steps", None)
    if _module(model).startswith("sklearn.pipeline") and steps:
        final = steps[-1][1]
        pre = model[:-1] if len(steps) > 1 else None
        return pre, final
    return None, model


def explainer_kind(model: Any) -> str:
    """Which explainer :func:`explain` uses for ``model``'s raw output.

    ``"tree"``, ``"linear"`` or ``"model-agnostic"`` (a Pipeline whose preprocessing mixes
    columns is found only when its data is seen, and is then explained model-agnostically).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> explainer_kind(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    'linear'
    """
    pre, final = _split_pipeline(model)
    if _tree_kind(final) is not None and not (
            pre is not None and type(final).__name__.startswith("HistGradientBoosting")):
        return "tree"
    if _is_linear(final):
        return "linear"
    return "model-agnostic"


def _probability_is_exact(model: Any, n_features: int, max_coalitions: int) -> bool:
    """Whether the probability of ``model`` can be explained exactly (and cheaply)."""
    if not hasattr(model, "predict_proba"):
        return False
    _, final = _split_pipeline(model)
    if type(final).__name__ in _PROBA_RAW and _tree_kind(final) is not None:
        return True
    return 2 ** int(n_features) - 2 <= int(max_coalitions)


def _dense(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=float)


def _derived_columns(pre: Any, frame: pd.DataFrame, features: list[str],
                     transformed: np.ndarray) -> np.ndarray | None:
    """Which original column each transformed column comes from (-1: constant, none).

    Each original column is shifted by one row (``np.roll``) and the transformed columns that
    change are recorded. A column-wise transform of a column that varies over ``frame`` always
    changes somewhere under the shift, so the mapping is exact for such transforms. Returns
    None when some transformed column depends on several original columns (an interaction) or
    varies without depending on any: then the pipeline is not separable.
    """
    origin = np.full(transformed.shape[1], -1, dtype=np.int64)
    for j, col in enumerate(features):
        shifted = frame.copy()
        shifted[col] = frame[col].take(np.roll(np.arange(len(frame)), 1)).set_axis(frame.index)
        t = _dense(pre.transform(shifted))
        if t.shape != transformed.shape:
            return None
        changed = ~((t == transformed) | (np.isnan(t) & np.isnan(transformed)))
        hit = changed.any(axis=0)
        if (origin[hit] >= 0).any():
            return None  # a derived column of two original columns
        origin[hit] = j
    free = origin < 0
    if free.any():
        col = transformed[:, free]
        varies = ~((col == col[:1]) | (np.isnan(col) & np.isnan(col[:1]))).all(axis=0)
        if varies.any():
            return None
    return origin


def _as_frame(X: Any, features: list[str] | None, role: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(X, pd.Series):  # one case: each value keeps its own type
        X = pd.DataFrame([X.to_dict()])
    elif isinstance(X, Mapping):
        X = pd.DataFrame([dict(X)])
    elif not isinstance(X, pd.DataFrame):
        arr = np.asarray(X)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise InputError(f"{role} must be a table of rows, got an array of shape {arr.shape}",
                             "pass a pandas DataFrame with the model's input columns")
        names = features or [f"x{i}" for i in range(arr.shape[1])]
        if len(names) != arr.shape[1]:
            raise InputError(f"{role} has {arr.shape[1]} columns but {len(names)} features "
                             "were named", "pass features=[...] matching the columns")
        X = pd.DataFrame(arr, columns=names)
    if features is not None:
        missing = [f for f in features if f not in X.columns]
        if missing:
            raise InputError(f"{role} lacks the model's input column(s) "
                             f"{', '.join(map(repr, missing[:5]))}",
                             "pass rows with every column the model was trained on")
        X = X[features]
    return X.reset_index(drop=True)


def _align_dtypes(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the dtypes of ``like`` where the values survive the change (a case given
    as a Series arrives with its integers as floats, or everything as objects)."""
    out = frame.copy()
    for c in frame.columns:
        if out[c].dtype == like[c].dtype:
            continue
        try:
            moved = out[c].astype(like[c].dtype)
        except (TypeError, ValueError):
            continue
        if moved.astype(object).equals(out[c].astype(object)):
            out[c] = moved
    return out


def _resolve_features(model: Any, X: Any, features: Sequence[str] | None) -> list[str] | None:
    if features is not None:
        return [str(f) for f in features]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(f) for f in names]
    cols = getattr(X, "columns", None)
    if cols is not None:
        return [str(c) for c in cols]
    index = getattr(X, "index", None)  # a Series: one case
    if index is not None and not isinstance(X, np.ndarray):
        return [str(c) for c in index]
    return None


def _score_fn(model: Any, pos: int, space: str) -> Callable[[Any], np.ndarray]:
    """The model's output in ``space`` as a function of rows (an independent model call)."""
    if space == "probability":
        return lambda X: np.asarray(model.predict_proba(X), dtype=float)[:, pos]
    if space in ("decision function", "log-odds"):
        sign = 1.0 if pos == 1 else -1.0
        return lambda X: sign * np.asarray(model.decision_function(X), dtype=float).ravel()
    return lambda X: np.asarray(model.predict(X), dtype=float).ravel()


def _agnostic_space(model: Any) -> str:
    if hasattr(model, "predict_proba"):
        return "probability"
    if hasattr(model, "decision_function"):
        return "decision function"
    return "prediction"


def _tree_raw(est: Any, kind: str, pos: int) -> tuple[str, Callable[[Any], np.ndarray]]:
    """(output space, independent raw-output function) of a tree model."""
    name = type(est).__name__
    sign = 1.0 if pos == 1 else -1.0
    if not _is_classifier(est):
        return "prediction", lambda X: np.asarray(est.predict(X), dtype=float).ravel()
    if name in _PROBA_RAW:
        return "probability", lambda X: np.asarray(est.predict_proba(X), dtype=float)[:, pos]
    if kind == "lightgbm":
        return "log-odds", lambda X: sign * np.asarray(est.predict(X, raw_score=True),
                                                       dtype=float).ravel()
    if kind == "xgboost":
        return "log-odds", lambda X: sign * np.asarray(est.predict(X, output_margin=True),
                                                       dtype=float).ravel()
    return "log-odds", lambda X: sign * np.asarray(est.decision_function(X),
                                                   dtype=float).ravel()


def _pick_class(values: Any, base: Any, pos: int, flip: bool, space: str = ""
                ) -> tuple[np.ndarray, float]:
    """SHAP values and base value of the positive class from shap's output.

    A single output explains class 1; for class 0 a margin changes sign and a probability
    becomes one minus it.
    """
    v = np.asarray(values, dtype=float)
    b = np.asarray(base, dtype=float).ravel()
    if v.ndim == 3:  # (rows, features, classes)
        return v[:, :, pos], float(b[pos])
    if not flip:
        return v, float(b[0])
    return -v, (1.0 - float(b[0])) if space == "probability" else -float(b[0])


def _sample_rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    idx = np.sort(np.random.default_rng(seed).choice(len(frame), n, replace=False))
    return frame.iloc[idx].reset_index(drop=True)


def _group_sum(values: np.ndarray, origin: np.ndarray, n_features: int) -> np.ndarray:
    out = np.zeros((values.shape[0], n_features))
    for k in range(n_features):
        sel = origin == k
        if sel.any():
            out[:, k] = values[:, sel].sum(axis=1)
    return out


# -- exact interventional Shapley values -------------------------------------------------------
# The interventional Shapley value of input j for a row x against a background B is the mean,
# over the background rows r, of the Shapley value of the game v_r(S) = f(x_S, r_not S) (each
# input of S from x, the others from r). Computed that way, the per-row values r -> phi_r also
# give the standard error of that mean: how much the value depends on which background rows
# were drawn (Janzing, Minorics & Bloebaum 2020, "Feature relevance quantification in
# explainable AI: a causal problem", AISTATS; Sundararajan & Najmi 2020, "The many Shapley
# values for model explanation", ICML, for the baseline Shapley value phi_r).
@dataclass(frozen=True)
class _Part:
    """What one explainer gives: values, base, space, method, output function, and more."""

    values: np.ndarray
    base: float
    space: str
    method: str
    fn: Callable[[Any], np.ndarray]
    se: np.ndarray | None = None  # standard error over the background rows (no correction)
    uncertainty: str = ""
    players: bool = True
    note: str = ""


_PER_ROW = ("the value is the mean, over the background rows, of the Shapley values against "
            "each background row alone; the standard error is their standard deviation / "
            "sqrt(background rows)")


def _row_se(per_row: np.ndarray, axis: int) -> np.ndarray:
    """Standard error of the mean over ``axis`` (0 with a single row)."""
    n = per_row.shape[axis]
    if n < 2:
        return np.zeros(np.delete(per_row.shape, axis))
    return per_row.std(axis=axis, ddof=1) / math.sqrt(n)


def _shapley_weights(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Coalition masks (2**m, m) and the matrix W with phi = F @ W over all coalitions.

    ``W[S, j] = (|S|-1)! (m-|S|)! / m!`` when j is in S and ``-|S|! (m-|S|-1)! / m!`` when
    not: phi_j = sum over S without j of w(|S|) (F(S + j) - F(S)).
    """
    n_s = 1 << m
    masks = ((np.arange(n_s)[:, None] >> np.arange(m)[None, :]) & 1).astype(bool)
    sizes = masks.sum(axis=1)
    w = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m)
                  for s in range(m)])
    inside = w[np.clip(sizes - 1, 0, m - 1)][:, None]
    outside = -w[np.clip(sizes, 0, m - 1)][:, None]
    return masks, np.where(masks, inside, outside)


def _enumerate_shapley(f: Callable[[np.ndarray], np.ndarray], n_x: int, n_bg: int, m: int,
                       max_rows: int = 262_144) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact interventional Shapley values by enumerating every coalition of the m inputs.

    ``f`` takes an integer matrix of row codes (one column per input: the row of the explained
    rows, ``0..n_x-1``, or of the background, ``n_x..n_x+n_bg-1``, its value comes from) and
    returns the model's output. Returns the values (n_x, m), their standard error over the
    background rows (n_x, m) and the base value (the mean output over the background).
    """
    masks, W = _shapley_weights(m)
    n_s = len(masks)
    per = max(1, int(max_rows) // (n_s * max(n_bg, 1)))
    values = np.empty((n_x, m))
    se = np.empty((n_x, m))
    bg_ids = n_x + np.arange(n_bg)
    base = float("nan")
    for start in range(0, n_x, per):
        ids = np.arange(start, min(n_x, start + per))
        z = np.where(masks[None, :, None, :], ids[:, None, None, None],
                     bg_ids[None, None, :, None])
        F = np.asarray(f(z.reshape(-1, m)), dtype=float).reshape(len(ids), n_s, n_bg)
        phi = np.einsum("isr,sj->irj", F, W)
        values[ids] = phi.mean(axis=1)
        se[ids] = _row_se(phi, 1)
        base = float(F[0, 0].mean())  # the empty coalition: the background rows themselves
    return values, se, base


# -- scikit-learn trees with the columns grouped into players ----------------------------------
#: bound on the work of the grouped tree algorithm (row x path-step and leaf x table cells)
_TREE_BUDGET = 3e8
_TABLES: dict[int, np.ndarray] = {}


def _leaf_table(k: int) -> np.ndarray:
    """``C[px, pr, i]``: the Shapley value of player i in one leaf's game, by its patterns.

    For one explained row x, one background row r and one leaf, each of the k players on the
    leaf's path either lets x reach the leaf (bit of ``px`` set: x satisfies every split of
    the path on that player's columns) or not, and likewise r (``pr``). The hybrid row (x's
    values for the players in S, r's for the others) reaches the leaf iff S contains every
    player A only x lets through, none of the players B only r lets through, and no player
    lets neither through. The Shapley values of that game are, for i in A,
    (|A|-1)! |B|! / (|A|+|B|)!, for i in B, -|A|! (|B|-1)! / (|A|+|B|)!, else 0
    (Laberge & Pequignot 2022, "Understanding interventional TreeSHAP: how and why it
    works", arXiv:2209.15123; Lundberg et al. 2020, Nature Machine Intelligence 2:56-67).
    """
    hit = _TABLES.get(k)
    if hit is not None:
        return hit
    p = 1 << k
    codes = np.arange(p)
    bits = ((codes[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)  # (p, k)
    bx, br = bits[:, None, :], bits[None, :, :]
    only_x, only_r = bx & ~br, ~bx & br
    valid = ~(~bx & ~br).any(axis=2)
    a, b = only_x.sum(axis=2), only_r.sum(axis=2)
    fact = np.array([math.factorial(i) for i in range(2 * k + 2)], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        wa = np.where(a > 0, fact[np.maximum(a - 1, 0)] * fact[b] / fact[a + b], 0.0)
        wb = np.where(b > 0, fact[a] * fact[np.maximum(b - 1, 0)] / fact[a + b], 0.0)
    table = valid[:, :, None] * (only_x * wa[:, :, None] - only_r * wb[:, :, None])
    _TABLES[k] = table
    return table


def _sklearn_tree_parts(est: Any, pos: int, flip: bool
                        ) -> tuple[list[tuple[Any, np.ndarray]], str] | None:
    """The trees of a scikit-learn tree model with each node's value as a share of the
    model's output (output = constant + sum over trees of the reached leaf's value), and the
    output space; None for a model this does not cover."""
    name = type(est).__name__

    def value(tree: Any, regression: bool) -> np.ndarray | None:
        v = np.asarray(tree.value, dtype=float)
        if v.ndim != 3:
            return None
        if regression:
            return v[:, 0, 0] if v.shape[1] == 1 else None
        if v.shape[1] != 1:
            return None
        total = v[:, 0, :].sum(axis=1)
        return v[:, 0, pos] / np.where(total > 0, total, 1.0)

    parts: list[tuple[Any, np.ndarray | None]]
    if name in ("DecisionTreeClassifier", "ExtraTreeClassifier"):
        parts, space = [(est.tree_, value(est.tree_, False))], "probability"
    elif name in ("RandomForestClassifier", "ExtraTreesClassifier"):
        k = len(est.estimators_)
        parts = [(t.tree_, value(t.tree_, False)) for t in est.estimators_]
        parts = [(t, None if v is None else v / k) for t, v in parts]
        space = "probability"
    elif name in ("DecisionTreeRegressor", "ExtraTreeRegressor"):
        parts, space = [(est.tree_, value(est.tree_, True))], "prediction"
    elif name in ("RandomForestRegressor", "ExtraTreesRegressor"):
        k = len(est.estimators_)
        parts = [(t.tree_, value(t.tree_, True)) for t in est.estimators_]
        parts = [(t, None if v is None else v / k) for t, v in parts]
        space = "prediction"
    elif name in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        trees = np.asarray(est.estimators_)
        if trees.ndim != 2 or trees.shape[1] != 1:
            return None  # several classes
        lr = float(est.learning_rate)
        sign = -1.0 if (flip and name == "GradientBoostingClassifier") else 1.0
        parts = [(t.tree_, value(t.tree_, True)) for t in trees[:, 0]]
        parts = [(t, None if v is None else sign * lr * v) for t, v in parts]
        space = "log-odds" if name == "GradientBoostingClassifier" else "prediction"
    else:
        return None
    if any(v is None for _, v in parts):
        return None
    return [(t, v) for t, v in parts if v is not None], space


def _tree_paths(tree: Any, player: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Leaves, path steps (node, goes left, slot) and each slot's player, of one tree.

    A leaf's players are numbered 0..k-1 in the order they first appear on its path; a step
    of leaf number ``li`` on its k-th player belongs to slot ``li * K + k`` (K: the most
    players on any path). Unused slots get the player -1.
    """
    left, right, feat = tree.children_left, tree.children_right, tree.feature
    leaves: list[int] = []
    nodes: list[int] = []
    lefts: list[bool] = []
    leaf_of: list[int] = []
    within: list[int] = []
    orders: list[list[int]] = []
    stack: list[tuple[int, tuple[tuple[int, bool], ...]]] = [(0, ())]
    while stack:
        node, path = stack.pop()
        if left[node] == -1:
            li = len(leaves)
            leaves.append(node)
            order: list[int] = []
            for nd, go_left in path:
                pl = int(player[feat[nd]])
                if pl not in order:
                    order.append(pl)
                nodes.append(nd)
                lefts.append(go_left)
                leaf_of.append(li)
                within.append(order.index(pl))
            orders.append(order)
            continue
        stack.append((int(right[node]), (*path, (node, False))))
        stack.append((int(left[node]), (*path, (node, True))))
    k = max(1, max((len(o) for o in orders), default=0))
    players = np.full((len(leaves), k), -1, dtype=np.int64)
    for li, o in enumerate(orders):
        players[li, :len(o)] = o
    slots = np.asarray(leaf_of, dtype=np.int64) * k + np.asarray(within, dtype=np.int64)
    return (np.asarray(leaves, dtype=np.int64), np.asarray(nodes, dtype=np.int64),
            np.asarray(lefts, dtype=bool), slots, players, k)


def _tree_work(parts: list[tuple[Any, np.ndarray]], n_x: int, n_bg: int, n_players: int,
               pairs: bool) -> float:
    """An upper bound on the work of :func:`_tree_shapley` (array cells touched)."""
    work = 0.0
    for tree, _ in parts:
        leaves, depth = int(tree.n_leaves), int(tree.max_depth)
        k = max(1, min(depth, n_players + 1))
        if k > 12:
            return math.inf
        work += leaves * depth * (n_x + n_bg) + leaves * 4.0 ** k * k + n_x * leaves * k
        if pairs:
            work += n_x * n_bg * leaves * k
    return work


def _tree_shapley(parts: list[tuple[Any, np.ndarray]], x: np.ndarray, bg: np.ndarray,
                  player: np.ndarray, n_players: int, pairs: bool
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Interventional Shapley values of a sum of scikit-learn trees, columns grouped.

    ``player[c]`` is the player (original column) of column c of ``x``/``bg`` (-1: a column
    that is constant over the rows, which cannot change any value). For each leaf, each
    explained row and each background row record which of the leaf's players let them reach
    it (see :func:`_leaf_table`); the Shapley values of the leaf's game depend only on those
    two patterns, so the mean over the background is a table look-up per (row, leaf).
    With ``pairs`` the values against each background row are kept too, for their standard
    error. Returns the values (n_x, n_players) and that standard error (or None).
    """
    n_x, n_bg = len(x), len(bg)
    both = np.vstack([x, bg]).astype(np.float32)  # scikit-learn's trees compare in float32
    n_p = n_players + 1  # the last: constant columns
    pl = np.where(np.asarray(player) >= 0, player, n_players)
    values = np.zeros((n_x, n_p))
    per_bg = np.zeros((n_x, n_bg, n_p)) if pairs else None
    for tree, node_value in parts:
        if tree.node_count <= 1:
            continue  # a single leaf: a constant
        leaves, nodes, lefts, slots, players, k = _tree_paths(tree, pl)
        n_leaves, p = len(leaves), 1 << k
        cols = both[:, tree.feature[nodes]]
        go_left = cols <= tree.threshold[nodes]
        if hasattr(tree, "missing_go_to_left"):
            missing = np.isnan(cols)
            if missing.any():
                mgl = np.asarray(tree.missing_go_to_left, dtype=bool)[nodes]
                go_left = np.where(missing, mgl[None, :], go_left)
        ok = go_left == lefts[None, :]
        order = np.argsort(slots, kind="stable")
        slots_sorted = slots[order]
        uniq, starts = np.unique(slots_sorted, return_index=True)
        sat = np.ones((len(both), n_leaves * k), dtype=bool)
        sat[:, uniq] = np.logical_and.reduceat(ok[:, order], starts, axis=1)
        codes = (sat.reshape(len(both), n_leaves, k).astype(np.int64)
                 << np.arange(k)[None, None, :]).sum(axis=2)
        cx, cb = codes[:n_x], codes[n_x:]
        table = _leaf_table(k)
        hist = np.bincount((np.arange(n_leaves)[None, :] * p + cb).ravel(),
                           minlength=n_leaves * p).reshape(n_leaves, p).astype(float)
        mean_table = np.einsum("lr,prk->lpk", hist, table) / n_bg  # (leaves, p, k)
        leaf_value = np.asarray(node_value, dtype=float)[leaves]
        onehot = np.zeros((n_leaves * k, n_p))
        used = players.ravel() >= 0
        onehot[np.flatnonzero(used), players.ravel()[used]] = 1.0
        contrib = mean_table[np.arange(n_leaves)[None, :], cx] * leaf_value[None, :, None]
        values += contrib.reshape(n_x, n_leaves * k) @ onehot
        if per_bg is not None:
            step = max(1, 4_000_000 // max(1, n_bg * n_leaves * k))
            for s0 in range(0, n_x, step):
                sl = slice(s0, min(n_x, s0 + step))
                g = table[cx[sl][:, None, :], cb[None, :, :]] * leaf_value[None, None, :, None]
                per_bg[sl] += g.reshape(g.shape[0], n_bg, n_leaves * k) @ onehot
    se = None if per_bg is None else _row_se(per_bg[:, :, :n_players], 1)
    return values[:, :n_players], se


def _onehot(player: np.ndarray, n_players: int) -> np.ndarray:
    out = np.zeros((len(player), n_players))
    used = player >= 0
    out[np.flatnonzero(used), player[used]] = 1.0
    return out


def explain(model: Any, X: Any, *, background: Any = None,
            features: Sequence[str] | None = None, output: str = "raw",
            positive_label: Any = None, max_background: int = 100, max_coalitions: int = 2048,
            seed: int = 0, uncertainty: bool = False,
            background_population: int | None = None) -> Explanation:
    """SHAP values of the rows ``X`` for ``model``, one column per original input.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        A binary classifier or a regressor with ``predict``.
    X : DataFrame
        The rows to explain, with the model's input columns.
    background : DataFrame, optional
        Typical rows (the training data, or the audited data) the explainer compares against;
        at most ``max_background`` of them are used (a simple random sample without
        replacement, not stratified, drawn with ``seed``). Needed except for a tree model
        explained in its raw output.
    features : list of str, optional
        The model's input columns (default: ``model.feature_names_in_``, else ``X``'s columns).
    output : {"raw", "probability", "auto"}
        ``"raw"``: the explainer's natural output space (log-odds for boosted trees and
        logistic regression; fastest). ``"probability"``: the probability of the positive
        class (needs ``predict_proba``). ``"auto"``: the probability when it can be
        explained exactly (forests and single trees, or at most 11 inputs, where the
        model-agnostic explainer enumerates every coalition), else the raw output, which the
        fast explainers give exactly.
    positive_label : optional
        The positive class (default: the model's last class).
    max_background : int
        Bound on the background sample (the model-agnostic explainer's cost grows with it).
    max_coalitions : int
        Coalitions of inputs the model-agnostic explainer evaluates per row, each against
        every background row. With ``2**n_features - 2`` or fewer it enumerates them all and
        the values are exact Shapley values; beyond, shap's KernelExplainer samples them.
    seed : int
        Seed of the background sample and of the model-agnostic explainer's sampling.
    uncertainty : bool
        Also estimate the standard error of every value due to the background sample
        (:attr:`Explanation.values_se`) where it is not free. It is free (always computed)
        for linear models and for the exact model-agnostic explainer; for scikit-learn trees
        it keeps the values against each background row; otherwise (LightGBM, XGBoost in a
        Pipeline, the sampling KernelExplainer) it explains the rows again against five
        disjoint fifths of the background, about doubling the cost.
    background_population : int, optional
        Rows the ``background`` given was itself drawn from, when it is already a sample
        (default: ``len(background)``); used for the finite-population correction of the
        standard error.

    Returns
    -------
    Explanation

    Raises
    ------
    lea_ai_audit.errors.ModelError
        A model with no ``predict``, or with more than two classes.
    lea_ai_audit.errors.InputError
        Rows without the model's columns, or no background where one is needed.

    Examples
    --------
    >>> from lea_ai_audit.datasets import make_demo, FEATURES
    >>> demo = make_demo(n_rows=2000, seed=1)
    >>> e = explain(demo.model, demo.test[FEATURES].head(50), background=demo.train[FEATURES])
    >>> e.output_space, e.max_additivity_error < 1e-9, e.background_size
    ('log-odds', True, 100)
    """
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {OUTPUTS}, got {output!r}",
                         "use 'raw' (fastest), 'probability' or 'auto'")
    if not hasattr(model, "predict"):
        raise ModelError(f"the model ({type(model).__name__}) has no predict method",
                         "pass a fitted scikit-learn-compatible estimator")
    if int(max_background) < 1:
        raise InputError(f"max_background must be at least 1, got {max_background}",
                         "pass e.g. 100")
    feats = _resolve_features(model, X, features)
    frame = _as_frame(X, feats, "X")
    feats = [str(c) for c in frame.columns]
    bg = None
    population = 0
    if background is not None:
        full = _as_frame(background, feats, "background")
        population = len(full)
        if background_population is not None:
            if int(background_population) < len(full):
                raise InputError(f"background_population ({background_population}) is below "
                                 f"the {len(full)} background rows given",
                                 "pass the number of rows the background was drawn from")
            population = int(background_population)
        bg = _sample_rows(full, int(max_background), seed)
        if len(bg) == 0:
            bg = None
    if bg is not None:
        frame = _align_dtypes(frame, bg)
    pos = _positive_index(model, positive_label) if _is_classifier(model) else 1
    if output == "auto":
        output = "probability" if _probability_is_exact(model, len(feats),
                                                        max_coalitions) else "raw"
    if output == "probability" and not hasattr(model, "predict_proba"):
        raise ModelError(f"the model ({type(model).__name__}) gives no probabilities",
                         "explain its raw output instead (output='raw')")
    import warnings

    import shap  # noqa: F401  (lazy: heavy)

    with warnings.catch_warnings():
        # shap and LightGBM warn about API changes that do not concern these values
        warnings.simplefilter("ignore")
        expl = _explain(model, frame, bg, feats, output, pos, max_coalitions, seed,
                        bool(uncertainty))
        if uncertainty and expl.values_se is None and expl.background_size > 0:
            expl = _subset_uncertainty(expl, model, frame, bg, feats, output, pos,
                                       max_coalitions, seed)
    return _finish_uncertainty(expl, population, bool(uncertainty))


def _finish_uncertainty(expl: Explanation, population: int, asked: bool) -> Explanation:
    """The finite-population correction of the standard error, and its description."""
    import dataclasses

    n = expl.background_size
    population = max(int(population), n)
    se, text = expl.values_se, expl.uncertainty
    if n == 0:
        se, text = None, ("none: path-dependent Tree SHAP uses no background sample, so its "
                          "values do not depend on one")
    elif se is None:
        text = text or ("not estimated (explain(..., uncertainty=True) estimates it)"
                        if not asked else "not estimated")
    elif population > n:
        se = se * math.sqrt(1.0 - n / population)
        text = (f"{text}, times sqrt(1 - {n}/{population}) (finite-population correction: "
                f"{n} of {population} rows drawn without replacement)")
    else:
        se = np.zeros_like(se)
        text = (f"0: the background is all {n} rows given, not a sample of them, so the "
                "values do not depend on which rows were drawn")
    return dataclasses.replace(expl, values_se=se, uncertainty=text,
                               background_population=population if n else 0)


def _subset_uncertainty(expl: Explanation, model: Any, frame: pd.DataFrame, bg: pd.DataFrame,
                        feats: list[str], output: str, pos: int, max_coalitions: int,
                        seed: int, n_subsets: int = 5) -> Explanation:
    """Standard error from explaining the rows again against disjoint parts of the background.

    The interventional value against the whole background is the mean of the values against
    ``n_subsets`` equal disjoint parts of it (exactly for exact explainers), so the standard
    deviation of those values / sqrt(n_subsets) estimates its standard error (with
    ``n_subsets - 1`` degrees of freedom: a rough estimate, stated as such).
    """
    import dataclasses

    n = len(bg)
    if n < 2 * n_subsets:
        return dataclasses.replace(expl, uncertainty=f"not estimated: {n} background rows are "
                                   f"too few to split into {n_subsets} parts")
    perm = np.random.default_rng(seed + 1).permutation(n)
    runs = []
    for part in np.array_split(perm, n_subsets):
        sub = bg.iloc[np.sort(part)].reset_index(drop=True)
        runs.append(_explain(model, frame, sub, feats, output, pos, max_coalitions, seed,
                             False).values)
    stack = np.stack(runs)
    se = stack.std(axis=0, ddof=1) / math.sqrt(n_subsets)
    return dataclasses.replace(expl, values_se=se, uncertainty=(
        f"estimated from {n_subsets} disjoint parts of the background explained separately: "
        f"the standard deviation of their values / sqrt({n_subsets}) (a rough estimate, "
        f"{n_subsets - 1} degrees of freedom)"))


def _explain(model: Any, frame: pd.DataFrame, bg: pd.DataFrame | None, feats: list[str],
             output: str, pos: int, max_coalitions: int, seed: int, pairs: bool
             ) -> Explanation:
    pre, final = _split_pipeline(model)
    kind = _tree_kind(final)
    fast = kind is not None or _is_linear(final)
    notes: list[str] = []
    flip = pos != 1
    n_bg = 0 if bg is None else len(bg)
    if pre is None:
        if fast:
            x_in = frame if kind is not None else frame.to_numpy(dtype=float)
            bg_in = None if bg is None else (bg if kind is not None else bg.to_numpy(dtype=float))
            if kind is None and bg_in is None:
                raise InputError("explaining a linear model needs background rows",
                                 "pass background= (e.g. the training data)")
            res = _explain_fast(final, kind, x_in, bg_in, output, pos, flip, False, None,
                                len(feats), pairs)
            if res is not None:
                used = 0 if "path-dependent" in res.method else n_bg
                return Explanation(res.values, res.base, res.fn(x_in), feats, frame, res.space,
                                   res.method, used, seed, (), values_se=res.se,
                                   uncertainty=res.uncertainty)
            notes.append(_FALLBACK_NOTE)
        both = _both(frame, bg)
        return _explain_agnostic(model, frame, both, None, None, feats, output, pos,
                                 max_coalitions, seed, notes)
    if bg is None:
        raise InputError("explaining a Pipeline needs background rows",
                         "pass background= (e.g. the training data)")
    both = _both(frame, bg)
    t_both = _dense(pre.transform(both))
    origin = _derived_columns(pre, both, feats, t_both)
    if origin is None:
        notes.append("the preprocessing mixes original columns (some derived column depends "
                     "on several of them), so the whole pipeline was explained "
                     "model-agnostically on the original columns")
        return _explain_agnostic(model, frame, both, None, None, feats, output, pos,
                                 max_coalitions, seed, notes)
    n_derived = int((origin >= 0).sum())
    notes.append(f"the preprocessing makes {t_both.shape[1]} columns, each from one original "
                 f"column ({n_derived} vary with theirs); each original column was explained "
                 "as one player: all the columns derived from it together")
    if fast:
        t_x, t_bg = t_both[:len(frame)], t_both[len(frame):]
        res = _explain_fast(final, kind, t_x, t_bg, output, pos, flip, True, origin, len(feats),
                            pairs)
        if res is not None:
            if res.note:
                notes[-1] = res.note
            return Explanation(res.values, res.base, res.fn(t_x), feats, frame, res.space,
                               res.method, len(t_bg), seed, tuple(notes), values_se=res.se,
                               uncertainty=res.uncertainty, columns_as_players=res.players)
        notes.append(_FALLBACK_NOTE)
    return _explain_agnostic(model, frame, both, final, (t_both, origin), feats, output, pos,
                             max_coalitions, seed, notes)


_FALLBACK_NOTE = ("no fast explainer gives this output for this model, so the model-agnostic "
                  "explainer was used")


def _both(frame: pd.DataFrame, bg: pd.DataFrame | None) -> pd.DataFrame:
    if bg is None:
        raise InputError("the model-agnostic explainer needs background rows",
                         "pass background= (e.g. the training data)")
    import pandas as pd

    return pd.concat([frame, bg], ignore_index=True)


def _explain_fast(final: Any, kind: str | None, x: Any, bg: Any, output: str, pos: int,
                  flip: bool, interventional: bool, origin: np.ndarray | None,
                  n_features: int, pairs: bool) -> _Part | None:
    """Tree or linear SHAP of ``final``; None when it cannot give the wanted output.

    ``origin`` (a Pipeline's) maps each column of ``x`` to its original column; the values
    returned are per original column.
    """
    import shap

    name = type(final).__name__
    player = np.arange(n_features) if origin is None else np.asarray(origin)
    if kind is None:  # linear
        if output == "probability":
            return None
        explainer = shap.LinearExplainer(final, bg)
        values, base = _pick_class(explainer.shap_values(x), explainer.expected_value, pos, flip)
        is_logit = name in ("LogisticRegression", "LogisticRegressionCV") or (
            name == "SGDClassifier" and getattr(final, "loss", "") == "log_loss")
        if _is_classifier(final):
            space = "log-odds" if is_logit else "decision function"
        else:
            space = "prediction"
        fn = _score_fn(final, pos, space)
        # against one background row r, input j's value is g_j(x) - g_j(r), with g_j the sum
        # of coef_c * column c over j's columns: its spread over r is that of g_j(r)
        coef = np.asarray(final.coef_, dtype=float).ravel() * (-1.0 if flip else 1.0)
        g_bg = (np.asarray(bg, dtype=float) * coef[None, :]) @ _onehot(player, n_features)
        se = np.broadcast_to(_row_se(g_bg, 0), (len(values), n_features)).copy()
        note = ""
        if origin is not None:
            values = _group_sum(values, origin, n_features)
            note = (f"the pipeline's final estimator ({name}) was explained on the "
                    f"{len(origin)} columns its preprocessing makes and the SHAP values of "
                    "the columns derived from each original column were summed: the model is "
                    "linear, hence additive in those columns, so the sum is exactly the "
                    "Shapley value of the original column as one player")
        return _Part(values, base, space, f"linear ({name}, interventional)", fn, se, _PER_ROW,
                     True, note)
    space, fn = _tree_raw(final, kind, pos)
    if output == "probability":
        if space != "probability":
            # shap's TreeExplainer(model_output="probability") is additive but its values
            # differ from the Shapley values of the probability by ~5% (measured against
            # brute force): the exact model-agnostic explainer takes over
            return None
        interventional = True  # the trees' probabilities average linearly: exact with data
    if not interventional:
        explainer = shap.TreeExplainer(final, feature_perturbation="tree_path_dependent")
        values, base = _pick_class(explainer.shap_values(x, check_additivity=False),
                                   explainer.expected_value, pos, flip, space)
        return _Part(values, base, space, f"tree ({name}, path-dependent)", fn)
    if bg is None:
        return None
    got = _sklearn_tree_parts(final, pos, flip) if kind == "sklearn" else None
    if got is not None and _tree_work(got[0], len(x), len(bg), n_features, pairs) \
            <= _TREE_BUDGET:
        xa, ba = np.asarray(x, dtype=float), np.asarray(bg, dtype=float)
        values, se = _tree_shapley(got[0], xa, ba, player, n_features, pairs)
        base = float(np.mean(fn(bg)))  # the model's own mean output over the background
        note = ""
        if origin is not None:
            note = (f"the pipeline's final estimator ({name}) was explained on the "
                    f"{len(origin)} columns its preprocessing makes, each original column "
                    "one player (its derived columns taken together from the explained row "
                    "or from the background row): the Shapley value of the original column")
        method = (f"tree ({name}, interventional, exact Shapley values with each "
                  f"{'original ' if origin is not None else ''}column one player)")
        return _Part(values, base, space, method, fn, se, _PER_ROW if se is not None else "",
                     True, note)
    if name.startswith("HistGradientBoosting"):
        return None  # shap 0.51's interventional values of these do not add up (measured)
    explainer = shap.TreeExplainer(final, data=bg, feature_perturbation="interventional")
    values, base = _pick_class(explainer.shap_values(x, check_additivity=False),
                               explainer.expected_value, pos, flip, space)
    players, note = True, ""
    if origin is not None:
        counts = np.bincount(origin[origin >= 0], minlength=n_features)
        players = bool((counts <= 1).all())
        values = _group_sum(values, origin, n_features)
        if players:
            note = (f"the pipeline's final estimator ({name}) was explained on the "
                    f"{len(origin)} columns its preprocessing makes, one per original "
                    "column: each column's value is its Shapley value")
        else:
            several = [i for i in range(n_features) if counts[i] > 1]
            note = (f"the pipeline's final estimator ({name}) was explained on the "
                    f"{len(origin)} columns its preprocessing makes, each a player of its "
                    "own, and the SHAP values of the columns derived from each original "
                    f"column were summed into it; for the {len(several)} original column(s) "
                    "with several derived columns (e.g. one-hot encoded) this sum is NOT in "
                    "general the Shapley value of the column as one player (it is only for "
                    "a model additive across its derived columns): the computation also "
                    "mixed derived columns of one original column from different rows "
                    "(e.g. two one-hot columns both on)")
    return _Part(values, base, space, f"tree ({name}, interventional)", fn, None, "", players,
                 note)


def _explain_agnostic(model: Any, frame: pd.DataFrame, both: pd.DataFrame, final: Any,
                      transformed: tuple[np.ndarray, np.ndarray] | None, feats: list[str],
                      output: str, pos: int, max_coalitions: int, seed: int,
                      notes: list[str]) -> Explanation:
    """Exact Shapley values over the original columns by enumerating every coalition (when
    ``2**inputs - 2 <= max_coalitions``), else shap's KernelExplainer (sampled coalitions).

    Every cell is coded by the row it comes from (the explained rows, then the background),
    so a masked case is assembled from real rows of any dtype. For a separable pipeline the
    assembly is done on the transformed matrix (each derived column taken from the row its
    original column comes from) and only the final estimator is called.
    """
    import pandas as pd

    space = "probability" if output == "probability" else _agnostic_space(model)
    n_x, m = len(frame), len(feats)
    n_bg = len(both) - n_x
    if transformed is not None:
        t_both, origin = transformed
        src = np.where(origin >= 0, origin, 0)
        cols = np.arange(t_both.shape[1])
        fn_final = _score_fn(final, pos, space)

        def f(z: np.ndarray) -> np.ndarray:
            rows = np.asarray(z, dtype=np.int64)[:, src]
            return fn_final(t_both[rows, cols])
    else:
        fn_model = _score_fn(model, pos, space)
        columns = {c: both[c] for c in feats}

        def f(z: np.ndarray) -> np.ndarray:
            r = np.asarray(z, dtype=np.int64)
            return fn_model(pd.DataFrame({c: columns[c].take(r[:, j]).reset_index(drop=True)
                                          for j, c in enumerate(feats)}))

    out = _score_fn(model, pos, space)(frame)  # the whole model, called independently
    exhaustive = m <= 20 and 2 ** m - 2 <= int(max_coalitions)
    if exhaustive:
        values, se, base = _enumerate_shapley(f, n_x, n_bg, m)
        method = (f"model-agnostic (exact Shapley values: all {2 ** m} coalitions of the {m} "
                  "inputs, each against every background row)")
        return Explanation(values, base, out, feats, frame, space, method, n_bg, seed,
                           tuple(notes), values_se=se, uncertainty=_PER_ROW)
    import shap

    ids = np.arange(len(both), dtype=float)
    z_x = np.repeat(ids[:n_x, None], m, axis=1)
    z_bg = np.repeat(ids[n_x:, None], m, axis=1)
    nsamples = int(max_coalitions)
    state = np.random.get_state()  # KernelExplainer samples coalitions with numpy's global RNG
    np.random.seed(seed % 2**32)
    try:
        explainer = shap.KernelExplainer(f, z_bg)
        values = np.asarray(explainer.shap_values(z_x, nsamples=nsamples, l1_reg=False,
                                                  silent=True), dtype=float)
    finally:
        np.random.set_state(state)
    values = values.reshape(n_x, m)
    base = float(np.ravel(explainer.expected_value)[0])
    method = (f"model-agnostic (shap KernelExplainer, {nsamples} sampled coalitions of the "
              f"{m} inputs: an estimate)")
    return Explanation(values, base, out, feats, frame, space, method, n_bg, seed,
                       tuple(notes))


# -- plain words -------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A plain Python value (numpy scalars unwrapped; missing -> None)."""
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # a list-like value: leave it as it is
        pass
    return value


def _fmt_value(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_amount(x: float) -> str:
    a = abs(x)
    if a >= 0.01:
        return f"{a:.2f}"
    return f"{a:.2g}"


def _fmt_margin(x: float) -> str:
    """A margin at the precision of the amounts: 2 decimals, or 1 significant digit below."""
    a = abs(x)
    if a >= 0.01:
        return f"{a:.2f}"
    return f"{a:.1g}"


def reason_text(feature: str, value: Any, contribution: float, space: str, *,
                margin: float | None = None) -> str:
    """``"prior_contacts = 7 raised the risk score by 0.18 (± 0.01)"``: one reason in words.

    ``margin`` (the half-width of the contribution's 95% interval) is shown as ``± margin``
    when given.

    Examples
    --------
    >>> reason_text("prior_contacts", 7, 0.1812, "probability")
    'prior_contacts = 7 raised the risk score by 0.18'
    >>> reason_text("age", 52, -0.034, "log-odds", margin=0.0123)
    'age = 52 lowered the risk score (log-odds) by 0.03 (± 0.01)'
    """
    what = SCORE_NAMES.get(space, "the score")
    tail = "" if margin is None or not math.isfinite(margin) else f" (± {_fmt_margin(margin)})"
    if contribution == 0:
        return f"{feature} = {_fmt_value(value)} did not change {what}{tail}"
    verb = "raised" if contribution > 0 else "lowered"
    return f"{feature} = {_fmt_value(value)} {verb} {what} by {_fmt_amount(contribution)}{tail}"


def _row_reasons(expl: Explanation, i: int, top: int) -> list[Reason]:
    row = expl.values[i]
    se_row = None if expl.values_se is None else expl.values_se[i]
    order = np.argsort(-np.abs(row), kind="stable")
    out = []
    for j in order[:max(int(top), 0)]:
        c = float(row[j])
        if c == 0.0 or not math.isfinite(c):
            continue
        feat = expl.features[j]
        value = _plain(expl.data[feat].iloc[i])
        se = None if se_row is None else float(se_row[j])
        margin = None if se is None else Z95 * se
        out.append(Reason(feat, value, c, reason_text(feat, value, c, expl.output_space,
                                                      margin=margin),
                          se, margin, expl.background_size))
    return out


def explain_cases(model: Any, X: Any, *, background: Any, features: Sequence[str] | None = None,
                  top: int = 3, seed: int = 0, positive_label: Any = None,
                  output: str = "auto", max_background: int = 100, uncertainty: bool = True,
                  background_population: int | None = None) -> list[list[Reason]]:
    """The top reasons behind the model's score of each row of ``X``, in plain words.

    Parameters
    ----------
    model : fitted estimator or Pipeline
    X : DataFrame
        The cases, with the model's input columns (a Pipeline's original columns).
    background : DataFrame
        Typical rows (e.g. the training data); at most ``max_background`` are used.
    features : list of str, optional
        The model's input columns (default: ``model.feature_names_in_``, else ``X``'s).
    top : int
        Reasons per case, largest ``|contribution|`` first (features that did not move the
        score are left out).
    seed : int
        Seed of the background sample and of the model-agnostic explainer.
    positive_label : optional
        The class whose score is explained (default: the model's last class).
    output : {"auto", "probability", "raw"}
        ``"auto"`` explains the probability of the positive class (contributions in
        probability points) when that can be done exactly — forests and single trees, or
        models with at most 11 inputs — else the model's raw score (log-odds for boosted
        trees, the decision score of an SVM), which the fast explainers give exactly; the
        text names the scale.
    max_background : int
        Background rows used (a simple random sample without replacement, seed ``seed``).
    uncertainty : bool
        Give each reason its standard error due to the background sample
        (:attr:`Reason.se`) and show its 95% margin in the text: ``"... by 0.18 (± 0.01)"``
        (see :func:`explain`).
    background_population : int, optional
        Rows ``background`` was itself drawn from, if it is already a sample (see
        :func:`explain`).

    Returns
    -------
    list of list of Reason
        One list per row of ``X``, in order.

    Examples
    --------
    >>> from lea_ai_audit.datasets import make_demo, FEATURES
    >>> demo = make_demo(n_rows=2000, seed=1)
    >>> out = explain_cases(demo.model, demo.test[FEATURES].head(3),
    ...                     background=demo.train[FEATURES], top=2)
    >>> len(out), len(out[0])
    (3, 2)
    """
    if background is None:
        raise InputError("no background rows given",
                         "pass background= typical rows, e.g. the training data")
    if int(top) < 1:
        raise InputError(f"top must be at least 1, got {top}", "pass e.g. top=3")
    expl = explain(model, X, background=background, features=features, output=output,
                   positive_label=positive_label, max_background=max_background, seed=seed,
                   uncertainty=uncertainty, background_population=background_population)
    if not uncertainty:  # no margins, even where they come for free
        import dataclasses

        expl = dataclasses.replace(expl, values_se=None)
    return expl.reasons(top=int(top))


def explain_case(model: Any, row: Any, *, background: Any,
                 features: Sequence[str] | None = None, top: int = 3, seed: int = 0,
                 positive_label: Any = None, output: str = "auto",
                 max_background: int = 100, uncertainty: bool = True,
                 background_population: int | None = None) -> list[Reason]:
    """The top reasons behind the model's score of one case (see :func:`explain_cases`).

    ``row`` is a pandas Series, a mapping of column to value, or a one-row DataFrame.

    Examples
    --------
    >>> from lea_ai_audit.datasets import make_demo, FEATURES
    >>> demo = make_demo(n_rows=2000, seed=1)
    >>> r = explain_case(demo.model, demo.test[FEATURES].iloc[0],
    ...                  background=demo.train[FEATURES])
    >>> [x.feature for x in r]  # doctest: +SKIP
    ['district', 'prior_contacts', 'offence_type']
    """
    import pandas as pd

    if isinstance(row, pd.DataFrame) and len(row) != 1:
        raise InputError(f"explain_case takes one case, got {len(row)} rows",
                         "use explain_cases for several")
    return explain_cases(model, row, background=background, features=features, top=top,
                         seed=seed, positive_label=positive_label, output=output,
                         max_background=max_background, uncertainty=uncertainty,
                         background_population=background_population)[0]


# -- importance --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Importance:
    """Global importance (mean |SHAP|) with its bootstrap stability.

    ``mean_abs[j]`` is feature ``features[j]``'s (weighted) mean |SHAP|; ``ci_low``/``ci_high``
    its bootstrap percentile interval; ``top_k`` the indices of the ``k`` most important;
    ``top_k_agreement`` the share of bootstrap resamples whose top-k set equals it;
    ``in_top_k`` each feature's share of resamples in which it is in the top k;
    ``rank_correlation`` the mean Spearman correlation of a resample's importances with the
    full sample's.
    """

    features: list[str]
    mean_abs: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    k: int
    top_k: list[int]
    top_k_agreement: float
    in_top_k: np.ndarray
    rank_correlation: float
    n_bootstrap: int

    @property
    def order(self) -> np.ndarray:
        """Feature indices, most important first."""
        return np.argsort(-self.mean_abs, kind="stable")

    @property
    def share(self) -> np.ndarray:
        """Each feature's share of the total mean |SHAP|."""
        total = float(self.mean_abs.sum())
        return self.mean_abs / total if total > 0 else np.zeros_like(self.mean_abs)

    def rank(self, feature: str) -> int:
        """1 for the most important feature."""
        j = self.features.index(feature)
        return int(np.flatnonzero(self.order == j)[0]) + 1


def _weighted_mean_abs(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w[:, None] * a).sum(axis=0) / w.sum()


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def global_importance(explanation: Explanation, *, weights: Any = None, strata: Any = None,
                      k: int = 3, n_bootstrap: int = 200, confidence: float = 0.90,
                      seed: int = 0) -> Importance:
    """Mean |SHAP| of every feature and how stable the ranking is over bootstrap resamples.

    Parameters
    ----------
    explanation : Explanation
    weights : array, optional
        Row weights (e.g. ``ctx.sample_weights(idx)`` for a stratified sample, so that the
        importance describes the whole data).
    strata : array of int, optional
        Stratum of each row: resampling is done within strata (a stratified bootstrap).
    k : int
        Size of the top set whose stability is measured.
    n_bootstrap : int
        Bootstrap resamples.
    confidence : float
        Level of the percentile intervals.

    Examples
    --------
    >>> imp = global_importance(expl, k=3)  # doctest: +SKIP
    >>> [imp.features[j] for j in imp.top_k], imp.top_k_agreement  # doctest: +SKIP
    (['district', 'prior_contacts', 'age'], 0.99)
    """
    a = np.abs(explanation.values)
    n, m = a.shape
    if n == 0:
        raise InputError("no rows were explained", "explain at least one row")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    full = _weighted_mean_abs(a, w)
    kk = max(1, min(int(k), m))
    order = np.argsort(-full, kind="stable")
    top = [int(j) for j in order[:kk]]
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(s == g) for g in np.unique(s)]
    boot = np.empty((int(n_bootstrap), m))
    for b in range(int(n_bootstrap)):
        idx = np.concatenate([mem[rng.integers(0, len(mem), len(mem))] for mem in members])
        boot[b] = _weighted_mean_abs(a[idx], w[idx])
    if n_bootstrap > 0:
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
        border = np.argsort(-boot, axis=1, kind="stable")[:, :kk]
        in_top = np.zeros((int(n_bootstrap), m), dtype=bool)
        np.put_along_axis(in_top, border, True, axis=1)
        want = np.zeros(m, dtype=bool)
        want[top] = True
        agreement = float((in_top == want).all(axis=1).mean())
        freq = in_top.mean(axis=0)
        if m > 1:
            rf, rb = _ranks(full), _ranks(boot)
            rf = rf - rf.mean()
            rb = rb - rb.mean(axis=1, keepdims=True)
            den = np.sqrt((rf ** 2).sum() * (rb ** 2).sum(axis=1))
            rho = np.where(den > 0, (rb @ rf) / np.where(den > 0, den, 1), 1.0)
            rank_corr = float(rho.mean())
        else:
            rank_corr = 1.0
    else:
        lo, hi, agreement, freq, rank_corr = full, full, float("nan"), np.zeros(m), float("nan")
    return Importance(list(explanation.features), full, np.asarray(lo), np.asarray(hi), kk,
                      top, agreement, np.asarray(freq), rank_corr, int(n_bootstrap))


def importance_by_group(explanation: Explanation, codes: Any, n_groups: int, *,
                        weights: Any = None) -> dict[str, np.ndarray]:
    """Mean |SHAP| of each feature in each group, with its standard error.

    Returns a dict of arrays: ``n`` (rows per group), ``mean`` and ``se`` (shape
    ``(n_groups, n_features)``). Weights (e.g. stratified-sample weights) are used for the
    means; the standard errors use Kish's effective sample size.

    Examples
    --------
    >>> by = importance_by_group(expl, codes, 3)  # doctest: +SKIP
    >>> by["mean"][1, 0]  # doctest: +SKIP
    """
    a = np.abs(explanation.values)
    codes = np.asarray(codes, dtype=np.int64)
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, dtype=float)
    m = a.shape[1]
    n = np.bincount(codes, minlength=n_groups)
    sw = np.bincount(codes, weights=w, minlength=n_groups)
    sw2 = np.bincount(codes, weights=w * w, minlength=n_groups)
    mean = np.full((n_groups, m), np.nan)
    se = np.full((n_groups, m), np.nan)
    for j in range(m):
        s1 = np.bincount(codes, weights=w * a[:, j], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = s1 / sw
            dev = np.bincount(codes, weights=w * (a[:, j] - mu[codes]) ** 2, minlength=n_groups)
            var = dev / sw
            n_eff = sw ** 2 / sw2
            mean[:, j] = mu
            se[:, j] = np.sqrt(var / np.maximum(n_eff - 1, 1))
    return {"n": n, "mean": mean, "se": se}


# -- proxies -----------------------------------------------------------------------------------
def _bins(col: pd.Series, n_bins: int, max_levels: int) -> tuple[np.ndarray, int, str]:
    """Integer bin codes of a column, their count, and how they were made."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if numeric and col.nunique(dropna=True) > n_bins:
        v = col.to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(v)
        edges = np.unique(np.quantile(v[ok], np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes = np.searchsorted(edges, v, side="right").astype(np.int64)
        k = len(edges) + 1
        codes[~ok] = k  # missing values: their own bin
        return codes, k + 1, f"{n_bins} quantile bins"
    codes, uniq = pd.factorize(col.astype(object), use_na_sentinel=False)
    codes = codes.astype(np.int64)
    k = len(uniq)
    if k > max_levels:  # rare levels pooled: keep the most frequent ones
        counts = np.bincount(codes, minlength=k)
        keep = np.argsort(-counts, kind="stable")[:max_levels - 1]
        remap = np.full(k, max_levels - 1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        return remap[codes], max_levels, f"{max_levels - 1} most frequent values + other"
    return codes, max(k, 1), "values"


def _auc_from_counts(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of scored points carrying ``pos`` positive and ``neg`` negative cases (ties 1/2)."""
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        return float("nan")
    uniq, inv = np.unique(score, return_inverse=True)
    p = np.bincount(inv, weights=pos, minlength=len(uniq))
    q = np.bincount(inv, weights=neg, minlength=len(uniq))
    below = np.cumsum(q) - q
    return float((p * (below + 0.5 * q)).sum() / (P * N))


def _proxy_auc(bins: np.ndarray, n_bins: int, groups: np.ndarray, n_groups: int,
               folds: np.ndarray) -> float:
    """Cross-fitted one-feature classifier's AUC (one group vs the rest, weighted by size).

    The classifier is the feature's frequency table: P(group | bin) from one fold, smoothed
    toward the group shares by one pseudo-case, scores the other fold.
    """
    G = n_groups
    tables = []
    for f in (0, 1):
        sel = folds == f
        tables.append(np.bincount(bins[sel] * G + groups[sel],
                                  minlength=n_bins * G).reshape(n_bins, G).astype(float))
    sizes = tables[0].sum(axis=0) + tables[1].sum(axis=0)
    if (sizes > 0).sum() < 2:
        return float("nan")
    aucs, wts = [], []
    for g in range(G):
        if sizes[g] == 0:
            continue
        scores, pos, neg = [], [], []
        for f in (0, 1):
            train, test = tables[1 - f], tables[f]
            prior = train.sum(axis=0) / max(train.sum(), 1.0)
            p = (train[:, g] + prior[g]) / (train.sum(axis=1) + 1.0)
            scores.append(p)
            pos.append(test[:, g])
            neg.append(test.sum(axis=1) - test[:, g])
        a = _auc_from_counts(np.concatenate(scores), np.concatenate(pos), np.concatenate(neg))
        if math.isfinite(a):
            aucs.append(a)
            wts.append(sizes[g])
    if not aucs:
        return float("nan")
    return float(np.average(aucs, weights=wts))


def _uncertainty_coefficient(bins: np.ndarray, n_bins: int, groups: np.ndarray,
                             n_groups: int) -> float:
    """Theil's U: the share of the attribute's entropy the feature explains (0-1)."""
    t = np.bincount(bins * n_groups + groups, minlength=n_bins * n_groups).reshape(
        n_bins, n_groups).astype(float)
    n = t.sum()
    pg = t.sum(axis=0) / n
    pb = t.sum(axis=1) / n
    hg = -np.sum(pg[pg > 0] * np.log(pg[pg > 0]))
    if hg <= 0:
        return float("nan")
    pj = t / n
    nz = pj > 0
    mi = np.sum(pj[nz] * np.log(pj[nz] / (pb[:, None] * pg[None, :])[nz]))
    return float(max(0.0, mi / hg))


def proxy_strength(data: pd.DataFrame, features: Sequence[str], sensitive: Sequence[str], *,
                   n_bins: int = 20, max_levels: int = 200, seed: int = 0
                   ) -> list[dict[str, Any]]:
    """How well each feature alone predicts each sensitive attribute.

    For every (feature, attribute): the AUC of a one-feature classifier (the feature's
    frequency table, fitted on one half of the rows and scored on the other, both ways; one
    group against the rest, averaged with the groups' sizes as weights: 0.5 = no information,
    1 = the feature gives the group away), and the uncertainty coefficient (the share of the
    attribute's entropy the feature explains, on all rows; it is biased upward for features
    with many values, the cross-fitted AUC is not). Numbers are cut into ``n_bins`` quantile
    bins; text and few-valued columns use their values (the ``max_levels`` most frequent).

    Returns
    -------
    list of dict
        ``{"feature", "attribute", "auc", "uncertainty", "binning", "n"}``, strongest first.

    Examples
    --------
    >>> from lea_ai_audit.datasets import make_police_triage
    >>> df = make_police_triage(5000, seed=2)
    >>> top = proxy_strength(df, ["district", "age"], ["ethnicity"])[0]
    >>> top["feature"], top["auc"] > 0.7
    ('district', True)
    """
    import pandas as pd

    if int(n_bins) < 2:
        raise InputError(f"n_bins must be at least 2, got {n_bins}", "pass e.g. 20")
    missing = [c for c in [*features, *sensitive] if c not in data.columns]
    if missing:
        raise InputError(f"column(s) {', '.join(map(repr, missing[:5]))} are not in the data",
                         "pass columns of the data")
    rng = np.random.default_rng(seed)
    folds = rng.integers(0, 2, len(data))
    rows = []
    for attr in sensitive:
        g_codes, g_uniq = pd.factorize(data[attr].astype(object), use_na_sentinel=False)
        g_codes = g_codes.astype(np.int64)
        for feat in features:
            if feat == attr:
                continue
            b, nb, how = _bins(data[feat], int(n_bins), int(max_levels))
            rows.append({"feature": str(feat), "attribute": str(attr),
                         "auc": _proxy_auc(b, nb, g_codes, len(g_uniq), folds),
                         "uncertainty": _uncertainty_coefficient(b, nb, g_codes, len(g_uniq)),
                         "binning": how, "n": len(data)})
    rows.sort(key=lambda r: -(r["auc"] if math.isfinite(r["auc"]) else 0.0))
    return rows


#: a feature determines a grouping when a classifier that sees only the feature recovers the
#: group with at least this balanced accuracy (cross-fitted)
DERIVED_MIN_ACCURACY = 0.99


def group_determination(data: pd.DataFrame, features: Sequence[str], groups: Any, *,
                        max_depth: int = 3, max_levels: int = 20, seed: int = 0
                        ) -> list[dict[str, Any]]:
    """How well each feature alone recovers the group of each row: is the grouping derived
    from the feature (age bands cut from age, a flag that is the attribute itself)?

    For each feature a classifier that sees only that feature is fitted on one half of the
    rows and predicts the group of the other half, both ways (cross-fitted, so that a feature
    with a value per row does not "determine" the group by memorising it): the most frequent
    group of each value for a feature with at most ``max_levels`` values (text, flags, small
    counts), else a decision tree of depth at most ``max_depth`` (up to ``2**max_depth``
    intervals of the number, which recovers any band cut from it with that many bands or
    fewer). Reported: the balanced accuracy (mean over the groups of the share of its rows
    recovered: 1/n_groups for a feature that says nothing, 1 when the group is a function of
    the feature) and the accuracy.

    Parameters
    ----------
    data : DataFrame
        Rows with the features.
    features : list of str
    groups : array-like
        The group of each row (any labels; missing values are a group of their own).
    max_depth : int
        Depth bound of the tree for a numeric feature.
    max_levels : int
        A feature with at most this many distinct values is treated by its values.
    seed : int
        Seed of the split into halves.

    Returns
    -------
    list of dict
        ``{"feature", "balanced_accuracy", "accuracy", "classifier", "n"}``, one per feature.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": range(18, 78), "noise": [i % 7 for i in range(60)]})
    >>> band = pd.cut(df["age"], [0, 25, 45, 200]).astype(str)
    >>> [round(r["balanced_accuracy"], 2) for r in group_determination(df, ["age"], band)]
    [1.0]
    """
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    codes, uniq = pd.factorize(pd.Series(np.asarray(groups, dtype=object)),
                               use_na_sentinel=False)
    codes = np.asarray(codes, dtype=np.int64)
    n, n_groups = len(codes), max(len(uniq), 1)
    if len(data) != n:
        raise InputError(f"{len(data)} rows of data but {n} group labels",
                         "pass one group per row")
    rng = np.random.default_rng(seed)
    folds = rng.permutation(n) % 2  # two halves of (almost) equal size
    out = []
    for feat in features:
        col = data[feat]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        pred = np.full(n, -1, dtype=np.int64)
        if numeric and col.nunique(dropna=True) > int(max_levels):
            v = col.to_numpy(dtype=float, na_value=np.nan)[:, None]
            how = f"decision tree of depth {int(max_depth)} or less on the value"
            for f in (0, 1):
                train, test = folds != f, folds == f
                if not train.any() or not test.any():
                    continue
                tree = DecisionTreeClassifier(max_depth=int(max_depth), random_state=0)
                pred[test] = tree.fit(v[train], codes[train]).predict(v[test])
        else:
            levels, _ = pd.factorize(col.astype(object), use_na_sentinel=False)
            levels = np.asarray(levels, dtype=np.int64)
            k = int(levels.max()) + 1 if n else 1
            how = "most frequent group of each value"
            for f in (0, 1):
                train, test = folds != f, folds == f
                if not train.any() or not test.any():
                    continue
                table = np.bincount(levels[train] * n_groups + codes[train],
                                    minlength=k * n_groups).reshape(k, n_groups)
                overall = int(np.argmax(table.sum(axis=0)))
                best = np.where(table.sum(axis=1) > 0, np.argmax(table, axis=1), overall)
                pred[test] = best[levels[test]]
        hit = pred == codes
        recall = [hit[codes == g].mean() for g in range(n_groups) if (codes == g).any()]
        out.append({"feature": str(feat),
                    "balanced_accuracy": float(np.mean(recall)) if recall else float("nan"),
                    "accuracy": float(hit.mean()) if n else float("nan"),
                    "classifier": how, "n": n})
    return out


# -- plots -------------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    import io

    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight",
                    metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def _short(text: Any, limit: int = 32) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def plot_importance(importance: Importance, *, space: str = "", max_features: int = 15,
                    title: str = "Which inputs drive the score") -> bytes:
    """A horizontal bar chart of mean |SHAP| with bootstrap intervals, as PNG bytes.

    Examples
    --------
    >>> png = plot_importance(global_importance(expl))  # doctest: +SKIP
    >>> png[:4]  # doctest: +SKIP
    b'\\x89PNG'
    """
    plt = _pyplot()
    order = importance.order[:max_features][::-1]
    names = [_short(importance.features[j]) for j in order]
    vals = importance.mean_abs[order]
    err = np.vstack([np.maximum(vals - importance.ci_low[order], 0),
                     np.maximum(importance.ci_high[order] - vals, 0)])
    top = set(importance.top_k)
    colors = ["#1f4e79" if j in top else "#8fa9c4" for j in order]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.4))
    ax.barh(names, vals, xerr=err, color=colors, capsize=3, ecolor="#444444")
    unit = f" ({space})" if space else ""
    ax.set_xlabel(f"mean |SHAP value|{unit}: average effect on the score")
    ax.set_title(f"{title}\n(dark: top {importance.k}; bars: "
                 f"{importance.n_bootstrap} bootstrap resamples)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_case(explanation: Explanation, row: int = 0, *, max_features: int = 10,
              title: str | None = None) -> bytes:
    """One case's explanation: each input's push up (red) or down (blue) on the score.

    Examples
    --------
    >>> png = plot_case(expl, 0)  # doctest: +SKIP
    """
    plt = _pyplot()
    v = explanation.values[row]
    order = np.argsort(-np.abs(v), kind="stable")[:max_features][::-1]
    labels = [_short(f"{explanation.features[j]} = "
                     f"{_fmt_value(_plain(explanation.data[explanation.features[j]].iloc[row]))}",
                     40) for j in order]
    vals = v[order]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.6))
    ax.barh(labels, vals, color=["#c0392b" if x > 0 else "#2e86c1" for x in vals])
    ax.axvline(0, color="#333333", linewidth=0.8)
    space = explanation.output_space
    ax.set_xlabel(f"effect on the score ({space}); red raises it, blue lowers it")
    out = float(explanation.output[row])
    ax.set_title(title or f"Why this case scored {out:.3g} ({space}); the average case "
                          f"scores {explanation.base_value:.3g}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_importance_by_group(panels: Sequence[tuple[str, list[str], list[str], np.ndarray]], *,
                             space: str = "") -> bytes:
    """Mean |SHAP| per feature per group: one panel per sensitive attribute.

    ``panels`` holds ``(attribute, group labels, feature names, means[groups, features])``.

    Examples
    --------
    >>> png = plot_importance_by_group([("sex", ["f", "m"], ["age"], np.ones((2, 1)))])
    >>> png[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    k = max(1, len(panels))
    n_feat = max((len(p[2]) for p in panels), default=1)
    fig, axes = plt.subplots(1, k, figsize=(3.4 * k + 2, 0.45 * n_feat + 1.8), squeeze=False,
                             sharey=True)
    for i, (ax, (attr, labels, feats, means)) in enumerate(zip(axes[0], panels, strict=False)):
        means = np.asarray(means, dtype=float)
        n_g = len(labels)
        y = np.arange(len(feats))[::-1]
        h = 0.8 / max(n_g, 1)
        for g in range(n_g):
            ax.barh(y + (n_g / 2 - g - 0.5) * h, np.nan_to_num(means[g]), height=h,
                    label=_short(labels[g], 20))
        if i == 0:
            ax.set_yticks(y)
            ax.set_yticklabels([_short(f, 24) for f in feats])
        ax.set_title(f"by {_short(attr, 30)}", fontsize=10)
        ax.set_xlabel(f"mean |SHAP|{f' ({space})' if space else ''}")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Importance of each input, by group", fontsize=11)
    return _png(fig)
