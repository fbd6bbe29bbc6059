"""The CI examples (#21 point 1) run as their runners would run them: each job's script steps,
in order, with the platform's shell flags and variables, in a project laid out as the examples
say (lea-audit.yaml, data/, models/, trust.yaml), stopping at the first failing step.

What is not run: ``uses:`` steps (checkout, setup-python, artifact upload, JUnit publishing;
the test checks the files they would upload exist) and the install step (the package under test
is already installed; the test checks the step installs ``lea-ai-audit``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lea_ai_audit.cli import main

CI = Path(__file__).resolve().parent.parent / "examples" / "ci"
INSTALL = re.compile(r'^python -m pip install "?(\$PACKAGE|lea-ai-audit)"?$')
GITHUB_SHELL = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo",
                                               "pipefail"]}
PW = {"bob": "bob-long-passphrase", "carol": "carol-long-passphrase"}


def _expand(value: Any, ctx: dict[str, str]) -> str:
    """GitHub's ``${{ ... }}`` in an env value, for the names the examples use."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name.startswith(("secrets.", "vars.")):
            return ctx.get(name, "")  # GitHub: an unset secret or variable is empty
        return ctx[name]
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", one, str(value))


def _run_script(argv: list[str], script: str, env: dict[str, str], cwd: Path
                ) -> subprocess.CompletedProcess[str]:
    path = cwd.parent / f".step-{os.getpid()}.sh"
    path.write_text(script, encoding="utf-8")
    try:
        return subprocess.run([*argv, str(path)], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    finally:
        path.unlink()


def _base_env(ws: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEA_AUDIT", "MLFLOW"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(CI="true", HOME=str(ws.parent / "home"), **extra)
    return env


def run_github_job(ws: Path, job: str, *, event: str, variables: dict[str, str] | None = None,
                   secrets: dict[str, str] | None = None,
                   workflow: Path = CI / "github-workflow.yml") -> tuple[int, str]:
    wf = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    spec = wf["jobs"][job]
    assert f"github.event_name == '{event}'" in spec["if"]
    ctx = {f"vars.{k}": v for k, v in (variables or {}).items()} | {
        f"secrets.{k}": v for k, v in (secrets or {}).items()}
    env = _base_env(ws, {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "alice",
                         "GITHUB_EVENT_NAME": event, "GITHUB_WORKSPACE": str(ws),
                         "RUNNER_TEMP": str(ws.parent)})
    env.update({k: _expand(v, ctx) for k, v in {**wf.get("env", {}),
                                                **spec.get("env", {})}.items()})
    return _run_steps(ws, [st for st in spec["steps"] if "run" in st], env, ctx)


def _run_steps(ws: Path, steps: list[dict[str, Any]], env: dict[str, str],
               ctx: dict[str, str]) -> tuple[int, str]:
    """GitHub's ``run:`` steps in order, until one fails: (its exit code or 0, the log)."""
    log = ""
    for step in steps:
        script = step["run"]
        assert "${{" not in script, "an expression spliced into a script can inject code"
        if step.get("name") == "Install lea-ai-audit":
            assert INSTALL.match(script.strip()), script
            continue
        r = _run_script(GITHUB_SHELL[step.get("shell")], script,
                        {**env, **{k: _expand(v, ctx) for k, v in step.get("env", {}).items()}},
                        ws)
        log += r.stdout + r.stderr
        if r.returncode != 0:
            return r.returncode, log
    return 0, log


def run_action(ws: Path, inputs: dict[str, str]) -> tuple[int, str]:
    spec = yaml.safe_load((CI / "action.yml").read_text(encoding="utf-8"))
    values = {k: str(v.get("default", "")) for k, v in spec["inputs"].items()} | inputs
    ctx = {f"inputs.{k}": v for k, v in values.items()}
    env = _base_env(ws, {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "alice"})

    def wanted(step: dict[str, Any]) -> bool:
        cond = step.get("if")
        if cond is None:
            return True
        m = re.fullmatch(r"inputs\.(\S+) == '(\S+)'", cond)
        assert m, cond
        return values[m.group(1)] == m.group(2)

    return _run_steps(ws, [st for st in spec["runs"]["steps"] if wanted(st)], env, ctx)


def run_gitlab_job(ws: Path, job: str, *, variables: dict[str, str] | None = None
                   ) -> tuple[int, str]:
    ci = yaml.safe_load((CI / "gitlab-ci.yml").read_text(encoding="utf-8"))
    spec = ci[job]
    env = _base_env(ws, {"GITLAB_CI": "true", "CI_PROJECT_DIR": str(ws),
                         "CI_COMMIT_AUTHOR": "Alice Example <alice@example.org>",
                         "CI_DEFAULT_BRANCH": "main", **(variables or {})})
    env.update({k: str(v) for k, v in {**ci.get("variables", {}),
                                      **spec.get("variables", {})}.items()})
    before = spec.get("before_script", ci["default"]["before_script"])
    assert all(INSTALL.match(line) for line in before), before
    # the shell executor runs the lines in one bash, stopping at the first that fails
    r = _run_script(["bash", "--noprofile", "--norc", "-eo", "pipefail"],
                    "\n".join(spec["script"]) + "\n", env, ws)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Projects laid out as the examples say, from the demo's model and cases: fair and
    biased; plus the officers' keys and the trust store."""
    base = tmp_path_factory.mktemp("ci")
    out: dict[str, Path] = {}
    keys = base / "keys"
    assert main(["keygen", "--reviewer", "ci", "--role", "audit-service", "--out", str(keys),
                 "--trust-store", str(base / "trust.yaml")]) == 0
    for who, role in (("bob", "model-risk-officer"), ("carol", "data-protection-officer")):
        os.environ[f"PW_{who.upper()}"] = PW[who]
        assert main(["keygen", "--reviewer", who, "--role", role, "--out", str(keys),
                     "--trust-store", str(base / "trust.yaml"), "--passphrase-env",
                     f"PW_{who.upper()}"]) == 0
    for name, bias in (("fair", "0"), ("biased", "0.6")):
        assert main(["demo", "--out", str(base / f"demo-{name}"), "--rows", "3000", "--bias",
                     bias, "--ledger", "off", "--no-track", "-q"]) in (0, 1)
        ws = base / name / "project"
        (ws / "data").mkdir(parents=True)
        (ws / "models").mkdir()
        shutil.copy(base / f"demo-{name}" / "cases.csv", ws / "data" / "cases.csv")
        shutil.copy(base / f"demo-{name}" / "model.skops", ws / "models" / "risk-tool.skops")
        shutil.copy(CI / "lea-audit.yaml", ws / "lea-audit.yaml")
        shutil.copy(base / "trust.yaml", ws / "trust.yaml")
        out[name] = ws
    out["keys"] = keys
    return out


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_github_pull_request_audits_then_the_push_deploys_only_what_officers_signed(
        template: dict[str, Path]) -> None:
    ws = template["fair"]
    secrets = {"LEA_AUDIT_CI_KEY": (template["keys"] / "ci.key").read_text(encoding="utf-8")}
    rc, log = run_github_job(ws, "audit", event="pull_request", secrets=secrets)
    assert rc == 0, log  # the fair model's audit WARNs (attestations await a person): open
    assert (ws / "audits" / "risk-tool" / "attestation.json").is_file()  # signed by the CI
    assert not (ws.parent / "ci.key").exists()  # the key did not outlive its step
    for name in ("card.html", "card.md", "card.json"):  # what upload-artifact uploads
        assert (ws / "audits" / "risk-tool" / name).is_file()
    assert "<testsuite" in (ws / "gate-junit.xml").read_text(encoding="utf-8")
    assert (ws / "audit-junit.xml").is_file()
    pin = {"LEA_AUDIT_TRUST_STORE_SHA256": _sha256(ws / "trust.yaml")}
    rc, log = run_github_job(ws, "deploy-gate", event="push", variables=pin)
    assert rc == 1 and "sign-off" in log, log  # nobody has signed yet: closed
    for who in ("bob", "carol"):
        assert main(["signoff", str(ws / "audits" / "risk-tool"), "--key",
                     str(template["keys"] / f"{who}.key"), "--passphrase-env",
                     f"PW_{who.upper()}", "--reviewer", who, "--decision", "approve",
                     "--comment", "reviewed", "--trust-store", str(ws / "trust.yaml"),
                     "--ledger", str(ws / "audits" / "ledger.jsonl")]) == 0
    rc, log = run_github_job(ws, "deploy-gate", event="push", variables=pin)
    assert rc == 0, log
    assert 'failures="0"' in (ws / "gate-junit.xml").read_text(encoding="utf-8")
    rc, log = run_github_job(ws, "deploy-gate", event="push",
                             variables={"LEA_AUDIT_TRUST_STORE_SHA256": "0" * 64})
    assert rc == 1, log  # a trust store other than the pinned one closes the gate
    # the composite action, gating the committed, signed audit
    rc, log = run_action(ws, {"audit": "false", "require-signoff": "true",
                              "trust-store-sha256": pin["LEA_AUDIT_TRUST_STORE_SHA256"]})
    assert rc == 0, log
    # GitLab's deploy job on the same project
    rc, log = run_gitlab_job(ws, "deploy-gate", variables=pin)
    assert rc == 0, log


def test_gitlab_merge_request_fails_on_a_biased_model(template: dict[str, Path]) -> None:
    ws = template["biased"]
    rc, log = run_gitlab_job(ws, "audit",
                             variables={"LEA_AUDIT_CI_KEY": str(template["keys"] / "ci.key")})
    assert rc == 1 and "gate CLOSED" in log, log
    assert (ws / "audits" / "risk-tool" / "attestation.json").is_file()
    assert (ws / "audits" / "risk-tool" / "card.html").is_file()
    junit = (ws / "gate-junit.xml").read_text(encoding="utf-8")
    assert 'name="gate.verdict"' in junit and 'failures="0"' not in junit
    rep = (ws / "audits" / "risk-tool" / "report.json").read_text(encoding="utf-8")
    assert '"author": "Alice Example <alice@example.org>"' in rep


@pytest.mark.parametrize("platform", ["github", "gitlab", "action"])
def test_bad_input_stops_the_job_with_exit_2_and_one_line(template: dict[str, Path],
                                                           tmp_path: Path, platform: str
                                                           ) -> None:
    ws = tmp_path / "project"
    shutil.copytree(template["fair"], ws, ignore=shutil.ignore_patterns("audits", "*.xml"))
    (ws / "data" / "cases.csv").unlink()
    rc, log = (run_github_job(ws, "audit", event="pull_request") if platform == "github"
               else run_gitlab_job(ws, "audit") if platform == "gitlab"
               else run_action(ws, {}))
    assert rc == 2, log
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "data file" in errors[0] and "Traceback" not in log, log
    assert not (ws / "audits").exists()
