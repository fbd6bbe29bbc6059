"""Robustness (AI Act Art. 15): do the model's decisions hold under small changes of its inputs?

``robustness.perturbation`` perturbs a stratified sample of the audited cases twice and asks the
model again:

- **noise**: every numeric input gets Gaussian noise with a standard deviation of ``noise``
  times the input's own standard deviation (integer inputs are rounded back to integers, so a
  count with a small spread may stay unchanged);
- **plausible changes**: in a share ``change_share`` of the cases, one categorical input (text,
  category, bool, or an integer with at most ``max_levels`` distinct values) is changed — an
  integer to a neighbouring value (±1 within the observed range), a label to another label
  drawn with the observed frequencies.

A decision that changes is a *flip*. The flip rate is reported overall (weighted back to the
whole data) and per group of each sensitive attribute, with Wilson intervals (Clopper-Pearson
where min(k, m - k) <= 3); a model whose
decisions flip for more than ``max_flip_rate`` of the cases is a finding, and so is a group
whose decisions flip markedly more often than the others'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import CheckResult, Evidence, Status
from ..stats import rate_interval
from . import Check, register
from .fairness import _f, _r, _validate_common

if TYPE_CHECKING:
    import pandas as pd

    from ..context import AuditContext


def _is_categorical(col: pd.Series, max_levels: int) -> bool:
    import pandas as pd

    if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(col):
        return True
    if not pd.api.types.is_numeric_dtype(col):
        return True
    return pd.api.types.is_integer_dtype(col) and col.nunique(dropna=True) <= max_levels


def perturb_noise(X: pd.DataFrame, numeric: list[str], noise: float,
                  rng: np.random.Generator) -> pd.DataFrame:
    """``X`` with Gaussian noise (sd = ``noise`` x the column's sd) on ``numeric`` columns."""
    import pandas as pd

    out = X.copy()
    for c in numeric:
        col = X[c]
        values = col.to_numpy(dtype=float)
        sd = float(np.nanstd(values))
        if not np.isfinite(sd) or sd == 0:
            continue
        moved = values + rng.normal(0.0, noise * sd, len(values))
        if pd.api.types.is_integer_dtype(col):
            out[c] = np.round(moved).astype(col.dtype)
        else:
            out[c] = moved.astype(col.dtype if pd.api.types.is_float_dtype(col) else float)
    return out


def perturb_categories(X: pd.DataFrame, categorical: list[str], share: float,
                       rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """``X`` with one categorical input changed in a share ``share`` of the rows.

    Returns the perturbed frame and a boolean mask of the rows that were changed.
    """
    import pandas as pd

    out = X.copy()
    n = len(X)
    changed = np.zeros(n, dtype=bool)
    if not categorical or n == 0:
        return out, changed
    rows = np.flatnonzero(rng.random(n) < share)
    which = rng.integers(0, len(categorical), len(rows))
    for j, c in enumerate(categorical):
        target = rows[which == j]
        if len(target) == 0:
            continue
        col = X[c]
        if pd.api.types.is_integer_dtype(col) and not pd.api.types.is_bool_dtype(col):
            lo, hi = col.min(), col.max()
            step = rng.choice([-1, 1], len(target))
            cur = col.to_numpy()[target]
            new = cur + step
            new = np.where((new < lo) | (new > hi), cur - step, new)  # stay in the range
            values = col.to_numpy().copy()
            values[target] = new
            out[c] = values
            changed[target] |= new != cur
            continue
        freq = col.value_counts(dropna=True)
        if len(freq) < 2:
            continue
        labels, p = freq.index.to_numpy(), (freq / freq.sum()).to_numpy()
        cur = col.to_numpy()[target]
        draw = labels[rng.choice(len(labels), len(target), p=p)]
        same = draw == cur
        while same.any():  # a change must change: redraw the ones that came out the same
            draw[same] = labels[rng.choice(len(labels), int(same.sum()), p=p)]
            same = draw == cur
        values = col.astype(object).to_numpy().copy()
        values[target] = draw
        out[c] = pd.Series(values, index=col.index).astype(col.dtype)
        changed[target] = True
    return out, changed


@register
class Perturbation(Check):
    """Flip rate of the model's decisions under small input changes, overall and by group.

    Parameters
    ----------
    sample_size : int
        Cases perturbed (a stratified sample; every group gets at least ``min_per_group``).
    noise : float
        Noise on numeric inputs, as a share of each input's standard deviation.
    change_share : float
        Share of cases in which one categorical input is changed.
    max_flip_rate : float
        Largest acceptable share of decisions that change, overall and in any group.
    max_levels : int
        An integer input with at most this many distinct values is treated as categorical.
    """

    id = "robustness.perturbation"
    title = "Decisions stable under small input changes"

    def __init__(self, *, sample_size: int = 5000, noise: float = 0.05,
                 change_share: float = 0.1, max_flip_rate: float = 0.05,
                 max_levels: int = 10, min_per_group: int = 50, min_group_size: int = 30,
                 confidence: float = 0.95) -> None:
        self.sample_size = sample_size
        self.noise = noise
        self.change_share = change_share
        self.max_flip_rate = max_flip_rate
        self.max_levels = max_levels
        self.min_per_group = min_per_group
        self.min_group_size = min_group_size
        self.confidence = confidence

    def validate(self) -> None:
        _validate_common(self.min_group_size, self.confidence)
        if int(self.sample_size) < 10:
            raise ValueError(f"sample_size must be at least 10, got {self.sample_size}")
        if not 0 < float(self.noise) <= 1:
            raise ValueError(f"noise must be in (0, 1], got {self.noise}")
        if not 0 <= float(self.change_share) <= 1:
            raise ValueError(f"change_share must be in [0, 1], got {self.change_share}")
        if not 0 <= float(self.max_flip_rate) <= 1:
            raise ValueError(f"max_flip_rate must be in [0, 1], got {self.max_flip_rate}")

    def _predict(self, ctx: AuditContext, X: pd.DataFrame) -> np.ndarray:
        raw = np.asarray(ctx.model.predict(X))
        return (raw == ctx.positive_label).astype(np.int8)

    def run(self, ctx: AuditContext) -> CheckResult:
        if ctx.model is None:
            return self.result(Status.SKIPPED, "no model: robustness needs a model to ask again "
                                               "(a vendor's exported scores cannot be perturbed)")
        if not ctx.features:
            return self.result(Status.SKIPPED, "the model has no input columns to perturb")
        idx = ctx.stratified_sample(int(self.sample_size), min_per_group=int(self.min_per_group))
        X = ctx.data.iloc[idx][list(ctx.features)]
        base = ctx.y_pred[idx]
        weights = ctx.sample_weights(idx)
        rng = np.random.default_rng([ctx.seed, 15])
        categorical = [c for c in ctx.features if _is_categorical(X[c], int(self.max_levels))]
        numeric = [c for c in ctx.features if c not in categorical]
        modes: dict[str, np.ndarray] = {}
        if numeric:
            modes["noise"] = self._predict(ctx, perturb_noise(X, numeric, float(self.noise), rng))
        changed = None
        if categorical and self.change_share > 0:
            Xc, changed = perturb_categories(X, categorical, float(self.change_share), rng)
            modes["categorical"] = self._predict(ctx, Xc)
        if not modes:
            return self.result(Status.SKIPPED, "no input could be perturbed")

        metrics: dict[str, Any] = {"sample_size": len(idx), "seed": ctx.seed,
                                   "numeric_inputs": len(numeric),
                                   "categorical_inputs": len(categorical)}
        rows: list[list[Any]] = []
        over: list[str] = []
        small: list[str] = []
        worst = 0.0
        for mode, pred in modes.items():
            flip = (pred != base).astype(np.int64)
            overall = float(np.average(flip, weights=weights))
            metrics[f"flip_rate/{mode}"] = overall
            worst = max(worst, overall)
            if changed is not None and mode == "categorical":
                metrics["cases_changed/categorical"] = int(changed.sum())
                k = int(flip[changed].sum())
                metrics["flip_rate_of_changed/categorical"] = _f(k / changed.sum()) \
                    if changed.any() else None
            rows.append([mode, "all", "all", len(idx), int(flip.sum()), _r(overall), None, None])
            if overall > self.max_flip_rate:
                over.append(f"{mode}: {overall:.1%} of all decisions")
            for g in ctx.groupings(intersections=False):
                codes = g.codes[idx]
                k = np.bincount(codes, weights=flip, minlength=g.n_groups).astype(np.int64)
                m = np.bincount(codes, minlength=g.n_groups)
                lo, hi = rate_interval(k, m, confidence=self.confidence)
                for i, label in enumerate(g.labels):
                    v = k[i] / m[i] if m[i] else np.nan
                    metrics[f"flip_rate/{mode}/{g.name}/{label}"] = _f(v)
                    rows.append([mode, g.name, label, int(m[i]), int(k[i]), _r(v), _r(lo[i]),
                                 _r(hi[i])])
                    if m[i] < self.min_group_size:
                        small.append(f"{g.name}={label}")
                    elif lo[i] > self.max_flip_rate:  # significantly above the limit
                        over.append(f"{mode}: {g.name}={label} {v:.1%} "
                                    f"[{lo[i]:.1%}, {hi[i]:.1%}]")
        metrics["flip_rate_max"] = worst
        evidence = [Evidence.table(
            "flip rates", ["perturbation", "grouping", "group", "cases", "flipped", "flip_rate",
                           "ci_low", "ci_high"], rows,
            f"decisions that changed when inputs were perturbed, on a stratified sample of "
            f"{len(idx)} cases (seed {ctx.seed}); noise: Gaussian, sd {self.noise:g} x each "
            f"numeric input's sd ({', '.join(numeric) or 'none'}); categorical: one of "
            f"{', '.join(categorical) or 'none'} changed in {self.change_share:.0%} of cases; "
            f"overall rates weighted back to the whole data; {self.confidence:.0%} Wilson "
            "intervals (Clopper-Pearson where min(k, m - k) <= 3)")]
        desc = ", ".join(f"{m} {metrics[f'flip_rate/{m}']:.1%}" for m in modes)
        if over:
            return self.result(Status.FAIL, f"decisions flip under small input changes beyond "
                                            f"{self.max_flip_rate:.0%}: " + "; ".join(over[:4]),
                               metrics=metrics, evidence=evidence)
        if small:
            return self.result(Status.WARN, f"flip rates within {self.max_flip_rate:.0%} ({desc})"
                                            f", but {len(small)} group(s) too small to judge: "
                                            + ", ".join(small[:4]), metrics=metrics,
                               evidence=evidence)
        return self.result(Status.PASS, f"decisions stable: flip rate {desc} "
                                        f"(limit {self.max_flip_rate:.0%})", metrics=metrics,
                           evidence=evidence)
