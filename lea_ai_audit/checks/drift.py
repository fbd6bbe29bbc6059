"""Drift between the training (reference) data and the audited data (Council 13083/1/20 §27;
AI Act Art. 10(2), Art. 15; Art. 72 post-market monitoring).

``data.drift``
    evidently's ``DataDriftPreset`` between a sample of the reference data and a sample of the
    audited data: per column the test evidently chose (or the one the policy names), its
    statistic (a distance, or a p-value) and threshold, and whether the column drifted; the
    drift of the model's scores (scores of the audited rows against the model's scores on the
    reference rows, or the reference's own score column); and drift *within each group* of each
    sensitive attribute, where a shift confined to one group is diluted in the overall figures
    (population stability index with a Kolmogorov–Smirnov or chi-square test, Bonferroni-
    adjusted). evidently's HTML report is saved as evidence, made safe to open (see
    :func:`_safe_html`): column names and category labels reach evidently with ``<``, ``>`` and
    ``&`` replaced by look-alikes (U+2039 and U+203A, the single angle quotation marks,
    and U+214B, the turned ampersand: glyphs of common fonts), so a crafted label cannot close
    evidently's inline ``<script>`` and run its own; and the page carries a Content-Security-
    Policy that lets only evidently's own scripts run (by their SHA-256) and forbids any
    network access (fetch, forms, remote scripts, images, fonts).

Large data is sampled: the audited side with the context's proportional stratified sample, the
reference side with a simple random sample, both seeded by the audit (sizes and seed are in
the metrics). evidently is imported when the check runs, never with ``lea_ai_audit``. On two or
more cores, evidently's report and the within-group tests run in the worker process
(:mod:`lea_ai_audit._background`) from the moment the audit starts; the result is the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import CheckResult, Evidence, Status
from . import Check, register

if TYPE_CHECKING:
    import pandas as pd

    from ..context import AuditContext

#: evidently 0.7's registered stattests (its ``stattests.registry``; a test checks the list)
STATTESTS = ("TVD", "anderson", "chisquare", "cramer_von_mises", "ed", "empirical_mmd", "es",
             "fisher_exact", "g_test", "hellinger", "jensenshannon", "kl_div", "ks", "mannw",
             "psi", "t_test", "wasserstein", "z")
#: name of the model's output in the compared frames (renamed if the data has such a column)
PREDICTION_COLUMN = "model score"


def psi(reference: np.ndarray | pd.Series, current: np.ndarray | pd.Series, *,
        categorical: bool = False, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference``.

    ``sum((c - r) * ln(c / r))`` over bins: deciles of the reference for numbers (edges at its
    quantiles, so each bin holds about a tenth of it), each value for categories. Shares are
    floored at ``eps``. Missing values are left out. Rule of thumb: < 0.1 stable, 0.1–0.2 a
    moderate shift, > 0.2 a significant shift.

    Examples
    --------
    >>> import numpy as np
    >>> round(psi(np.array(["a"] * 50 + ["b"] * 50), np.array(["a"] * 80 + ["b"] * 20),
    ...           categorical=True), 4)
    0.4159
    """
    import pandas as pd

    r = pd.Series(reference).dropna()
    c = pd.Series(current).dropna()
    if len(r) == 0 or len(c) == 0:
        return float("nan")
    if categorical:
        rs = r.astype(str).value_counts(normalize=True)
        cs = c.astype(str).value_counts(normalize=True)
        keys = rs.index.union(cs.index)
        rp = rs.reindex(keys, fill_value=0.0).to_numpy()
        cp = cs.reindex(keys, fill_value=0.0).to_numpy()
    else:
        rv, cv = r.to_numpy(dtype=float), c.to_numpy(dtype=float)
        edges = np.unique(np.quantile(rv, np.linspace(0, 1, int(bins) + 1)[1:-1]))
        rp = np.bincount(np.searchsorted(edges, rv, side="right"),
                         minlength=len(edges) + 1) / len(rv)
        cp = np.bincount(np.searchsorted(edges, cv, side="right"),
                         minlength=len(edges) + 1) / len(cv)
    rp = np.maximum(rp, eps)
    cp = np.maximum(cp, eps)
    return float(np.sum((cp - rp) * np.log(cp / rp)))


