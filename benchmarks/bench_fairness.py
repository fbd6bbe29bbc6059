"""Fairness speed benchmark: lea-ai-audit against fairlearn's MetricFrame, same data, same run.

Synthetic cases (fixed seed) with an outcome, a 0/1 decision, a score and three sensitive
attributes with skewed group sizes (ethnicity 5 groups, sex 2, age band 4; 40 intersections).

Contenders
----------
ours
    ``AuditContext.build`` (validation, decisions, group codes of each attribute and of their
    intersection) and the ``fairness.group_metrics`` check (all 11 metrics with Wilson
    intervals per group of each attribute and of the intersection). Median of ``--repeat``
    runs, each on a fresh context. Also ``lea_ai_audit.audit(df, checks=...)`` end to end:
    every fairness requirement of the default policy, and without ``fairness.calibration``.
fairlearn
    ``MetricFrame`` with six metrics (selection rate, TPR, FPR, FNR, TNR, accuracy) for each
    attribute and for the three together (their intersection). Run once: it is slow.

Every rate of every group is compared; the script exits non-zero when any differs by more
than 1e-12 or when the two sides disagree on the groups.

Run::

    python benchmarks/bench_fairness.py                      # 1M rows, ~1-2 minutes
    python benchmarks/bench_fairness.py --rows 100000        # smoke test, a few seconds
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TOLERANCE = 1e-12
GOAL = 50.0  # the target: at least 50x faster than MetricFrame
SEED = 20240607

TARGET, PREDICTION, SCORE = "reoffended", "flagged", "risk_score"
#: attribute -> (groups, shares): skewed as in police case data
ATTRIBUTES: dict[str, tuple[list[str], list[float]]] = {
    "ethnicity": (["majority", "minority_a", "minority_b", "minority_c", "minority_d"],
                  [0.70, 0.14, 0.09, 0.05, 0.02]),
    "sex": (["male", "female"], [0.74, 0.26]),
    "age_band": (["18-24", "25-34", "35-54", "55+"], [0.22, 0.33, 0.35, 0.10]),
}
SENSITIVE = list(ATTRIBUTES)

#: our metric key -> fairlearn MetricFrame column (the six metrics the issue times)
SIX = {
    "selection_rate": "selection_rate",
    "tpr": "true_positive_rate",
    "fpr": "false_positive_rate",
    "fnr": "false_negative_rate",
    "tnr": "true_negative_rate",
    "accuracy": "accuracy_score",
}


# -- data -------------------------------------------------------------------------------------

def make_data(n_rows: int, seed: int = SEED) -> pd.DataFrame:
    """Cases with outcome, decision, score and three string-valued sensitive attributes."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    risk = rng.normal(0.0, 1.0, n_rows)
    for attr, (groups, shares) in ATTRIBUTES.items():
        codes = rng.choice(len(groups), size=n_rows, p=shares)
        cols[attr] = np.asarray(groups, dtype=object)[codes]  # object strings, as read_csv gives
        # groups differ a little in base rate, and the score over-rates some of them
        risk = risk + rng.normal(0.0, 0.15, len(groups))[codes]
    y_true = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-(risk - 0.8)))).astype(np.int64)
    bias = np.where(cols["ethnicity"] != "majority", 0.3, 0.0)
    score = 1.0 / (1.0 + np.exp(-(risk - 0.8 + bias + rng.normal(0.0, 0.8, n_rows))))
    return pd.DataFrame({TARGET: y_true, PREDICTION: (score >= 0.4).astype(np.int64),
                         SCORE: score, **cols})


# -- timing -----------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def run_ours(df: pd.DataFrame, repeat: int) -> dict[str, Any]:
    from lea_ai_audit import audit
    from lea_ai_audit.checks import make_check
    from lea_ai_audit.context import AuditContext

    def build() -> AuditContext:
        return AuditContext.build(df, target=TARGET, sensitive=SENSITIVE, prediction=PREDICTION,
                                  score=SCORE)

    check = make_check("fairness.group_metrics", {"intersections": True})
    ctx_t, check_t, result = [], [], None
    for _ in range(repeat):
        t, ctx = timed(build)
        ctx_t.append(t)
        t, result = timed(lambda ctx=ctx: check.run(ctx))  # a fresh context: counts not cached
        check_t.append(t)

    def run_audit(checks: list[str]) -> dict[str, Any]:
        times, report = [], None
        for _ in range(repeat):
            t, report = timed(lambda: audit(df, target=TARGET, sensitive=SENSITIVE,
                                            prediction=PREDICTION, score=SCORE, checks=checks))
            times.append(t)
        assert report is not None
        return {"checks": checks, "seconds": median(times), "runs": times,
                "status": report.status.value,
                "requirements": {r.requirement_id: {"check": r.check_id,
                                                    "seconds": round(r.duration_s, 4)}
                                 for r in report.checks}}

    # what the audit does beyond the context and the checks: the data's SHA-256 for the report
    digest_t = []
    for _ in range(repeat):
        ctx = build()
        t, _ = timed(lambda ctx=ctx: ctx.data_digest)
        digest_t.append(t)

    return {
        "context_build_s": median(ctx_t), "group_metrics_check_s": median(check_t),
        "total_s": median(ctx_t) + median(check_t),
        "runs": {"context_build_s": ctx_t, "group_metrics_check_s": check_t},
        "audit_fairness": run_audit(["fairness"]),
        "audit_fairness_without_calibration": run_audit(["fairness.group_metrics",
                                                         "fairness.disparity"]),
        "data_digest_s": median(digest_t),
        "groupings": [{"name": g.name, "groups": g.n_groups} for g in ctx.groupings()],
        "result": result,
    }


