"""data.schema, data.quality_by_group and data.leakage, with injected defects.

Every count is checked against a hand computation on the injected defect (or pandas / sklearn
as the independent oracle); schemas round-trip through pandera's own YAML reader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.io import pandas_io
from sklearn.metrics import roc_auc_score

from lea_ai_audit import Status, audit
from lea_ai_audit.checks.data_quality import auc_score, duplicate_rows, single_feature_auc
from lea_ai_audit.datasets import make_police_triage
from lea_ai_audit.errors import InputError, PolicyError
from lea_ai_audit.policy import load_policy
from lea_ai_audit.schema import (
    infer_schema,
    load_schema,
    schema_from_yaml,
    schema_to_yaml,
    validate_schema,
)


def _policy(check: str, **params) -> object:
    return load_policy({"id": "test", "version": "1", "title": "one check", "requirements": [
        {"id": check.replace(".", "-"), "clauses": ["AI Act Art. 10"], "check": check,
         "params": params}]})


def _audit(df: pd.DataFrame, check: str, *, reference=None, schema=None, sensitive=None,
           **params):
    rep = audit(df, target="reoffended", sensitive=sensitive or ["ethnicity", "sex"],
                prediction="rearrested", reference=reference, schema=schema,
                policy=_policy(check, **params), track=False)
    (res,) = rep.checks
    return rep, res


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return make_police_triage(3000, seed=11)


@pytest.fixture(scope="module")
def cur() -> pd.DataFrame:
    return make_police_triage(3000, seed=12)


# -- schema --------------------------------------------------------------------------------------
def _rich_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "count": rng.integers(0, 9, n),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 5, n)),
        "kind": rng.choice(["a", "b", "c"], n),
        "free": [f"id-{i}" for i in range(n)],
        "cat": pd.Categorical(rng.choice(["x", "y"], n)),
        "when": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "flag": rng.random(n) < 0.5,
    })


def test_inferred_schema_describes_the_reference():
    df = _rich_frame()
    s = infer_schema(df)
    cols = s.columns
    assert str(cols["count"].dtype) == "Int64" and not cols["count"].nullable
    assert cols["amount"].nullable and not cols["kind"].nullable
    rng_stats = cols["count"].checks[0].statistics
    assert (rng_stats["min_value"], rng_stats["max_value"]) == (df["count"].min(),
                                                               df["count"].max())
    amount = cols["amount"].checks[0].statistics
    assert amount["min_value"] == pytest.approx(df["amount"].min())
    assert amount["max_value"] == pytest.approx(df["amount"].max())
    assert cols["kind"].checks[0].statistics["allowed_values"] == ["a", "b", "c"]
    assert cols["cat"].checks[0].statistics["allowed_values"] == ["x", "y"]
    assert not cols["free"].checks  # 200 distinct values: an identifier, no category list
    when = cols["when"].checks[0].statistics
    assert (when["min_value"], when["max_value"]) == (df["when"].min(), df["when"].max())
    assert str(cols["flag"].dtype) == "bool"
    # the reference itself passes its own schema
    assert validate_schema(df, s).ok


def test_schema_yaml_round_trip_and_pandera_reads_it(tmp_path):
    s = infer_schema(_rich_frame())
    text = schema_to_yaml(s)
    assert schema_from_yaml(text) == s
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    assert schema_from_yaml(path) == s
    assert pandas_io.from_yaml(path) == s  # pandera's own reader gives the same schema
    assert load_schema(str(path)) == s


def test_yaml_with_python_object_tag_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text("schema_type: dataframe\ncolumns:\n  x:\n    dtype: "
                    f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(InputError, match="YAML tag that would build Python objects"):
        schema_from_yaml(evil)
    assert not marker.exists()
    with pytest.raises(InputError, match="not a pandera DataFrameSchema"):
        schema_from_yaml("- just\n- a list\n")
    with pytest.raises(InputError, match="does not exist"):
        schema_from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="must be a pandera DataFrameSchema"):
        load_schema(42)


def test_lazy_validation_counts_every_injected_failure(ref, cur):
    s = infer_schema(ref)
    bad = cur.copy()
    age_max = int(ref["age"].max())
    over = [3, 17, 400, 2500]
    bad.loc[over, "age"] = age_max + np.array([1, 5, 9, 9])
    unknown = list(range(100, 107))
    bad.loc[unknown, "district"] = "D99"
    bad.loc[[50, 51], "offence_type"] = None  # reference had no missing offence types
    v = validate_schema(bad, s)
    by = {(f.column, f.kind): f for f in v.failures}
    assert by[("age", "out of range")].count == int((bad["age"] > age_max).sum()) \
        + int((bad["age"] < ref["age"].min()).sum())
    assert set(over) <= set(bad.index[bad["age"] > age_max])
    assert by[("district", "unknown category")].count == 7
    assert by[("district", "unknown category")].examples == ("D99",)
    assert by[("offence_type", "missing values")].count == 2
    failing = (bad["age"] > age_max) | (bad["age"] < ref["age"].min()) \
        | ~bad["district"].isin(ref["district"].unique()) | bad["offence_type"].isna()
    for col in ("prior_contacts", "prior_convictions", "months_since_last_contact"):
        failing |= (bad[col] > ref[col].max()) | (bad[col] < ref[col].min())
    assert v.failing_rows == int(failing.sum())
    # a column the model needs is gone: a structural failure
    v2 = validate_schema(cur.drop(columns=["district"]), s)
    assert any("missing column: district" in t for t in v2.structural)


def test_text_in_a_numeric_column_is_a_type_failure_not_a_crash(ref):
    s = infer_schema(ref)
    bad = ref.copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[[5, 6, 7], "age"] = "unknown"
    v = validate_schema(bad, s)
    (f,) = [f for f in v.failures if f.column == "age"]
    assert (f.kind, f.count, f.examples) == ("wrong type", 3, ("unknown",))


def test_data_schema_check_statuses_and_yaml_evidence(ref, cur, tmp_path):
    rep, res = _audit(cur, "data.schema", reference=ref)
    v = validate_schema(cur, infer_schema(ref))
    assert res.metrics["failing_rows"] == v.failing_rows
    assert res.raw_status is Status.PASS  # a few values beyond the training range: tolerated
    y = res.evidence_named("schema").read()
    assert schema_from_yaml(y.decode()) == infer_schema(ref, name="reference")
    rep.save(tmp_path)
    assert res.evidence_named("schema").data["media_type"] == "application/yaml"
    saved = rep.checks[0].evidence_named("schema")
    assert (tmp_path / saved.data["path"]).read_bytes() == y

    bad = cur.copy()
    bad.loc[: len(bad) // 10, "district"] = "D99"  # 10% unknown districts
    _, res = _audit(bad, "data.schema", reference=ref)
    assert res.raw_status is Status.FAIL and "district" in res.message
    rows = {(r[0], r[1]): r for r in res.evidence_named("schema_failures").data["rows"]}
    assert rows[("district", "unknown category")][3] == int((bad["district"] == "D99").sum())

    _, res = _audit(cur, "data.schema")  # no reference: describes, cannot test
    assert res.raw_status is Status.WARN and "no reference data" in res.message


def test_user_schema_overrides_the_inferred_one(ref, cur, tmp_path):
    class Strict(pa.DataFrameModel):
        age: int = pa.Field(le=40)

    _, res = _audit(cur, "data.schema", reference=ref, schema=Strict)
    assert "supplied" in res.message and "overrides" in res.message
    rows = res.evidence_named("schema_failures").data["rows"]
    assert [(r[0], r[1], r[3]) for r in rows] == [("age", "out of range",
                                                   int((cur["age"] > 40).sum()))]
    assert res.raw_status is Status.FAIL  # far more than 1% are over 40
    # the same schema as a YAML file
    path = tmp_path / "strict.yaml"
    path.write_text(schema_to_yaml(Strict))
    _, res2 = _audit(cur, "data.schema", reference=ref, schema=str(path))
    assert res2.metrics["failing_rows"] == res.metrics["failing_rows"]


def test_failing_values_of_identifier_columns_are_withheld(cur):
    df = cur.assign(name=[f"Anna Meyer{i % 97}" for i in range(len(cur))])
    schema = pa.DataFrameSchema({"name": pa.Column(str, pa.Check.isin(["nobody"]))})
    _, res = _audit(df, "data.schema", schema=schema)
    (row,) = res.evidence_named("schema_failures").data["rows"]
    assert row[0] == "name" and row[3] == len(df) and row[5] == ""
    assert "Meyer" not in res.message and "Meyer" not in str(res.to_dict())


# -- quality by group ----------------------------------------------------------------------------
def test_nans_in_one_group_only_are_a_finding_with_the_figures(cur):
    df = cur.copy()
    rng = np.random.default_rng(5)
    minority_b = df.index[df["ethnicity"] == "minority_b"]
    hit = rng.choice(minority_b, size=len(minority_b) // 3, replace=False)
    df.loc[hit, "months_since_last_contact"] = np.nan
    spread = rng.choice(df.index, size=len(df) // 20, replace=False)  # 5% everywhere
    df.loc[spread, "employment"] = None
    _, res = _audit(df, "data.quality_by_group")
    assert res.raw_status is Status.FAIL
    assert "months_since_last_contact is missing for" in res.message
    assert "ethnicity=minority_b" in res.message and "employment" not in res.message
    rows = {(r[0], r[1], r[2]): r for r in res.evidence_named("missing_values").data["rows"]}
    r = rows[("months_since_last_contact", "ethnicity", "minority_b")]
    assert r[3] == len(minority_b) and r[4] == len(hit) and r[9] == "concentrated"
    rest = len(df) - len(minority_b)
    assert r[6] == pytest.approx(len(hit) / len(minority_b) - 0 / rest, abs=1e-6)
    assert rows[("months_since_last_contact", "ethnicity", "majority")][9] == ""
    assert all(rows[("employment", g, lab)][9] != "concentrated" for (c, g, lab) in rows
               if c == "employment" and g != "all")
    assert res.metrics["missing_share/employment"] == pytest.approx(len(spread) / len(df),
                                                                    abs=1e-6)
    assert any(e.kind == "file" and e.data["media_type"] == "image/png" for e in res.evidence)


def test_duplicate_rows_counted_exactly():
    base = make_police_triage(1500, seed=4).drop(columns=["case_id"])
    rng = np.random.default_rng(9)
    picks = rng.choice(len(base), size=40, replace=True)  # some rows picked twice or more
    df = pd.concat([base, base.iloc[picks]], ignore_index=True)
    df.loc[df.index[:3], "employment"] = None
    df = pd.concat([df, df.iloc[:3]], ignore_index=True)  # duplicates holding NaN
    expected = int(df.duplicated().sum())  # pandas as the oracle
    assert expected >= 43
    assert duplicate_rows(df) == expected
    assert duplicate_rows(base.assign(k=range(len(base)))) == 0
    _, res = _audit(df, "data.quality_by_group", max_duplicate_share=0.01)
    assert res.metrics["duplicate_rows"] == expected
    assert res.raw_status is Status.FAIL and f"{expected} rows" in res.message


def test_constant_columns_label_balance_and_population(cur):
    df = cur.assign(force="north", unit=7)
    pop = {"ethnicity": {"majority": 0.5, "minority_a": 0.2, "minority_b": 0.1}}
    _, res = _audit(df, "data.quality_by_group", population=pop)
    assert res.metrics["constant_columns"] == 2 and "force, unit" in res.message
    for g, share in df.groupby("ethnicity")["reoffended"].mean().items():
        assert res.metrics[f"positive_share/ethnicity/{g}"] == pytest.approx(share, abs=1e-6)
    observed = df["ethnicity"].value_counts(normalize=True)
    rows = {r[1]: r for r in res.evidence_named("representation").data["rows"]}
    assert rows["majority"][2] == pytest.approx(observed["majority"], abs=1e-6)
    assert rows["majority"][5] == "over-represented"  # ~70% against a declared 50%
    assert rows["minority_a"][5] == "" and rows["minority_b"][5] == ""
    assert res.raw_status is Status.FAIL and "ethnicity=majority" in res.message
    close = {"ethnicity": {g: float(v) for g, v in observed.items()}}
    _, res = _audit(cur, "data.quality_by_group", population=close)
    assert res.raw_status is Status.PASS, res.message


@pytest.mark.parametrize("population", [
    {"ethnicity": {"majority": 0.8, "minority_a": 0.4}},  # adds up to more than 1
    {"ethnicity": {"majority": "most"}},
    {"ethnicity": ["majority"]},
])
def test_bad_population_refused_when_the_policy_loads(population):
    with pytest.raises(PolicyError, match="population"):
        _policy("data.quality_by_group", population=population)


def test_population_declared_with_the_audit(cur):
    """audit(declared_population=...) feeds the same comparison as the policy's parameter."""
    pop = {"ethnicity": {"majority": 0.5, "minority_a": 0.2, "minority_b": 0.1}}
    rep = audit(cur, target="reoffended", sensitive=["ethnicity", "sex"],
                prediction="rearrested", policy=_policy("data.quality_by_group"),
                declared_population=pop, track=False)
    res = rep.checks[0]
    observed = cur["ethnicity"].value_counts(normalize=True)
    rows = {r[1]: r for r in res.evidence_named("representation").data["rows"]}
    assert rows["majority"][2] == pytest.approx(observed["majority"], abs=1e-6)
    assert rows["majority"][5] == "over-represented"
    assert res.raw_status is Status.FAIL and "ethnicity=majority" in res.message
    for bad, match in [({"ethnicity": {"majority": 1.5}}, "share"),
                       ({"district": {"D01": 0.5}}, "not a sensitive attribute")]:
        with pytest.raises(InputError, match=match):
            audit(cur, target="reoffended", sensitive=["ethnicity", "sex"],
                  prediction="rearrested", policy=_policy("data.quality_by_group"),
                  declared_population=bad, track=False)


