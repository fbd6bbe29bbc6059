"""Every audit in MLflow: a real server over HTTP, nesting, unreachable server and sync,
the default local store, sign-offs, MLflow-legal names (checked by MLflow's own validator)."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import _validate_metric_name, _validate_param_name

from lea_ai_audit import audit
from lea_ai_audit.datasets import FEATURES
from lea_ai_audit.results import AuditReport
from lea_ai_audit.tracking import (
    PENDING_FILE,
    SIDECAR_FILE,
    TrackingWarning,
    find_run,
    log_report,
    log_signoff,
    metric_name,
    report_metrics,
    sync,
    use_tracking_uri,
)

from .conftest import copy_report, free_port


def _dead_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


# -- names -------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=400))
def test_any_name_becomes_legal_for_mlflow(name: str) -> None:
    legal = metric_name(name)
    assert len(legal) <= 250
    _validate_metric_name(legal)  # MLflow's own check raises on an illegal name
    _validate_param_name(legal)


def test_names_keep_legal_characters_and_stay_unique() -> None:
    assert metric_name("fpr/ethnicity/minority_a") == "fpr/ethnicity/minority_a"
    assert metric_name("a & b/<x>") == "a _ b/_x_"
    assert metric_name("a//b/./c/..") == "a/b/_/c/_"
    taken: set[str] = set()
    names = [metric_name(n, taken=taken) for n in ("a:b", "a;b", "a?b", "a_b")]
    assert len(set(names)) == 4
    long1, long2 = "x" * 300 + "1", "x" * 300 + "2"
    assert metric_name(long1) != metric_name(long2)


# -- logging over HTTP -------------------------------------------------------------------------
def test_report_logged_over_http(mlflow_server: str, report_dir: Path, tmp_path: Path) -> None:
    d = copy_report(report_dir, tmp_path / "r")
    rep = AuditReport.load(d)
    t0 = time.perf_counter()
    res = log_report(d, tracking_uri=mlflow_server)
    took = time.perf_counter() - t0
    assert res.logged, res.message
    side = json.loads((d / SIDECAR_FILE).read_text())
    assert side["run_id"] == res.run_id and side["tracking_uri"] == mlflow_server
    assert (d / "report.json").read_bytes() == (report_dir / "report.json").read_bytes()

    client = MlflowClient(mlflow_server)
    run = client.get_run(res.run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["lea.status"] == rep.status.value == "fail"
    assert tags["lea.report_id"] == rep.report_id
    assert tags["lea.report.sha256"] == rep.digest()
    assert tags["lea.data.sha256"] == rep.data["sha256"]
    assert tags["lea.author"] == "analyst"
    assert tags["lea.policy.id"] == rep.policy["id"]
    assert tags["lea.requirement.fpr-parity"] == rep.result("fpr-parity").status.value
    assert params["policy.version"] == rep.policy["version"]
    assert params["data.n_rows"] == str(rep.data["n_rows"])
    assert params["fpr-parity.max_difference"] == "0.1"
    # a compact set of metrics a reviewer can read, every number in the tables
    assert metrics.keys() == report_metrics(rep).keys() and 50 < len(metrics) <= 160
    numeric = {f"{c.requirement_id}/{k}": v for c in rep.checks for k, v in c.metrics.items()
               if isinstance(v, (int, float))}
    assert len(numeric) > 300
    fpr = rep.result("fpr-parity")
    verdicts = [r for e in fpr.evidence if e.kind == "table" and e.name.startswith("fpr:")
                for r in (dict(zip(e.data["columns"], row, strict=True)) for row in e.data["rows"])]
    beyond = [r for r in verdicts if r["verdict"] == "violation"]
    assert metrics["fpr-parity/groups_beyond"] == len(beyond) > 0  # counted by hand
    worst = max((r for r in verdicts if r["side"] == "harmful" and r["verdict"] not in
                 ("reference", "insufficient")), key=lambda r: abs(r["diff"]))
    assert metrics["fpr-parity/worst_gap"] == pytest.approx(worst["diff"])
    assert tags["lea.worst.fpr-parity"].split(": ", 1)[1].startswith(str(worst["group"]))
    assert metrics["audit/n_fail"] == rep.counts()["fail"]
    assert metrics["audit/passed"] == 0.0
    assert report_metrics(rep, full=True)["plot-evidence/weird_name/_/x"] == 1.5
    # the tables: what mlflow.load_table reads, equal to the report's evidence
    listed = json.loads(tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/fpr-parity/fpr_ethnicity.json", "type": "table"} in listed
    with use_tracking_uri(mlflow_server):  # load_table searches through MLflow's globals
        table = client.load_table(run.info.experiment_id,
                                  "tables/fpr-parity/fpr_ethnicity.json", run_ids=[res.run_id])
    row = table.set_index("group").loc["minority_a"]
    assert row["value"] == pytest.approx(fpr.metrics["fpr/ethnicity/minority_a"], abs=1e-4)
    inter = [e["path"] for e in listed if e["path"].startswith("tables/group-evidence/")
             and "_x_" in e["path"]]
    assert inter, "the intersection's table is there under a legal name"
    # the run as the MLflow UI shows it: name, description, datasets, experiment kind
    assert tags["mlflow.runName"].startswith(f"FAIL {rep.policy['id']} ")
    note = tags["mlflow.note.content"]
    assert note.startswith("## lea-ai-audit: FAIL") and "card.html" in note
    assert "| fpr-parity | FAIL |" in note
    digests = {d.dataset.digest: d.tags[0].value for d in run.inputs.dataset_inputs}
    want = {rep.data["sha256"][:32]: "evaluation"}
    if rep.data.get("reference"):
        want[rep.data["reference"]["sha256"][:32]] = "training"
    assert digests == want
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"

    arts = {a.path for a in client.list_artifacts(res.run_id)}
    assert {"report.json", "card.html", "card.md", "card.json", "evidence"} <= arts
    # the artifacts downloaded are again a report directory: evidence digests hold
    dl = Path(client.download_artifacts(res.run_id, "", str(tmp_path / "dl")))
    back = AuditReport.load(dl)
    assert back == rep
    plot = next(e for e in back.files() if e.name == "importance plot")
    assert plot.read(dl) == plot.read(report_dir)
    assert took < 30


def test_audit_nested_under_the_active_run(mlflow_server: str, demo_data, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_experiment("training-pipeline")
    with mlflow.start_run() as parent:
        rep = audit(demo_data.test, target="reoffended", sensitive=["ethnicity"],
                    model=demo_data.model, features=FEATURES, checks=["fairness.disparity"],
                    out=tmp_path / "a")
    run = find_run(rep.report_id, tracking_uri=mlflow_server, experiment="training-pipeline")
    assert run is not None
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.info.experiment_id == parent.info.experiment_id
    assert (tmp_path / "a" / "card.html").is_file()


# -- unreachable server: nothing lost ----------------------------------------------------------
def test_unreachable_server_keeps_the_report_and_sync_uploads_it(
        mlflow_server: str, report_dir: Path, tmp_path: Path) -> None:
    d = copy_report(report_dir, tmp_path / "audits" / "one")
    d2 = copy_report(report_dir, tmp_path / "audits" / "nested" / "two")
    before = (d / "report.json").read_bytes()
    t0 = time.perf_counter()
    res = log_report(d, tracking_uri=_dead_uri())
    assert time.perf_counter() - t0 < 20, "short timeouts: no long retry loop"
    assert not res.logged and res.run_id is None
    assert "lea-audit sync" in res.message and str(d) in res.message
    marker = json.loads((d / PENDING_FILE).read_text())
    assert marker["report_id"] == AuditReport.load(d).report_id
    assert (d / "report.json").read_bytes() == before
    assert not (d / SIDECAR_FILE).exists()

    results = sync(tmp_path / "audits", tracking_uri=mlflow_server)
    assert sorted(Path(r.report_dir) for r in results) == sorted([d, d2])
    assert all(r.logged for r in results), [r.message for r in results]
    assert not (d / PENDING_FILE).exists() and (d / SIDECAR_FILE).exists()
    # the same report (both copies) is one run, not two: runs are found by report id
    assert len({r.run_id for r in results}) == 1
    client = MlflowClient(mlflow_server)
    rid = AuditReport.load(d).report_id
    exp = client.get_experiment_by_name("lea-ai-audit")
    runs = client.search_runs([exp.experiment_id], f"tags.`lea.report_id` = '{rid}'")
    assert len(runs) == 1
    assert sync(tmp_path / "audits", tracking_uri=mlflow_server) == []  # nothing left


def test_audit_without_out_warns_and_spools_when_unreachable(
        mlflow_server: str, demo_data, tracking_env: Path) -> None:
    with pytest.warns(TrackingWarning, match="lea-audit sync"):
        rep = audit(demo_data.test, target="reoffended", sensitive=["sex"],
                    model=demo_data.model, features=FEATURES, checks=["performance"],
                    track=_dead_uri())
    spooled = tracking_env / "pending" / rep.report_id
    assert AuditReport.load(spooled) == rep
    assert (spooled / PENDING_FILE).is_file() and (spooled / "card.html").is_file()
    (res,) = sync(tracking_uri=mlflow_server)  # default folder: the spool
    assert res.logged
    run = MlflowClient(mlflow_server).get_run(res.run_id)
    assert run.data.tags["lea.report_id"] == rep.report_id


def test_cli_sync(mlflow_server: str, report_dir: Path, tmp_path: Path, capsys) -> None:
    from lea_ai_audit.cli import main

    d = copy_report(report_dir, tmp_path / "r")
    assert not log_report(d, tracking_uri=_dead_uri()).logged
    capsys.readouterr()
    assert main(["sync", str(tmp_path), "--tracking-uri", mlflow_server]) == 0
    out = capsys.readouterr().out
    assert "logged" in out and "NOT LOGGED" not in out
    assert main(["sync", str(tmp_path), "--tracking-uri", mlflow_server]) == 0
    assert "nothing to upload" in capsys.readouterr().out


def test_sync_uploads_the_good_reports_beside_a_broken_one(mlflow_server: str, report_dir: Path,
                                                           tmp_path: Path, capsys) -> None:
    """#23: one broken report.json under the folder does not keep the others from MLflow."""
    from lea_ai_audit.cli import main

    good = copy_report(report_dir, tmp_path / "good")
    assert not log_report(good, tracking_uri=_dead_uri()).logged
    bad = copy_report(report_dir, tmp_path / "bad")
    (bad / "report.json").write_text("[" * 100_000 + "]" * 100_000)
    capsys.readouterr()
    assert main(["sync", str(tmp_path), "--tracking-uri", mlflow_server]) == 1
    out = capsys.readouterr().out
    lines = {line.split(":", 1)[0]: line for line in out.splitlines() if line.strip()}
    assert "logged — " in lines[str(good)] and "NOT LOGGED" in lines[str(bad)]
    assert (good / SIDECAR_FILE).is_file()