def run_fairlearn(df: pd.DataFrame, *, verbose: bool = True) -> dict[str, Any]:
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_negative_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    metrics = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
               "false_positive_rate": false_positive_rate,
               "false_negative_rate": false_negative_rate,
               "true_negative_rate": true_negative_rate, "accuracy_score": accuracy_score}
    assert set(metrics) == set(SIX.values())
    y_true, y_pred = df[TARGET], df[PREDICTION]
    out: dict[str, Any] = {"seconds": {}, "by_group": {}}
    runs = [(a, [a]) for a in SENSITIVE] + [(" & ".join(SENSITIVE), SENSITIVE)]
    for name, cols in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t, by_group = timed(lambda cols=cols: MetricFrame(
                metrics=metrics, y_true=y_true, y_pred=y_pred,
                sensitive_features=df[cols]).by_group)
        out["seconds"][name] = t
        out["by_group"][name] = by_group
        if verbose:
            print(f"  fairlearn MetricFrame by {name}: {t:.2f} s", file=sys.stderr, flush=True)
    out["total_s"] = sum(out["seconds"].values())
    return out


def pandas_groupby_counts(df: pd.DataFrame) -> float:
    """Reference point from the issue: a plain pandas group-by of confusion counts."""
    def go() -> None:
        cell = df[TARGET] * 2 + df[PREDICTION]
        for cols in [[a] for a in SENSITIVE] + [SENSITIVE]:
            df[cols].assign(cell=cell).groupby(cols, observed=True)["cell"] \
                .value_counts().unstack(fill_value=0)
    t, _ = timed(go)
    return t


# -- equal numbers ----------------------------------------------------------------------------

def _denominator(df: pd.DataFrame, grouping: str, label: str, metric: str) -> int:
    """Rows of one group in the denominator of ``metric`` (from the data, for undefined rates)."""
    mask = np.ones(len(df), dtype=bool)
    for attr, value in zip(grouping.split(" & "), label.split(" & "), strict=True):
        mask &= (df[attr] == value).to_numpy()
    y = df[TARGET].to_numpy()[mask]
    return int({"tpr": y == 1, "fnr": y == 1, "fpr": y == 0, "tnr": y == 0}
               .get(metric, np.ones(len(y), dtype=bool)).sum())


