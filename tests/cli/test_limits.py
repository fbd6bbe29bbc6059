"""Limits, each hit ending in one line and exit 2: input size once decompressed, rows, columns,
the model's time per call and in all; a compressed CSV reads as the plain one.

Each row of the tables is a hostile input through the CLI (in-process ``main``) and, where the
Python API meets the same thing, through ``audit()``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lea_ai_audit import audit
from lea_ai_audit._budget import ModelBudgetError
from lea_ai_audit.errors import DataError, InputError

from .conftest import assert_one_error_line

COLS = ["--target", "y", "--prediction-col", "p", "--sensitive", "g", "--checks", "fairness",
        "--no-track", "-q"]


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame({"y": y, "p": np.where(rng.random(n) < 0.8, y, 1 - y),
                         "g": rng.choice(["a", "b"], n), "x": rng.normal(size=n)})


def _bomb(path: Path, megabytes: int) -> Path:
    """A gzip CSV of a few KB that unpacks to ``megabytes`` MB."""
    line = b"1,1,a," + b"0" * 1000 + b"\n"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"y,p,g,x\n")
        for _ in range(megabytes * 1024):
            fh.write(line)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _wide(path: Path, n_cols: int) -> Path:
    df = _frame(20)
    extra = pd.DataFrame(np.zeros((20, n_cols)), columns=[f"c{i}" for i in range(n_cols)])
    pd.concat([df, extra], axis=1).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zip", "gzip, no suffix"])
def test_a_compressed_csv_audits_as_the_plain_one(cli, tmp_path, kind):
    df = _frame()
    text = df.to_csv(index=False).encode()
    plain = tmp_path / "cases.csv"
    plain.write_bytes(text)
    packed = {"gzip": ("cases.csv.gz", gzip.compress), "bzip2": ("cases.csv.bz2", bz2.compress),
              "xz": ("cases.csv.xz", lzma.compress),
              "zip": ("cases.zip", lambda b: _zip(tmp_path / "z.zip", {"c.csv": b}).read_bytes()),
              "gzip, no suffix": ("packed.csv", gzip.compress)}[kind]
    (tmp_path / packed[0]).write_bytes(packed[1](text))
    a = cli("run", "--data", plain, "--out", "a", *COLS)
    b = cli("run", "--data", tmp_path / packed[0], "--out", "b", *COLS)
    assert a.rc == b.rc and a.rc in (0, 1), a.err + b.err
    ra = pd.read_json(tmp_path / "a" / "report.json", typ="series")
    rb = pd.read_json(tmp_path / "b" / "report.json", typ="series")
    assert ra["data"]["sha256"] == rb["data"]["sha256"]  # the same frame, cell for cell
    assert ra["status"] == rb["status"]


def _bad_inputs(tmp_path: Path) -> list[tuple[str, Path, dict[str, str], str]]:
    df = _frame()
    gz_two = _zip(tmp_path / "two.zip", {"a.csv": b"y\n1\n", "b.csv": b"y\n0\n"})
    damaged = tmp_path / "damaged.csv.gz"
    damaged.write_bytes(gzip.compress(df.to_csv(index=False).encode())[:300])
    many_rows = tmp_path / "rows.csv"
    df.to_csv(many_rows, index=False)
    pq = tmp_path / "wide.parquet"
    pd.concat([_frame(20), pd.DataFrame(np.zeros((20, 50)),
                                        columns=[f"c{i}" for i in range(50)])],
              axis=1).to_parquet(pq)
    pq_rows = tmp_path / "rows.parquet"
    df.to_parquet(pq_rows)
    return [
        ("a gzip bomb", _bomb(tmp_path / "bomb.csv.gz", 8), {"LEA_AUDIT_MAX_INPUT_BYTES": "2M"},
         "unpacks to more than 2M"),
        ("too many columns", _wide(tmp_path / "wide.csv", 120), {"LEA_AUDIT_MAX_COLUMNS": "100"},
         "124 columns, more than the limit of 100"),
        ("too many rows", many_rows, {"LEA_AUDIT_MAX_ROWS": "100"}, "more than 100 rows"),
        ("parquet: too many columns", pq, {"LEA_AUDIT_MAX_COLUMNS": "30"},
         "54 columns, more than the limit of 30"),
        ("parquet: too many rows", pq_rows, {"LEA_AUDIT_MAX_ROWS": "100"},
         "400 rows, more than the limit of 100"),
        ("parquet: too many bytes", pq_rows, {"LEA_AUDIT_MAX_INPUT_BYTES": "1K"},
         "more than 1K"),
        ("a zip of two files", gz_two, {}, "a zip holding 2 files"),
        ("a truncated gzip", damaged, {}, "is damaged: cannot decompress it"),
        ("a limit that is not a size", many_rows, {"LEA_AUDIT_MAX_INPUT_BYTES": "lots"},
         "LEA_AUDIT_MAX_INPUT_BYTES='lots' is not a size"),
        ("a limit that is not a number", many_rows, {"LEA_AUDIT_MAX_ROWS": "-5"},
         "LEA_AUDIT_MAX_ROWS='-5' is not a whole number"),
    ]


CASES = ["a gzip bomb", "too many columns", "too many rows", "parquet: too many columns",
         "parquet: too many rows", "parquet: too many bytes", "a zip of two files",
         "a truncated gzip", "a limit that is not a size", "a limit that is not a number"]


@pytest.mark.parametrize("case", CASES)
def test_each_limit_ends_in_one_line_and_exit_2(cli, tmp_path, monkeypatch, case):
    rows = {name: (path, env, words) for name, path, env, words in _bad_inputs(tmp_path)}
    path, env, words = rows[case]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    t0 = time.perf_counter()
    r = cli("run", "--data", path, "--out", "out", *COLS)
    assert r.rc == 2, r.out + r.err
    line = assert_one_error_line(r.err)
    assert words in line, line
    assert not (tmp_path / "out").exists()  # nothing written
    assert time.perf_counter() - t0 < 30


def test_the_columns_limit_holds_for_a_dataframe_too(monkeypatch):
    df = pd.concat([_frame(50), pd.DataFrame(np.zeros((50, 40)),
                                             columns=[f"c{i}" for i in range(40)])], axis=1)
    monkeypatch.setenv("LEA_AUDIT_MAX_COLUMNS", "30")
    with pytest.raises(DataError, match="the data has 44 columns, more than the limit of 30"):
        audit(df, target="y", sensitive="g", prediction="p", track=False)
    monkeypatch.setenv("LEA_AUDIT_MAX_COLUMNS", "0")  # 0: no limit
    assert audit(df, target="y", sensitive="g", prediction="p", checks=["fairness"],
                 track=False).checks


class SlowModel(LogisticRegression):
    """A classifier whose every probability call takes ``delay`` seconds (a remote model)."""

    def __init__(self, delay: float = 0.0, **kw):
        super().__init__(**kw)
        self.delay = delay

    def predict_proba(self, X):
        time.sleep(self.delay)
        return super().predict_proba(X)


def _slow(delay: float) -> tuple[pd.DataFrame, SlowModel]:
    df = _frame(300)
    return df, SlowModel(delay=delay).fit(df[["x"]], df["y"])


def test_one_slow_call_is_stopped_at_the_per_call_limit(monkeypatch):
    df, model = _slow(30.0)
    monkeypatch.setenv("LEA_AUDIT_MODEL_CALL_TIMEOUT", "0.5")
    t0 = time.perf_counter()
    with pytest.raises(ModelBudgetError, match=r"predict_proba\(\) ran longer than the 0.5 s "
                                               r"allowed per call"):
        audit(df, target="y", sensitive="g", model=model, features=["x"], track=False)
    assert time.perf_counter() - t0 < 10  # stopped, not waited out
    assert "predict_proba" not in vars(model)  # the model is as it was
    model.delay = 0.0
    assert model.predict_proba(df[["x"]].head(2)).shape == (2, 2)


def test_many_calls_are_stopped_at_the_total_budget(monkeypatch):
    df, model = _slow(0.2)
    monkeypatch.setenv("LEA_AUDIT_MODEL_BUDGET", "0.7")
    with pytest.raises(ModelBudgetError, match=r"more than the 0\.7 s budget of one audit"):
        audit(df, target="y", sensitive="g", model=model, features=["x"], track=False)
    monkeypatch.setenv("LEA_AUDIT_MODEL_BUDGET", "none")  # none: no limit
    assert audit(df, target="y", sensitive="g", model=model, features=["x"],
                 checks=["fairness"], track=False).checks


def test_a_budget_hit_inside_a_check_is_not_an_error_result(monkeypatch):
    """A check that swallows the error itself cannot turn the hit into a result."""
    from lea_ai_audit.checks import get_check
    from lea_ai_audit.results import Status

    cls = get_check("explain.additivity")
    df, model = _slow(0.0)

    def run(self, ctx):
        model.delay = 30.0  # from now on the model hangs
        with contextlib.suppress(Exception):  # what a careless check might do
            ctx.model.predict_proba(ctx.data[ctx.features])
        return self.result(Status.PASS, "swallowed")

    monkeypatch.setattr(cls, "run", run)
    monkeypatch.setenv("LEA_AUDIT_MODEL_BUDGET", "1")
    t0 = time.perf_counter()
    with pytest.raises(ModelBudgetError, match="budget of one audit"):
        audit(df, target="y", sensitive="g", model=model, features=["x"], track=False)
    assert time.perf_counter() - t0 < 15


def test_a_bad_budget_value_is_bad_input(cli, tmp_path, monkeypatch):
    _frame().to_csv(tmp_path / "c.csv", index=False)
    monkeypatch.setenv("LEA_AUDIT_MODEL_CALL_TIMEOUT", "soon")
    df, model = _slow(0.0)
    with pytest.raises(InputError, match="LEA_AUDIT_MODEL_CALL_TIMEOUT='soon'"):
        audit(df, target="y", sensitive="g", model=model, features=["x"], track=False)


def test_long_model_work_reports_progress(monkeypatch):
    import lea_ai_audit._budget as budget

    monkeypatch.setattr(budget, "PROGRESS_AFTER", 0.1)
    df, model = _slow(0.15)
    notes: list[str] = []

    def progress(i, total, req_id, result):
        return None

    progress.note = notes.append  # type: ignore[attr-defined]
    audit(df, target="y", sensitive="g", model=model, features=["x"], checks=["fairness"],
          track=False, progress=progress)
    assert notes and notes[-1].startswith("model: ") and "of the 3,600 s budget" in notes[-1]


def test_the_cli_log_gets_a_progress_line_on_long_work(monkeypatch, capsys):
    import lea_ai_audit._budget as budget
    from lea_ai_audit import cli

    monkeypatch.setattr(budget, "PROGRESS_EVERY", 0.0)
    update = cli._log_progress()
    update.note("model: 12 call(s), 3,000 rows, 40 s of the 3,600 s budget")
    err = capsys.readouterr().err
    assert err == ("lea-audit: still auditing — model: 12 call(s), 3,000 rows, 40 s of the "
                   "3,600 s budget\n")