# -- leakage -------------------------------------------------------------------------------------
def test_auc_helper_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(y * 0.5, 1.0), 1)  # ties included
    assert auc_score(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_leaking_feature_found_identifier_is_not(cur):
    df = cur.copy()
    rng = np.random.default_rng(1)
    flip = rng.random(len(df)) < 0.01
    df["outcome_recorded"] = np.where(df["reoffended"].astype(bool) ^ flip, "yes", "no")
    df["days_to_rearrest"] = np.where(df["reoffended"] == 1, rng.integers(1, 700, len(df)),
                                      np.nan)
    _, res = _audit(df, "data.leakage")
    assert res.raw_status is Status.FAIL
    leaks = {r[0] for r in res.evidence_named("single_feature_auc").data["rows"] if r[3]}
    assert leaks == {"outcome_recorded", "days_to_rearrest"}
    assert res.metrics["auc/case_id"] < 0.6  # unique per row: out-of-fold encoding sees nothing
    assert res.metrics["auc/outcome_recorded"] == pytest.approx(
        roc_auc_score(df["reoffended"], df["outcome_recorded"] == "yes"), abs=0.01)
    a = roc_auc_score(df["reoffended"], df["prior_contacts"])
    rows = {r[0]: r for r in res.evidence_named("single_feature_auc").data["rows"]}
    if rows["prior_contacts"][2] == "ranked values":
        assert rows["prior_contacts"][1] == pytest.approx(max(a, 1 - a), abs=1e-4)
    else:  # the out-of-fold encoding separated better than the raw ranking
        assert rows["prior_contacts"][1] >= max(a, 1 - a) - 1e-4
    _, clean = _audit(cur, "data.leakage")
    assert clean.raw_status is Status.PASS


def test_single_feature_auc_finds_non_monotone_codes():
    x = pd.Series([1, 2, 3, 2] * 100)  # codes 1 and 3 are positive, 2 negative
    y = np.array([1, 0, 1, 0] * 100)
    assert auc_score(x.to_numpy(), y) == 0.5  # ranked, the codes say nothing
    assert single_feature_auc(x, y) == (1.0, "target-encoded (2-fold)")


def test_compas_identifiers_and_leaks_flagged(shared_data):
    df = pd.read_csv(shared_data / "compas" / "compas-scores-two-years.csv")
    df["flag"] = (df["score_text"] != "Low").astype(int)
    policy = load_policy({"id": "t", "version": "1", "title": "data", "requirements": [
        {"id": "protection", "clauses": ["x"], "check": "data.protection"},
        {"id": "leakage", "clauses": ["x"], "check": "data.leakage"}]})
    rep = audit(df, target="two_year_recid", sensitive=["race", "sex"], prediction="flag",
                policy=policy, track=False)
    prot, leak = rep.checks
    assert prot.raw_status is Status.FAIL
    flagged = {r["column"]: r["kind"] for r in rep.table("identifiers")
               if r["verdict"] == "flagged"}
    assert {"name", "first", "last", "dob"} <= set(flagged)
    assert flagged["dob"] == "date of birth" and flagged["name"] == "person name"
    leaks = {r["feature"] for r in rep.table("single_feature_auc") if r["leak"]}
    assert "is_recid" in leaks  # the recidivism flag is the outcome by another name
    assert leak.raw_status is Status.FAIL
    # the outcome's AUC of is_recid, checked with sklearn on all rows
    a = roc_auc_score(df["two_year_recid"], df["is_recid"])
    assert leak.metrics["auc/is_recid"] == pytest.approx(max(a, 1 - a), abs=1e-4)


def test_skipping_no_op_coercion_finds_what_pandera_finds():
    """validate_schema leaves out pandera's coercion of columns that already have the schema's
    dtype; every failure is still the one pandera reports with the schema as written."""
    from pandera.errors import SchemaErrors

    from lea_ai_audit.schema import _without_noop_coercion

    ref = pd.DataFrame({"age": np.arange(18, 68), "score": np.linspace(0, 1, 50),
                        "district": pd.Categorical(["north", "south"] * 25),
                        "code": ["a", "b"] * 25})
    schema = infer_schema(ref)
    bad = pd.DataFrame({"age": pd.array([17, 30, 99, 40], dtype="Int64"),  # two out of range
                        "score": ["0.5", "x", "0.1", "2"],             # text: must be coerced
                        "district": pd.Categorical(["north", "east", "south", "north"]),
                        "code": ["a", "b", "z", None]})
    lean = _without_noop_coercion(schema, bad)
    assert {n: c.coerce for n, c in lean.columns.items()} == {
        "age": False, "score": True, "district": True, "code": False}
    with pytest.raises(SchemaErrors) as exc:
        schema.validate(bad, lazy=True)
    oracle = exc.value.failure_cases
    want = {(str(c), str(k)): int(n) for (c, k), n in
            oracle[oracle["index"].notna()].groupby(["column", "check"]).size().items()}
    got = validate_schema(bad, schema)
    have = {(f.column, f.check): f.count for f in got.failures}
    assert {k: v for k, v in want.items() if not k[1].startswith("dtype(")} == \
        {k: v for k, v in have.items() if not k[1].startswith("dtype(")}
    assert have[("age", "in_range(18, 67)")] == 2
