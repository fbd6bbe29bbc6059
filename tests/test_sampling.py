"""Stratified samples of the audit context: every group represented, reproducible, weighted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lea_ai_audit.context import AuditContext


def _ctx(sizes: dict[tuple[str, str], int], seed: int = 0) -> AuditContext:
    rows = []
    for (a, b), n in sizes.items():
        rows += [{"a": a, "b": b}] * n
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(seed)
    df["y"] = np.r_[0, 1, rng.integers(0, 2, len(df) - 2)]
    df["p"] = rng.integers(0, 2, len(df))
    return AuditContext.build(df, target="y", sensitive=["a", "b"], prediction="p", seed=seed)


def test_small_group_gets_its_minimum_and_large_groups_their_share():
    ctx = _ctx({("x", "m"): 9000, ("x", "f"): 800, ("z", "m"): 12, ("z", "f"): 188})
    idx = ctx.stratified_sample(1000, min_per_group=50)
    taken = dict(zip(ctx.strata.labels, np.bincount(ctx.strata.codes[idx]), strict=True))
    assert taken == {"x & f": 80, "x & m": 900, "z & f": 50, "z & m": 12}
    assert np.all(np.diff(idx) > 0)  # sorted, no repeats


def test_same_arguments_same_sample_and_seed_changes_it():
    ctx = _ctx({("x", "m"): 3000, ("z", "f"): 500})
    a = ctx.stratified_sample(400)
    assert ctx.stratified_sample(400) is a  # cached
    assert not a.flags.writeable
    b = ctx.stratified_sample(400, seed=7)
    assert len(a) == len(b) and not np.array_equal(a, b)


def test_sample_larger_than_data_takes_every_row():
    ctx = _ctx({("x", "m"): 30, ("z", "f"): 20})
    assert np.array_equal(ctx.stratified_sample(10_000), np.arange(50))


def test_weights_restore_group_totals():
    ctx = _ctx({("x", "m"): 5000, ("x", "f"): 700, ("z", "m"): 40})
    idx = ctx.stratified_sample(600, min_per_group=100)
    w = ctx.sample_weights(idx)
    codes = ctx.strata.codes
    for g in range(ctx.strata.n_groups):
        assert w[codes[idx] == g].sum() == pytest.approx((codes == g).sum())


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6),
       size=st.integers(1, 1500), min_per=st.integers(0, 80), seed=st.integers(0, 5))
def test_sample_properties(sizes, size, min_per, seed):
    # each sensitive attribute has two groups at least (one group is refused: nothing to compare)
    groups = {(f"g{i}", "st"[i % 2]): n for i, n in enumerate(sizes)}
    if len(sizes) < 2:
        groups[("g_extra", "t")] = 1
    ctx = _ctx(groups, seed)
    idx = ctx.stratified_sample(size, min_per_group=min_per)
    counts = np.bincount(ctx.strata.codes, minlength=ctx.strata.n_groups)
    taken = np.bincount(ctx.strata.codes[idx], minlength=ctx.strata.n_groups)
    assert len(np.unique(idx)) == len(idx)
    assert np.all(taken <= counts)
    if size < ctx.n:
        assert np.all(taken >= np.minimum(counts, min_per))  # every group its minimum
        assert np.all(taken >= np.minimum(counts, 1) * (min_per > 0))
    else:
        assert np.array_equal(taken, counts)
