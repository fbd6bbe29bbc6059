"""A human decision on every outcome: the decision log, the overseen model, and the audit's
review of the decisions (oversight.decisions).

Oracles: scores and labels from the model's own predict_proba/predict, reasons from
lea_ai_audit.explain.explain_cases called directly, rates recomputed with pandas group-bys,
the log read back through plain sqlite3.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit import audit
from lea_ai_audit.datasets import FEATURES, make_demo
from lea_ai_audit.decisions import (
    AlreadyDecidedError,
    AlreadyRecommendedError,
    DecisionError,
    DecisionLog,
    NotDecidedError,
    OverseenModel,
    UnknownCaseError,
)
from lea_ai_audit.errors import InputError
from lea_ai_audit.policy import load_policy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo():
    d = make_demo(n_rows=4000, seed=0)
    test = d.test.reset_index(drop=True).copy()
    test["case_id"] = [f"K{i:05d}" for i in range(len(test))]
    return d, test


def _policy(**params):
    return load_policy({"id": "decisions-only", "version": "1", "title": "t",
                        "settings": {"min_group_size": 30},
                        "requirements": [{"id": "officer-decisions", "clauses": ["§27"],
                                          "check": "oversight.decisions", "params": params,
                                          "blocking": False}]})


# -- recommend ---------------------------------------------------------------------------------
def test_recommend_records_score_label_reasons_and_groups(demo, tmp_path: Path) -> None:
    from lea_ai_audit.explain import explain_cases

    d, test = demo
    log = DecisionLog(tmp_path / "d.db")
    om = OverseenModel(d.model, log=log, model_id="triage-v1", background=d.train[FEATURES],
                       features=FEATURES, groups=["ethnicity", "sex"], top=2)
    cases = test.head(8)
    recs = om.recommend(cases, case_ids="case_id", at=T0)
    proba = d.model.predict_proba(cases[FEATURES])[:, 1]
    assert [r.case_id for r in recs] == cases["case_id"].tolist()
    np.testing.assert_allclose([r.score for r in recs], proba)
    assert [r.label for r in recs] == d.model.predict(cases[FEATURES]).tolist()
    expected = explain_cases(d.model, cases[FEATURES], background=d.train[FEATURES],
                             features=FEATURES, top=2, seed=0)
    assert [[x["text"] for x in r.reasons] for r in recs] == \
        [[x.text for x in row] for row in expected]
    assert all(len(r.reasons) == 2 and r.note == "" for r in recs)
    assert recs[0].groups == {"ethnicity": cases["ethnicity"].iloc[0],
                              "sex": cases["sex"].iloc[0]}
    # read back as recorded, through another connection
    back = log.recommendation(recs[3].case_id)
    assert back.reasons == recs[3].reasons and back.score == pytest.approx(recs[3].score)
    assert back.recommended_at == T0
    # no final outcome without a decision
    assert len(log.pending()) == 8 and log.outcomes().empty
    with pytest.raises(NotDecidedError, match="no final outcome"):
        log.outcome(recs[0].case_id)
    with pytest.raises(AlreadyRecommendedError, match="already has a recommendation"):
        om.recommend(cases.head(1), case_ids="case_id")
    with pytest.raises(AlreadyRecommendedError, match="twice"):
        om.recommend(test.iloc[[20, 21]], case_ids=["x", "x"])
    with pytest.raises(InputError, match="one id per row"):
        om.recommend(test.iloc[[20, 21]], case_ids=["only-one"])
    assert log.counts() == {"recommended": 8, "decided": 0, "pending": 8}


def test_reasons_missing_are_said_so(demo, tmp_path: Path, monkeypatch) -> None:
    d, test = demo
    log = DecisionLog(tmp_path / "d.db")
    plain = OverseenModel(d.model, log=log, model_id="m", features=FEATURES)
    (r,) = plain.recommend(test.head(1), case_ids=["a"])
    assert r.reasons == () and "background" in r.note
    monkeypatch.setitem(sys.modules, "lea_ai_audit.explain", None)  # an install without it
    om = OverseenModel(d.model, log=log, model_id="m", features=FEATURES,
                       background=d.train[FEATURES])
    (r,) = om.recommend(test.iloc[[1]], case_ids=["b"])
    assert r.reasons == () and "no explainer" in r.note
    assert log.recommendation("b").note == r.note


# -- decide ------------------------------------------------------------------------------------
@pytest.fixture
def recorded(demo, tmp_path: Path):
    d, test = demo
    log = DecisionLog(f"sqlite:///{tmp_path / 'd.db'}")
    om = OverseenModel(d.model, log=log, model_id="m", features=FEATURES,
                       groups=["ethnicity"])
    recs = om.recommend(test.head(10), case_ids="case_id", at=T0)
    return log, om, recs, tmp_path / "d.db"


def test_accept_and_override(recorded) -> None:
    log, om, recs, _ = recorded
    a, b = recs[0], recs[1]
    dec = om.decide(a.case_id, officer="PC 4711", decision="accept",
                    at=T0 + timedelta(seconds=95))
    assert dec.outcome == a.label and dec.seconds_to_decision == 95
    flip = 1 - b.label
    dec = log.decide(b.case_id, officer="PC 0815", decision="override", outcome=flip,
                     reason="the prior contacts were as a witness", at=T0 + timedelta(minutes=4))
    assert dec.outcome == flip and dec.recommended_label == b.label
    out = log.outcomes()
    assert out["case_id"].tolist() == [a.case_id, b.case_id]
    assert out["decision"].tolist() == ["accept", "override"]
    assert out["outcome"].tolist() == [a.label, flip]
    assert out["seconds_to_decision"].tolist() == [95.0, 240.0]
    assert log.outcome(b.case_id) == flip
    assert len(log.pending()) == 8 and a.case_id not in log.pending()["case_id"].tolist()


def test_refusals(recorded) -> None:
    log, _, recs, _ = recorded
    r = recs[2]
    with pytest.raises(DecisionError, match="needs a reason"):
        log.decide(r.case_id, officer="PC 1", decision="override", outcome=1 - r.label)
    with pytest.raises(DecisionError, match="needs a reason"):
        log.decide(r.case_id, officer="PC 1", decision="override", outcome=1 - r.label,
                   reason="   ")
    with pytest.raises(DecisionError, match="needs the officer's outcome"):
        log.decide(r.case_id, officer="PC 1", decision="override", reason="x")
    with pytest.raises(DecisionError, match="is the recommendation itself"):
        log.decide(r.case_id, officer="PC 1", decision="override", outcome=r.label,
                   reason="x")
    with pytest.raises(DecisionError, match="use decision='override'"):
        log.decide(r.case_id, officer="PC 1", decision="accept", outcome=1 - r.label)
    with pytest.raises(DecisionError, match="not accept or override"):
        log.decide(r.case_id, officer="PC 1", decision="approve")
    with pytest.raises(DecisionError, match="no officer"):
        log.decide(r.case_id, officer="", decision="accept")
    with pytest.raises(DecisionError, match="before it was recommended"):
        log.decide(r.case_id, officer="PC 1", decision="accept", at=T0 - timedelta(1))
    with pytest.raises(UnknownCaseError, match="no recommendation"):
        log.decide("no-such-case", officer="PC 1", decision="accept")
    assert log.outcomes().empty  # nothing was recorded by a refused decision
    log.decide(r.case_id, officer="PC 1", decision="accept")
    with pytest.raises(AlreadyDecidedError, match="already decided"):
        log.decide(r.case_id, officer="PC 2", decision="override", outcome=1 - r.label,
                   reason="I disagree")
    out = log.outcomes()
    assert len(out) == 1 and out["officer"].iloc[0] == "PC 1"
    assert isinstance(AlreadyDecidedError("a", "b"), InputError)  # a typed error: exit 2


def test_records_are_never_updated_in_place(recorded) -> None:
    log, _, recs, path = recorded
    log.decide(recs[0].case_id, officer="PC 1", decision="accept")
    con = sqlite3.connect(path)
    for sql in ("UPDATE lea_decisions SET outcome = '0'", "DELETE FROM lea_decisions",
                "UPDATE lea_recommendations SET score = 0", "DELETE FROM lea_recommendations"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)
    con.close()
    assert len(log.outcomes()) == 1 and len(log.pending()) == 9


def test_opening_a_log(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no decision log at"):
        DecisionLog(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(InputError, match="cannot use the decision log URL"):
        DecisionLog("nosuchdialect://x/y")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(InputError, match="holds no decision log"):
        DecisionLog(tmp_path / "other.db", create=False)
    log = DecisionLog(f"sqlite:///{tmp_path / 'x.db'}")
    assert "x.db" in repr(log) and log.counts()["recommended"] == 0
    # a server that cannot be reached (or no driver): one typed error, password not shown
    with pytest.raises(InputError, match=r"u:\*\*\*@127\.0\.0\.1") as exc:
        DecisionLog("postgresql://u:secret@127.0.0.1:1/db", create=False)
    assert "secret" not in str(exc.value)


# -- two processes -----------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys
    from datetime import datetime, timedelta, UTC
    from lea_ai_audit.datasets import make_demo, FEATURES
    from lea_ai_audit.decisions import DecisionLog, OverseenModel
    d = make_demo(n_rows=2000, seed=1)
    log = DecisionLog(sys.argv[1])
    om = OverseenModel(d.model, log=log, model_id="triage-v1", features=FEATURES,
                       groups=["ethnicity"])
    cases = d.test.head(20)
    recs = om.recommend(cases, case_ids=[f"C{i}" for i in range(20)])
    for r in recs[:12]:
        if r.case_id in ("C3", "C7"):
            log.decide(r.case_id, officer="PC 1", decision="override", outcome=1 - r.label,
                       reason="known to the officer")
        else:
            log.decide(r.case_id, officer="PC 1", decision="accept")
    print(",".join(str(r.label) for r in recs))
""")

