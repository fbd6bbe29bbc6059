"""Outcome test of New York City stop, question and frisk decisions (2017).

    python examples/stop_and_frisk_audit.py --data PATH/nyc_sqf_for_aequitas.csv --out audit-sqf

The data records decisions made by officers, not by a model: every row is a stop (a "positive
decision") and ``label_value`` says whether a weapon was found. There are no negative decisions,
so error rates that compare decisions with outcomes (false positive rate, selection rate, ...)
are the same in every group by construction, and the audit says so. What the data can show is
the *outcome test*: the hit rate (the precision of the decision to stop) per group of race and
sex, with 95% intervals. If stops of one group find a weapon less often, members of that group
were stopped on less suspicion. The test can mislead when groups' risk distributions differ
(infra-marginality, Simoiu, Corbett-Davies and Goel 2017): a failure calls for a review of the
stops, not a verdict.

The file is the NYPD 2017 stop data as prepared by the Aequitas project (dssg/aequitas,
examples): 11,296 stops with ``score`` (always 1), ``label_value``, ``race`` and ``sex``. Stops
without a recorded outcome are left out and counted. The policy pack is
``police-stops-outcome-test`` (checklists/police-stops-outcome-test.yaml).

Writes ``OUT/report.json`` and the model card (``card.html``, ``card.md``, ``card.json``); prints
the hit rates. Exit code 0 when the audit ran, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from lea_ai_audit import audit
from lea_ai_audit.errors import DataError, InputError, LeaAuditError

SENSITIVE = ["race", "sex"]
REFERENCE = {"race": "WHITE", "sex": "MALE"}


def load_stops(path: str) -> tuple[pd.DataFrame, int]:
    """The stops with a recorded outcome, and how many were left out for lack of one."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"stop data file {path!r} does not exist",
                         "pass --data PATH/nyc_sqf_for_aequitas.csv (from dssg/aequitas)")
    df = pd.read_csv(p)
    missing = [c for c in ("label_value", *SENSITIVE) if c not in df.columns]
    if missing:
        raise DataError(f"{path!r} lacks the column(s) {', '.join(missing)}",
                        "pass the Aequitas preparation of the NYPD stop data")
    known = df["label_value"].notna()
    df = df[known].reset_index(drop=True)
    df["stopped"] = 1  # every row is a stop: the decision was always "stop"
    return df, int((~known).sum())


def hit_rates(report: Any, grouping: str) -> list[str]:
    lines = []
    for row in report.table(f"group_metrics:{grouping}"):
        if row["metric"] != "ppv":
            continue
        v, lo, hi = row["value"], row["ci_low"], row["ci_high"]
        small = " (too few stops to judge)" if row["denominator"] < 30 else ""
        lines.append(f"  {row['group']:<16} {row['denominator']:>6} stops, weapon found in "
                     f"{100 * v:5.1f}% [{100 * lo:.1f}-{100 * hi:.1f}]{small}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="nyc_sqf_for_aequitas.csv")
    ap.add_argument("--out", default="audit-sqf", help="output directory")
    args = ap.parse_args(argv)
    try:
        df, dropped = load_stops(args.data)
        report = audit(df, target="label_value", sensitive=SENSITIVE, prediction="stopped",
                       reference_groups=REFERENCE, policy="police-stops-outcome-test",
                       author="stop-and-frisk-example",
                       data_source={"file": str(args.data),
                                    "dataset": "NYPD stop, question and frisk 2017 (Aequitas)",
                                    "rows_without_outcome_left_out": dropped},
                       metadata={"name": "officers' stop decisions (no model)",
                                 "intended_use": "Outcome test of stop decisions."})
    except LeaAuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    report.save(out)
    print(f"{report.data['n_rows']} stops audited ({dropped} without a recorded outcome left "
          f"out); audit {report.status.value.upper()}.")
    note = next((e.data for c in report.checks for e in c.evidence
                 if e.name == "decisions only"), "")
    if note:
        print(note)
    for grouping in SENSITIVE:
        print(f"Hit rate by {grouping} (95% Wilson intervals):")
        print("\n".join(hit_rates(report, grouping)))
    for c in report.checks:
        print(f"{c.status.value.upper():7} {c.requirement_id}: {c.message}")
    from lea_ai_audit.cards import write_cards

    cards = write_cards(report, out, report_dir=out)
    print(f"report: {out / 'report.json'}; model card: "
          + ", ".join(str(p) for p in cards.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