def _ks_asymp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov statistic and asymptotic p-value: what
    ``scipy.stats.ks_2samp(a, b, method="asymp")`` computes, the same way, without its
    per-call argument handling (two thirds of the time of hundreds of group tests)."""
    from scipy.stats import distributions

    a, b = np.sort(a), np.sort(b)
    n1, n2 = len(a), len(b)
    both = np.concatenate([a, b])
    diffs = np.searchsorted(a, both, side="right") / n1 - np.searchsorted(b, both,
                                                                          side="right") / n2
    d = float(max(np.clip(-diffs.min(), 0, 1), diffs.max()))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p = distributions.kstwo.sf(d, np.round(m * n / (m + n)))
    return d, float(np.clip(p, 0, 1))


def _two_sample_test(ref: pd.Series, cur: pd.Series, categorical: bool
                     ) -> tuple[str, float, float]:
    """(test name, statistic, p-value): KS for numbers, chi-square for categories."""
    import pandas as pd
    from scipy import stats

    r, c = ref.dropna(), cur.dropna()
    if len(r) == 0 or len(c) == 0:
        return ("none", float("nan"), float("nan"))
    if not categorical:
        d, p = _ks_asymp(r.to_numpy(dtype=float), c.to_numpy(dtype=float))
        return ("Kolmogorov-Smirnov", d, p)
    table = pd.concat([r.astype(str).value_counts(), c.astype(str).value_counts()], axis=1
                      ).fillna(0).to_numpy().T
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return ("chi-square", 0.0, 1.0)
    res = stats.chi2_contingency(table)
    return ("chi-square", float(res.statistic), float(res.pvalue))


def _kinds(frame: pd.DataFrame, columns: list[str], max_categories: int
           ) -> tuple[dict[str, str], dict[str, str]]:
    """Each column's kind ("num" or "cat"), and the columns left out with the reason."""
    import pandas as pd

    kinds, skipped = {}, {}
    for c in columns:
        s = frame[c]
        nun = s.nunique(dropna=True)
        if nun == 0:
            skipped[c] = "empty"
        elif pd.api.types.is_bool_dtype(s):
            kinds[c] = "cat"
        elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            kinds[c] = "num" if nun > 10 else "cat"
        elif nun <= max_categories:
            kinds[c] = "cat"
        else:
            skipped[c] = (f"text with {nun} distinct values in the sample (an identifier or free "
                          "text): not comparable as a distribution")
    return kinds, skipped


