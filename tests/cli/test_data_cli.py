"""``lea-audit run --reference`` (CSV and Parquet) and ``--schema``, as a user calls them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lea_ai_audit import AuditReport, Status
from lea_ai_audit.datasets import FEATURES, make_demo

from .conftest import RUN_COLUMNS, Result, assert_one_error_line

Runner = Callable[..., Result]

POLICY = {
    "id": "data-checks", "version": "1", "title": "data quality and drift",
    "requirements": [
        {"id": "schema", "clauses": ["AI Act Art. 10(3)"], "check": "data.schema"},
        {"id": "quality", "clauses": ["AI Act Art. 10(2)(f)"], "check": "data.quality_by_group"},
        {"id": "drift", "clauses": ["AI Act Art. 10(2)"], "check": "data.drift"},
    ],
}


@dataclass(frozen=True)
class Files:
    dir: Path
    cases: pd.DataFrame
    cases_csv: Path
    train_csv: Path
    cases_parquet: Path
    train_parquet: Path
    policy: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    d = tmp_path_factory.mktemp("data_cli")
    demo = make_demo(n_rows=4000, bias=0.6, seed=5)
    train = demo.train.copy()
    train["risk"] = np.round(demo.model.predict_proba(train[FEATURES])[:, 1], 6)
    train["flagged"] = demo.model.predict(train[FEATURES]).astype(np.int8)
    cases = demo.test.assign(age=demo.test["age"] + 6)  # the audited people are older
    cases.to_csv(d / "cases.csv", index=False)
    train.to_csv(d / "train.csv", index=False)
    cases.to_parquet(d / "cases.parquet", index=False)
    train.to_parquet(d / "train.parquet", index=False)
    (d / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    return Files(d, pd.read_csv(d / "cases.csv"), d / "cases.csv", d / "train.csv",
                 d / "cases.parquet", d / "train.parquet", d / "policy.yaml")


@dataclass(frozen=True)
class CsvRun:
    result: Result
    out: Path
    report: AuditReport


@pytest.fixture(scope="module")
def csv_run(files: Files, run_cli_in: Callable[..., Result]) -> CsvRun:
    res = run_cli_in(files.dir, "run", "--data", files.cases_csv, "--reference",
                     files.train_csv, *RUN_COLUMNS, "--policy", files.policy, "--out", "csv")
    assert (files.dir / "csv" / "report.json").is_file(), res.err
    return CsvRun(res, files.dir / "csv", AuditReport.load(files.dir / "csv" / "report.json"))


def _by_req(report: AuditReport) -> dict[str, object]:
    return {c.requirement_id: c for c in report.checks}


def test_run_with_reference_csv(csv_run: CsvRun, files: Files):
    assert csv_run.result.rc == 1, csv_run.result.err  # the drift fails (blocking by default)
    checks = _by_req(csv_run.report)
    drift = checks["drift"]
    assert drift.status is Status.FAIL and "age" in drift.message
    rows = {r["column"]: r for r in csv_run.report.table("drift")}
    assert rows["age"]["drift"] is True and rows["district"]["drift"] is False
    assert rows["model score"]["role"] == "model output"  # from the reference's risk column
    assert drift.metrics["rows_reference"] == len(pd.read_csv(files.train_csv))
    assert checks["schema"].status in (Status.PASS, Status.FAIL)
    # evidence files beside report.json, digests intact
    for c in (drift, checks["schema"]):
        for f in c.files():
            assert (csv_run.out / f.data["path"]).is_file()
            assert f.read(csv_run.out)
    names = {Path(f.data["path"]).name for c in checks.values() for f in c.files()}
    assert {"schema.yaml", "drift_report.html"} <= names
    assert "drift" in csv_run.result.out


def test_parquet_input_gives_the_same_figures(csv_run: CsvRun, files: Files, cli: Runner):
    res = cli("run", "--data", files.cases_parquet, "--reference", files.train_parquet,
              *RUN_COLUMNS, "--policy", files.policy, "--out", "pq", "--quiet")
    assert res.rc == 1, res.err
    rep = AuditReport.load(Path("pq") / "report.json")
    assert rep.table("drift") == csv_run.report.table("drift")
    assert rep.table("drift_by_group") == csv_run.report.table("drift_by_group")
    assert _by_req(rep)["schema"].metrics == _by_req(csv_run.report)["schema"].metrics


def test_schema_option_overrides_the_inferred_schema(csv_run: CsvRun, files: Files, cli: Runner,
                                                     tmp_path: Path):
    saved = _by_req(csv_run.report)["schema"].evidence_named("schema")
    schema = yaml.safe_load(saved.read(csv_run.out))
    schema["columns"]["age"]["in_range"]["max_value"] = 40  # a stricter rule than the data's
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(schema, sort_keys=False))
    res = cli("run", "--data", files.cases_csv, "--reference", files.train_csv, *RUN_COLUMNS,
              "--policy", files.policy, "--checks", "data.schema", "--schema", path,
              "--out", "strict", "--quiet")
    assert res.rc == 1, res.err
    (c,) = AuditReport.load(Path("strict") / "report.json").checks
    assert c.status is Status.FAIL and "supplied" in c.message
    rows = {(r[0], r[1]): r for r in c.evidence_named("schema_failures").data["rows"]}
    assert rows[("age", "out of range")][3] == int((files.cases["age"] > 40).sum())


def test_schema_with_a_python_tag_is_refused(files: Files, cli: Runner, tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"columns:\n  age: !!python/object/apply:os.system ['touch {marker}']\n")
    res = cli("run", "--data", files.cases_csv, *RUN_COLUMNS, "--schema", evil, "--out", "x")
    assert res.rc == 2
    line = assert_one_error_line(res.err)
    assert "YAML tag" in line and not marker.exists() and not Path("x").exists()
    res = cli("run", "--data", files.cases_csv, *RUN_COLUMNS, "--schema", tmp_path / "no.yaml")
    assert res.rc == 2 and "does not exist" in assert_one_error_line(res.err)


def test_population_option(files: Files, cli: Runner, tmp_path: Path):
    pop = tmp_path / "census.yaml"
    pop.write_text("ethnicity:\n  majority: 0.5\n  minority_a: 0.25\n  minority_b: 0.2\n")
    res = cli("run", "--data", files.cases_csv, *RUN_COLUMNS, "--policy", files.policy,
              "--checks", "data.quality", "--population", pop, "--out", tmp_path / "p")
    assert res.rc in (0, 1), res.err
    rep = AuditReport.load(tmp_path / "p" / "report.json")
    rows = rep.checks[0].evidence_named("representation").data["rows"]
    assert {r[1] for r in rows} >= {"majority", "minority_a", "minority_b"}
    observed = files.cases["ethnicity"].value_counts(normalize=True)
    got = {r[1]: r[2] for r in rows}
    assert got["majority"] == pytest.approx(observed["majority"], abs=1e-6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("ethnicity: [majority]\n")
    res = cli("run", "--data", files.cases_csv, *RUN_COLUMNS, "--population", bad,
              "--out", tmp_path / "b")
    assert res.rc == 2 and "declared population" in assert_one_error_line(res.err)
    assert not (tmp_path / "b").exists()