_DECIDER = textwrap.dedent("""
    import os, sys, time
    from lea_ai_audit.decisions import DecisionLog, AlreadyDecidedError
    log = DecisionLog(sys.argv[1], create=False)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    try:
        log.decide("C15", officer=sys.argv[3], decision="accept")
        print("decided")
    except AlreadyDecidedError as exc:
        print("refused:", exc.what)
""")


def test_two_processes_write_and_read_one_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    w = subprocess.run([sys.executable, "-c", _WRITER, url], capture_output=True, text=True,
                       timeout=300)
    assert w.returncode == 0, w.stderr
    labels = [int(x) for x in w.stdout.strip().split(",")]
    log = DecisionLog(url, create=False)  # this process reads what the other one wrote
    out = log.outcomes()
    assert out["case_id"].tolist() == [f"C{i}" for i in range(12)]
    overridden = out.set_index("case_id")["decision"] == "override"
    assert sorted(overridden[overridden].index) == ["C3", "C7"]
    assert out.set_index("case_id").loc["C3", "outcome"] == 1 - labels[3]
    assert out.set_index("case_id").loc["C0", "outcome"] == labels[0]
    assert log.pending()["case_id"].tolist() == [f"C{i}" for i in range(12, 20)]
    # this process decides; a third process reads it
    log.decide("C12", officer="PC 2", decision="accept")
    code = ("import sys; from lea_ai_audit.decisions import DecisionLog; "
            "log = DecisionLog(sys.argv[1], create=False); o = log.outcomes(); "
            "print(o['case_id'].iloc[-1], o['officer'].iloc[-1], len(log.pending()))")
    r = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["C12", "PC", "2", "7"]
    # two officers in two processes decide the same case at the same moment: one wins
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _DECIDER, url, str(go), f"PC {k}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in (7, 8)]
    time.sleep(1.5)  # both are waiting at the barrier
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in results]
    outs = sorted(o.strip() for o, _ in results)
    assert outs[0] == "decided" and outs[1].startswith("refused: case 'C15'")
    assert (log.outcomes()["case_id"] == "C15").sum() == 1


