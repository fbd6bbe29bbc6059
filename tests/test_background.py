"""The worker process (lea_ai_audit._background): same results as in place, every fault falls
back, and it never re-runs the caller's script.

The jobs here are standard-library functions (the worker imports a job's function by module and
name), so the tests need no helper module on the worker's path.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import subprocess
import sys
import textwrap
import time

import pytest

from lea_ai_audit import Audit, Status, _background, audit
from lea_ai_audit.cards import figures
from lea_ai_audit.checks import Check, make_check, register
from lea_ai_audit.datasets import make_police_triage
from lea_ai_audit.policy import load_policy

pytestmark = pytest.mark.skipif(not _background.available(),
                                reason="needs two cores (the CI machine has them)")


@pytest.fixture(autouse=True)
def _fresh_worker():
    _background.shutdown()
    yield
    _background.shutdown()


def _worker_pid() -> int:
    job = _background.start(os.getpid)
    assert job is not None
    return job.result(timeout=60)


def test_a_job_returns_its_value_from_another_process():
    job = _background.start(math.sqrt, 2.0)
    assert job is not None
    assert job.result(timeout=60) == math.sqrt(2.0)
    assert job.seconds is not None and job.seconds >= 0
    pid = _worker_pid()
    assert pid != os.getpid()
    assert _worker_pid() == pid  # one worker, kept for the next jobs


def test_jobs_queue_and_answer_in_order_of_collection():
    jobs = [_background.start(operator.mul, k, 3) for k in range(20)]
    assert all(j is not None for j in jobs)
    assert [j.result(timeout=60) for j in reversed(jobs)] == [3 * k for k in reversed(range(20))]


def test_an_exception_in_the_job_is_reported_not_raised_as_is():
    job = _background.start(operator.truediv, 1, 0)
    with pytest.raises(_background.BackgroundUnavailable, match="ZeroDivisionError"):
        job.result(timeout=60)
    assert _background.start(operator.add, 1, 2).result(timeout=60) == 3  # worker still fine


def test_a_dead_worker_is_reported_and_replaced():
    pid = _worker_pid()
    job = _background.start(os._exit, 7)  # the worker dies inside the job
    with pytest.raises(_background.BackgroundUnavailable, match="exit code 7"):
        job.result(timeout=60)
    assert _worker_pid() != pid


def test_no_answer_in_time_kills_the_worker():
    pid = _worker_pid()
    job = _background.start(time.sleep, 30)
    t0 = time.monotonic()
    with pytest.raises(_background.BackgroundUnavailable, match="no answer within"):
        job.result(timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert _worker_pid() != pid


def test_an_abandoned_job_does_not_answer_the_next_one():
    first = _background.start(operator.add, "a", "b")
    first.close()  # given up before its answer came
    second = _background.start(operator.add, "c", "d")
    assert second.result(timeout=60) == "cd"
    with pytest.raises(_background.BackgroundUnavailable):
        first.result(timeout=1)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(_background.ENV, "0")
    assert not _background.available()
    assert _background.start(math.sqrt, 4.0) is None


# -- data.drift through the worker --------------------------------------------------------------
def _drift_policy():
    return load_policy({"id": "t", "version": "1", "title": "drift", "requirements": [
        {"id": "drift", "clauses": ["AI Act Art. 10"], "check": "data.drift",
         "params": {"html": True}}]})


@pytest.fixture(scope="module")
def drift_ctx():
    ref = make_police_triage(3000, seed=31)
    cur = make_police_triage(3000, seed=32)
    shifted = cur["ethnicity"] == cur["ethnicity"].iloc[0]
    cur.loc[shifted, "prior_contacts"] = cur.loc[shifted, "prior_contacts"] + 2  # within a group
    a = Audit(target="reoffended", sensitive=["ethnicity", "sex"], prediction="rearrested",
              policy=_drift_policy(), track=False)
    return a.context(cur, reference=ref)


def _comparable(res):
    tables = {e.name: e.data for e in res.evidence if e.kind == "table"}
    html = [e for e in res.evidence if e.kind == "file"]
    return res.status, res.message, res.metrics, tables, len(html)


def test_drift_in_the_worker_equals_drift_in_place(drift_ctx, monkeypatch):
    started = make_check("data.drift", {"html": True})
    started.start(drift_ctx)
    assert started._started is not None  # the work went to the worker
    in_worker = started.run(drift_ctx)
    monkeypatch.setenv(_background.ENV, "0")
    in_place = make_check("data.drift", {"html": True})
    in_place.start(drift_ctx)
    assert getattr(in_place, "_started", None) is None
    here = in_place.run(drift_ctx)
    assert _comparable(in_worker) == _comparable(here)
    assert in_worker.metrics["group_drift_findings"] >= 1  # the injected within-group shift
    page = next(e for e in in_worker.evidence if e.kind == "file")
    assert b"<!DOCTYPE html>" in page.content[:200] and len(page.content) > 100_000


def test_drift_falls_back_when_the_worker_dies(drift_ctx, monkeypatch):
    check = make_check("data.drift", {"html": True})
    check.start(drift_ctx)
    _background._worker.proc.kill()  # a real fault (SIGKILL), after the job was handed over
    res = check.run(drift_ctx)
    monkeypatch.setenv(_background.ENV, "0")
    here = make_check("data.drift", {"html": True}).run(drift_ctx)
    assert res.metrics == here.metrics and res.status == here.status
    drift_table = next(e for e in res.evidence if e.name == "drift")
    assert drift_table.data["rows"] == next(e for e in here.evidence if e.name == "drift") \
        .data["rows"]
    assert "the worker process failed" in drift_table.description


def test_a_cancelled_start_leaves_the_work_to_run(drift_ctx, monkeypatch):
    check = make_check("data.drift", {"html": False})
    check.start(drift_ctx)
    check.cancel()  # what the runner does when start() raises, or the audit stops
    assert check._started is None
    res = check.run(drift_ctx)
    monkeypatch.setenv(_background.ENV, "0")
    here = make_check("data.drift", {"html": False}).run(drift_ctx)
    assert _comparable(res) == _comparable(here)


CALLS: list[str] = []


@register
class _StartRaises(Check):
    id = "test.start_raises"
    title = "start() fails, run() works"

    def start(self, ctx):
        CALLS.append("start")
        raise RuntimeError("no worker for you")

    def run(self, ctx):
        CALLS.append("run")
        return self.result(Status.PASS, f"ran on {ctx.n} rows")

    def cancel(self):
        CALLS.append("cancel")


@register
class _RunRaises(Check):
    id = "test.run_raises_after_start"
    title = "start() begins, run() fails"

    def start(self, ctx):
        CALLS.append("start2")

    def run(self, ctx):
        raise RuntimeError("kaboom")

    def cancel(self):
        CALLS.append("cancel2")


def test_the_runner_runs_a_check_whose_start_failed_and_always_cancels():
    CALLS.clear()
    pack = load_policy({"id": "t", "version": "1", "title": "start", "requirements": [
        {"id": "a", "clauses": ["AI Act Art. 15"], "check": "test.start_raises"},
        {"id": "b", "clauses": ["AI Act Art. 15"], "check": "test.run_raises_after_start"}]})
    cur = make_police_triage(500, seed=3)
    rep = audit(cur, target="reoffended", sensitive=["sex"], prediction="rearrested",
                policy=pack, track=False)
    a, b = rep.checks
    assert a.status is Status.PASS and a.message == "ran on 500 rows"
    assert b.status is Status.ERROR and "kaboom" in b.message
    # start of every check first, a failed start cancelled at once, run in order, and every
    # check cancelled at the end whatever happened
    assert CALLS == ["start", "cancel", "start2", "run", "cancel", "cancel2"]


def test_the_callers_script_is_not_run_again(tmp_path):
    """multiprocessing's spawn re-imports the main script; the worker must not."""
    script = tmp_path / "pipeline.py"
    marker = tmp_path / "runs.txt"
    script.write_text(textwrap.dedent(f"""
        # no `if __name__ == "__main__":` guard, as in many training scripts
        from lea_ai_audit import audit
        from lea_ai_audit.datasets import make_police_triage
        with open({str(marker)!r}, "a") as f:
            f.write("run\\n")
        ref, cur = make_police_triage(1500, seed=1), make_police_triage(1500, seed=2)
        rep = audit(cur, reference=ref, target="reoffended", sensitive=["ethnicity"],
                    prediction="rearrested", checks=["data.drift"], track=False)
        print(rep.checks[0].status.value)
    """))
    env = {**os.environ, "LEA_AUDIT_TRACKING": "off"}
    env.pop(_background.ENV, None)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert marker.read_text() == "run\n"
    assert r.stdout.strip() in {"pass", "fail", "warn"}


