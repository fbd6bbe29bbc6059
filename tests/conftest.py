"""Shared fixtures. Real data lies in ../shared/data beside the project root."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Audits run by the tests do not log to MLflow (it would write mlflow.db wherever a test runs
# and add seconds to every CLI call); tests/tracking turns it on and logs to real stores.
os.environ.setdefault("LEA_AUDIT_TRACKING", "off")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data directory {SHARED_DATA} is missing: clone the project "
                    "with shared/ beside it (see README)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _mlflow_global_state():
    """Give each test MLflow's process-wide state as it found it.

    ``mlflow.set_tracking_uri``/``set_experiment``/``start_run`` keep module-level globals that
    outlive a test's ``monkeypatch`` of MLFLOW_TRACKING_URI: one test's registry would otherwise
    receive the next test's runs (order-dependent failures). ``set_experiment`` also writes
    MLFLOW_EXPERIMENT_ID into the environment (for subprocesses), where a later test's
    MLFLOW_EXPERIMENT_NAME on another server then contradicts it.
    """
    saved_env = os.environ.get("MLFLOW_EXPERIMENT_ID")
    mods = {}
    if "mlflow" in sys.modules:
        from mlflow.tracking import fluent
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        mods = {"t": tracking_utils, "r": registry_utils, "f": fluent}
    saved = ((mods["t"]._tracking_uri, mods["r"]._registry_uri, mods["f"]._active_experiment_id)
             if mods else (None, None, None))
    yield
    if saved_env is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = saved_env
    if "mlflow" not in sys.modules:
        return
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    for _ in range(10):  # a run left open by a failed test, possibly on a store now deleted
        if mlflow.active_run() is None:
            break
        try:
            mlflow.end_run()
        except Exception:
            fluent._active_run_stack.get().pop()
    tracking_utils._tracking_uri, registry_utils._registry_uri, fluent._active_experiment_id = saved


# -- a real headless Chromium for pages a user opens (model cards, evidence HTML) -------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Playwright driving Debian's Chromium; a missing browser fails the test (never skips)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is not installed: apt-get update && apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[dev]' (playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