def compare(df: pd.DataFrame, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Every rate of every group, ours vs MetricFrame; problems listed, max |difference|."""
    metrics = ours["result"].metrics
    problems: list[str] = []
    max_diff, compared, undefined = 0.0, 0, 0
    for name, by_group in theirs["by_group"].items():
        ours_labels = {k.split("/", 2)[2] for k in metrics if k.startswith(f"n/{name}/")}
        seen = set()
        for key, row in by_group.iterrows():
            label = " & ".join(map(str, key)) if isinstance(key, tuple) else str(key)
            if label not in ours_labels:
                # MetricFrame lists absent combinations of several features as all-NaN rows
                if not row.isna().all():
                    problems.append(f"{name}: group {label!r} only in MetricFrame")
                continue
            seen.add(label)
            for ours_key, col in SIX.items():
                a = metrics[f"{ours_key}/{name}/{label}"]
                b = float(row[col])
                compared += 1
                if a is None or not np.isfinite(b):
                    # undefined (denominator 0): ours is null; scikit-learn's zero_division
                    # gives 0.0 with a warning. Equal only if the denominator really is 0.
                    if a is None and (not np.isfinite(b) or (
                            b == 0.0 and _denominator(df, name, label, ours_key) == 0)):
                        undefined += 1
                    else:
                        problems.append(f"{ours_key}/{name}/{label}: {a} vs {b}")
                    continue
                d = abs(a - b)
                max_diff = max(max_diff, d)
                if d > TOLERANCE:
                    problems.append(f"{ours_key}/{name}/{label}: {a!r} vs {b!r}")
        for label in sorted(ours_labels - seen):
            problems.append(f"{name}: group {label!r} missing from MetricFrame")
    return {"equal": not problems, "tolerance": TOLERANCE, "max_abs_diff": max_diff,
            "values_compared": compared, "undefined_in_both": undefined,
            "problems": problems[:20]}


# -- machine ----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    from _machine import machine as about

    return about(("numpy", "pandas", "scipy", "fairlearn", "scikit-learn"))


# -- report -----------------------------------------------------------------------------------

def markdown(res: dict[str, Any]) -> str:
    o, f, t = res["ours"], res["fairlearn"], res["timings"]
    m = res["machine"]
    rows = [
        ("lea-ai-audit: context build (validation, group codes)", o["context_build_s"]),
        ("lea-ai-audit: `fairness.group_metrics` (11 metrics + Wilson intervals)",
         o["group_metrics_check_s"]),
        ("**lea-ai-audit total** (context + group metrics)", o["total_s"]),
        *((f"fairlearn MetricFrame (6 metrics) by {k}", v) for k, v in f.items()
          if k != "total_s"),
        ("**fairlearn total**", f["total_s"]),
        ("`audit(checks=['fairness'])` end to end (incl. calibration/AUC)",
         o["audit_fairness_s"]),
        ("`audit(checks=['fairness.group_metrics', 'fairness.disparity'])` end to end",
         o["audit_fairness_without_calibration_s"]),
        ("pandas group-by of confusion counts (reference)", t["pandas_groupby_counts_s"]),
    ]
    groups = ", ".join(f"{g['name']} {g['groups']}" for g in res["groupings"])
    lines = [
        f"{res['rows']:,} rows; groups: {groups}. Ours: median of {res['repeat']} runs; "
        "fairlearn: 1 run.",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {name} | {sec:.3f} |" for name, sec in rows),
        "",
        f"**Speed-up: {res['speedup']:.0f}x** (goal {GOAL:.0f}x: "
        f"{'met' if res['goal_met'] else 'NOT met'}). Equal numbers: "
        f"{res['equal_numbers']['values_compared']} rates compared, max |difference| "
        f"{res['equal_numbers']['max_abs_diff']:.1e} "
        f"({'equal' if res['equal_numbers']['equal'] else 'NOT EQUAL'} to "
        f"{TOLERANCE:g}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['platform']}, "
        f"Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours (median); fairlearn once")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "fairness.json")
    args = ap.parse_args(argv)
    if args.rows < 1000 or args.repeat < 1:
        ap.error("--rows must be at least 1000 and --repeat at least 1")

    print(f"generating {args.rows:,} rows ...", file=sys.stderr, flush=True)
    df = make_data(args.rows)
    # warm-up on a slice: module imports and first-call costs count for neither side
    small = df.iloc[:2000]
    run_ours(small, 1)
    run_fairlearn(small, verbose=False)

    print("lea-ai-audit ...", file=sys.stderr, flush=True)
    ours = run_ours(df, args.repeat)
    print(f"  context {ours['context_build_s']:.3f} s, group_metrics "
          f"{ours['group_metrics_check_s']:.3f} s", file=sys.stderr, flush=True)
    print("fairlearn (one run; slow) ...", file=sys.stderr, flush=True)
    theirs = run_fairlearn(df)
    check = compare(df, ours, theirs)

    speedup = theirs["total_s"] / ours["total_s"]
    res: dict[str, Any] = {
        "benchmark": "fairness",
        "rows": args.rows,
        "seed": SEED,
        "repeat": args.repeat,
        "attributes": {a: {"groups": len(g),
                           "sizes": {str(k): int(v) for k, v in df[a].value_counts().items()}}
                       for a, (g, _) in ATTRIBUTES.items()},
        "groupings": ours["groupings"],
        "metrics_compared": SIX,
        "ours": {
            "context_build_s": ours["context_build_s"],
            "group_metrics_check_s": ours["group_metrics_check_s"],
            "total_s": ours["total_s"],
            "audit_fairness_s": ours["audit_fairness"]["seconds"],
            "audit_fairness_without_calibration_s":
                ours["audit_fairness_without_calibration"]["seconds"],
            "data_digest_s": ours["data_digest_s"],
            "runs": ours["runs"],
            "audit_fairness": ours["audit_fairness"],
            "audit_fairness_without_calibration": ours["audit_fairness_without_calibration"],
        },
        "fairlearn": {**theirs["seconds"], "total_s": theirs["total_s"]},
        "timings": {"pandas_groupby_counts_s": pandas_groupby_counts(df)},
        "speedup": speedup,
        "speedup_definition": "fairlearn total / (context build + fairness.group_metrics)",
        "goal": GOAL,
        "goal_met": speedup >= GOAL,
        "equal_numbers": check,
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(markdown(res))
    print(f"\nwritten: {args.out}", file=sys.stderr)
    if not check["equal"]:
        print("NUMBERS DIFFER from fairlearn:\n  " + "\n  ".join(check["problems"]),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
