"""Audit a vendor's risk tool from its exported scores alone (no access to the model).

    python examples/vendor_scores.py --data cases.csv --out audit-vendor

The CSV needs the observed outcome, the tool's 0/1 decision and/or its score, and the
sensitive attributes. Without --data, the script makes one from the synthetic demo data (the
columns ``flagged`` and ``risk`` play the vendor's export).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from lea_ai_audit import audit
from lea_ai_audit.errors import LeaAuditError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="CSV with the vendor's export (default: synthetic demo data)")
    ap.add_argument("--target", default="reoffended")
    ap.add_argument("--prediction", default="flagged")
    ap.add_argument("--score", default="risk")
    ap.add_argument("--sensitive", action="append", default=None)
    ap.add_argument("--out", default="audit-vendor")
    args = ap.parse_args()

    if args.data:
        df = pd.read_csv(args.data)
    else:
        from lea_ai_audit.datasets import make_demo
        df = make_demo(20_000, seed=1).test
    try:
        report = audit(df, target=args.target, prediction=args.prediction, score=args.score,
                       sensitive=args.sensitive or ["ethnicity", "sex"],
                       reference_groups={"ethnicity": "majority"} if not args.data else None,
                       author="vendor-audit")
    except LeaAuditError as exc:  # bad input: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report.save(args.out)
    fpr = next(c for c in report.checks if c.check_id == "fairness.disparity"
               and c.params.get("metric") == "fpr")
    print(f"audit {report.status.value.upper()}; false positive rates by group:")
    for k, v in fpr.metrics.items():
        if k.startswith("fpr/") and "&" not in k and v is not None:
            print(f"  {k[4:]:30} {v:.3f}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
