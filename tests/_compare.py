"""Comparing metric dictionaries whose values may be None or NaN.

``pytest.approx(None, nan_ok=True)`` raises TypeError on pytest 9 (it worked on pytest 8), so a
metric that is undefined on both sides (None: no case to compute it from; NaN: 0/0) is compared
explicitly here: undefined equals undefined of the same kind, never a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest


def _kind(v: Any) -> str:
    if v is None:
        return "None"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return "value"


def assert_same_metrics(got: Mapping[str, Any], want: Mapping[str, Any], *,
                        rel: float | None = None, abs: float | None = None) -> None:
    """Every metric of ``want`` is in ``got`` with the same value (within ``rel``/``abs``);
    None matches only None and NaN only NaN."""
    for k, v in want.items():
        assert k in got, f"metric {k!r} missing"
        g = got[k]
        assert _kind(g) == _kind(v), f"{k}: {g!r} != {v!r}"
        if _kind(v) == "value":
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert g == pytest.approx(v, rel=rel, abs=abs), k
            else:
                assert g == v, k