# -- the audit's review of the decisions -------------------------------------------------------
def _simulate(log: DecisionLog, om: OverseenModel, test: pd.DataFrame, *, n: int,
              biased_officer: bool, minority_override: float, seed: int = 0) -> None:
    """Officer PC1 rubber-stamps (if biased_officer); PC2 reviews, overriding minority cases
    at ``minority_override`` and majority cases at 0.10."""
    rng = np.random.default_rng(seed)
    recs = om.recommend(test.head(n), case_ids="case_id", at=T0)
    for i, r in enumerate(recs[: n - 40]):  # 40 stay pending
        if biased_officer and i % 2:
            log.decide(r.case_id, officer="PC1", decision="accept",
                       at=T0 + timedelta(seconds=2))
            continue
        p = minority_override if r.groups["ethnicity"] != "majority" else 0.10
        if rng.random() < p:
            log.decide(r.case_id, officer="PC2", decision="override", outcome=1 - r.label,
                       reason="context the tool lacks", at=T0 + timedelta(seconds=300))
        else:
            log.decide(r.case_id, officer="PC2", decision="accept",
                       at=T0 + timedelta(seconds=150 + i % 60))


def _review(test, d, log, **params):
    rep = audit(test, target="reoffended", sensitive=["ethnicity", "sex"], model=d.model,
                features=FEATURES, policy=_policy(**params), decisions=log, track=False)
    return rep, rep.checks[0]


