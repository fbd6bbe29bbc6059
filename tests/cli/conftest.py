"""Fixtures of the CLI tests: small case files, and two ways to call ``lea-audit``.

``run_cli`` runs ``python -m lea_ai_audit.cli`` in a subprocess, as a user or a CI job would;
``cli`` calls ``lea_ai_audit.cli.main`` in-process (fast: for the many bad-input cases).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from lea_ai_audit.cli import main
from lea_ai_audit.datasets import make_demo

#: the options of a `run` on the demo's scored cases, as the README shows them
RUN_COLUMNS = ["--target", "reoffended", "--prediction-col", "flagged", "--score-col", "risk",
               "--sensitive", "ethnicity", "--sensitive", "sex"]


@dataclass(frozen=True)
class Result:
    """What one CLI call left behind: exit code, stdout and stderr."""

    rc: int
    out: str
    err: str


@dataclass(frozen=True)
class CaseFiles:
    """Case files written once per session (the demo's audited rows, about 2000 each)."""

    biased_csv: Path      # bias 0.6: the audit FAILs
    fair_csv: Path        # bias 0: the audit passes (WARN: attestations await a person)
    biased_parquet: Path
    biased: pd.DataFrame  # the frame in biased_csv, as read back from it


@pytest.fixture(scope="session")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> CaseFiles:
    d = tmp_path_factory.mktemp("cases")
    biased = make_demo(n_rows=4000, bias=0.6, seed=1).test
    fair = make_demo(n_rows=4000, bias=0.0, seed=1).test
    biased.to_csv(d / "cases.csv", index=False)
    fair.to_csv(d / "cases_fair.csv", index=False)
    biased.to_parquet(d / "cases.parquet", index=False)
    return CaseFiles(d / "cases.csv", d / "cases_fair.csv", d / "cases.parquet",
                     pd.read_csv(d / "cases.csv"))


def assert_one_error_line(err: str) -> str:
    """stderr is exactly one line ``error: <what> — <how to fix>``; returns that line."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert " — " in line, f"no ' — <how to fix>' part: {line!r}"
    assert err.endswith("\n")
    return line


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Callable[..., Result]:
    """Call ``main(argv)`` in-process, with cwd in ``tmp_path``; argparse exits are caught."""
    monkeypatch.chdir(tmp_path)

    def call(*argv: str | os.PathLike[str]) -> Result:
        capsys.readouterr()  # drop whatever came before
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: usage errors, --help, --version
            rc = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(int(rc), captured.out, captured.err)

    return call


def _run_subprocess(argv: Sequence[str | os.PathLike[str]], cwd: Path,
                    timeout: float = 120) -> Result:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    for var in ("COLUMNS", "LINES", "FORCE_COLOR", "PYTHONWARNINGS"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "lea_ai_audit.cli", *map(str, argv)],
                          cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8",
                          timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., Result]:
    """Run ``python -m lea_ai_audit.cli ARGS`` in a subprocess with cwd ``tmp_path``."""

    def call(*argv: str | os.PathLike[str], cwd: Path | None = None) -> Result:
        return _run_subprocess(argv, cwd or tmp_path)

    return call


@pytest.fixture(scope="session")
def run_cli_in() -> Callable[..., Result]:
    """``run_cli`` for module-scoped fixtures: the cwd is given explicitly."""

    def call(cwd: Path, *argv: str | os.PathLike[str]) -> Result:
        return _run_subprocess(argv, cwd)

    return call
