"""Explainability (Council 13083/1/20 §26; AI Act Art. 13): explain and demonstrate every result.

Every check explains the same stratified sample of the audited cases (each group of the
intersection of the sensitive attributes gets at least ``min_per_group`` rows; sizes and seed
are in the results), against the same bounded background sample, with SHAP values computed
**once** per audit and shared between the checks (cached on the audit context). The API they
use is public: :mod:`lea_ai_audit.explain`. Every result records the background: its size
(``background_size``), the rows it was drawn from (``background_population``), its seed
(``background_seed``) and that it is a simple random sample, not stratified
(``background_stratified`` = 0); ``columns_as_players`` = 1 when each original column of a
Pipeline is one player of the Shapley game (its value is the Shapley value of the column).

Checks
------
``explain.global_importance``
    Mean |SHAP| of every input (weighted back to the whole data) with bootstrap intervals, and
    the stability of the top-k set over bootstrap resamples: an unstable top-k is a WARN.
``explain.local``
    Per-decision explanations of a sample of cases in plain words ("prior_contacts = 7 raised
    the risk score by 0.18 (± 0.01)"; the ± is the 95% margin due to the background sample),
    as evidence, with a plot of one case.
``explain.by_group``
    Mean |SHAP| per input per group of each sensitive attribute; an input whose weight differs
    markedly (and significantly) from the reference group's is a finding, unless the input is
    derived from the grouping itself (age within age bands), which is listed instead.
``explain.proxies``
    How well each input alone predicts each sensitive attribute (cross-fitted one-feature
    AUC); an input that is both a strong proxy and among the most important is a finding.
    Without a model, the proxies are still measured on the declared inputs (``features=``).
``explain.additivity``
    Self-test: base value + sum of SHAP values = the model's own output (called independently
    of shap), in the explainer's output space; a violation is an ERROR, not a pass.

Without a model (a vendor's scores or decisions only) nothing can be explained: the checks
return SKIPPED with the reason, except ``explain.proxies`` when inputs are declared.

Cost: tree and linear models are explained exactly and fast (``sample_size`` cases, 2,000 by
default). A model only the model-agnostic explainer can explain costs about
2**n_inputs x background model calls per case, so at most ``AGNOSTIC_SAMPLE_SIZE`` (500) cases
are explained, each group with at least ``AGNOSTIC_MIN_PER_GROUP`` (20); the results say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import CheckResult, Evidence, Status
from . import Check, register
from .fairness import _f, _r

if TYPE_CHECKING:
    from ..context import AuditContext
    from ..explain import Explanation

_CACHE = "_shap_cache"
#: a model only the model-agnostic explainer can explain costs about 2**n_inputs x background
#: model calls per case: at most this many cases are explained, each group with at least ...
AGNOSTIC_SAMPLE_SIZE = 500
#: ... this many (or all of its cases)
AGNOSTIC_MIN_PER_GROUP = 20
NO_MODEL = ("no model to explain: the audit has the tool's scores or decisions only; pass the "
            "fitted model (model= / --model) to explain them")


def _cache(ctx: AuditContext) -> dict[Any, Any]:
    return ctx.__dict__.setdefault(_CACHE, {})


@dataclass
class _Shared:
    """The shared explanation of one stratified sample (or the error that prevented it)."""

    idx: np.ndarray
    weights: np.ndarray
    explanation: Explanation | None
    error: str | None
    background_source: str
    background_rows: int
    min_per_group: int
    background_population: int = 0


def _validate_sample(size: int, min_per_group: int, max_background: int) -> None:
    if int(size) < 10:
        raise ValueError(f"sample_size must be at least 10, got {size}")
    if int(min_per_group) < 1:
        raise ValueError(f"min_per_group must be at least 1, got {min_per_group}")
    if int(max_background) < 10:
        raise ValueError(f"max_background must be at least 10, got {max_background}")


def _background(ctx: AuditContext, max_background: int) -> tuple[Any, str, int]:
    """Background rows: a sample of the reference (training) data if it has the inputs.

    A simple random sample without replacement (not stratified), drawn with the audit's
    seed; returns the rows, their description and the rows they were drawn from.
    """
    key = ("background", int(max_background), ctx.seed)
    cache = _cache(ctx)
    if key not in cache:
        ref = ctx.reference
        if ref is not None and all(f in ref.columns for f in ctx.features) and len(ref):
            frame, source = ref, "the reference (training) data"
        else:
            frame, source = ctx.data, "the audited data"
        n = min(int(max_background), len(frame))
        rng = np.random.default_rng(ctx.seed)
        pick = np.sort(rng.choice(len(frame), n, replace=False))
        how = (f"a simple random sample without replacement (not stratified) of {n} of the "
               f"{len(frame)} rows of {source}, seed {ctx.seed}" if n < len(frame) else
               f"all {n} rows of {source}")
        cache[key] = (frame.iloc[pick][ctx.features].reset_index(drop=True), how, len(frame))
    return cache[key]


def _error_text(exc: BaseException) -> str:
    from ..errors import LeaAuditError

    if isinstance(exc, LeaAuditError):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


def shared_explanation(ctx: AuditContext, *, sample_size: int = 2000, min_per_group: int = 50,
                       max_background: int = 100) -> _Shared:
    """SHAP values of the stratified sample, computed once per audit (raw output space)."""
    key = ("global", int(sample_size), int(min_per_group), int(max_background), ctx.seed)
    cache = _cache(ctx)
    if key in cache:
        return cache[key]
    from ..explain import explainer_kind

    if explainer_kind(ctx.model) == "model-agnostic":  # about 2**M x background calls a case
        sample_size = min(int(sample_size), AGNOSTIC_SAMPLE_SIZE)
        min_per_group = min(int(min_per_group), AGNOSTIC_MIN_PER_GROUP)
    idx = ctx.stratified_sample(int(sample_size), min_per_group=int(min_per_group),
                                seed=ctx.seed)
    weights = ctx.sample_weights(idx)
    bg, source, population = _background(ctx, max_background)
    expl, error = None, None
    try:
        from ..explain import explain

        expl = explain(ctx.model, ctx.data.iloc[idx][ctx.features], background=bg,
                       features=ctx.features, output="raw", positive_label=ctx.positive_label,
                       max_background=int(max_background), seed=ctx.seed,
                       background_population=population)
    except Exception as exc:  # reported by every check that needs it, as ERROR
        error = _error_text(exc)
    shared = _Shared(idx, weights, expl, error, source, len(bg), int(min_per_group),
                     population)
    cache[key] = shared
    return shared


def local_explanations(ctx: AuditContext, *, n_cases: int = 10, sample_size: int = 2000,
                       min_per_group: int = 50, max_background: int = 100
                       ) -> tuple[np.ndarray, Explanation | None, str | None]:
    """Row positions of ``n_cases`` cases of the sample (half with a positive decision when
    possible) and their explanation in the space used for plain-words reasons."""
    key = ("local", int(n_cases), int(sample_size), int(min_per_group), int(max_background),
           ctx.seed)
    cache = _cache(ctx)
    if key in cache:
        return cache[key]
    idx = ctx.stratified_sample(int(sample_size), min_per_group=int(min_per_group),
                                seed=ctx.seed)
    rng = np.random.default_rng(ctx.seed + 1)
    pos = idx[ctx.y_pred[idx] == 1]
    neg = idx[ctx.y_pred[idx] == 0]
    half = min(len(pos), (int(n_cases) + 1) // 2)
    take = np.concatenate([rng.permutation(pos)[:half],
                           rng.permutation(neg)[:int(n_cases) - half]])
    if len(take) < int(n_cases):  # too few of one decision: fill from the other
        rest = np.setdiff1d(idx, take)
        take = np.concatenate([take, rng.permutation(rest)[:int(n_cases) - len(take)]])
    cases = take.astype(np.int64)
    bg, _, population = _background(ctx, max_background)
    expl, error = None, None
    try:
        from ..explain import explain

        expl = explain(ctx.model, ctx.data.iloc[cases][ctx.features], background=bg,
                       features=ctx.features, output="auto", positive_label=ctx.positive_label,
                       max_background=int(max_background), seed=ctx.seed, uncertainty=True,
                       background_population=population)
    except Exception as exc:
        error = _error_text(exc)
    cache[key] = (cases, expl, error)
    return cache[key]


def _method_text(shared: _Shared, expl: Explanation, ctx: AuditContext) -> str:
    n_strata = ctx.strata.n_groups
    parts = [f"Explained: a stratified sample of {len(shared.idx)} of {ctx.n} cases (seed "
             f"{ctx.seed}; each of the {n_strata} groups of {ctx.strata.name} with at least "
             f"{shared.min_per_group} cases, or all of its cases; weighted back to the whole "
             "data).",
             f"Explainer: {expl.method}; output space: {expl.output_space}.",
             f"Background: {shared.background_source}"
             + ("" if expl.background_size else " (not used by path-dependent Tree SHAP, "
                "which uses the training distribution recorded in the trees)") + ".",
             f"Uncertainty of each SHAP value due to the background sample: "
             f"{expl.uncertainty}."]
    parts += [n[0].upper() + n[1:] + "." for n in expl.notes]
    return " ".join(parts)


def _background_metrics(expl: Explanation | None, rows: int, population: int,
                        seed: int) -> dict[str, Any]:
    """How the background was drawn: its size, the rows it was drawn from, the seed, and
    that it is a simple random sample (not stratified)."""
    used = rows if expl is None else expl.background_size
    return {"background_size": used, "background_population": population if used else 0,
            "background_seed": seed, "background_stratified": 0,
            "columns_as_players": None if expl is None else int(expl.columns_as_players)}


def _sample_metrics(shared: _Shared, ctx: AuditContext) -> dict[str, Any]:
    return {"sample_size": len(shared.idx), "sample_seed": ctx.seed,
            "sample_min_per_group": shared.min_per_group,
            **_background_metrics(shared.explanation, shared.background_rows,
                                  shared.background_population, ctx.seed)}


class _ExplainCheck(Check):
    """Shared parameters: the sample explained and the background."""

    sample_size: int
    min_per_group: int
    max_background: int

    def validate(self) -> None:
        _validate_sample(self.sample_size, self.min_per_group, self.max_background)

    def _shared(self, ctx: AuditContext) -> _Shared:
        return shared_explanation(ctx, sample_size=self.sample_size,
                                  min_per_group=self.min_per_group,
                                  max_background=self.max_background)

    def _cannot(self, shared: _Shared) -> CheckResult:
        return self.result(Status.ERROR, f"the model could not be explained: {shared.error}",
                           evidence=[Evidence("explanation error", "text", shared.error or "")])


def _fmt_share(x: float) -> str:
    return f"{100 * x:.0f}%"


# -- explain.global_importance ------------------------------------------------------------------
@register
class GlobalImportance(_ExplainCheck):
    """SHAP importance (mean |SHAP|) of every input, with the stability of its ranking.

    Parameters
    ----------
    top_k : int
        Size of the top set whose stability is measured.
    n_bootstrap : int
        Bootstrap resamples (stratified, of the explained cases).
    min_agreement : float
        Share of resamples whose top-k set must equal the sample's; below: WARN (unstable).
    min_cases : int
        With fewer explained cases the ranking is insufficient evidence (WARN).
    sample_size, min_per_group, max_background : int
        The stratified sample explained (shared with the other explain.* checks) and the
        background rows the explainer compares against.
    """

    id = "explain.global_importance"
    title = "Global importance of every input, with its stability"

    def __init__(self, *, top_k: int = 3, n_bootstrap: int = 200, min_agreement: float = 0.8,
                 min_cases: int = 30, sample_size: int = 2000, min_per_group: int = 50,
                 max_background: int = 100) -> None:
        self.top_k = top_k
        self.n_bootstrap = n_bootstrap
        self.min_agreement = min_agreement
        self.min_cases = min_cases
        self.sample_size = sample_size
        self.min_per_group = min_per_group
        self.max_background = max_background

    def validate(self) -> None:
        super().validate()
        if int(self.top_k) < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if int(self.n_bootstrap) < 20:
            raise ValueError(f"n_bootstrap must be at least 20, got {self.n_bootstrap}")
        if not 0 < float(self.min_agreement) <= 1:
            raise ValueError(f"min_agreement must be in (0, 1], got {self.min_agreement}")
        if int(self.min_cases) < 1:
            raise ValueError(f"min_cases must be at least 1, got {self.min_cases}")

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.model is None:
            return self.result(Status.SKIPPED, NO_MODEL)
        shared = self._shared(ctx)
        expl = shared.explanation
        if expl is None:
            return self._cannot(shared)
        from ..explain import global_importance, plot_importance

        imp = global_importance(expl, weights=shared.weights,
                                strata=ctx.strata.codes[shared.idx], k=int(self.top_k),
                                n_bootstrap=int(self.n_bootstrap), seed=ctx.seed)
        share = imp.share
        metrics: dict[str, Any] = _sample_metrics(shared, ctx)
        rows = []
        for rank, j in enumerate(imp.order, start=1):
            f = imp.features[j]
            metrics[f"importance/{f}"] = _f(imp.mean_abs[j])
            metrics[f"importance_share/{f}"] = _r(share[j], 6)
            rows.append([rank, f, _r(imp.mean_abs[j], 6), _r(imp.ci_low[j], 6),
                         _r(imp.ci_high[j], 6), _r(share[j]), _r(imp.in_top_k[j])])
        metrics["top_k_agreement"] = _f(imp.top_k_agreement)
        metrics["rank_correlation"] = _f(imp.rank_correlation)
        space = expl.output_space
        evidence = [
            Evidence.table("global_importance",
                           ["rank", "feature", "mean_abs_shap", "ci_low", "ci_high", "share",
                            "in_top_k"], rows,
                           f"mean |SHAP value| ({space}) per input over the explained cases, "
                           f"weighted back to the whole data; 90% bootstrap interval; share "
                           f"of the total; share of {imp.n_bootstrap} bootstrap resamples in "
                           f"which the input is among the top {imp.k}"),
            Evidence("explanation method", "text", _method_text(shared, expl, ctx)),
            Evidence.file("global importance plot", "global_importance.png",
                          plot_importance(imp, space=space),
                          "bar chart of the global importance of every input",
                          media_type="image/png"),
        ]
        top = [imp.features[j] for j in imp.top_k]
        lead = ", ".join(f"{f} ({_fmt_share(share[imp.features.index(f)])})" for f in top)
        agree = imp.top_k_agreement
        if expl.n_rows < int(self.min_cases):
            return self.result(Status.WARN, f"insufficient evidence: only {expl.n_rows} cases "
                               f"could be explained (at least {self.min_cases} needed to rank "
                               f"the inputs); by importance: {lead}", metrics=metrics,
                               evidence=evidence)
        if len(imp.features) <= imp.k:
            m = len(imp.features)
            return self.result(Status.PASS, f"inputs by importance: {lead} (the model has "
                                            f"{m} input{'s' if m != 1 else ''}, so the top set "
                                            "is trivially stable)",
                               metrics=metrics, evidence=evidence)
        if agree < float(self.min_agreement):
            wobbly = [imp.features[j] for j in np.argsort(-imp.mean_abs, kind="stable")
                      if 0.05 < imp.in_top_k[j] < 0.95]
            return self.result(
                Status.WARN,
                f"the top {imp.k} inputs are not stable: they are the same in only "
                f"{_fmt_share(agree)} of {imp.n_bootstrap} bootstrap resamples (at least "
                f"{_fmt_share(float(self.min_agreement))} required); "
                f"{', '.join(wobbly) or 'several inputs'} change places, so their order should "
                f"not be relied on; by importance: {lead}", metrics=metrics, evidence=evidence)
        return self.result(Status.PASS,
                           f"most important inputs: {lead} of the total importance; the top "
                           f"{imp.k} are the same in {_fmt_share(agree)} of {imp.n_bootstrap} "
                           f"bootstrap resamples", metrics=metrics, evidence=evidence)


# -- explain.local -----------------------------------------------------------------------------
@register
class LocalExplanations(_ExplainCheck):
    """Per-decision explanations of a sample of cases, in plain words.

    Each reason carries the uncertainty due to the background sample: its standard error
    (``se`` in the evidence ``local_explanations_detail``) and the half-width of its 95%
    interval (``margin95`` = 1.96 x se), shown in the text as ``(± 0.01)``: another background
    sample of the same size, drawn the same way, would move the contribution by about that
    much or less (see :attr:`lea_ai_audit.explain.Explanation.values_se`). The metrics give
    the largest and median margin and how many reasons are smaller than their margin (their
    direction is then not established by this background).

    Parameters
    ----------
    n_cases : int
        Cases explained (from the stratified sample; half with a positive decision if
        possible).
    top : int
        Reasons per case.
    sample_size, min_per_group, max_background : int
        As for ``explain.global_importance``.

    Any single case can be explained with :func:`lea_ai_audit.explain.explain_case`.
    """

    id = "explain.local"
    title = "Per-decision explanations in plain words"

    def __init__(self, *, n_cases: int = 10, top: int = 3, sample_size: int = 2000,
                 min_per_group: int = 50, max_background: int = 100) -> None:
        self.n_cases = n_cases
        self.top = top
        self.sample_size = sample_size
        self.min_per_group = min_per_group
        self.max_background = max_background

    def validate(self) -> None:
        super().validate()
        if not 1 <= int(self.n_cases) <= 1000:
            raise ValueError(f"n_cases must be between 1 and 1000, got {self.n_cases}")
        if int(self.top) < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.model is None:
            return self.result(Status.SKIPPED, NO_MODEL)
        cases, expl, error = local_explanations(
            ctx, n_cases=self.n_cases, sample_size=self.sample_size,
            min_per_group=self.min_per_group, max_background=self.max_background)
        if expl is None:
            return self.result(Status.ERROR, f"the model could not be explained: {error}",
                               evidence=[Evidence("explanation error", "text", error or "")])
        from ..explain import plot_case

        reasons = expl.reasons(top=int(self.top))
        sens = list(ctx.sensitive)
        cols = ["row", "decision", "score", *sens, "average_score",
                *[f"reason_{k + 1}" for k in range(int(self.top))]]
        rows, detail = [], []
        for i, r in enumerate(cases):
            decision = "flagged" if ctx.y_pred[r] == 1 else "not flagged"
            groups = [str(ctx.data[s].iloc[r]) for s in sens]
            texts = [x.text for x in reasons[i]]
            texts += [""] * (int(self.top) - len(texts))
            rows.append([int(r), decision, _r(expl.output[i], 6), *groups,
                         _r(expl.base_value, 6), *texts])
            detail.append({"row": int(r), "decision": decision,
                           "score": _f(expl.output[i]), "average_score": _f(expl.base_value),
                           "background_size": expl.background_size,
                           "reasons": [{"feature": x.feature, "value": x.value,
                                        "contribution": x.contribution, "se": _f(x.se),
                                        "margin95": _f(x.margin), "text": x.text}
                                       for x in reasons[i]]})
        space = expl.output_space
        margins = [x.margin for rs in reasons for x in rs if x.margin is not None]
        unsure = [x for rs in reasons for x in rs
                  if x.margin is not None and abs(x.contribution) <= x.margin]
        if margins:
            plusminus = (f"each reason's '±' is the half-width of its 95% interval due to the "
                         f"background sample ({expl.background_sampling}): another such "
                         f"sample would move it by about that much or less; largest ± "
                         f"{max(margins):.2g}")
        else:
            plusminus = f"no ± for the reasons: {expl.uncertainty}"
        first = next((i for i, r in enumerate(cases) if ctx.y_pred[r] == 1), 0)
        r0 = int(cases[first])
        evidence = [
            Evidence.table("local_explanations", cols, rows,
                           f"{len(cases)} cases of the stratified sample (seed {ctx.seed}): "
                           f"each one's score ({space}) and its top {self.top} reasons; "
                           "'average_score' is the score of the average case, which the "
                           f"reasons move up or down; {plusminus}"),
            Evidence("local_explanations_detail", "json", detail,
                     "the same explanations with each reason's feature, value and "
                     f"contribution ({space}), its standard error due to the background "
                     "sample ('se') and the half-width of its 95% interval ('margin95' = "
                     "1.96 x se)"),
            Evidence("explanation method", "text",
                     f"Explainer: {expl.method}; output space: {space}; background: "
                     f"{expl.background_sampling}. Uncertainty of each reason: "
                     f"{expl.uncertainty}. " + " ".join(
                         n[0].upper() + n[1:] + "." for n in expl.notes)),
            Evidence.file("local explanation plot", "local_explanation.png",
                          plot_case(expl, first, title=f"Why row {r0} scored "
                                    f"{float(expl.output[first]):.3g} ({space}); the average "
                                    f"case scores {expl.base_value:.3g}"),
                          f"the reasons behind the score of row {r0}", media_type="image/png"),
        ]
        metrics = {"n_cases": len(cases), "sample_seed": ctx.seed,
                   "max_additivity_error": _f(expl.max_additivity_error),
                   **_background_metrics(expl, expl.background_size,
                                         expl.background_population, ctx.seed),
                   "reason_margin95_max": _f(max(margins)) if margins else None,
                   "reason_margin95_median": _f(float(np.median(margins))) if margins else None,
                   "n_reasons": sum(len(rs) for rs in reasons),
                   "n_reasons_sign_uncertain": len(unsure) if margins else None}
        example = "; ".join(x.text for x in reasons[first]) or "no input moved its score"
        tail = ""
        if margins:
            tail = (f"; ± is the 95% margin due to the {expl.background_size}-row background "
                    f"sample (largest {max(margins):.2g}")
            tail += (f"; {len(unsure)} reason(s) smaller than their margin)" if unsure else ")")
        return self.result(Status.PASS,
                           f"{len(cases)} decisions explained in plain words ({space}); e.g. "
                           f"row {r0} ({rows[first][1]}, score {float(expl.output[first]):.2f}"
                           f"): {example}{tail}", metrics=metrics, evidence=evidence)


# -- explain.by_group --------------------------------------------------------------------------
@register
class ImportanceByGroup(_ExplainCheck):
    """Mean |SHAP| per input per group of each sensitive attribute.

    An input is reported when, in some group, its mean |SHAP| is at least ``max_ratio`` times
    (or at most 1/``max_ratio`` of) the reference group's, the difference is significant at
    ``confidence``, and the input matters (at least ``min_share`` of the total importance in
    one of the two groups).

    Inputs derived from the grouping itself are not reported for it: their weight differs
    between the groups by construction (grouping by age band, age weighs more in the bands
    far from the average age), which says nothing about the model. The rule: an input from
    which a classifier that sees only the input recovers the group of the explained cases
    with a balanced accuracy of at least ``derived_min_accuracy`` (cross-fitted on two
    halves; see :func:`lea_ai_audit.explain.group_determination`). For an intersection of
    attributes, the inputs derived from any of its attributes are left out. They stay in the
    table (``derived_from_group``), and the evidence ``derived_from_group`` lists every
    (attribute, input) with its balanced accuracy and whether it was left out.

    Parameters
    ----------
    max_ratio : float
        How many times more (or less) an input may weigh in one group than in the reference.
    min_share : float
        Inputs below this share of a group's total importance are not reported.
    min_group_size : int
        Groups with fewer explained cases are insufficient evidence (WARN).
    confidence : float
        Confidence of the significance test of a difference.
    intersections : bool
        Also compare the groups of the intersection of the sensitive attributes.
    exclude_derived : bool
        Leave out of the findings the inputs derived from the grouping (see above).
    derived_min_accuracy : float
        Balanced accuracy from which an input counts as derived from the grouping.
    sample_size, min_per_group, max_background : int
        As for ``explain.global_importance``.
    """

    id = "explain.by_group"
    title = "Importance of each input by group"

    def __init__(self, *, max_ratio: float = 2.0, min_share: float = 0.05,
                 min_group_size: int = 30, confidence: float = 0.95,
                 intersections: bool = False, exclude_derived: bool = True,
                 derived_min_accuracy: float = 0.99, sample_size: int = 2000,
                 min_per_group: int = 50, max_background: int = 100) -> None:
        self.max_ratio = max_ratio
        self.min_share = min_share
        self.min_group_size = min_group_size
        self.confidence = confidence
        self.intersections = intersections
        self.exclude_derived = exclude_derived
        self.derived_min_accuracy = derived_min_accuracy
        self.sample_size = sample_size
        self.min_per_group = min_per_group
        self.max_background = max_background

    def validate(self) -> None:
        super().validate()
        if float(self.max_ratio) <= 1:
            raise ValueError(f"max_ratio must be above 1, got {self.max_ratio}")
        if not 0 <= float(self.min_share) < 1:
            raise ValueError(f"min_share must be in [0, 1), got {self.min_share}")
        if int(self.min_group_size) < 2:
            raise ValueError(f"min_group_size must be at least 2, got {self.min_group_size}")
        if not 0.5 <= float(self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if not 0.5 < float(self.derived_min_accuracy) <= 1:
            raise ValueError("derived_min_accuracy must be in (0.5, 1], got "
                             f"{self.derived_min_accuracy}")

    def _derived(self, ctx: AuditContext, shared: _Shared, feats: list[str]
                 ) -> tuple[dict[str, dict[str, float]], list[list[Any]]]:
        """Per sensitive attribute, the inputs derived from it (-> balanced accuracy), and
        the evidence rows of every (attribute, input)."""
        from ..explain import group_determination

        derived: dict[str, dict[str, float]] = {}
        rows: list[list[Any]] = []
        if not self.exclude_derived:
            return derived, rows
        sample = ctx.data.iloc[shared.idx]
        for g in ctx.groupings(intersections=False):
            found = group_determination(sample, feats, g.codes[shared.idx], seed=ctx.seed)
            derived[g.name] = {}
            for r in found:
                bal = r["balanced_accuracy"]
                out = math.isfinite(bal) and bal >= float(self.derived_min_accuracy)
                if out:
                    derived[g.name][r["feature"]] = bal
                rows.append([g.name, r["feature"], r["classifier"], _r(bal), _r(r["accuracy"]),
                             bool(out)])
        return derived, rows

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.model is None:
            return self.result(Status.SKIPPED, NO_MODEL)
        shared = self._shared(ctx)
        expl = shared.explanation
        if expl is None:
            return self._cannot(shared)
        from scipy.stats import norm

        from ..explain import importance_by_group, plot_importance_by_group

        z_crit = float(norm.ppf(0.5 + float(self.confidence) / 2))
        feats = expl.features
        overall = np.average(np.abs(expl.values), axis=0, weights=shared.weights)
        shown = [feats[j] for j in np.argsort(-overall, kind="stable")[:8]]
        metrics: dict[str, Any] = _sample_metrics(shared, ctx)
        evidence: list[Evidence] = []
        findings: list[tuple[float, str]] = []
        small: list[str] = []
        panels = []
        derived, derived_rows = self._derived(ctx, shared, feats)
        left_out: list[str] = []
        for g in ctx.groupings(intersections=bool(self.intersections)):
            # inputs derived from the grouping (or, for an intersection, from one of its parts)
            skip: dict[str, str] = {}
            for a in g.attributes:
                for f, bal in derived.get(a, {}).items():
                    skip.setdefault(f, a)
                    metrics[f"derived_from_group/{g.name}/{f}"] = _r(bal, 6)
            left_out += [f"{f} for {g.name}" for f in skip]
            by = importance_by_group(expl, g.codes[shared.idx], g.n_groups,
                                     weights=shared.weights)
            mean, se, n = by["mean"], by["se"], by["n"]
            ref = g.reference
            totals = np.nansum(mean, axis=1)
            rows = []
            for gi, label in enumerate(g.labels):
                enough = n[gi] >= int(self.min_group_size)
                if not enough:
                    small.append(f"{g.name}={label} ({int(n[gi])} explained)")
                for j, f in enumerate(feats):
                    m_g, m_r = mean[gi, j], mean[ref, j]
                    ratio = m_g / m_r if m_r > 0 else (math.inf if m_g > 0 else 1.0)
                    share_g = m_g / totals[gi] if totals[gi] > 0 else 0.0
                    share_r = m_r / totals[ref] if totals[ref] > 0 else 0.0
                    diff_se = math.sqrt(se[gi, j] ** 2 + se[ref, j] ** 2)
                    significant = (abs(m_g - m_r) > z_crit * diff_se) if diff_se > 0 \
                        else m_g != m_r
                    flagged = bool(gi != ref and enough and n[ref] >= int(self.min_group_size)
                                   and f not in skip
                                   and max(share_g, share_r) >= float(self.min_share)
                                   and (ratio >= float(self.max_ratio)
                                        or ratio <= 1 / float(self.max_ratio))
                                   and significant)
                    metrics[f"importance/{g.name}/{label}/{f}"] = _f(m_g)
                    rows.append([label, int(n[gi]), f, _r(m_g, 6), _r(se[gi, j], 6),
                                 None if not math.isfinite(ratio) else _r(ratio), flagged,
                                 f in skip])
                    if flagged:
                        how = (f"{ratio:.1f} times" if math.isfinite(ratio) else "infinitely")
                        if ratio < 1:
                            how = f"{1 / ratio:.1f} times less" if ratio > 0 else "nothing"
                            text = (f"{f} weighs {how} for {g.name}={label} than for "
                                    f"{g.labels[ref]} ({m_g:.3f} vs {m_r:.3f})")
                        else:
                            text = (f"{f} weighs {how} as much for {g.name}={label} as for "
                                    f"{g.labels[ref]} ({m_g:.3f} vs {m_r:.3f})")
                        strength = ratio if ratio >= 1 else (1 / ratio if ratio > 0 else math.inf)
                        findings.append((strength, text))
            evidence.append(Evidence.table(
                f"importance_by_group:{g.name}",
                ["group", "n_explained", "feature", "mean_abs_shap", "se", "ratio_to_reference",
                 "flagged", "derived_from_group"], rows,
                f"{g.name}: mean |SHAP value| ({expl.output_space}) per input in each group "
                f"(weighted), its standard error, and its ratio to the reference group "
                f"{g.labels[ref]!r}; flagged: ratio beyond {float(self.max_ratio):g}x, "
                f"significant at {float(self.confidence):.0%}, and at least "
                f"{float(self.min_share):.0%} of a group's total importance, unless the "
                "input is derived from the grouping (derived_from_group: never flagged, its "
                "weight differs between the groups by construction)"))
            if not g.is_intersection:
                jj = [feats.index(f) for f in shown]
                panels.append((g.name, list(g.labels), shown, mean[:, jj]))
        if panels:
            evidence.append(Evidence.file(
                "importance by group plot", "importance_by_group.png",
                plot_importance_by_group(panels, space=expl.output_space),
                "mean |SHAP| of the most important inputs in each group of each sensitive "
                "attribute", media_type="image/png"))
        if self.exclude_derived:
            evidence.append(Evidence.table(
                "derived_from_group",
                ["attribute", "feature", "classifier", "balanced_accuracy", "accuracy",
                 "excluded"], derived_rows,
                "whether each input is derived from a sensitive attribute: how well a "
                "classifier that sees only the input recovers the group of the explained "
                "cases (fitted on one half, scored on the other, both ways); balanced "
                "accuracy = mean share of each group's cases recovered (1/groups: no "
                f"information, 1: the group is a function of the input); at least "
                f"{float(self.derived_min_accuracy):g}: the input is derived from the grouping "
                "and left out of its findings (and of those of intersections containing it)"))
        metrics["n_findings"] = len(findings)
        metrics["n_excluded_derived"] = len(left_out)
        not_compared = (f"; not compared, as derived from the grouping: "
                        f"{', '.join(left_out[:6])}{'...' if len(left_out) > 6 else ''}"
                        if left_out else "")
        if findings:
            findings.sort(key=lambda t: -t[0])
            texts = [t for _, t in findings]
            more = f" and {len(texts) - 4} more" if len(texts) > 4 else ""
            return self.result(Status.FAIL,
                               "inputs weigh markedly differently between groups: "
                               + "; ".join(texts[:4]) + more + f" (mean |SHAP|, "
                               f"{expl.output_space}){not_compared}", metrics=metrics,
                               evidence=evidence)
        if small:
            return self.result(Status.WARN,
                               f"insufficient evidence: {len(small)} group(s) have fewer than "
                               f"{self.min_group_size} explained cases: "
                               + ", ".join(small[:6]) + ("..." if len(small) > 6 else "")
                               + not_compared, metrics=metrics, evidence=evidence)
        return self.result(Status.PASS,
                           f"no input weighs {float(self.max_ratio):g} times more or less in "
                           f"one group than in the reference group{not_compared}",
                           metrics=metrics, evidence=evidence)


# -- explain.proxies ---------------------------------------------------------------------------
@register
class Proxies(_ExplainCheck):
    """Inputs that stand in for a sensitive attribute.

    For each model input and each sensitive attribute: the cross-fitted AUC of a one-feature
    classifier (see :func:`lea_ai_audit.explain.proxy_strength`). An input with an AUC of at
    least ``min_auc`` is a strong proxy; a strong proxy that is among the ``top_k`` most
    important inputs, or carries at least ``min_share`` of the total importance, is a finding.
    Without a model the proxies of the declared inputs (``features=``) are still measured, but
    their weight cannot be judged (WARN when there is a strong proxy).

    Parameters
    ----------
    min_auc : float
        AUC from which an input is a strong proxy.
    top_k : int
        An input ranked this high by global importance is "among the most important".
    min_share : float
        ... as is one with at least this share of the total importance.
    n_bins : int
        Quantile bins of a numeric input.
    max_rows : int
        Rows used (a random sample, seed of the audit, when there are more).
    sample_size, min_per_group, max_background : int
        As for ``explain.global_importance`` (for the importance).
    """

    id = "explain.proxies"
    title = "No important input is a proxy of a sensitive attribute"

    def __init__(self, *, min_auc: float = 0.7, top_k: int = 3, min_share: float = 0.10,
                 n_bins: int = 20, max_rows: int = 50_000, sample_size: int = 2000,
                 min_per_group: int = 50, max_background: int = 100) -> None:
        self.min_auc = min_auc
        self.top_k = top_k
        self.min_share = min_share
        self.n_bins = n_bins
        self.max_rows = max_rows
        self.sample_size = sample_size
        self.min_per_group = min_per_group
        self.max_background = max_background

    def validate(self) -> None:
        super().validate()
        if not 0.5 < float(self.min_auc) <= 1:
            raise ValueError(f"min_auc must be in (0.5, 1], got {self.min_auc}")
        if int(self.top_k) < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not 0 < float(self.min_share) <= 1:
            raise ValueError(f"min_share must be in (0, 1], got {self.min_share}")
        if int(self.n_bins) < 2:
            raise ValueError(f"n_bins must be at least 2, got {self.n_bins}")
        if int(self.max_rows) < 100:
            raise ValueError(f"max_rows must be at least 100, got {self.max_rows}")

    def run(self, ctx: AuditContext) -> CheckResult:
        from ..explain import global_importance, proxy_strength

        feats = [f for f in ctx.features if f not in ctx.sensitive]
        if not feats:
            why = ("the model's inputs are all sensitive attributes" if ctx.features else
                   "the model's inputs are unknown: pass features= (--features) to measure "
                   "how well they predict the sensitive attributes")
            return self.result(Status.SKIPPED, f"no inputs to examine: {why}")
        data = ctx.data
        if ctx.n > int(self.max_rows):
            rng = np.random.default_rng(ctx.seed)
            data = data.iloc[np.sort(rng.choice(ctx.n, int(self.max_rows), replace=False))]
        found = proxy_strength(data, feats, ctx.sensitive, n_bins=int(self.n_bins),
                               seed=ctx.seed)
        rank: dict[str, int] = {}
        share: dict[str, float] = {}
        metrics: dict[str, Any] = {"n_rows": len(data)}
        note = ""
        shared = self._shared(ctx) if ctx.model is not None else None
        if shared is not None and shared.explanation is not None:
            imp = global_importance(shared.explanation, weights=shared.weights, k=self.top_k,
                                    n_bootstrap=0)
            for r, j in enumerate(imp.order, start=1):
                rank[imp.features[j]] = r
                share[imp.features[j]] = float(imp.share[j])
            metrics.update(_sample_metrics(shared, ctx))
        elif shared is not None:
            note = (f"the model could not be explained ({shared.error}), so the importance of "
                    "the inputs cannot be judged, only how well they predict the sensitive "
                    "attributes")
        else:
            note = ("no model: the importance of the inputs cannot be judged, only how well "
                    "they predict the sensitive attributes")
        rows, findings, strong_only = [], [], []
        for r in found:
            f, a, auc = r["feature"], r["attribute"], r["auc"]
            strong = math.isfinite(auc) and auc >= float(self.min_auc)
            important = bool(rank) and (rank.get(f, 10**9) <= int(self.top_k)
                                        or share.get(f, 0.0) >= float(self.min_share))
            finding = strong and important
            metrics[f"auc/{f}/{a}"] = _f(auc)
            metrics[f"uncertainty/{f}/{a}"] = _r(r["uncertainty"], 6)
            rows.append([f, a, _r(auc), _r(r["uncertainty"]), r["binning"], rank.get(f),
                         _r(share.get(f)) if f in share else None, strong, finding])
            if finding:
                findings.append(f"{f} is a strong proxy of {a} (one-feature AUC {auc:.2f}) "
                                f"and among the most important inputs (rank {rank[f]}, "
                                f"{_fmt_share(share[f])} of the total importance)")
            elif strong:
                extra = (f", but carries only {_fmt_share(share[f])} of the importance"
                         if f in share else "")
                strong_only.append(f"{f} predicts {a} (AUC {auc:.2f}){extra}")
        metrics["n_findings"] = len(findings)
        metrics["n_strong_proxies"] = len(findings) + len(strong_only)
        evidence = [Evidence.table(
            "proxies", ["feature", "attribute", "auc", "uncertainty", "binning",
                        "importance_rank", "importance_share", "strong_proxy", "finding"], rows,
            f"how well each input alone predicts each sensitive attribute, on {len(data)} "
            "rows: AUC of a one-feature classifier (the input's frequency table, fitted on "
            "one half and scored on the other, both ways; one group against the rest, "
            "weighted by group size; 0.5 = no information, 1 = gives the group away) and the "
            "uncertainty coefficient (share of the attribute's entropy the input explains); "
            f"strong proxy: AUC at least {float(self.min_auc):g}; finding: a strong proxy "
            f"ranked in the top {self.top_k} by global importance or with at least "
            f"{float(self.min_share):.0%} of it")]
        if note:
            evidence.append(Evidence("note", "text", note[0].upper() + note[1:] + "."))
        if findings:
            tail = f"; also: {'; '.join(strong_only[:3])}" if strong_only else ""
            return self.result(Status.FAIL,
                               "; ".join(findings) + ": the model can treat these groups "
                               "differently through it without seeing the attribute" + tail,
                               metrics=metrics, evidence=evidence)
        if strong_only and not rank:
            return self.result(Status.WARN, "strong proxies among the inputs: "
                               + "; ".join(strong_only[:5]) + f" ({note})", metrics=metrics,
                               evidence=evidence)
        if strong_only:
            return self.result(Status.PASS, "no important input is a strong proxy of a "
                               "sensitive attribute; weaker inputs that are: "
                               + "; ".join(strong_only[:5]), metrics=metrics, evidence=evidence)
        best = found[0] if found else None
        strongest = (f" (strongest: {best['feature']} for {best['attribute']}, AUC "
                     f"{best['auc']:.2f})" if best and math.isfinite(best["auc"]) else "")
        return self.result(Status.PASS, f"no input predicts a sensitive attribute with an AUC "
                                        f"of {float(self.min_auc):g} or more{strongest}"
                           + (f"; {note}" if note else ""), metrics=metrics, evidence=evidence)


# -- explain.additivity ------------------------------------------------------------------------
@register
class Additivity(_ExplainCheck):
    """Self-test: base value + sum of SHAP values = the model's output, for every explained case.

    The model's output is computed by calling the model (not shap), in the explainer's output
    space. Checked for the shared explanation of the stratified sample and for the
    per-decision explanations (``n_cases``, as ``explain.local``). An error above
    ``tolerance`` x max(1, |output|) is a violation: the explanations cannot be relied on, and
    the result is ERROR, not a pass.

    Parameters
    ----------
    tolerance : float
        Largest acceptable error relative to the output's scale.
    n_cases : int
        Per-decision explanations checked (the same cases as ``explain.local``'s default).
    sample_size, min_per_group, max_background : int
        As for ``explain.global_importance``.
    """

    id = "explain.additivity"
    title = "Explanations add up to the model's output (self-test)"

    def __init__(self, *, tolerance: float = 1e-5, n_cases: int = 10, sample_size: int = 2000,
                 min_per_group: int = 50, max_background: int = 100) -> None:
        self.tolerance = tolerance
        self.n_cases = n_cases
        self.sample_size = sample_size
        self.min_per_group = min_per_group
        self.max_background = max_background

    def validate(self) -> None:
        super().validate()
        if not 0 < float(self.tolerance) < 1:
            raise ValueError(f"tolerance must be in (0, 1), got {self.tolerance}")
        if not 0 <= int(self.n_cases) <= 1000:
            raise ValueError(f"n_cases must be between 0 and 1000, got {self.n_cases}")

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.model is None:
            return self.result(Status.SKIPPED, NO_MODEL)
        shared = self._shared(ctx)
        if shared.explanation is None:
            return self._cannot(shared)
        checked = [("sample", shared.explanation, shared.idx)]
        if int(self.n_cases) > 0:
            cases, local, error = local_explanations(
                ctx, n_cases=self.n_cases, sample_size=self.sample_size,
                min_per_group=self.min_per_group, max_background=self.max_background)
            if local is None:
                return self.result(Status.ERROR, "the per-decision explanations could not be "
                                   f"made: {error}")
            checked.append(("cases", local, cases))
        metrics: dict[str, Any] = _sample_metrics(shared, ctx)
        rows, bad, parts = [], [], []
        for name, expl, positions in checked:
            err = expl.additivity_error
            rel = err / np.maximum(1.0, np.abs(expl.output))
            worst = int(np.argmax(rel)) if rel.size else 0
            max_abs = float(err.max()) if err.size else 0.0
            max_rel = float(rel.max()) if rel.size else 0.0
            ok = max_rel <= float(self.tolerance)
            metrics[f"max_additivity_error/{name}"] = max_abs
            metrics[f"max_relative_additivity_error/{name}"] = max_rel
            rows.append([name, expl.n_rows, expl.output_space, expl.method, max_abs, max_rel,
                         int(positions[worst]) if len(positions) else None, ok])
            label = ("the stratified sample" if name == "sample" else "the per-decision "
                     "explanations")
            parts.append(f"{expl.n_rows} cases of {label} (largest error {max_abs:.2g}, "
                         f"{expl.output_space})")
            if not ok:
                bad.append(f"{label}: base value + SHAP values misses the model's output by up "
                           f"to {max_abs:.3g} ({expl.output_space}) in row "
                           f"{int(positions[worst])}")
        metrics["max_additivity_error"] = max(metrics[f"max_additivity_error/{n}"]
                                              for n, _, _ in checked)
        evidence = [Evidence.table(
            "additivity", ["explanation", "cases", "output_space", "explainer", "max_abs_error",
                           "max_relative_error", "worst_row", "within_tolerance"], rows,
            "base value + sum of SHAP values against the model's own output (called without "
            f"shap); tolerance {float(self.tolerance):g} x max(1, |output|)")]
        if bad:
            return self.result(Status.ERROR, "the explanations do not add up to the model's "
                               "output, so they cannot be relied on: " + "; ".join(bad),
                               metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, "base value + SHAP values = the model's output for "
                           + " and ".join(parts), metrics=metrics, evidence=evidence)
