"""Shared fixtures. Real data lies in ../shared/data beside the project root."""

from __future__ import annotations

import os
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