def test_the_worker_ends_with_the_auditing_process(tmp_path):
    code = ("import os, math; from lea_ai_audit import _background as b; "
            "j = b.start(os.getpid); print(j.result(timeout=60), flush=True)")
    env = {k: v for k, v in os.environ.items() if k != _background.ENV}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120, check=True)
    pid = int(r.stdout.strip())
    for _ in range(100):
        if not _running(pid):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker {pid} still runs after its auditing process ended")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return " Z " not in state and "zombie" not in state  # an exited, unreaped process is gone


# -- the model card's figures, drawn by the worker during the audit -----------------------------
def _groups_report():
    cur = make_police_triage(3000, seed=41)
    return audit(cur, target="reoffended", sensitive=["ethnicity", "sex"],
                 prediction="rearrested", checks=["fairness.group_metrics"], track=False)


def test_card_figures_from_the_worker_equal_those_drawn_in_place():
    rep = _groups_report()
    assert rep.report_id in figures._PREFETCHED  # handed to the worker after the check ran
    got = figures.group_figures(rep)
    assert rep.report_id not in figures._PREFETCHED  # collected once
    want = figures.draw_group_figures(*figures._inputs(rep.checks,
                                                       rep.subject["reference_groups"]))
    assert [t for t, _, _ in got] == ["Rates by ethnicity", "Rates by sex",
                                      "Rates by ethnicity & sex"]
    assert got == want  # the same PNG bytes
    assert all(png.startswith(b"\x89PNG") for _, _, png in got)


