"""The real-data examples (COMPAS, NYPD stop-and-frisk), run as a user runs them.

Their figures are checked against confusion matrices computed here, independently, with pandas,
and against the figures ProPublica published ("How We Analyzed the COMPAS Recidivism Algorithm",
2016, and its notebook in propublica/compas-analysis: Black defendants 990/805/532/1369, white
defendants 1139/349/461/505 as low-survived / high-survived / low-recidivated /
high-recidivated).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit.results import AuditReport

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _confusion(df: pd.DataFrame, group_col: str, y: str, p: str) -> dict[str, dict[str, float]]:
    """Rates per group from a hand-built confusion matrix (pandas crosstab)."""
    out = {}
    for g, part in df.groupby(group_col):
        tab = pd.crosstab(part[y], part[p]).reindex(index=[0, 1], columns=[0, 1], fill_value=0)
        tn, fp, fn, tp = (int(tab.loc[0, 0]), int(tab.loc[0, 1]), int(tab.loc[1, 0]),
                          int(tab.loc[1, 1]))
        out[str(g)] = {
            "n": tn + fp + fn + tp,
            "fpr": fp / (fp + tn) if fp + tn else np.nan,
            "fnr": fn / (fn + tp) if fn + tp else np.nan,
            "ppv": tp / (tp + fp) if tp + fp else np.nan,
            "selection_rate": (tp + fp) / (tn + fp + fn + tp),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        }
    return out


@pytest.fixture(scope="module")
def compas_run(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("compas")
    data = shared_data / "compas" / "compas-scores-two-years.csv"
    r = _run("compas_audit.py", ["--data", str(data), "--out", "out"], tmp)
    assert r.returncode == 0, r.stderr
    return tmp / "out", r.stdout, data


def _rows(report: AuditReport, grouping: str) -> dict[tuple[str, str], dict]:
    return {(row["group"], row["metric"]): row for row in report.table(f"group_metrics:{grouping}")}


def test_compas_vendor_figures_match_hand_computed_confusion_matrices(compas_run):
    out, _, data = compas_run
    df = pd.read_csv(data)
    df["flag"] = (df["score_text"] != "Low").astype(int)
    report = AuditReport.load(out / "vendor")
    assert report.data["n_rows"] == len(df) == 7214
    for grouping in ("race", "sex", "age_cat"):
        want = _confusion(df, grouping, "two_year_recid", "flag")
        got = _rows(report, grouping)
        assert {g for g, _ in got} == set(want)
        for g, w in want.items():
            assert got[(g, "fpr")]["value"] == pytest.approx(w["fpr"], abs=1e-4)
            assert got[(g, "fnr")]["value"] == pytest.approx(w["fnr"], abs=1e-4)
            assert got[(g, "ppv")]["value"] == pytest.approx(w["ppv"], abs=1e-4)
            assert got[(g, "selection_rate")]["value"] == pytest.approx(w["selection_rate"],
                                                                        abs=1e-4)
            assert got[(g, "fpr")]["denominator"] == w["fp"] + w["tn"]
            assert got[(g, "fpr")]["numerator"] == w["fp"]
            lo, hi = got[(g, "fpr")]["ci_low"], got[(g, "fpr")]["ci_high"]
            assert lo <= w["fpr"] <= hi  # the interval holds the point estimate


def test_compas_matches_propublicas_published_figures(compas_run):
    out, stdout, _ = compas_run
    report = AuditReport.load(out / "vendor")
    race = _rows(report, "race")
    # ProPublica: false positive rate 44.85% (Black) vs 23.45% (white); false negative rate
    # 27.99% vs 47.72%
    assert race[("African-American", "fpr")]["numerator"] == 805
    assert race[("African-American", "fpr")]["denominator"] == 990 + 805
    assert race[("Caucasian", "fpr")]["numerator"] == 349
    assert race[("Caucasian", "fnr")]["numerator"] == 461
    assert 100 * race[("African-American", "fpr")]["value"] == pytest.approx(44.85, abs=0.01)
    assert 100 * race[("Caucasian", "fpr")]["value"] == pytest.approx(23.45, abs=0.01)
    assert 100 * race[("African-American", "fnr")]["value"] == pytest.approx(27.99, abs=0.01)
    assert 100 * race[("Caucasian", "fnr")]["value"] == pytest.approx(47.72, abs=0.01)
    # the reference race is the one asked for, and the FPR gap is a blocking failure
    assert report.subject["reference_groups"]["race"] == {"group": "Caucasian",
                                                           "chosen": "given"}
    assert report.result("fpr-parity").status.value == "fail"
    assert report.status.value == "fail"
    # the model card beside the report, valid against the shipped schema
    from lea_ai_audit.cards.render import validate_card
    card = json.loads((out / "vendor" / "card.json").read_text())
    validate_card(card)
    html = (out / "vendor" / "card.html").read_text()
    assert "African-American" in html and "<script" not in html
    # plain words in the headline
    assert "44.8% [" in stdout or "44.9% [" in stdout
    assert "1.91 times as often" in stdout


def test_compas_card_headline_names_the_over_flagged_groups_with_counts(compas_run):
    """The officer's first screen on ProPublica's data: who is wrongly flagged more often, with
    the counts ProPublica published (805 of 1,795 against 349 of 1,488)."""
    out, _, data = compas_run
    card = json.loads((out / "vendor" / "card.json").read_text())
    fpr = next(f for f in card["harm"] if f["requirement"] == "fpr-parity")
    assert fpr["status"] == "fail" and fpr["harmful_side"] == "higher"
    first = fpr["harmed"][0]
    assert first["grouping"] == "race" and first["group"] == "African-American"
    assert first["sentence"].startswith(
        "805 of 1,795 African-American defendants who did not reoffend within two years were "
        "labelled medium or high risk (44.8%), against 349 of 1,488 Caucasian defendants "
        "(23.5%): 1.9 times as often")
    # independently of the audit: the harmed races are those with a higher hand-computed FPR
    df = pd.read_csv(data)
    df["flag"] = (df["score_text"] != "Low").astype(int)
    want = _confusion(df, "race", "two_year_recid", "flag")
    ref = want["Caucasian"]["fpr"]
    for item in fpr["harmed"] + fpr["possibly_harmed"] + fpr["other_side"]:
        if item["grouping"] == "race":
            higher = want[item["group"]]["fpr"] > ref
            assert higher == (item in fpr["harmed"] or item in fpr["possibly_harmed"]), item
    # the intersection is compared with the Caucasian cell of the declared references, and
    # its most over-flagged cells (young African-American defendants) are named as harmed
    refs = {r["attribute"]: r for r in card["factors"]["reference_groups"]}
    assert refs["race & sex & age_cat"]["group"].startswith("Caucasian & ")
    harmed = {i["group"] for i in fpr["harmed"]}
    assert {"African-American & Male & Less than 25",
            "African-American & Female & Less than 25"} <= harmed
    html = (out / "vendor" / "card.html").read_text()
    assert html.index('id="harmed"') < html.index("805 of 1,795") < html.index('id="next"')


def test_compas_own_model_and_comparison(compas_run):
    out, stdout, data = compas_run
    own = AuditReport.load(out / "own-model")
    assert own.subject["prediction_source"] == "model"
    assert "race" not in own.subject["features"] and "sex" not in own.subject["features"]
    assert own.data["reference"]["n_rows"] + own.data["n_rows"] == 7214
    # the model's AUC, checked against scikit-learn on the same split and the same model
    import importlib.util

    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    spec = importlib.util.spec_from_file_location("compas_audit", EXAMPLES / "compas_audit.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    df = ex.load_compas(str(data))
    train, test = train_test_split(df, test_size=0.5, random_state=0, stratify=df[ex.TARGET])
    train, test = train.copy(), test.copy()
    for part in (train, test):
        part["days_b_screening_arrest"] = part["days_b_screening_arrest"].fillna(0)
    model = ex.train_own_model(train, 0)
    want = roc_auc_score(test[ex.TARGET], model.predict_proba(test[ex.FEATURES])[:, 1])
    auc = next(c for c in own.checks if c.check_id == "performance.metrics").metrics["auc"]
    assert auc == pytest.approx(want, abs=1e-9)
    comparison = (out / "comparison.md").read_text()
    assert "| false positive rate, African-American |" in comparison
    assert "audit status" in comparison
    assert "our own model: audit" in stdout


def test_compas_example_bad_path(tmp_path):
    r = _run("compas_audit.py", ["--data", "nope.csv", "--out", "o"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: COMPAS file 'nope.csv' does not exist — ")
    assert not (tmp_path / "o").exists()


def test_stop_and_frisk_outcome_test(tmp_path, shared_data):
    data = shared_data / "nypd_sqf" / "nyc_sqf_for_aequitas.csv"
    r = _run("stop_and_frisk_audit.py", ["--data", str(data), "--out", "sqf"], tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(data)
    known = df.dropna(subset=["label_value"]).copy()
    known["stopped"] = 1
    report = AuditReport.load(tmp_path / "sqf")
    assert report.data["n_rows"] == len(known)
    assert report.data["source"]["rows_without_outcome_left_out"] == len(df) - len(known)
    for grouping in ("race", "sex"):
        got = _rows(report, grouping)
        for g, part in known.groupby(grouping):
            hits = int(part["label_value"].sum())
            assert got[(g, "ppv")]["numerator"] == hits
            assert got[(g, "ppv")]["denominator"] == len(part)
            assert got[(g, "ppv")]["value"] == pytest.approx(hits / len(part), abs=1e-4)
            # decisions only: NPV is undefined (no one was not stopped), FPR is 1 by construction
            assert got[(g, "npv")]["value"] is None
            if (part["label_value"] == 0).any():
                assert got[(g, "fpr")]["value"] == 1.0
    # the error-rate requirements do not apply, and the report says why
    by_check = {c.requirement_id: c for c in report.checks}
    assert by_check["hit-rate-ratio"].status.value in ("pass", "warn", "fail")
    assert "PPV" in by_check["hit-rate-ratio"].message
    assert "Every case received a positive decision" in r.stdout
    assert "weapon found in" in r.stdout
    assert (tmp_path / "sqf" / "card.html").exists() and (tmp_path / "sqf" / "card.md").exists()


def test_decisions_only_data_under_the_default_policy(shared_data):
    """The default pack on stop data: FPR/FNR/selection rate cannot be decided (the reason
    stated); the blocking one (FPR) is then an ERROR that closes the gate, the advisory ones are
    SKIPPED."""
    from lea_ai_audit import audit

    df = pd.read_csv(shared_data / "nypd_sqf" / "nyc_sqf_for_aequitas.csv").dropna(
        subset=["label_value"])
    df["stopped"] = 1
    rep = audit(df, target="label_value", sensitive=["race", "sex"], prediction="stopped",
                checks=["fairness"])
    status = {c.requirement_id: c for c in rep.checks}
    for req in ("fpr-parity", "fnr-parity", "selection-rate-ratio"):
        assert status[req].raw_status.value == "skipped"
        assert "by construction" in status[req].message
        assert status[req].status.value == ("error" if status[req].blocking else "skipped")
    assert status["fpr-parity"].blocking and "not decided" in status["fpr-parity"].message
    assert status["ppv-parity"].status.value != "skipped"
    assert json.loads(rep.to_json())["status"] in ("error", "fail")
    from lea_ai_audit.gate import evaluate_gate
    assert not evaluate_gate(rep).opened
