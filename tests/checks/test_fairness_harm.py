"""Harm has a direction, and the intersection's reference follows the declared references.

Each disparity row says on which side of the reference group a group lies ("harmful" or
"favourable", from the metric or the requirement's ``harm``); the message lists the harmful side
first. The intersection is compared with the cell that combines each attribute's reference
group. Hand-built confusion counts are the oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit.checks import make_check

from .test_fairness import context, frame, run, table

# FPR: A 20/100 (reference), B 40/100 (higher: harmed), C 5/100 (lower: the reference harmed)
SPEC = {"A": (50, 20, 10, 80), "B": (50, 40, 10, 60), "C": (50, 5, 10, 95)}


def test_rows_carry_the_side_and_the_numerator() -> None:
    ctx = context(frame(SPEC), reference_groups={"g": "A"})
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, decision_rule="point")
    t = table(res, "fpr:g")
    assert t["A"]["side"] is None and t["A"]["verdict"] == "reference"
    assert (t["B"]["numerator"], t["B"]["denominator"]) == (40, 100)
    assert t["B"]["side"] == "harmful" and t["C"]["side"] == "favourable"
    assert t["B"]["verdict"] == t["C"]["verdict"] == "violation"  # two-sided: both count
    msg = res.message
    assert "two-sided" in msg
    assert msg.index("1 on the harmful side (wrongly flagged more often") < msg.index(
        "1 on the other side (wrongly flagged less often: their reference group is the "
        "disadvantaged one)")
    assert "g=B" in msg and res.metrics["violation_harmful_side"] == 1


@pytest.mark.parametrize("metric, harm, harmed", [
    ("ppv", None, "lower"), ("selection_rate", None, "higher"), ("fnr", None, "higher"),
    ("selection_rate", "lower", "lower"), ("npv", None, None), ("fpr", "either", None)])
def test_the_harmful_side_per_metric_and_policy(metric, harm, harmed) -> None:
    ctx = context(frame(SPEC), reference_groups={"g": "A"})
    params = {"metric": metric, "max_difference": 0.01, "decision_rule": "point"}
    if harm:
        params["harm"] = harm
    t = table(run(ctx, "fairness.disparity", **params), f"{metric}:g")
    for g in ("B", "C"):
        d = t[g]["diff"]
        if d == 0:
            assert t[g]["side"] == "equal"
        elif harmed is None:
            assert t[g]["side"] == ("higher" if d > 0 else "lower")
        else:
            assert t[g]["side"] == ("harmful" if (d > 0) == (harmed == "higher")
                                    else "favourable")


def test_harm_must_be_a_side() -> None:
    with pytest.raises(ValueError, match="harm must be one of"):
        make_check("fairness.disparity", {"metric": "fpr", "max_difference": 0.1,
                                          "harm": "up"}).validate()


def _two(spec_ab: dict[tuple[str, str], tuple[int, int, int, int]]) -> pd.DataFrame:
    parts = []
    for (a, b), (tp, fp, fn, tn) in spec_ab.items():
        y = [1] * tp + [0] * fp + [1] * fn + [0] * tn
        p = [1] * tp + [1] * fp + [0] * fn + [0] * tn
        parts.append(pd.DataFrame({"race": a, "sex": b, "y": y, "p": p}))
    return pd.concat(parts, ignore_index=True)


CELLS = {("W", "M"): (40, 10, 10, 90), ("W", "F"): (20, 10, 5, 40),
         ("B", "M"): (60, 30, 20, 200), ("B", "F"): (30, 20, 10, 150)}


def test_intersection_reference_is_the_combination_of_the_references() -> None:
    # race: W declared (B is larger); sex: none declared, M is the largest
    ctx = context(_two(CELLS), sensitive=("race", "sex"), reference_groups={"race": "W"})
    refs = ctx.reference_groups
    assert refs["race"] == {"group": "W", "chosen": "given"}
    assert refs["sex"]["group"] == "M" and refs["sex"]["chosen"] == "largest"
    inter = refs["race & sex"]
    assert inter["group"] == "W & M"  # not the largest cell (B & M)
    assert inter["chosen"].startswith("the combination of each attribute's reference group")
    assert "race=W (declared)" in inter["chosen"] and "sex=M (largest)" in inter["chosen"]
    res = run(ctx, "fairness.disparity", metric="fpr", max_difference=0.1, min_group_size=1)
    t = table(res, "fpr:race & sex")
    assert [g for g, r in t.items() if r["verdict"] == "reference"] == ["W & M"]
    # the differences are against the W & M cell's own counts (10 / 100)
    assert t["B & F"]["diff"] == pytest.approx(20 / 170 - 10 / 100, abs=1e-4)


def test_intersection_reference_when_the_combination_does_not_occur() -> None:
    cells = {k: v for k, v in CELLS.items() if k != ("W", "M")}
    # race W declared, sex M the largest: no W & M cell, so the largest cell with race=W
    ctx = context(_two(cells), sensitive=("race", "sex"), reference_groups={"race": "W"})
    inter = ctx.reference_groups["race & sex"]
    assert inter["group"] == "W & F"
    assert inter["chosen"].startswith("the largest cell with race=W: the combination")
    assert "does not occur in the data" in inter["chosen"]
    # both declared and their cell absent: no cell holds both, so the largest cell, stated
    ctx = context(_two(cells), sensitive=("race", "sex"),
                  reference_groups={"race": "W", "sex": "M"})
    inter = ctx.reference_groups["race & sex"]
    assert inter["group"] == "B & M" and inter["chosen"].startswith("the largest cell:")
    # nothing declared: race B (60) and sex M (50) are the largest, B & M does not occur
    df = _two({("B", "F"): (10, 5, 5, 10), ("B", "X"): (10, 5, 5, 10),
               ("W", "M"): (20, 5, 5, 20)})
    refs = context(df, sensitive=("race", "sex")).reference_groups
    assert (refs["race"]["group"], refs["sex"]["group"]) == ("B", "M")
    assert refs["race & sex"]["group"] == "W & M"
    assert "race=B (largest), sex=M (largest)" in refs["race & sex"]["chosen"]


def test_intersection_reference_of_declared_references_is_given() -> None:
    ctx = context(_two(CELLS), sensitive=("race", "sex"),
                  reference_groups={"race": "B", "sex": "F"})
    assert ctx.reference_groups["race & sex"] == {"group": "B & F", "chosen": "given"}
    assert np.isfinite(ctx.counts(ctx.groupings()[-1]).n).all()