def test_figures_prefetched_from_other_inputs_are_not_used():
    rep = _groups_report()
    figures.group_figures(rep)
    other = {"ethnicity": {"group": "a group that is not the reference"}}
    figures.prefetch(rep.report_id, rep.checks, other)  # same report id, other inputs
    got = figures.group_figures(rep)
    want = figures.draw_group_figures(*figures._inputs(rep.checks,
                                                       rep.subject["reference_groups"]))
    assert got == want
    stale = figures.draw_group_figures(*figures._inputs(rep.checks, other))
    assert got != stale


def test_figures_drawn_once_per_inputs_in_a_process():
    """A card re-rendered for the same report (at each sign-off, gate and page view) reuses
    the figures drawn for its inputs; other inputs are drawn anew."""
    rep = _groups_report()
    first = figures.group_figures(rep)
    key = figures._digest(figures._inputs(rep.checks, rep.subject["reference_groups"]))
    assert key in figures._DRAWN
    again = figures.group_figures(rep)
    assert again == first == figures.draw_group_figures(
        *figures._inputs(rep.checks, rep.subject["reference_groups"]))
    other = {"ethnicity": {"group": "minority_a"}}
    moved = dataclasses.replace(rep, subject={**rep.subject, "reference_groups": other})
    assert figures.group_figures(moved) == figures.draw_group_figures(
        *figures._inputs(rep.checks, other)) != first
