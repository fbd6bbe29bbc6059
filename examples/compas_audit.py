"""Audit ProPublica's COMPAS data as a police force would audit a vendor's risk tool, then a model
of its own trained on the same cases, and compare the two.

    python examples/compas_audit.py --data PATH/compas-scores-two-years.csv --out audit-compas

The data is ProPublica's "Machine Bias" (2016) release: 7,214 defendants from Broward County,
Florida, scored by the COMPAS tool in 2013-2014, with whether they were charged with a new
crime within two years (``two_year_recid``). Get it from the public repository
propublica/compas-analysis (file compas-scores-two-years.csv); the script never embeds it.

Part 1, the vendor's tool: the audit sees only COMPAS's outputs, not its model. As ProPublica
did, a "Medium" or "High" risk label (``score_text != "Low"``) is a positive prediction of
two-year recidivism and the decile score (1-10) is the score; race, sex and age category are the
sensitive attributes, "Caucasian" the reference race.

Part 2, a model of our own: a gradient-boosting classifier trained on half of the cases, on
COMPAS-like inputs but not race or sex, audited with the model on the other half (explanations,
proxies of race among its inputs, data quality and drift against its training half, data
protection: the file holds names and dates of birth). The vendor's tool is audited on the same
half, and the two audits are compared side by side.

Writes ``OUT/vendor/``, ``OUT/own-model/`` (report.json, evidence/ and the model card in HTML,
Markdown and JSON) and ``OUT/comparison.md``; prints the headline findings in plain
words. Exit code 0 when both audits ran (whatever they found), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from lea_ai_audit import audit
from lea_ai_audit.errors import DataError, InputError, LeaAuditError

TARGET = "two_year_recid"
SENSITIVE = ["race", "sex", "age_cat"]
REFERENCE = {"race": "Caucasian"}
#: inputs of our own model: criminal history, charge and age; not race, not sex
FEATURES = ["age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count",
            "c_charge_degree", "days_b_screening_arrest"]
METADATA = {
    "owner": "lea-ai-audit example (not a real deployment)",
    "intended_use": "Illustrate how an oversight body audits a pretrial risk tool.",
    "out_of_scope_uses": "Any decision about a real person.",
    "users": "Oversight officers, data scientists.",
    "training_data": "ProPublica's COMPAS release (Broward County, 2013-2014).",
    "ethical_considerations": "Recidivism is measured by re-arrest, which reflects policing "
                              "as well as behaviour.",
    "contact": "see the project README",
    # the words of the card's sentences: "805 of 1,795 African-American defendants who did not
    # reoffend within two years were labelled medium or high risk (44.8%), against ..."
    "persons": "defendants",
    "outcome": "reoffended within two years",
    "no_outcome": "did not reoffend within two years",
    "flag": "labelled medium or high risk",
}


def load_compas(path: str) -> pd.DataFrame:
    """Read the COMPAS file; add ``compas_flag`` (Medium/High) and check what the audit needs."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"COMPAS file {path!r} does not exist",
                         "pass --data PATH/compas-scores-two-years.csv "
                         "(from propublica/compas-analysis)")
    df = pd.read_csv(p)
    needed = [TARGET, "score_text", "decile_score", *SENSITIVE, *FEATURES]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{path!r} lacks the column(s) {', '.join(missing)}",
                        "pass ProPublica's compas-scores-two-years.csv")
    # the file repeats decile_score and priors_count (identical values): keep one of each
    df = df.drop(columns=[c for c in df.columns if c.endswith(".1")])
    scored = df["score_text"].isin(["Low", "Medium", "High"])
    df = df[scored].reset_index(drop=True)
    df["compas_flag"] = (df["score_text"] != "Low").astype("int8")
    return df


