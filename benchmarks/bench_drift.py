"""Drift speed benchmark: the ``data.drift`` check on 1M vs 1M rows against evidently run
directly on 500k vs 500k rows, same data, one run.

Data: ``lea_ai_audit.datasets.make_police_triage`` (seed fixed) — 7 model inputs (4 numeric,
3 categorical), 3 sensitive attributes — for the reference (training) side and the audited
side, the audited ages shifted by +4 years so that there is drift to find. A logistic model
trained on 20k reference rows scores the audited rows (a vendor's ``risk`` column); the
reference side carries the same model's scores, so prediction drift is compared too.

Contenders
----------
ours
    ``audit(current, reference=reference, score="risk", ...)`` with a one-requirement policy
    running ``data.drift`` (default parameters: 10k-row samples per side, evidently's
    DataDriftPreset on them, PSI + KS/chi-square within every group, evidently's HTML report).
    Timed: the check itself (its ``duration_s`` in the report, which includes the first import
    of evidently in this process) and the whole ``audit()`` call (context build on 1M rows).
evidently
    ``Report([DataDriftPreset()]).run(...)`` on the first 500k rows of each side, the same
    columns, evidently's default per-column tests. Run once.

The two sides must agree on which inputs drifted (the script exits non-zero if not).

Run::

    python benchmarks/bench_drift.py                  # 1M vs 1M, evidently on 500k: ~1-2 min
    python benchmarks/bench_drift.py --rows 100000 --evidently-rows 50000   # smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

GOAL_S = 10.0  # the target for 1M vs 1M rows
SEED = 20241123
TARGET = "reoffended"
SENSITIVE = ["ethnicity", "sex", "age_band"]


def make_data(n_rows: int) -> tuple[Any, Any, list[str]]:
    """(reference, current, features): 1M-row sides built in blocks (make_police_triage)."""
    import pandas as pd

    from lea_ai_audit.datasets import FEATURES, make_demo_model, make_police_triage

    def side(seed: int) -> pd.DataFrame:
        block = 250_000
        parts = [make_police_triage(min(block, n_rows - i), seed=seed + k)
                 for k, i in enumerate(range(0, n_rows, block))]
        return pd.concat(parts, ignore_index=True).drop(columns=["case_id"])

    reference = side(SEED)
    current = side(SEED + 1000)
    current["age"] = current["age"] + 4
    model = make_demo_model().fit(reference[FEATURES].iloc[:20_000],
                                  reference["rearrested"].iloc[:20_000])
    for df in (reference, current):
        df["risk"] = model.predict_proba(df[FEATURES])[:, 1]
    return reference, current, list(FEATURES)


def run_ours(reference: Any, current: Any, features: list[str]) -> dict[str, Any]:
    from lea_ai_audit import audit
    from lea_ai_audit.policy import load_policy

    policy = load_policy({"id": "bench-drift", "version": "1", "title": "drift only",
                          "requirements": [{"id": "drift", "clauses": ["AI Act Art. 10"],
                                            "check": "data.drift"}]})
    gc.collect()
    t0 = time.perf_counter()
    rep = audit(current, target=TARGET, sensitive=SENSITIVE, score="risk", features=features,
                reference=reference, policy=policy, track=False)
    total = time.perf_counter() - t0
    (res,) = rep.checks
    drifted = sorted(r["column"] for r in rep.table("drift")
                     if r["drift"] and r["role"] in ("model input", "feature"))
    return {"check_s": res.duration_s, "audit_s": total, "status": res.raw_status.value,
            "message": res.message, "drifted_inputs": drifted,
            "prediction_drift": res.metrics.get("prediction_drift"),
            "sample_audited": res.metrics.get("sample_audited"),
            "sample_reference": res.metrics.get("sample_reference"),
            "html_bytes": next((e.data["size"] for e in res.evidence if e.kind == "file"), None)}


def run_other_data_checks(reference: Any, current: Any, features: list[str]) -> dict[str, Any]:
    """Seconds of the other data checks on the same 1M-row audit (one run, for the record)."""
    from lea_ai_audit import audit
    from lea_ai_audit.policy import load_policy

    checks = ["data.schema", "data.quality_by_group", "data.protection", "data.leakage"]
    policy = load_policy({"id": "bench-data", "version": "1", "title": "data checks",
                          "requirements": [{"id": c, "clauses": ["AI Act Art. 10"], "check": c}
                                           for c in checks]})
    gc.collect()
    t0 = time.perf_counter()
    rep = audit(current, target=TARGET, sensitive=SENSITIVE, score="risk", features=features,
                reference=reference, policy=policy, track=False)
    return {"audit_s": time.perf_counter() - t0,
            "checks": {r.check_id: {"seconds": round(r.duration_s, 3),
                                    "status": r.raw_status.value} for r in rep.checks}}


def run_evidently(reference: Any, current: Any, features: list[str], n: int) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cols = [*features, *SENSITIVE, "risk"]
    ref, cur = reference[cols].iloc[:n].copy(), current[cols].iloc[:n].copy()
    num = [c for c in cols if c in ("age", "prior_contacts", "months_since_last_contact", "risk")]
    cat = [c for c in cols if c not in num]
    for df in (ref, cur):
        df[cat] = df[cat].astype(str)
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    gc.collect()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([DataDriftPreset()], include_tests=True).run(
            current_data=Dataset.from_pandas(cur, data_definition=dd),
            reference_data=Dataset.from_pandas(ref, data_definition=dd))
    seconds = time.perf_counter() - t0
    drifted = sorted(str(t["metric_config"]["params"]["column"]) for t in snap.dict()["tests"]
                     if str(t["metric_config"]["params"].get("type", "")).endswith("ValueDrift")
                     and str(getattr(t["status"], "value", t["status"])).upper() == "FAIL")
    return {"seconds": seconds, "rows": n, "drifted": drifted,
            "drifted_inputs": [c for c in drifted if c in features]}


def machine() -> dict[str, Any]:
    from _machine import machine as about

    info = about(("numpy", "pandas", "scipy", "evidently", "pandera"))
    info["load_average_at_start"] = info.pop("load_average")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per side for our check")
    ap.add_argument("--evidently-rows", type=int, default=500_000,
                    help="rows per side for evidently run directly")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "drift.json")
    ap.add_argument("--note", default="", help="a note stored with the result (e.g. 'shared')")
    args = ap.parse_args(argv)
    os.environ.setdefault("LEA_AUDIT_TRACKING", "off")
    info = machine()
    print(f"generating {args.rows} + {args.rows} rows ...", file=sys.stderr, flush=True)
    reference, current, features = make_data(args.rows)
    print("ours ...", file=sys.stderr, flush=True)
    ours = run_ours(reference, current, features)
    print(f"  data.drift {ours['check_s']:.2f} s (audit() {ours['audit_s']:.2f} s); evidently "
          f"on {args.evidently_rows} ...", file=sys.stderr, flush=True)
    ev = run_evidently(reference, current, features, args.evidently_rows)
    print(f"  evidently {ev['seconds']:.1f} s; the other data checks ...", file=sys.stderr,
          flush=True)
    others = run_other_data_checks(reference, current, features)
    agree = ours["drifted_inputs"] == ev["drifted_inputs"]
    res = {"benchmark": "drift", "rows_per_side": args.rows, "seed": SEED,
           "goal_s": GOAL_S, "ours": ours, "evidently_direct": ev,
           "speedup_vs_evidently": round(ev["seconds"] / ours["check_s"], 1),
           "agree_on_drifted_inputs": agree, "within_goal": ours["check_s"] < GOAL_S,
           "other_data_checks": others,
           "note": args.note, "machine": {**info, "load_average_at_end": os.getloadavg()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(f"data.drift on {args.rows} vs {args.rows} rows: {ours['check_s']:.2f} s (goal < "
          f"{GOAL_S:g} s); evidently directly on {ev['rows']} vs {ev['rows']}: "
          f"{ev['seconds']:.1f} s; drifted inputs ours {ours['drifted_inputs']} vs evidently "
          f"{ev['drifted_inputs']}; written to {args.out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
