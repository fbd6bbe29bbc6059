"""Fixtures of the model-card tests: saved reports, one with markup in every data-borne name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lea_ai_audit import audit
from lea_ai_audit.datasets import make_demo
from lea_ai_audit.results import CheckResult, Evidence, Status
from lea_ai_audit.runner import _place_files

#: names and labels that would run or break markup if a card did not escape them
EVIL_COLUMN = "eth<script>alert(1)</script>"
EVIL_GROUPS = {"majority": "<img src=x onerror=alert(2)>",
               "minority_a": 'A & "B" </td></table>',
               "minority_b": "**bold** | [link](javascript:alert(3))"}
EVIL_META = {"owner": "Unit <b onclick=alert(4)>7</b>",
             "intended_use": ["triage <iframe src=https://example.org></iframe>"],
             "out_of_scope_uses": ["| table | breaker |\n# heading"],
             "contact": "<a href='https://example.org'>x</a>"}


def plot_png(color: str = "C0") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.bar(["a", "b"], [1, 2], color=color)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def with_plot(report, png: bytes):
    ev = Evidence.file("importance <plot>", "importance.png", png, "global importance",
                       media_type="image/png")
    res = CheckResult(check_id="test.plot", requirement_id="plot-evidence", status=Status.PASS,
                      message="a plot", title="A plot", clauses=("AI Act Art. 13",),
                      evidence=_place_files([ev], "plot-evidence", report.report_id))
    return report.with_checks([*report.checks, res])


def _audit(bias: float, seed: int, **kw):
    df = make_demo(4000, bias=bias, seed=seed).test
    return audit(df, target="reoffended", sensitive=["ethnicity", "sex"], prediction="flagged",
                 score="risk", track=False, **kw)


@pytest.fixture(scope="session")
def fair_report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fair")
    _audit(0.0, 1).save(d)
    return d


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A failing audit with a PNG evidence file, saved (no cards written yet)."""
    d = tmp_path_factory.mktemp("biased")
    rep = with_plot(_audit(0.6, 1, author="analyst"), plot_png())
    rep.save(d)
    return d


@pytest.fixture(scope="session")
def evil_report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("evil")
    df = make_demo(4000, bias=0.6, seed=2).test
    df["ethnicity"] = df["ethnicity"].map(EVIL_GROUPS)
    df = df.rename(columns={"ethnicity": EVIL_COLUMN})
    rep = audit(df, target="reoffended", sensitive=[EVIL_COLUMN, "sex"], prediction="flagged",
                score="risk", author="<b>analyst</b>", metadata=EVIL_META, track=False)
    with_plot(rep, plot_png()).save(d)
    return d