def train_own_model(train: pd.DataFrame, seed: int) -> Any:
    """A scikit-learn Pipeline: one-hot charge degree, gradient boosting on the rest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [f for f in FEATURES if f != "c_charge_degree"]
    pre = ColumnTransformer([("charge", OneHotEncoder(handle_unknown="ignore"),
                              ["c_charge_degree"]),
                             ("num", "passthrough", numeric)])
    model = Pipeline([("prep", pre),
                      ("gbm", GradientBoostingClassifier(n_estimators=100, max_depth=3,
                                                         random_state=seed))])
    X = train[FEATURES].copy()
    X["days_b_screening_arrest"] = X["days_b_screening_arrest"].fillna(0)
    return model.fit(X, train[TARGET])


def rate(report: Any, metric: str, grouping: str, group: str) -> dict[str, Any]:
    """One group's rate with its interval, from the report's group-metrics table."""
    for row in report.table(f"group_metrics:{grouping}"):
        if row["metric"] == metric and row["group"] == group:
            return row
    raise KeyError(f"{metric} for {grouping}={group}")


def pct(row: dict[str, Any]) -> str:
    if row["value"] is None:
        return "undefined"
    return f"{100 * row['value']:.1f}% [{100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f}]"


def headline(report: Any, who: str, *, vendor: bool) -> list[str]:
    """The findings an oversight officer reads first, in plain words."""
    b = {m: rate(report, m, "race", "African-American") for m in ("fpr", "fnr", "ppv")}
    w = {m: rate(report, m, "race", "Caucasian") for m in ("fpr", "fnr", "ppv")}
    lines = [
        f"{who}: audit {report.status.value.upper()} ({report.data['n_rows']} cases).",
        f"- Of defendants who did NOT reoffend within two years, {who} labelled "
        f"{pct(b['fpr'])} of Black defendants medium or high risk, against {pct(w['fpr'])} of "
        f"white defendants"
        + (f": {b['fpr']['value'] / w['fpr']['value']:.2f} times as often." if w["fpr"]["value"]
           else "."),
        f"- Of defendants who DID reoffend, it labelled {pct(b['fnr'])} of Black and "
        f"{pct(w['fnr'])} of white defendants low risk (missed them).",
        f"- Of those labelled medium or high risk, {pct(b['ppv'])} of Black and {pct(w['ppv'])} "
        f"of white defendants reoffended: a label means about the same for both"
        + (", which is why the vendor could call the tool fair" if vendor else "")
        + ". With different base rates, equal error rates and equal precision cannot both hold "
        "(Chouldechova 2017; Kleinberg, Mullainathan and Raghavan 2016).",
        "- [95% intervals: Wilson score.]",
    ]
    failed = [c for c in report.checks if c.status.value in ("fail", "error")]
    for c in failed:
        lines.append(f"- {c.status.value.upper()} {c.requirement_id}: {c.message}")
    return lines


def write_card(report: Any, out: Path) -> str:
    """The model card (HTML, Markdown, JSON) beside the report."""
    from lea_ai_audit.cards import write_cards

    paths = write_cards(report, out, report_dir=out)
    return "model card: " + ", ".join(str(p) for p in paths.values())


def compare(vendor: Any, own: Any) -> str:
    """A Markdown table of the two audits on the same cases."""
    rows = ["| figure | COMPAS (vendor, scores only) | own model (audited with the model) |",
            "|---|---:|---:|"]
    for metric, label in (("fpr", "false positive rate"), ("fnr", "false negative rate"),
                          ("ppv", "precision"),
                          ("selection_rate", "flagged (medium/high; own model: p >= 0.5)")):
        for group in ("African-American", "Caucasian"):
            rows.append(f"| {label}, {group} | {pct(rate(vendor, metric, 'race', group))} | "
                        f"{pct(rate(own, metric, 'race', group))} |")
    for name, key in (("accuracy", "accuracy"), ("AUC", "auc")):
        v = [next((c.metrics.get(key) for c in r.checks if c.check_id == "performance.metrics"),
                  None) for r in (vendor, own)]
        rows.append(f"| {name} (all) | " + " | ".join("n/a" if x is None else f"{x:.3f}"
                                                     for x in v) + " |")
    rows.append(f"| audit status | {vendor.status.value.upper()} | {own.status.value.upper()} |")
    by_req = {c.requirement_id: c for c in own.checks}
    rows += ["", "| requirement | vendor | own model |", "|---|---|---|"]
    for c in vendor.checks:
        o = by_req.get(c.requirement_id)
        rows.append(f"| {c.requirement_id} | {c.status.value} | "
                    f"{o.status.value if o else 'not run'} |")
    for c in own.checks:
        if c.requirement_id not in {v.requirement_id for v in vendor.checks}:
            rows.append(f"| {c.requirement_id} | not run | {c.status.value} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="compas-scores-two-years.csv")
    ap.add_argument("--out", default="audit-compas", help="output directory")
    ap.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    ap.add_argument("--part", choices=["vendor", "own", "both"], default="both")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        df = load_compas(args.data)
        source = {"file": str(args.data), "dataset": "ProPublica COMPAS two-year recidivism"}

        # -- part 1: the vendor's tool, on every case, from its outputs alone ---------------
        vendor = audit(df, target=TARGET, sensitive=SENSITIVE, prediction="compas_flag",
                       score="decile_score", reference_groups=REFERENCE, author="compas-example",
                       data_source=source, metadata={**METADATA, "name": "COMPAS (vendor)"},
                       seed=args.seed)
        vendor.save(out / "vendor")
        print("\n".join(headline(vendor, "COMPAS", vendor=True)))
        print(write_card(vendor, out / "vendor"))
        if args.part == "vendor":
            return 0

        # -- part 2: our own model, trained on half, audited on the other half -------------
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(df, test_size=0.5, random_state=args.seed,
                                       stratify=df[TARGET])
        train, test = train.reset_index(drop=True), test.reset_index(drop=True)
        for part in (train, test):
            part["days_b_screening_arrest"] = part["days_b_screening_arrest"].fillna(0)
        model = train_own_model(train, args.seed)
        own = audit(test, target=TARGET, sensitive=SENSITIVE, model=model, features=FEATURES,
                    reference=train, reference_groups=REFERENCE, author="compas-example",
                    data_source={**source, "split": f"test half, seed {args.seed}"},
                    metadata={**METADATA, "name": "own gradient boosting (no race, no sex)"},
                    seed=args.seed)
        own.save(out / "own-model")
        print()
        print("\n".join(headline(own, "our own model", vendor=False)))
        print(write_card(own, out / "own-model"))

        vendor_same = audit(test, target=TARGET, sensitive=SENSITIVE, prediction="compas_flag",
                            score="decile_score", reference_groups=REFERENCE,
                            checks=["fairness", "performance"], seed=args.seed)
        table = compare(vendor_same, own)
        (out / "comparison.md").write_text(
            "# COMPAS vs a model of our own, on the same test half\n\n" + table,
            encoding="utf-8")
        print("\nOn the same test half:\n" + table)
    except LeaAuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
