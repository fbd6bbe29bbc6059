"""AuditContext: everything the checks need, validated and computed once.

The context holds the audited data, the labels, the model's predictions and scores (computed
once, or taken from the data for a vendor's tool whose model cannot be seen), the group codes
of every sensitive attribute and of their intersection, and caches of the group confusion
counts. Checks read it; they never recompute predictions.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"y": [0, 1, 1, 0], "p": [0, 1, 0, 0], "g": ["a", "a", "b", "b"]})
>>> ctx = AuditContext.build(df, target="y", sensitive=["g"], prediction="p")
>>> ctx.n, ctx.groupings()[0].labels
(4, ['a', 'b'])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import errors as E
from .stats import ConfusionCounts, confusion_counts, group_auc, score_order

__all__ = ["AuditContext", "Grouping"]

MISSING_GROUP = "(missing)"
INTERSECTION_SEP = " & "

#: The one decision rule of the audit: a case is flagged (positive decision) when its score is
#: at least the threshold, ``score >= threshold``; a score exactly at the threshold is flagged.
#: It applies to ``score=`` alone and to ``model=`` whose ``predict()`` is the cut of
#: ``predict_proba`` at 0.5 (see :meth:`AuditContext.build`).
DEFAULT_THRESHOLD = 0.5
#: scores within this distance of 0.5 are ties when ``predict()`` is compared with the cut of
#: ``predict_proba`` at 0.5 (argmax and ``decision_function > 0`` break ties differently)
TIE_TOLERANCE = 1e-9
#: a sensitive attribute of at least ID_LIKE_MIN_ROWS rows with more distinct values than
#: ID_LIKE_SHARE of its rows looks like an identifier (a case number, a date of birth), not a group
ID_LIKE_MIN_ROWS = 20
ID_LIKE_SHARE = 0.5


@dataclass(frozen=True)
class Grouping:
    """A partition of the rows: one sensitive attribute, or the intersection of several.

    ``codes[i]`` is the group of row ``i``; ``labels[g]`` names group ``g``; ``reference`` is
    the index of the reference group.
    """

    name: str
    attributes: tuple[str, ...]
    codes: np.ndarray = field(repr=False)
    labels: list[str]
    reference: int
    reference_source: str  # "given", "largest", or how an intersection's reference was chosen
    #: of an intersection: each cell's group code in each of its attributes (cells x attributes)
    cells: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    @property
    def is_intersection(self) -> bool:
        return len(self.attributes) > 1


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _first_na_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_threshold(threshold: Any) -> float:
    """``threshold`` as a float; a typed error if it is not a finite number."""
    import numbers

    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        raise E.InputError(E.THRESHOLD_NOT_NUMBER.format(got=repr(threshold)), E.THRESHOLD_FIX)
    value = float(threshold)
    if not np.isfinite(value):
        raise E.InputError(E.THRESHOLD_NOT_FINITE.format(value=value), E.THRESHOLD_FIX)
    return value


def _threshold_unused(threshold: float, why: str, fix: str) -> None:
    """Refuse a threshold other than the default where no decision is derived from it."""
    if threshold != DEFAULT_THRESHOLD:
        raise E.InputError(E.THRESHOLD_UNUSED.format(threshold=threshold, why=why), fix)


def _threshold_unused_with_prediction(threshold: float, prediction: str) -> None:
    """A prediction column makes the decisions: a threshold other than the default is refused."""
    _threshold_unused(threshold, f"the decisions are prediction column {prediction!r}",
                      "drop threshold= (--threshold), or drop prediction= (--prediction-col) to "
                      "flag the cases whose score >= threshold")


def _check_score_scale(lo: float, hi: float, threshold: float, *, what: str) -> None:
    """The threshold must fit the scores it cuts (``lo``..``hi``, both finite).

    Scores outside [0, 1] with the default threshold 0.5 (a probability cut-off): refused, the
    cut-off must be given on the scores' scale. Probabilities (within [0, 1]) with a threshold
    outside [0, 1]: refused, every case or none would be flagged.
    """
    if lo < 0.0 or hi > 1.0:
        if threshold == DEFAULT_THRESHOLD:
            raise E.DataError(E.SCORES_NOT_PROBABILITIES.format(what=what, lo=lo, hi=hi),
                              E.SCORES_NOT_PROBABILITIES_FIX)
    elif not 0.0 <= threshold <= 1.0:
        effect = "no case would be flagged" if threshold > 1.0 else "every case would be flagged"
        raise E.InputError(E.THRESHOLD_OUT_OF_RANGE.format(
            threshold=threshold, what=what, lo=lo, hi=hi, effect=effect),
            E.THRESHOLD_OUT_OF_RANGE_FIX)


def _check_finite_scores(scores: np.ndarray, *, name: str | None) -> None:
    """Refuse infinite scores (NaN is refused before, as a missing value), naming the row."""
    bad = ~np.isfinite(scores)
    if bad.any():
        if name is None:  # the model's own scores
            what = "NaN" if np.isnan(scores[bad]).all() else "non-finite"
            raise E.ModelError(E.MODEL_NOT_FINITE.format(count=int(bad.sum()), what=what,
                                                         row=_first_na_row(bad)),
                               E.MODEL_NOT_FINITE_FIX)
        raise E.DataError(E.NOT_FINITE.format(role="score", name=name, count=int(bad.sum()),
                                              row=_first_na_row(bad)), E.NOT_FINITE_FIX)


def _check_group_count(name: str, labels: Sequence[str], n_rows: int) -> None:
    """A sensitive attribute must split the rows into groups that can be compared.

    One group only: nothing to compare. More distinct values than ``ID_LIKE_SHARE`` of the
    rows (with at least ``ID_LIKE_MIN_ROWS`` rows): an identifier, not a group.
    """
    n_groups = len(labels)
    if n_groups < 2:
        label = "every value missing" if labels[0] == MISSING_GROUP else repr(labels[0])
        raise E.DataError(E.ONE_GROUP.format(name=name, label=label), E.ONE_GROUP_FIX)
    if n_rows >= ID_LIKE_MIN_ROWS and n_groups > ID_LIKE_SHARE * n_rows:
        raise E.DataError(E.ID_LIKE.format(name=name, groups=n_groups, rows=n_rows),
                          E.ID_LIKE_FIX)
    _check_group_cap(f"sensitive column {name!r}", n_groups)


def _check_group_cap(what: str, n_groups: int, factor: int = 1) -> None:
    """More groups than ``LEA_AUDIT_MAX_GROUPS`` (times ``factor``) are refused at once, with
    the reason, rather than audited for minutes into a report of empty groups."""
    from ._limits import limits

    cap = limits().max_groups
    if cap is not None and n_groups > cap * factor:
        raise E.DataError(E.TOO_MANY_GROUPS.format(what=what, groups=n_groups,
                                                   cap=cap * factor), E.TOO_MANY_GROUPS_FIX)


def _binary(values: pd.Series, role: str, name: str, positive_label: Any) -> tuple[np.ndarray, Any]:
    """0/1 int8 array from a label-like column; returns it and the positive value used."""
    na = values.isna().to_numpy()
    if na.any():
        raise E.DataError(
            E.MISSING_VALUES.format(role=role, name=name, count=int(na.sum()),
                                    row=_first_na_row(na)), E.MISSING_VALUES_FIX)
    uniq = pd.unique(values)
    if positive_label is not None and positive_label not in set(uniq.tolist()) \
            and isinstance(positive_label, str):
        # from the command line every label is text: match the column's values as text
        as_text = {str(u): u for u in uniq.tolist()}
        if positive_label in as_text:
            positive_label = as_text[positive_label]
    if positive_label is not None:
        if positive_label not in set(uniq.tolist()):
            shown = ", ".join(repr(u) for u in sorted(map(str, uniq))[:6])
            raise E.DataError(f"positive_label {positive_label!r} does not occur in {role} column "
                              f"{name!r} (values: {shown})", "pass one of the values it holds")
        if len(uniq) > 2:
            raise E.DataError(E.NOT_BINARY.format(role=role, name=name,
                                                  found=f"values {_shown_values(uniq)}"),
                              "audit one outcome at a time: recode it as 0/1 yourself (1 = "
                              f"{positive_label!r}, 0 = the other values), so that the audit "
                              "compares what you mean")
        return (values.to_numpy() == positive_label).astype(np.int8), positive_label
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy().astype(np.int8), True
    if pd.api.types.is_numeric_dtype(values) and set(np.unique(uniq).tolist()) <= {0, 1}:
        return values.to_numpy().astype(np.int8), 1
    found = ", ".join(repr(u) for u in uniq.tolist()[:6]) + (", ..." if len(uniq) > 6 else "")
    fix = E.NOT_BINARY_FIX if len(uniq) <= 2 else E.MULTICLASS_FIX
    if pd.api.types.is_float_dtype(values) and len(uniq) > 2:
        fix = "pass 0/1 decisions here; scores belong in score= (--score-col)"
    raise E.DataError(E.NOT_BINARY.format(role=role, name=name, found=f"values {found}"), fix)


def _same_label(a: Any, b: Any) -> bool:
    """Equal labels of the same kind (1 == 1.0 == True; '1' is not 1)."""
    if isinstance(a, str) != isinstance(b, str):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic labels
        return False


def _kind(values: Sequence[Any]) -> str:
    return "text" if any(isinstance(v, str) for v in values) else "numbers"


def _shown_values(values: Sequence[Any], k: int = 6) -> str:
    vals = [v.item() if isinstance(v, np.generic) else v for v in list(values)[:200]]
    try:
        vals = sorted(vals)
    except TypeError:
        vals = sorted(vals, key=str)
    return ", ".join(f"{v:.4g}" if isinstance(v, float) else repr(v) for v in vals[:k]) + (
        ", ..." if len(values) > k else "")


def _label_kinds(model_labels: Sequence[Any], target_labels: Sequence[Any]) -> str:
    """' (the model's labels are text, the target's numbers)' when that is the mismatch."""
    if _kind(model_labels) != _kind(target_labels) and \
            {str(v) for v in model_labels} >= {str(v) for v in target_labels}:
        return (f" (the model's labels are {_kind(model_labels)}, the target's "
                f"{_kind(target_labels)})")
    return ""


def _dataframe_digest(df: pd.DataFrame, row_hashes: np.ndarray | None = None) -> str:
    """SHA-256 over the column names, dtypes and the row hashes of ``df``."""
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    if row_hashes is None:
        row_hashes = pd.util.hash_pandas_object(df, index=False).to_numpy()
    h.update(row_hashes.tobytes())
    return h.hexdigest()


_ARGMAX_MODULES = ("lightgbm", "xgboost", "sklearn.ensemble", "sklearn.tree",
                   "sklearn.linear_model", "sklearn.naive_bayes")


def _predicts_argmax(model: Any) -> bool:
    """True for model families whose predict() is the class of highest predict_proba."""
    est = model
    while hasattr(est, "steps"):  # a Pipeline: its final estimator predicts
        est = est.steps[-1][1]
    module = type(est).__module__ or ""
    name = type(est).__name__
    return module.startswith(_ARGMAX_MODULES) and "Stacking" not in name and \
        "Voting" not in name


def intersection_reference(parts: Sequence[Grouping], cells: np.ndarray,
                           sizes: np.ndarray) -> tuple[int, str]:
    """The reference cell of an intersection, and how it was chosen (stated on the card).

    ``cells[c, a]`` is cell ``c``'s group in attribute ``a`` (of ``parts``); ``sizes`` the
    cells' row counts. The reference is the cell that combines each attribute's own reference
    group (declared, or the largest where none was declared): race=Caucasian declared, sex=Male
    and age_cat=25 - 45 the largest give the cell Caucasian & Male & 25 - 45. When that
    combination does not occur: the largest cell holding every *declared* reference group
    (e.g. the largest Caucasian cell), and only without any declared reference the largest
    cell of all. Never silently: the text says which rule applied.
    """
    refs = np.array([g.reference for g in parts], dtype=np.int64)
    declared = np.array([g.reference_source == "given" for g in parts], dtype=bool)
    how = ", ".join(f"{g.name}={g.labels[g.reference]} "
                    f"({'declared' if g.reference_source == 'given' else 'largest'})"
                    for g in parts)
    hits = np.flatnonzero((cells == refs).all(axis=1))
    if len(hits):
        if declared.all():
            return int(hits[0]), "given"
        return int(hits[0]), f"the combination of each attribute's reference group: {how}"
    if declared.any():
        ok = (cells[:, declared] == refs[declared]).all(axis=1)
        if ok.any():
            cell = int(np.flatnonzero(ok)[np.argmax(sizes[ok])])
            names = ", ".join(f"{g.name}={g.labels[g.reference]}"
                              for g, d in zip(parts, declared, strict=True) if d)
            return cell, (f"the largest cell with {names}: the combination of each "
                          f"attribute's reference group ({how}) does not occur in the data")
    return int(np.argmax(sizes)), (f"the largest cell: the combination of each attribute's "
                                   f"reference group ({how}) does not occur in the data")


class AuditContext:
    """Validated audit inputs with predictions, scores and groups computed once.

    Build it with :meth:`AuditContext.build`; :func:`lea_ai_audit.audit` does that for you.

    Attributes
    ----------
    data : DataFrame
        The audited rows.
    y_true, y_pred : ndarray of int8
        Outcome and decision, 1 = positive (e.g. "flagged as high risk").
    scores : ndarray of float or None
        The model's score for the positive class, if any.
    sensitive : list of str
        Sensitive attributes, in the order given.
    """

    def __init__(self) -> None:  # use build()
        self._counts: dict[str, ConfusionCounts] = {}
        self._samples: dict[tuple[Any, ...], Any] = {}
        self._aucs: dict[str | None, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        #: column -> (non-missing values, distinct ones): counted once, shared by the checks
        self.distinct: dict[str, tuple[int, int]] = {}
        self.attestations: dict[str, str] = {}
        self.decisions: Any = None  # a lea_ai_audit.decisions.DecisionLog, when given
        #: how the decisions were made, in words (the report's subject["decision_rule"])
        self.decision_rule: str | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        data: pd.DataFrame,
        *,
        target: str,
        sensitive: str | Sequence[str],
        model: Any = None,
        prediction: str | None = None,
        score: str | None = None,
        reference: pd.DataFrame | None = None,
        reference_groups: Mapping[str, Any] | None = None,
        features: Sequence[str] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        positive_label: Any = None,
        seed: int = 0,
        attestations: Mapping[str, str] | None = None,
        model_file: str | None = None,
        decisions: Any = None,
        schema: Any = None,
        metadata: Mapping[str, Any] | None = None,
        declared_population: Mapping[str, Mapping[str, float]] | None = None,
    ) -> AuditContext:
        """Validate the inputs and compute predictions, scores and group codes.

        Parameters
        ----------
        threshold : float
            The decision rule, one for every source of scores: a case is flagged when its
            score is at least the threshold (``score >= threshold``; a score exactly at the
            threshold is flagged). It decides the cases of ``score=`` without ``prediction=``,
            and those of ``model=`` whose ``predict()`` is the cut of ``predict_proba`` at
            0.5 (scikit-learn's classifiers, LightGBM, XGBoost): there the decision is
            ``predict_proba[:, positive] >= threshold``, so auditing the model and auditing
            its exported probabilities with ``score=`` give the same decisions, ties
            included (``predict()`` itself puts an exact 0.5 on the first class). A model
            with its own decision rule (a tuned threshold, a custom ``predict``) and a model
            without ``predict_proba`` are audited on their ``predict()``. The default 0.5 is a
            cut-off for probabilities: scores outside [0, 1] need their own (e.g. 50 for
            scores 0-100), and a threshold outside [0, 1] is refused for probabilities. A
            threshold other than 0.5 that decides nothing (``prediction=`` given, a model
            with its own rule) is refused rather than ignored. The rule used is the report's
            ``subject["decision_rule"]``.
        positive_label : optional
            The target's positive value when it is not 0/1 or bool. The target must hold two
            values: a multi-class outcome is refused (recode it as one class vs the rest).

        Raises
        ------
        lea_ai_audit.errors.InputError
            (or a subclass) naming what is wrong and how to fix it: missing columns, missing
            or infinite values, a non-binary target, a threshold that does not fit the scores,
            a model whose ``predict()`` does not return the target's labels (a regressor,
            labels of another type, NaN), a sensitive attribute with one group or with a
            distinct value in most rows (an identifier).

        Examples
        --------
        >>> df = pd.DataFrame({"y": [0, 1, 1, 0], "risk": [0.2, 0.5, 0.9, 0.7],
        ...                    "g": ["a", "a", "b", "b"]})
        >>> ctx = AuditContext.build(df, target="y", sensitive="g", score="risk")
        >>> ctx.y_pred.tolist(), ctx.decision_rule
        ([0, 1, 1, 1], "flagged when score column 'risk' >= 0.5")
        """
        ctx = cls()
        if not isinstance(data, pd.DataFrame):
            raise E.InputError(f"data must be a pandas DataFrame, got {type(data).__name__}",
                               "load it with pandas.read_csv / read_parquet first")
        if data.shape[0] == 0:
            raise E.DataError("the data has no rows", "pass the cases to audit")
        from ._limits import check_columns

        check_columns(data.shape[1], "the data")
        if data.columns.duplicated().any():
            dup = str(data.columns[data.columns.duplicated()][0])
            raise E.DataError(f"the data has two columns named {dup!r}",
                              "rename or drop one of them")
        columns = [str(c) for c in data.columns]
        if list(data.columns) != columns:
            data = data.set_axis(columns, axis=1)  # a shallow relabel; the index is never used

        def need(role: str, name: str | None) -> str | None:
            if name is None:
                return None
            if not isinstance(name, str):
                raise E.InputError(f"{role} must be a column name, got {type(name).__name__}",
                                   f"pass the name of the {role} column as a string")
            if name not in data.columns:
                raise E.ColumnNotFoundError(role, name, columns)
            return name

        if not target:
            raise E.InputError("no target given", "pass target= the column holding the outcome")
        need("target", target)
        sens = _as_list(sensitive)
        if not sens:
            raise E.InputError("no sensitive attribute given",
                               "pass sensitive=[...] (--sensitive), e.g. ethnicity and sex")
        if len(set(sens)) != len(sens):
            raise E.InputError(f"sensitive attributes repeat: {sens}", "name each one once")
        for s in sens:
            need("sensitive", s)
            if s == target:
                raise E.InputError(f"sensitive attribute {s!r} is the target",
                                   "pass the outcome as target and group attributes as sensitive")
        need("prediction", prediction)
        need("score", score)
        for role, col in (("prediction", prediction), ("score", score)):
            if col is not None and (col == target or col in sens):
                raise E.InputError(f"{role} column {col!r} is also the target or a sensitive "
                                   "attribute", f"pass the model's {role}s in their own column")
        if model is None and prediction is None and score is None:
            raise E.InputError("nothing to audit: no model, predictions or scores",
                               "pass model= (a fitted estimator), or prediction= / score= columns "
                               "(--prediction-col / --score-col)")
        if model is not None and (prediction is not None or score is not None):
            raise E.InputError("both a model and prediction/score columns were given",
                               "pass either model= or the prediction= / score= columns, not both")

        ctx.data = data
        ctx.target = target
        ctx.sensitive = sens
        ctx.seed = int(seed)
        ctx.threshold = _check_threshold(threshold)
        if prediction is not None:
            _threshold_unused_with_prediction(ctx.threshold, prediction)
        ctx.reference = reference
        ctx.attestations = dict(attestations or {})
        ctx.decisions = decisions
        if schema is not None:  # a bad schema is bad input, not a check that cannot run
            from .schema import load_schema
            schema = load_schema(schema)
        ctx.schema = schema  # a user-supplied pandera schema (object or YAML path), or None
        ctx.metadata = dict(metadata or {})  # model-card metadata (owner, intended use, ...)
        if declared_population is not None:  # {attribute: {group: share}}, e.g. a census
            from .checks.data_quality import _validate_population

            try:
                _validate_population(dict(declared_population))
            except (ValueError, TypeError) as exc:
                raise E.InputError(f"declared population: {exc}",
                                   "give {attribute: {group: share, ...}} with shares in [0, 1] "
                                   "adding up to at most 1") from None
            unknown = [a for a in declared_population if a not in sens]
            if unknown:
                raise E.InputError(f"a population is declared for {unknown[0]!r}, which is not "
                                   "a sensitive attribute of this audit",
                                   f"declare it for one of {', '.join(sens)}")
            declared_population = {str(a): {str(g): float(v) for g, v in shares.items()}
                                   for a, shares in declared_population.items()}
        ctx.declared_population = declared_population
        if reference is not None and not isinstance(reference, pd.DataFrame):
            raise E.InputError(f"reference must be a pandas DataFrame, got "
                               f"{type(reference).__name__}",
                               "load the training data with pandas first (--reference FILE)")
        ctx.model = model
        ctx.model_file = model_file
        ctx.prediction_col = prediction
        ctx.score_col = score
        ctx.y_true, ctx.positive_label = _binary(data[target], "target", target, positive_label)
        if len(np.unique(ctx.y_true)) < 2:
            only = "positive" if ctx.y_true[0] == 1 else "negative"
            raise E.DataError(f"target column {target!r} holds one class only (all {only})",
                              "audit data with both outcomes; error rates need both")

        ctx._target_labels = pd.unique(data[target]).tolist()
        excluded = {target, *sens} | {c for c in (prediction, score) if c}
        if model is None and score is not None:  # cheap checks of the data before the groups
            s = data[score]
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                raise E.DataError(f"score column {score!r} is not numeric",
                                  "pass the risk score as numbers (higher = more risk)")
            na = s.isna().to_numpy()
            if na.any():
                raise E.DataError(E.MISSING_VALUES.format(role="score", name=score,
                                                          count=int(na.sum()),
                                                          row=_first_na_row(na)),
                                  E.MISSING_VALUES_FIX)
        ctx._groupings = ctx._make_groupings(reference_groups or {})
        if model is not None:
            ctx.features = ctx._model_features(model, features, excluded)
            ctx.y_pred, ctx.scores, ctx.decision_rule = ctx._predict(model)
            ctx.prediction_source = "model"
        else:
            ctx.features = [f for f in (features or []) if f in data.columns]
            ctx.scores = None
            if score is not None:
                ctx.scores = data[score].to_numpy(dtype=float)
                _check_finite_scores(ctx.scores, name=score)
            if prediction is not None:
                col = data[prediction]
                textual = not (pd.api.types.is_numeric_dtype(col)
                               or pd.api.types.is_bool_dtype(col))
                if textual and ctx.positive_label not in set(pd.unique(col).tolist()):
                    shown = ", ".join(repr(u) for u in pd.unique(col).tolist()[:6])
                    raise E.DataError(
                        f"prediction column {prediction!r} holds {shown}, not decisions in the "
                        f"target's labels (positive: {ctx.positive_label!r})",
                        "pass the column with the tool's 0/1 decision")
                # decisions in the target's own labels read its positive label (2 of 1/2,
                # 0 with positive_label=0); other numbers are the 0/1 code (1 = flagged)
                labels = set(pd.unique(data[target]).tolist())
                in_labels = set(pd.unique(col).tolist()) <= labels
                pl = ctx.positive_label if textual or in_labels else None
                ctx.y_pred, _ = _binary(col, "prediction", prediction, pl)
                ctx.prediction_source = "prediction"
                ctx.decision_rule = f"the decisions in prediction column {prediction!r}"
            else:
                _check_score_scale(float(ctx.scores.min()), float(ctx.scores.max()),
                                   ctx.threshold, what=f"the scores in column {score!r}")
                ctx.y_pred = (ctx.scores >= ctx.threshold).astype(np.int8)
                ctx.prediction_source = f"score >= {ctx.threshold:g}"
                ctx.decision_rule = f"flagged when score column {score!r} >= {ctx.threshold:g}"
        return ctx

    def _model_features(self, model: Any, features: Sequence[str] | None,
                        excluded: set[str]) -> list[str]:
        if not hasattr(model, "predict"):
            raise E.ModelError(f"the model ({type(model).__name__}) has no predict method",
                               "pass a fitted scikit-learn-compatible estimator")
        try:
            from sklearn.exceptions import NotFittedError
            from sklearn.utils.validation import check_is_fitted
            check_is_fitted(model)
        except NotFittedError:
            raise E.ModelError(f"the model ({type(model).__name__}) is not fitted",
                               "call model.fit(X, y) before the audit") from None
        except TypeError:
            pass  # not a scikit-learn estimator: trust predict()
        if features is not None:
            feats = [str(f) for f in features]
        elif getattr(model, "feature_names_in_", None) is not None:
            feats = [str(f) for f in model.feature_names_in_]
        else:
            feats = [c for c in self.data.columns if c not in excluded]
        missing = [f for f in feats if f not in self.data.columns]
        if missing:
            hint = E.close_matches(missing[0], self.data.columns)
            raise E.ModelError(
                f"the model needs feature(s) not in the data: {', '.join(map(repr, missing[:5]))}"
                + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                "audit the data the model was trained on, with the same column names")
        n_in = getattr(model, "n_features_in_", None)
        if n_in is not None and n_in != len(feats):
            raise E.ModelError(f"the model expects {n_in} features, the data gives {len(feats)}",
                               "pass features=[...] in the model's order")
        return feats

    def _predict(self, model: Any) -> tuple[np.ndarray, np.ndarray | None, str]:
        """Decisions, scores and the decision rule of ``model`` on the audited rows.

        With ``predict_proba`` and a ``predict()`` that is its cut at 0.5 (up to ties), the
        decision is ``score >= threshold``, as for ``score=``; otherwise ``predict()``.
        """
        X = self.data[self.features]
        classes = getattr(model, "classes_", None)
        threshold = self.threshold
        try:
            scores = proba = None
            if hasattr(model, "predict_proba"):
                proba = np.asarray(model.predict_proba(X))
                pos = 1
                if classes is not None:
                    hits = np.flatnonzero(np.asarray(classes) == self.positive_label)
                    if len(hits) == 0:
                        raise E.ModelError(
                            f"the model's classes {list(classes)} do not include the positive "
                            f"label {self.positive_label!r}" + _label_kinds(
                                list(classes), self._target_labels),
                            "train the model on this target column as it is")
                    pos = int(hits[0])
                if proba.ndim != 2 or proba.shape[1] != 2:
                    raise E.ModelError(f"the model gives {proba.shape[-1]} class probabilities",
                                       "audit a binary classifier")
                scores = proba[:, pos].astype(float)
            elif hasattr(model, "decision_function"):
                scores = np.asarray(model.decision_function(X), dtype=float).ravel()
            if scores is not None:
                if scores.shape[0] != self.n:
                    raise E.ModelError(f"the model returned {scores.shape[0]} scores for "
                                       f"{self.n} rows", "pass a model that scores each row")
                _check_finite_scores(scores, name=None)  # never a silent negative
            raw = None
            if proba is not None and classes is not None and _predicts_argmax(model):
                # predict() would score every row a second time: for model families whose
                # label is the most probable class, take it from the probabilities, after
                # checking that on the first rows against predict() itself (ties aside:
                # argmax and decision_function > 0 may break an exact 0.5 differently)
                derived = np.asarray(classes)[proba.argmax(axis=1)]
                k = min(self.n, 5000)
                clear = np.abs(scores[:k] - 0.5) > TIE_TOLERANCE
                head = np.asarray(model.predict(X.iloc[:k])).reshape(k, -1)[:, 0]
                if np.array_equal(head[clear], derived[:k][clear]):
                    raw = derived
            if raw is None:
                raw = np.asarray(model.predict(X))
        except E.LeaAuditError:
            raise
        except Exception as exc:  # the model's own error, e.g. unseen categories
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise E.ModelError(f"the model failed to predict on the data: "
                               f"{type(exc).__name__}: {first}",
                               "audit the data the model was trained for (same columns and types)"
                               ) from exc
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        if raw.ndim != 1 or raw.shape[0] != self.n:
            raise E.ModelError(f"the model returned {raw.shape[0]} predictions for {self.n} rows"
                               if raw.ndim == 1 else
                               f"the model's predict() returned an array of shape {raw.shape}",
                               "pass a model whose predict returns one label per row")
        self._check_model_labels(model, raw)
        own = raw == self.positive_label
        if proba is not None:
            tie = np.abs(scores - 0.5) <= TIE_TOLERANCE
            if np.array_equal(own[~tie], (scores >= 0.5)[~tie]):
                # predict() is the cut of predict_proba at 0.5: the audit's one rule applies
                _check_score_scale(0.0, 1.0, threshold, what="the model's scores (predict_proba)")
                rule = (f"flagged when the model's probability of {self.positive_label!r} >= "
                        f"{threshold:g}")
                return (scores >= threshold).astype(np.int8), scores, rule
            why = ("the model decides with its own predict(), which is not the cut of its "
                   "predict_proba at 0.5 (a tuned threshold, a custom predict)")
        else:
            why = (f"the model ({type(model).__name__}) has no predict_proba: its decisions are "
                   "its own predict()")
        _threshold_unused(threshold, why,
                          "drop threshold= (--threshold) to audit the model's own decisions, or "
                          "put its scores in a column and pass score= with threshold= "
                          "(--score-col, --threshold)")
        return own.astype(np.int8), scores, "the model's own predict()"

    def _check_model_labels(self, model: Any, raw: np.ndarray) -> None:
        """predict() must return the target's labels: no NaN, no continuous values, no
        labels of another type (text '1' for a target of numbers 1)."""
        na = pd.isna(raw)
        if na.any():
            raise E.ModelError(E.MODEL_NAN.format(count=int(na.sum()), row=_first_na_row(na)),
                               E.MODEL_NAN_FIX)
        uniq = pd.unique(raw).tolist()
        known = self._target_labels  # two values (the target is binary)
        bad = uniq if len(uniq) > len(known) else \
            [u for u in uniq if not any(_same_label(u, t) for t in known)]
        if not bad:
            return
        shown = _shown_values(uniq)
        labels = _shown_values(known)
        what = E.MODEL_NOT_LABELS.format(shown=shown, labels=labels)
        regressor = False
        try:
            from sklearn.base import is_regressor

            regressor = bool(is_regressor(model))
        except Exception:  # not a scikit-learn estimator
            pass
        continuous = raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0)
        if regressor or continuous:
            raise E.ModelError(f"{what}: continuous values", E.MODEL_REGRESSOR_FIX)
        as_text = {str(t) for t in known}
        if all(str(u) in as_text for u in uniq):
            raise E.ModelError(what, E.MODEL_LABEL_TYPE_FIX.format(
                model_kind=_kind(uniq), target_kind=_kind(known)))
        raise E.ModelError(what, E.MODEL_OTHER_LABELS_FIX)

    def _make_groupings(self, reference_groups: Mapping[str, Any]) -> list[Grouping]:
        unknown = [a for a in reference_groups if a not in self.sensitive]
        if unknown:
            raise E.InputError(f"reference group given for {unknown[0]!r}, which is not a "
                               "sensitive attribute",
                               f"use one of {', '.join(self.sensitive)} (as attr=value)")
        groupings = []
        for attr in self.sensitive:
            col = self.data[attr]
            if isinstance(col.dtype, pd.CategoricalDtype):
                col = col.cat.remove_unused_categories()
            codes, uniques = pd.factorize(col, sort=True, use_na_sentinel=False)
            labels = [MISSING_GROUP if pd.isna(u) else str(u) for u in uniques]
            codes = codes.astype(np.int64)
            _check_group_count(attr, labels, self.n)
            sizes = np.bincount(codes, minlength=len(labels))
            if attr in reference_groups:
                want = str(reference_groups[attr])
                if want not in labels:
                    hint = E.close_matches(want, labels)
                    raise E.DataError(
                        f"reference group {attr}={want!r} does not occur in the data"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                        f"use one of: {', '.join(labels[:10])}")
                ref, source = labels.index(want), "given"
            else:
                ref, source = int(np.argmax(sizes)), "largest"
            groupings.append(Grouping(attr, (attr,), codes, labels, ref, source))
        if len(groupings) > 1:
            groupings.append(self._intersection(groupings))
        return groupings

    @staticmethod
    def _intersection(parts: list[Grouping]) -> Grouping:
        combined = np.zeros(len(parts[0].codes), dtype=np.int64)
        for g in parts:
            combined = combined * g.n_groups + g.codes
        n_combos = int(np.prod([g.n_groups for g in parts], dtype=np.float64))
        if n_combos <= 4 * len(combined) + 1_000_000:
            # present combinations by counting, not sorting: O(n) instead of O(n log n)
            present = np.bincount(combined, minlength=n_combos) > 0
            uniq = np.flatnonzero(present)
            lookup = np.cumsum(present) - 1
            inverse = lookup[combined]
        else:
            uniq, inverse = np.unique(combined, return_inverse=True)
        # decode each present combination into its per-attribute codes and labels
        cells = np.zeros((len(uniq), len(parts)), dtype=np.int64)
        rem = uniq.copy()
        for a in range(len(parts) - 1, -1, -1):
            cells[:, a] = rem % parts[a].n_groups
            rem = rem // parts[a].n_groups
        _check_group_cap("the intersection " + INTERSECTION_SEP.join(g.name for g in parts),
                         len(uniq), factor=10)
        labels = [INTERSECTION_SEP.join(g.labels[int(j)] for g, j in zip(parts, row, strict=True))
                  for row in cells]
        ref, source = intersection_reference(parts, cells,
                                             np.bincount(inverse, minlength=len(uniq)))
        name = INTERSECTION_SEP.join(g.name for g in parts)
        return Grouping(name, tuple(g.name for g in parts), inverse.astype(np.int64), labels,
                        ref, source, cells=cells)

    # -- what checks read ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of audited rows."""
        return int(self.data.shape[0])

    def groupings(self, *, intersections: bool = True,
                  attributes: Sequence[str] | None = None) -> list[Grouping]:
        """Each sensitive attribute's grouping, and their intersection (if several)."""
        out = [g for g in self._groupings if intersections or not g.is_intersection]
        if attributes is not None:
            wanted = set(attributes)
            out = [g for g in out if set(g.attributes) <= wanted]
        return out

    def counts(self, grouping: Grouping) -> ConfusionCounts:
        """Confusion counts per group of ``grouping`` (computed once, then cached)."""
        c = self._counts.get(grouping.name)
        if c is None:
            c = confusion_counts(grouping.codes, grouping.n_groups, self.y_true, self.y_pred)
            self._counts[grouping.name] = c
        return c

    @cached_property
    def score_order(self) -> np.ndarray:
        """Row indices sorted by score (computed once; the AUCs of every grouping reuse it)."""
        if self.scores is None:
            raise ValueError("no scores")
        return score_order(self.scores)

    def group_auc(self, grouping: Grouping | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(AUC, positives, negatives) per group of ``grouping`` (all rows if None)."""
        if self.scores is None:
            raise ValueError("no scores")
        key = None if grouping is None else grouping.name
        hit = self._aucs.get(key)
        if hit is not None:
            return hit
        if grouping is None:
            codes, n_groups = np.zeros(self.n, dtype=np.int64), 1
        else:
            codes, n_groups = grouping.codes, grouping.n_groups
        out = group_auc(self.scores, self.y_true, codes, n_groups, self.score_order)
        self._aucs[key] = out
        return out

    @cached_property
    def constant_decision(self) -> int | None:
        """1 if every case got a positive decision (e.g. data of stops made by officers, where
        every row is a stop), 0 if every case got a negative one, else None."""
        first = int(self.y_pred[0])
        return first if bool(np.all(self.y_pred == first)) else None

    @property
    def strata(self) -> Grouping:
        """The finest grouping: the intersection of every sensitive attribute (or the one)."""
        return self._groupings[-1]

    def stratified_sample(self, size: int, *, min_per_group: int = 50,
                          seed: int | None = None) -> np.ndarray:
        """Sorted row positions of a random sample stratified on :attr:`strata`.

        Each group gets its proportional share of ``size``, but at least ``min_per_group``
        rows (all of its rows if it has fewer), so the smallest group is always represented.
        The same arguments give the same sample (computed once, then cached); ``seed``
        defaults to the audit's seed. With ``size >= n`` every row is taken.

        Examples
        --------
        >>> idx = ctx.stratified_sample(2000, min_per_group=100)  # doctest: +SKIP
        >>> ctx.data.iloc[idx]  # doctest: +SKIP
        """
        seed = self.seed if seed is None else int(seed)
        key = (int(size), int(min_per_group), seed)
        hit = self._samples.get(key)
        if hit is not None:
            return hit
        if size >= self.n:
            idx = np.arange(self.n)
        else:
            g = self.strata
            sizes = np.bincount(g.codes, minlength=g.n_groups)
            want = np.maximum(np.round(size * sizes / self.n), min_per_group)
            take = np.minimum(sizes, want).astype(np.int64)
            order, rank = self._random_order(seed)
            idx = np.sort(order[rank < np.repeat(take, sizes)])
        idx.setflags(write=False)
        self._samples[key] = idx
        return idx

    def _random_order(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows sorted by stratum, in random order within each, and each row's rank there.

        One sort per seed: every sample size then takes the first rows of each stratum, so the
        samples of one audit are nested (a smaller sample is part of a larger one).
        """
        hit = self._samples.get(("order", seed))
        if hit is None:
            g = self.strata
            sizes = np.bincount(g.codes, minlength=g.n_groups)
            # a random permutation, then a stable sort by stratum: within each stratum the
            # rows keep the permutation's (uniformly random) order. Codes as int16 when they
            # fit, which numpy sorts stably by radix: O(n), 6x faster than lexsort at 1M rows.
            perm = np.random.default_rng(seed).permutation(self.n)
            codes = g.codes[perm]
            if g.n_groups < np.iinfo(np.int16).max:
                codes = codes.astype(np.int16)
            order = perm[np.argsort(codes, kind="stable")]
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            rank = np.arange(self.n) - np.repeat(starts, sizes)
            hit = (order, rank)
            self._samples[("order", seed)] = hit
        return hit

    def sample_weights(self, idx: np.ndarray) -> np.ndarray:
        """Weights that make a stratified sample represent the whole data (n_group / k_group)."""
        g = self.strata
        sizes = np.bincount(g.codes, minlength=g.n_groups)
        taken = np.bincount(g.codes[idx], minlength=g.n_groups)
        w = sizes / np.maximum(taken, 1)
        return w[g.codes[idx]]

    @cached_property
    def overall_counts(self) -> ConfusionCounts:
        """Confusion counts of all rows together."""
        return confusion_counts(np.zeros(self.n, dtype=np.int64), 1, self.y_true, self.y_pred)

    @cached_property
    def row_hashes(self) -> np.ndarray:
        """pandas' 64-bit hash of every row of the audited data (all columns, not the index)."""
        h = pd.util.hash_pandas_object(self.data, index=False).to_numpy()
        h.setflags(write=False)
        return h

    @cached_property
    def data_digest(self) -> str:
        """SHA-256 of the audited data (column names, dtypes, every row)."""
        return _dataframe_digest(self.data, self.row_hashes)

    @property
    def reference_groups(self) -> dict[str, dict[str, str]]:
        """Each grouping's reference group and how it was chosen (the report's subject)."""
        return {g.name: {"group": g.labels[g.reference], "chosen": g.reference_source}
                for g in self._groupings}

    def describe(self) -> dict[str, Any]:
        """What was audited, for the report's ``subject``."""
        model: dict[str, Any] | None = None
        if self.model is not None:
            m = self.model
            model = {"class": f"{type(m).__module__}.{type(m).__qualname__}"}
            if hasattr(m, "get_params"):
                try:
                    params = json.dumps(m.get_params(deep=True), sort_keys=True, default=repr)
                    model["params_sha256"] = hashlib.sha256(params.encode()).hexdigest()
                except Exception:  # pragma: no cover - exotic estimators
                    pass
            if self.model_file:
                from ._io import sha256_file
                model["file"] = self.model_file
                model["file_sha256"] = sha256_file(self.model_file)
        return {
            "target": self.target,
            "positive_label": self.positive_label,
            "sensitive": list(self.sensitive),
            "prediction_source": self.prediction_source,
            "prediction_column": self.prediction_col,
            "score_column": self.score_col,
            "has_scores": self.scores is not None,
            "threshold": self.threshold,
            "decision_rule": self.decision_rule,
            "features": list(self.features),
            "model": model,
            "reference_groups": self.reference_groups,
        }