def test_cli_run_logs_once_after_saving(mlflow_server: str, tmp_path: Path, capsys) -> None:
    from lea_ai_audit.cli import main

    out = tmp_path / "a"
    rc = main(["demo", "--rows", "3000", "--out", str(out), "-q",
               "--tracking-uri", mlflow_server])
    assert rc == 1  # the demo's bias fails the audit; it is logged all the same
    printed = capsys.readouterr().out
    assert "mlflow: MLflow run" in printed
    rep = AuditReport.load(out)
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("lea-ai-audit")
    runs = client.search_runs([exp.experiment_id], f"tags.`lea.report_id` = '{rep.report_id}'")
    assert len(runs) == 1  # audit() inside the CLI does not log a second time
    assert json.loads((out / SIDECAR_FILE).read_text())["run_id"] == runs[0].info.run_id


def test_cli_no_track_and_env_off(tmp_path: Path, tracking_env: Path, capsys,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from lea_ai_audit.cli import main

    main(["demo", "--rows", "3000", "--out", str(tmp_path / "a"), "-q", "--no-track"])
    monkeypatch.setenv("LEA_AUDIT_TRACKING", "off")
    main(["demo", "--rows", "3000", "--out", str(tmp_path / "b"), "-q"])
    assert "mlflow" not in capsys.readouterr().out
    assert not tracking_env.exists()
    assert not (tmp_path / "a" / SIDECAR_FILE).exists()


# -- the default store -------------------------------------------------------------------------
def test_default_store_is_local_sqlite_outside_the_cwd(demo_data, tracking_env: Path,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        rep = audit(demo_data.test, target="reoffended", sensitive=["sex"],
                    model=demo_data.model, features=FEATURES, checks=["performance"])
    assert list(cwd.iterdir()) == []  # no mlflow.db, no mlruns/ in the working directory
    db = tracking_env / "mlflow.db"
    assert db.is_file()
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("lea-ai-audit")
    assert Path(exp.artifact_location.replace("file://", "")) == tracking_env / "artifacts"
    (run,) = client.search_runs([exp.experiment_id], f"tags.`lea.report_id` = '{rep.report_id}'")
    assert run.data.tags["lea.status"] == rep.status.value
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.json", "card.html", "card.md", "card.json"} <= names


# -- sign-offs ---------------------------------------------------------------------------------
def test_log_signoff(mlflow_server: str, report_dir: Path, tmp_path: Path) -> None:
    record = {"reviewer": "A. Officer", "role": "data-protection-officer",
              "decision": "approve", "comment": "ok", "signed_at": "2026-11-23T10:00:00+00:00",
              "expires_at": None, "waiver": None}
    d = copy_report(report_dir, tmp_path / "r")
    assert log_signoff(d, record) is False  # never logged: nothing to attach to
    res = log_report(d, tracking_uri=mlflow_server)
    assert log_signoff(d, record) is True
    client = MlflowClient(mlflow_server)
    run = client.get_run(res.run_id)
    assert "approve by A. Officer (data-protection-officer)" in run.data.tags[
        "lea.signoff.latest"]
    (art,) = client.list_artifacts(res.run_id, "signoffs")
    got = json.loads(Path(client.download_artifacts(res.run_id, art.path,
                                                    str(tmp_path / "dl"))).read_text())
    assert got == record

    # unreachable: False, a marker, and sync logs the sign-offs kept in signoffs/ later
    side = json.loads((d / SIDECAR_FILE).read_text())
    (d / SIDECAR_FILE).write_text(json.dumps({**side, "tracking_uri": _dead_uri()}))
    second = {**record, "reviewer": "B. Chief", "role": "head-of-unit"}
    (d / "signoffs").mkdir()
    (d / "signoffs" / "b.json").write_text(json.dumps(second))
    assert log_signoff(d, second) is False
    assert json.loads((d / PENDING_FILE).read_text())["signoffs_pending"] is True
    (res2,) = sync(d, tracking_uri=mlflow_server)
    assert res2.logged and res2.run_id == res.run_id
    tags = client.get_run(res.run_id).data.tags
    assert any("B. Chief" in v for k, v in tags.items() if k.startswith("lea.signoff."))
    assert not (d / PENDING_FILE).exists()


def test_the_run_description_carries_no_markup_from_data(demo_data) -> None:
    """A group label crafted by someone outside (HTML, a link, a table pipe, a newline) reaches
    the run's Markdown description as text: every markup character is escaped."""
    import re

    from lea_ai_audit.tracking import report_tags

    evil = "<img src=x onerror=alert(1)> [click](http://evil.example) | *x*\n# H"
    df = demo_data.test.copy()
    df["ethnicity"] = df["ethnicity"].replace({"minority_a": evil})
    rep = audit(df, target="reoffended", sensitive=["ethnicity"], score="risk",
                prediction="flagged", checks=["fairness.disparity"], track=False)
    assert any(evil in str(t) for c in rep.checks for e in c.evidence if e.kind == "table"
               for t in e.data["rows"] for t in t)  # the label is in the data as given
    note = report_tags(rep)["mlflow.note.content"]
    body = note.split("|---|---|---|---|---|", 1)[1]
    assert "onerror" in body  # shown, as text
    assert not re.search(r"(?<!\\)[<>\[\]()|*#]", body.replace(" | ", " ").strip(" |\n")
                         .replace("|\n|", "\n")), body
    assert all(line.count("|") - line.count("\\|") == 6 for line in body.strip().splitlines())
