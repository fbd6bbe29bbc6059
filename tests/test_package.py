"""Packaging: the public API, lazy imports, and what ships in the wheel."""

from __future__ import annotations

import inspect
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lea_ai_audit

ROOT = Path(__file__).resolve().parent.parent


def _py(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT.parent)


def test_all_names_resolve() -> None:
    for name in lea_ai_audit.__all__:
        assert getattr(lea_ai_audit, name) is not None, name


def test_audit_is_the_function_whatever_was_imported_first() -> None:
    r = _py("import lea_ai_audit.runner, lea_ai_audit.checks, inspect\n"
            "from lea_ai_audit import Audit, audit\n"
            "assert inspect.isfunction(audit), audit\n"
            "assert inspect.isclass(Audit)\n")
    assert r.returncode == 0, r.stderr


def test_import_and_help_stay_light() -> None:
    r = _py("import sys, lea_ai_audit\n"
            "from lea_ai_audit.cli import build_parser\n"
            "build_parser().format_help()\n"
            "heavy = [m for m in ('pandas', 'sklearn', 'scipy', 'rich') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    assert r.returncode == 0, r.stderr


def test_public_functions_take_keyword_only_arguments() -> None:
    from lea_ai_audit import audit, load_policy
    params = inspect.signature(audit).parameters
    assert [p for p in params.values() if p.kind is not p.KEYWORD_ONLY] == [params["data"]]
    assert len(inspect.signature(load_policy).parameters) == 1


@pytest.mark.slow
def test_wheel_ships_checklists_and_model_cards(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("lea_ai_audit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lea_ai_audit/_shipped/checklists/eu-council-2020-internal-security.yaml" in names
    assert "lea_ai_audit/_shipped/model_cards/README.md" in names
    assert "lea_ai_audit/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "lea-audit = lea_ai_audit.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_ci_runs_the_readme_commands_in_a_fresh_venv() -> None:
    """CI proves a newcomer's install: .ci/run builds a new venv (no system site-packages),
    removed first, and runs the README's test command, verbatim, with that interpreter."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert len(commands) == 2 and "lea-audit demo" in commands[0] and "pytest" in commands[1]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert commands[1] in ci
    rm, venv, activate = (ci.index("rm -rf .venv-ci"), ci.index("python3 -m venv .venv-ci"),
                          ci.index("source .venv-ci/bin/activate"))
    assert rm < venv < activate < ci.index(commands[1])
    assert not any("system-site-packages" in line for line in ci)
    assert ".venv-ci/" in (ROOT / ".gitignore").read_text().splitlines()
