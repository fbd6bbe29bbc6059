"""Audit a model inside a training pipeline, as a data scientist would.

    python examples/training_pipeline.py --out audit-training

Trains a scikit-learn Pipeline on the synthetic police case-triage data (the historical
record, which carries an injected bias), audits it against the verified outcome with the
default policy pack, saves report.json and exits 0 when the audit passes (or only warns) and 1
when it fails — so the same script can stop a training job.
"""

from __future__ import annotations

import argparse
import sys

from lea_ai_audit import Status, audit
from lea_ai_audit.datasets import FEATURES, make_demo_model, make_police_triage


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="audit-training")
    ap.add_argument("--bias", type=float, default=0.6)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    df = make_police_triage(args.rows, bias=args.bias, seed=args.seed)
    train, test = df.iloc[: len(df) // 2], df.iloc[len(df) // 2:]
    model = make_demo_model().fit(train[FEATURES], train["rearrested"])  # your training step

    report = audit(test, target="reoffended", sensitive=["ethnicity", "sex", "age_band"],
                   model=model, features=FEATURES, reference_groups={"ethnicity": "majority"},
                   author="training-pipeline", seed=args.seed)
    path = report.save(args.out)

    print(f"audit {report.status.value.upper()} — {path}")
    for c in report.checks:
        if c.status is not Status.PASS:
            print(f"  {c.status.value.upper():5} {c.requirement_id}: {c.message}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