def _prepare(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Numbers as float (dates as seconds), categories as text; missing values kept."""
    import pandas as pd

    out = {}
    for c, k in kinds.items():
        s = frame[c]
        if k == "num":
            if pd.api.types.is_datetime64_any_dtype(s):
                s = s.astype("int64").where(s.notna()) / 1e9
            out[c] = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        else:
            out[c] = s.astype(object).where(s.isna(), s.astype(str)).to_numpy()
    return pd.DataFrame(out)


def _reference_scores(ctx: AuditContext, ref: pd.DataFrame) -> tuple[Any, str, str]:
    """The model's output on the reference rows: (values, kind, how) or (None, "", reason)."""
    if ctx.model is not None:
        missing = [f for f in ctx.features if f not in ref.columns]
        if missing:
            return None, "", f"the reference lacks the model's input(s) {', '.join(missing[:3])}"
        try:
            if ctx.scores is not None and hasattr(ctx.model, "predict_proba"):
                proba = np.asarray(ctx.model.predict_proba(ref[ctx.features]))
                classes = list(getattr(ctx.model, "classes_", [0, 1]))
                pos = classes.index(ctx.positive_label) if ctx.positive_label in classes else 1
                return proba[:, pos].astype(float), "num", "the model's scores on the reference"
            if ctx.scores is not None and hasattr(ctx.model, "decision_function"):
                return (np.asarray(ctx.model.decision_function(ref[ctx.features]),
                                   dtype=float).ravel(), "num",
                        "the model's decision function on the reference")
            pred = np.asarray(ctx.model.predict(ref[ctx.features]))
            return ((pred == ctx.positive_label).astype(int).astype(str), "cat",
                    "the model's decisions on the reference")
        except Exception as exc:
            return None, "", (f"the model cannot score the reference data "
                              f"({type(exc).__name__}: {str(exc)[:120]})")
    if ctx.score_col and ctx.score_col in ref.columns:
        return (ref[ctx.score_col].to_numpy(dtype=float, na_value=np.nan), "num",
                f"the reference's {ctx.score_col!r} column")
    if ctx.prediction_col and ctx.prediction_col in ref.columns:
        return (ref[ctx.prediction_col].astype(str).to_numpy(), "cat",
                f"the reference's {ctx.prediction_col!r} column")
    return None, "", ("the reference has no score or prediction column and there is no model "
                      "to score it")


@register
class DataDrift(Check):
    """Drift between the reference (training) data and the audited data, overall and by group.

    Parameters
    ----------
    sample_size : int
        Rows compared from each side (all rows if fewer).
    method : str, optional
        evidently stattest for every column (e.g. ``"psi"``, ``"ks"``, ``"wasserstein"``,
        ``"jensenshannon"``); default: evidently's choice per column type and size.
    threshold : float, optional
        Threshold of that test (default: evidently's).
    max_drifted_share : float
        Largest share of the model's inputs that may drift (default 0: any drifted input is a
        finding). Drift of the model's scores is always a finding.
    group_sample : int
        Rows per group and side for the within-group comparison.
    group_psi : float
        A column drifts within a group when its PSI reaches this *and* the KS or chi-square
        test is significant at ``alpha`` (Bonferroni-adjusted over all group tests).
    alpha : float
        Family-wise significance level of the within-group tests.
    min_group_rows : int
        Groups with fewer rows on either side are insufficient evidence.
    max_categories : int
        Text columns with more distinct values are left out (identifiers, free text).
    html : bool
        Save evidently's HTML report (about 4 MB) as evidence.
    """

    id = "data.drift"
    title = "The audited data resembles the data the model was trained on"

    def __init__(self, *, sample_size: int = 10_000, method: str | None = None,
                 threshold: float | None = None, max_drifted_share: float = 0.0,
                 group_sample: int = 5_000, group_psi: float = 0.2, alpha: float = 0.05,
                 min_group_rows: int = 100, max_categories: int = 100,
                 html: bool = True) -> None:
        self.sample_size = sample_size
        self.method = method
        self.threshold = threshold
        self.max_drifted_share = max_drifted_share
        self.group_sample = group_sample
        self.group_psi = group_psi
        self.alpha = alpha
        self.min_group_rows = min_group_rows
        self.max_categories = max_categories
        self.html = html

    def validate(self) -> None:
        if int(self.sample_size) < 100:
            raise ValueError(f"sample_size must be at least 100, got {self.sample_size}")
        if self.method is not None and not isinstance(self.method, str):
            raise ValueError("method must be the name of an evidently stattest, e.g. 'psi'")
        if self.method is not None and self.method not in STATTESTS:
            raise ValueError(f"unknown drift method {self.method!r}; use one of "
                             f"{', '.join(STATTESTS)}")
        if self.threshold is not None and not float(self.threshold) > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        for name in ("max_drifted_share", "alpha"):
            v = float(getattr(self, name))
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not float(self.group_psi) > 0:
            raise ValueError(f"group_psi must be positive, got {self.group_psi}")
        if int(self.group_sample) < 10 or int(self.min_group_rows) < 2:
            raise ValueError("group_sample must be at least 10 and min_group_rows at least 2")
        if int(self.max_categories) < 2:
            raise ValueError(f"max_categories must be at least 2, got {self.max_categories}")
        if not isinstance(self.html, bool):
            raise ValueError("html must be true or false")

    # -- run ---------------------------------------------------------------------------------
    def start(self, ctx: AuditContext) -> None:
        """Hand evidently's report and the within-group tests to the worker process
        (:mod:`lea_ai_audit._background`); :meth:`run` collects them.

        The samples, and the model's scores on the reference, are made here in the auditing
        process; the worker only computes on them. Without a worker, :meth:`run` does it all.
        """
        from .. import _background

        self.cancel()
        if not _background.available():
            return
        prep = self._inputs(ctx)
        if isinstance(prep, CheckResult):
            return
        job = _background.start(_drift_job, prep["cur_p"], prep["ref_p"], prep["kinds"],
                                self.method, self.threshold, bool(self.html),
                                prep["samples"])
        if job is not None:
            self._started = (ctx, prep, job)

    def cancel(self) -> None:
        started = getattr(self, "_started", None)
        self._started = None
        if started is not None:
            started[2].close()

    def _inputs(self, ctx: AuditContext) -> CheckResult | dict[str, Any]:
        """The two samples as evidently compares them, or the result that ends the check."""
        ref_full = ctx.reference
        if ref_full is None:
            return self.result(Status.SKIPPED, "no reference data to compare with: pass the "
                               "training data (reference=, --reference FILE)")
        data = ctx.data
        outputs = {c for c in (ctx.prediction_col, ctx.score_col) if c}
        common = [c for c in data.columns if c in ref_full.columns]
        if ctx.features:
            feats = list(ctx.features)
        else:
            feats = [c for c in common if c not in outputs | {ctx.target} | set(ctx.sensitive)]
        not_in_ref = [f for f in feats if f not in ref_full.columns]
        feats = [f for f in feats if f in ref_full.columns]
        roles = {f: "model input" if ctx.features else "feature" for f in feats}
        roles.update({s: "sensitive attribute" for s in ctx.sensitive if s in ref_full.columns
                      and s not in roles})
        if ctx.target in ref_full.columns and ctx.target not in roles:
            roles[ctx.target] = "outcome"
        if not roles:
            return self.result(Status.ERROR, "the reference data shares no column with the "
                               "audited data: pass the data the model was trained on")

        size = int(self.sample_size)
        cur_idx = ctx.stratified_sample(size, min_per_group=0)  # proportional: representative
        rng = np.random.default_rng(ctx.seed)
        n_ref = int(ref_full.shape[0])
        ref_idx = np.arange(n_ref) if n_ref <= size else np.sort(
            rng.choice(n_ref, size, replace=False))
        cur = data.iloc[cur_idx]
        ref = ref_full.iloc[ref_idx]
        kinds, skipped = _kinds(_stack(cur, ref, list(roles)), list(roles),
                                int(self.max_categories))
        cur_p, ref_p = _prepare(cur, kinds), _prepare(ref, kinds)

        # the model's output on both sides
        pred_name = PREDICTION_COLUMN
        while pred_name in roles:
            pred_name += " (audit)"
        ref_out, out_kind, how = _reference_scores(ctx, ref)
        pred_note = ""
        if ref_out is not None:
            if out_kind == "num":
                cur_out: Any = ctx.scores[cur_idx] if ctx.scores is not None else None
            else:
                cur_out = ctx.y_pred[cur_idx].astype(int).astype(str)
            if cur_out is None:
                pred_note = "no scores for the audited rows"
            else:
                if out_kind == "cat":
                    pred_name = pred_name.replace("score", "decision")
                kinds[pred_name] = out_kind
                roles[pred_name] = "model output"
                cur_p[pred_name] = cur_out
                ref_p[pred_name] = ref_out
        else:
            pred_note = how
        samples, small = self._group_samples(ctx, ref_full, kinds, roles, pred_name)
        return {"samples": samples, "small": small, "ref_full": ref_full,
                "not_in_ref": not_in_ref, "roles": roles,
                "cur_idx": cur_idx, "ref_idx": ref_idx, "n_ref": n_ref, "kinds": kinds,
                "skipped": skipped, "cur_p": cur_p, "ref_p": ref_p, "pred_name": pred_name,
                "how": how, "pred_note": pred_note}

    def _computed(self, ctx: AuditContext, prep: dict[str, Any]
                  ) -> tuple[dict[str, dict[str, Any]], bytes | None, list[dict[str, Any]], str]:
        """evidently's verdicts and HTML, and the within-group tests: from the worker started
        by :meth:`start` if any; the note says why its answer was not used ("" otherwise)."""
        from .. import _background

        started = getattr(self, "_started", None)
        self._started = None
        note = ""
        if started is not None and started[0] is ctx:
            try:
                return (*started[2].result(), "")
            except _background.BackgroundUnavailable as exc:
                note = f"computed in place: the worker process failed ({exc})"
        elif started is not None:
            started[2].close()
        return (*_drift_job(prep["cur_p"], prep["ref_p"], prep["kinds"], self.method,
                            self.threshold, bool(self.html), prep["samples"]), note)

    def run(self, ctx: AuditContext) -> CheckResult:
        started = getattr(self, "_started", None)
        if started is not None and started[0] is ctx:
            prep = started[1]
        else:
            prep = self._inputs(ctx)
            if isinstance(prep, CheckResult):
                self.cancel()
                return prep
        ref_full, not_in_ref, roles = prep["ref_full"], prep["not_in_ref"], prep["roles"]
        cur_idx, ref_idx, n_ref = prep["cur_idx"], prep["ref_idx"], prep["n_ref"]
        kinds, skipped, pred_name = prep["kinds"], prep["skipped"], prep["pred_name"]
        how, pred_note = prep["how"], prep["pred_note"]
        columns, html, group_tests, computed = self._computed(ctx, prep)
        rows = []
        metrics: dict[str, Any] = {
            "sample_audited": len(cur_idx), "sample_reference": len(ref_idx), "seed": ctx.seed,
            "rows_audited": ctx.n, "rows_reference": n_ref}
        for c, info in columns.items():
            metrics[f"drift_score/{c}"] = info["value"]
            rows.append([c, roles.get(c, ""), "numerical" if kinds[c] == "num" else
                         "categorical", info["method"], info["kind"], info["value"],
                         info["threshold"], info["drift"]])
        for c, why in skipped.items():
            rows.append([c, roles.get(c, ""), "not compared", why, None, None, None, None])
        inputs = [c for c, r in roles.items() if r in ("model input", "feature") and c in columns]
        drifted = [c for c in inputs if columns[c]["drift"]]
        others = [c for c, r in roles.items() if r in ("sensitive attribute", "outcome")
                  and c in columns and columns[c]["drift"]]
        pred_drift = pred_name in columns and bool(columns[pred_name]["drift"])
        share = len(drifted) / len(inputs) if inputs else 0.0
        metrics.update({"inputs_compared": len(inputs), "drifted_inputs": len(drifted),
                        "drifted_share": round(share, 6),
                        "prediction_drift": None if pred_name not in columns else int(pred_drift)})
        evidence = [Evidence.table(
            "drift", ["column", "role", "type", "test", "statistic_kind", "statistic",
                      "threshold", "drift"], rows,
            f"evidently DataDriftPreset on {len(ref_idx)} reference rows (simple random sample) "
            f"and {len(cur_idx)} audited rows (proportional stratified sample), seed {ctx.seed}. "
            "A distance drifts when it reaches its threshold, a p-value when it falls below it."
            + (f" Model output: {how}." if pred_name in columns else
               f" Model output not compared: {pred_note}.")
            + (f" evidently's report was {computed}." if computed else ""))]

        small = prep["small"]
        group_rows, group_findings = self._by_group(group_tests, small)
        metrics["group_drift_findings"] = len(group_findings)
        evidence.append(Evidence.table(
            "drift_by_group", ["grouping", "group", "column", "test", "statistic", "p_value",
                               "psi", "n_reference", "n_audited", "verdict"], group_rows,
            f"within each group of each sensitive attribute: up to {int(self.group_sample)} rows "
            "per group and side (random, seeded); population stability index (deciles of the "
            "reference group; categories) with a Kolmogorov–Smirnov (numbers) or chi-square "
            f"(categories) test. Drift: PSI >= {float(self.group_psi):g} and p below "
            f"{float(self.alpha):g} divided by the number of tests (Bonferroni)."))
        if html is not None:
            evidence.append(Evidence.file("evidently_report", "drift_report.html", html,
                                          "evidently's data drift report (open in a browser)",
                                          media_type="text/html"))
        if not_in_ref:
            evidence.append(Evidence("inputs_not_in_reference", "json", not_in_ref,
                                     "model inputs the reference data does not hold"))

        sizes = f"{len(ref_idx)} reference vs {len(cur_idx)} audited rows, seed {ctx.seed}"
        findings: list[str] = []
        also: list[str] = []
        if inputs and share > float(self.max_drifted_share):
            findings.append(f"{len(drifted)} of {len(inputs)} input(s) drifted: "
                            + ", ".join(f"{c} ({columns[c]['method']} "
                                        f"{columns[c]['value']:.3g})" for c in drifted[:6]))
        if pred_drift:
            findings.append(f"the model's output drifted ({columns[pred_name]['method']} "
                            f"{columns[pred_name]['value']:.3g})")
        # drift confined to groups: columns that did not drift overall
        seen_overall = set(drifted) | ({pred_name} if pred_drift else set())
        confined = [text for col, text in group_findings if col not in seen_overall]
        if confined:
            findings.append("drift within group(s) that the overall figures dilute: "
                            + "; ".join(confined[:5])
                            + (f" and {len(confined) - 5} more" if len(confined) > 5 else ""))
        elif group_findings:
            also.append(f"{len(group_findings)} within-group drift(s) of the same column(s)")
        if others:
            also.append("the make-up of the data changed in " + ", ".join(others))
        if not_in_ref:
            also.append(f"{len(not_in_ref)} model input(s) missing from the reference")
        no_groups = [a for a in ctx.sensitive if a not in ref_full.columns]
        if no_groups:
            also.append("no within-group comparison for " + ", ".join(no_groups)
                        + " (not in the reference)")
        if pred_note and pred_name not in columns:
            also.append(f"model output not compared ({pred_note})")
        tail = f" ({sizes}" + ("; " + "; ".join(also) if also else "") + ")"
        if findings:
            return self.result(Status.FAIL, "; ".join(findings) + tail, metrics=metrics,
                               evidence=evidence)
        if not inputs:
            return self.result(Status.WARN, "no model input could be compared with the "
                               "reference" + tail, metrics=metrics, evidence=evidence)
        if small:
            return self.result(Status.WARN, "no drift found, but insufficient evidence for "
                               "group(s) with too few rows: " + ", ".join(small[:6]) + tail,
                               metrics=metrics, evidence=evidence)
        return self.result(Status.PASS, f"no drift in {len(inputs)} input(s)"
                           + (", nor in the model's output" if pred_name in columns else "")
                           + ", overall or within any group" + tail, metrics=metrics,
                           evidence=evidence)

    # -- within groups -----------------------------------------------------------------------
    def _group_samples(self, ctx: AuditContext, ref_full: pd.DataFrame, kinds: dict[str, str],
                       roles: dict[str, str], pred_name: str
                       ) -> tuple[list[dict[str, Any]], list[str]]:
        """Each group's two samples, ready to test (the model scores the reference rows here),
        and the groups too small to compare."""
        import pandas as pd

        from ..context import MISSING_GROUP

        cols = [c for c, r in roles.items() if r in ("model input", "feature") and c in kinds]
        rng = np.random.default_rng(ctx.seed + 1)
        m = int(self.group_sample)
        min_rows = int(self.min_group_rows)
        samples: list[dict[str, Any]] = []
        small: list[str] = []
        u_cur = rng.random(ctx.n)
        u_ref = rng.random(ref_full.shape[0])
        for g in ctx.groupings(intersections=False):
            attr = g.attributes[0]
            if attr not in ref_full.columns:
                continue
            # the reference's values mapped to the audit's group labels (-1: not in the audit)
            raw_codes, uniques = pd.factorize(ref_full[attr], use_na_sentinel=False)
            where = {label: i for i, label in enumerate(g.labels)}
            lookup = np.array([where.get(MISSING_GROUP if pd.isna(u) else str(u), -1)
                               for u in uniques] or [-1], dtype=np.int64)
            ref_codes = lookup[raw_codes]
            cur_sizes = np.bincount(g.codes, minlength=g.n_groups)
            ref_sizes = np.bincount(ref_codes[ref_codes >= 0], minlength=g.n_groups)
            p_cur = np.minimum(1.0, m / np.maximum(cur_sizes, 1))
            p_ref = np.minimum(1.0, m / np.maximum(ref_sizes, 1))
            take_cur = u_cur < p_cur[g.codes]
            take_ref = (ref_codes >= 0) & (u_ref < p_ref[np.maximum(ref_codes, 0)])
            for i, label in enumerate(g.labels):
                if cur_sizes[i] < min_rows or ref_sizes[i] < min_rows:
                    small.append(f"{g.name}={label} ({int(ref_sizes[i])} reference, "
                                 f"{int(cur_sizes[i])} audited rows)")
                    continue
                ci = np.flatnonzero(take_cur & (g.codes == i))
                ri = np.flatnonzero(take_ref & (ref_codes == i))
                cur_g = _prepare(ctx.data.iloc[ci], {c: kinds[c] for c in cols})
                ref_g = _prepare(ref_full.iloc[ri], {c: kinds[c] for c in cols})
                if pred_name in kinds:
                    cur_g[pred_name] = (ctx.scores[ci] if kinds[pred_name] == "num"
                                        and ctx.scores is not None
                                        else ctx.y_pred[ci].astype(int).astype(str))
                    ref_vals, _, _ = _reference_scores(ctx, ref_full.iloc[ri])
                    if ref_vals is None:
                        cur_g = cur_g.drop(columns=[pred_name])
                    else:
                        ref_g[pred_name] = ref_vals
                samples.append({"grouping": g.name, "group": label, "cur": cur_g,
                                "ref": ref_g})
        return samples, small

    def _by_group(self, tests: list[dict[str, Any]], small: list[str]
                  ) -> tuple[list[list[Any]], list[tuple[str, str]]]:
        """The within-group table and findings from the tests (Bonferroni over all of them)."""
        n_tests = max(len(tests), 1)
        level = float(self.alpha) / n_tests
        rows, findings = [], []
        for t in tests:
            drift = bool(np.isfinite(t["psi"]) and t["psi"] >= float(self.group_psi)
                         and np.isfinite(t["p"]) and t["p"] < level)
            if drift:
                findings.append((t["column"], f"{t['column']} in {t['grouping']}={t['group']} "
                                              f"(PSI {t['psi']:.2f})"))
            rows.append([t["grouping"], t["group"], t["column"], t["test"],
                         _round(t["stat"]), _round(t["p"], 10), _round(t["psi"]), t["n_ref"],
                         t["n_cur"], "drift" if drift else ""])
        rows += [[s.split("=", 1)[0], s.split("=", 1)[1], "", "", None, None, None, None, None,
                  "insufficient evidence"] for s in small]
        return rows, findings


def _group_tests(samples: list[dict[str, Any]], kinds: dict[str, str]) -> list[dict[str, Any]]:
    """Per group and column: the two-sample test and the PSI (runs in the worker if it can)."""
    tests: list[dict[str, Any]] = []
    for smp in samples:
        cur_g, ref_g = smp["cur"], smp["ref"]
        for c in cur_g.columns:
            cat = kinds[c] == "cat"
            name, stat, p = _two_sample_test(ref_g[c], cur_g[c], cat)
            tests.append({"grouping": smp["grouping"], "group": smp["group"], "column": c,
                          "test": name, "stat": stat, "p": p,
                          "psi": psi(ref_g[c], cur_g[c], categorical=cat),
                          "n_ref": len(ref_g), "n_cur": len(cur_g)})
    return tests


def _drift_job(cur: pd.DataFrame, ref: pd.DataFrame, kinds: dict[str, str],
               method: str | None, threshold: float | None, html: bool,
               samples: list[dict[str, Any]]
               ) -> tuple[dict[str, dict[str, Any]], bytes | None, list[dict[str, Any]]]:
    """Everything of ``data.drift`` that needs neither the model nor the context: evidently's
    report and the within-group tests. :meth:`DataDrift.start` hands it to the worker."""
    columns, page = _evidently_report(cur, ref, kinds, method, threshold, html)
    return columns, page, _group_tests(samples, kinds)


def _evidently_report(cur: pd.DataFrame, ref: pd.DataFrame, kinds: dict[str, str],
                      method: str | None, threshold: float | None, html: bool
                      ) -> tuple[dict[str, dict[str, Any]], bytes | None]:
    """evidently's ``DataDriftPreset`` on the two samples: per column its test, statistic,
    threshold and verdict, and the HTML report (or None). Runs in the worker process when the
    audit can (:meth:`DataDrift.start`), so it touches nothing but its arguments."""
    import warnings

    with warnings.catch_warnings():  # evidently's own deprecation warnings on import
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    # what evidently sees: names and labels without markup (its HTML embeds them in <script>)
    names = _safe_names(list(kinds))
    back = {v: k for k, v in names.items()}
    cur, ref = _safe_frames(cur, ref, kinds, names)
    kinds = {names[c]: k for c, k in kinds.items()}
    num = [c for c, k in kinds.items() if k == "num"]
    cat = [c for c, k in kinds.items() if k == "cat"]
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    preset = DataDriftPreset(columns=num + cat, method=method,
                             threshold=None if threshold is None else float(threshold))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([preset], include_tests=True).run(
            current_data=Dataset.from_pandas(cur, data_definition=dd),
            reference_data=Dataset.from_pandas(ref, data_definition=dd))
    d = snap.dict()
    out: dict[str, dict[str, Any]] = {}
    for m in d.get("metrics", []):
        cfg = m.get("config", {})
        if not str(cfg.get("type", "")).endswith("ValueDrift"):
            continue
        name = str(cfg.get("method"))
        value = m.get("value")
        out[back.get(str(cfg["column"]), str(cfg["column"]))] = {
            "method": name, "threshold": cfg.get("threshold"),
            "value": None if value is None else round(float(value), 6),
            "kind": "p-value" if "p_value" in name else "distance", "drift": None}
    for t in d.get("tests", []):
        params = (t.get("metric_config") or {}).get("params") or {}
        col = back.get(str(params.get("column")), params.get("column"))
        if col in out and str(params.get("type", "")).endswith("ValueDrift"):
            status = t.get("status")
            out[col]["drift"] = str(getattr(status, "value", status)).upper() == "FAIL"
    for info in out.values():  # a test evidently did not report: decide by its own rule
        if info["drift"] is None and info["value"] is not None and info["threshold"]:
            info["drift"] = (info["value"] < info["threshold"] if info["kind"] == "p-value"
                             else info["value"] >= info["threshold"])
    page = _safe_html(snap.get_html_str(as_iframe=False)).encode("utf-8") if html else None
    return out, page


#: what replaces markup characters in the names and labels given to evidently
_LOOKALIKE = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\u214b"})


def _safe_text(text: str) -> str:
    """``text`` with ``<``, ``>`` and ``&`` replaced by look-alikes (``\u2039``, ``\u203a``,
    ``\u214b``) that mean nothing to HTML or JavaScript."""
    return text.translate(_LOOKALIKE)


def _unique_map(values: list[str]) -> dict[str, str]:
    """Each value's safe text, one-to-one: a safe text that another value already has (or
    is) gets a numbered suffix, so that counts, and thus evidently's statistics, are unchanged."""
    out: dict[str, str] = {}
    taken = {v for v in values if _safe_text(v) == v}
    for v in values:
        if v in out:
            continue
        safe = _safe_text(v)
        if safe != v:
            base, i = safe, 2
            while safe in taken:
                safe, i = f"{base} ({i})", i + 1
            taken.add(safe)
        out[v] = safe
    return out


def _safe_names(columns: list[Any]) -> dict[Any, Any]:
    """Column name -> the name evidently sees (without ``<``, ``>``, ``&``; one-to-one; a
    name that is not text is kept)."""
    text = _unique_map([c for c in columns if isinstance(c, str)])
    return {c: text.get(c, c) if isinstance(c, str) else c for c in columns}


def _safe_frames(cur: pd.DataFrame, ref: pd.DataFrame, kinds: dict[str, str],
                 names: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both samples with the safe column names and, in categorical columns, safe labels
    (the same label mapped the same way on both sides)."""
    cur = cur.rename(columns=names)
    ref = ref.rename(columns=names)
    for c, k in kinds.items():
        if k != "cat":
            continue
        col = names[c]
        labels = [v for v in dict.fromkeys([*cur[col].tolist(), *ref[col].tolist()])
                  if isinstance(v, str)]
        if not any(_safe_text(v) != v for v in labels):
            continue
        mapping = _unique_map(labels)
        for frame in (cur, ref):
            frame[col] = np.array([mapping.get(v, v) if isinstance(v, str) else v
                                   for v in frame[col].tolist()], dtype=object)
    return cur, ref


def _safe_html(page: str) -> str:
    """evidently's page with a Content-Security-Policy as the first element of ``<head>``:
    only the page's own inline scripts run (each allowed by its SHA-256, so no script or event
    handler added later runs), styles inline, images and fonts only as ``data:``, and no
    network access (no fetch/XHR/WebSocket, no form submission, no remote anything).

    ``frame-ancestors`` cannot be set by a ``<meta>`` policy and is left out.
    """
    import base64
    import hashlib
    import re

    hashes = []
    for m in re.finditer(r"<script[^>]*>(.*?)</script>", page, flags=re.S | re.I):
        digest = hashlib.sha256(m.group(1).encode("utf-8")).digest()
        hashes.append(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    policy = ("default-src 'none'; script-src " + (" ".join(dict.fromkeys(hashes)) or "'none'")
              + "; style-src 'unsafe-inline'; img-src data:; font-src data:; "
              "connect-src 'none'; form-action 'none'; base-uri 'none'; object-src 'none'; "
              "frame-src 'none'; worker-src 'none'; media-src 'none'; manifest-src 'none'")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    head = re.search(r"<head[^>]*>", page, flags=re.I)
    at = head.end() if head is not None else 0
    return page[:at] + meta + page[at:]


def _round(x: float, nd: int = 6) -> float | None:
    return round(float(x), nd) if x is not None and np.isfinite(x) else None


def _stack(cur: pd.DataFrame, ref: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Both samples' ``columns`` stacked (to decide each column's kind on both sides)."""
    import pandas as pd

    return pd.concat([cur[columns], ref[columns]], ignore_index=True)