def test_review_finds_automation_bias_and_group_disparity(demo, tmp_path: Path) -> None:
    d, test = demo
    log = DecisionLog(tmp_path / "d.db")
    om = OverseenModel(d.model, log=log, model_id="m", features=FEATURES,
                       groups=["ethnicity", "sex"])
    _simulate(log, om, test, n=640, biased_officer=True, minority_override=0.45)
    rep, c = _review(test, d, log)
    assert c.raw_status.value == "fail" and c.status.value == "warn"  # advisory requirement
    assert "automation-bias signs: officer PC1 accepted 100% of 300" in c.message
    assert "officers override the tool for ethnicity=minority_" in c.message
    # oracle: the same rates by pandas from the log itself
    out = log.outcomes()
    out["ethnicity"] = [g["ethnicity"] for g in out["groups"]]
    over = out.assign(o=out["decision"].eq("override")).groupby("ethnicity")["o"].agg(
        ["sum", "count"])
    rows = {r["group"]: r for r in rep.table("decisions:by_group") if r["attribute"] ==
            "ethnicity"}
    for grp, (k, m) in over.iterrows():
        assert rows[grp]["decisions"] == m and rows[grp]["overridden"] == k
        assert rows[grp]["override_rate"] == pytest.approx(k / m, abs=1e-4)
        assert c.metrics[f"override_rate/ethnicity/{grp}"] == pytest.approx(k / m)
    ref = rows["majority"]
    assert ref["reference"] == "yes"
    for grp, r in rows.items():
        if grp != "majority":
            assert r["difference"] == pytest.approx(r["override_rate"] - ref["override_rate"],
                                                     abs=2e-4)
    offs = {r["officer"]: r for r in rep.table("decisions:by_officer")}
    assert offs["PC1"]["acceptance_rate"] == 1.0 and offs["PC1"]["median_seconds"] == 2.0
    assert offs["PC1"]["automation_bias_signs"] == "yes"
    assert offs["PC2"]["automation_bias_signs"] == "no"
    assert c.metrics["decisions"] == 600 and c.metrics["pending"] == 40
    assert c.metrics["median_seconds_to_decision"] == pytest.approx(
        float(np.median(out["seconds_to_decision"])))
    assert c.metrics["officers_with_automation_bias_signs"] == 1


def test_review_passes_careful_even_handed_decisions(demo, tmp_path: Path) -> None:
    d, test = demo
    log = DecisionLog(tmp_path / "d.db")
    om = OverseenModel(d.model, log=log, model_id="m", features=FEATURES,
                       groups=["ethnicity", "sex"])
    _simulate(log, om, test, n=1240, biased_officer=False, minority_override=0.10, seed=1)
    _, c = _review(test, d, log)
    assert c.status.value == "pass", c.message
    assert "no sign of automation bias" in c.message and "40 pending" in c.message


def test_joining_on_the_audited_case_ids_gives_the_same_groups(demo, tmp_path: Path) -> None:
    d, test = demo
    log = DecisionLog(tmp_path / "d.db")
    recorder = OverseenModel(d.model, log=log, model_id="m", features=FEATURES,
                             groups=["ethnicity", "sex"])
    _simulate(log, recorder, test, n=400, biased_officer=True, minority_override=0.3)
    rep_rec, _ = _review(test, d, log)
    rep_join, c = _review(test, d, log, case_id="case_id")
    assert rep_join.table("decisions:by_group") == rep_rec.table("decisions:by_group")
    assert "joined on 'case_id'" in c.evidence_named("decisions:by_group").description
    # a log that recorded no groups: only the join can give them
    log2 = DecisionLog(tmp_path / "d2.db")
    bare = OverseenModel(d.model, log=log2, model_id="m", features=FEATURES)
    for r in bare.recommend(test.head(50), case_ids="case_id", at=T0):
        log2.decide(r.case_id, officer="PC3", decision="accept", at=T0 + timedelta(minutes=2))
    rep, c = _review(test, d, log2)
    assert rep.table("decisions:by_group") == []
    assert any("recorded no 'ethnicity'" in n for n in c.evidence_named("notes").data)
    rep, c = _review(test, d, log2, case_id="case_id")
    assert {r["attribute"] for r in rep.table("decisions:by_group")} == {"ethnicity", "sex"}
    rep, c = _review(test, d, log2, case_id="no_such_column")
    assert c.status.value == "error" and "no_such_column" in c.message


def test_review_without_a_log_or_with_too_few_decisions(demo, tmp_path: Path) -> None:
    d, test = demo
    rep = audit(test, target="reoffended", sensitive=["sex"], model=d.model, features=FEATURES,
                policy=_policy(), track=False)
    assert rep.checks[0].status.value == "skipped" and "no decision log" in \
        rep.checks[0].message
    log = DecisionLog(tmp_path / "d.db")
    om = OverseenModel(d.model, log=log, model_id="m", features=FEATURES, groups=["sex"])
    _, c = _review(test, d, log)
    assert c.status.value == "warn" and "no decision recorded yet" in c.message
    recs = om.recommend(test.head(12), case_ids="case_id", at=T0)
    for r in recs[:10]:
        log.decide(r.case_id, officer="PC1", decision="accept", at=T0 + timedelta(seconds=1))
    _, c = _review(test, d, log)
    # 100% acceptance in 1 s, but 10 decisions are too few to call it automation bias
    assert c.status.value == "warn" and c.message.startswith("insufficient evidence")
    assert "2 pending" in c.message
    # a log given as a URL string is opened read-only
    rep = audit(test, target="reoffended", sensitive=["sex"], model=d.model, features=FEATURES,
                policy=_policy(), decisions=f"sqlite:///{tmp_path / 'd.db'}", track=False)
    assert rep.checks[0].metrics["decisions"] == 10


def test_lea_audit_run_with_decisions(demo, tmp_path: Path, capsys) -> None:
    import yaml

    from lea_ai_audit.cli import main

    d, test = demo
    log = DecisionLog(tmp_path / "d.db")
    om = OverseenModel(d.model, log=log, model_id="m", features=FEATURES,
                       groups=["ethnicity", "sex"])
    _simulate(log, om, test, n=640, biased_officer=True, minority_override=0.45)
    cases = tmp_path / "cases.csv"
    test.assign(flagged=d.model.predict(test[FEATURES])).to_csv(cases, index=False)
    pack = tmp_path / "pack.yaml"
    pack.write_text(yaml.safe_dump({
        "id": "decisions-only", "version": "1", "title": "t",
        "requirements": [{"id": "officer-decisions", "clauses": ["§27"],
                          "check": "oversight.decisions", "params": {"case_id": "case_id"},
                          "blocking": True}]}))
    rc = main(["run", "--data", str(cases), "--target", "reoffended", "--prediction-col",
               "flagged", "--sensitive", "ethnicity", "--policy", str(pack), "--decisions",
               f"sqlite:///{tmp_path / 'd.db'}", "--out", str(tmp_path / "out"), "-q",
               "--ledger", "off"])
    assert rc == 1  # blocking in this pack: automation bias fails the audit
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "automation-bias signs" in rep["checks"][0]["message"]
    capsys.readouterr()
    rc = main(["run", "--data", str(cases), "--target", "reoffended", "--prediction-col",
               "flagged", "--sensitive", "ethnicity", "--policy", str(pack), "--decisions",
               str(tmp_path / "missing.db"), "--out", str(tmp_path / "out2"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "no decision log at" in err and err.count("\n") == 1
    assert not (tmp_path / "missing.db").exists()
