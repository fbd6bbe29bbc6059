"""data.protection: identifiers found by name and by values; never copied into the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit import audit
from lea_ai_audit.checks.data_quality import scan_identifiers

FIRST = ["anna", "ben", "carla", "dmitri", "eve", "farid", "gosia", "hugo", "ines", "jonas",
         "kemal", "lena", "mehmet", "nora", "oskar", "paula", "quentin", "rosa", "samir", "tea"]
LAST = ["meyer", "nowak", "rossi", "dubois", "yilmaz", "jansen", "silva", "kowalski", "berg",
        "martin", "ivanov", "costa", "novak", "horvat", "lind"]


def _people(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    return pd.DataFrame({
        "col_a": [f"{a} {b}".title() for a, b in zip(first, last, strict=True)],  # names
        "col_b": [f"{a}.{b}{i}@police.example" for i, (a, b) in
                  enumerate(zip(first, last, strict=True))],
        "col_c": [f"+49 30 {rng.integers(1000000, 9999999)}" for _ in range(n)],
        "col_d": [f"{rng.integers(100, 999)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}"
                  for _ in range(n)],
        "col_e": [f"Subject was seen near the station at {i} pm and refused to give a name"
                  for i in range(n)],
        "offence": rng.choice(["theft", "fraud", "assault"], n),
        "priors": rng.integers(0, 6, n),
        "group": rng.choice(["a", "b"], n),
        "y": rng.integers(0, 2, n),
        "p": rng.integers(0, 2, n),
    })


def test_identifiers_found_by_their_values_alone():
    found = {f["column"]: f for f in scan_identifiers(_people())}
    assert found["col_a"]["kind"] == "person name"
    assert found["col_b"]["kind"] == "e-mail address"
    assert found["col_c"]["kind"] == "phone number"
    assert found["col_d"]["kind"] == "national ID"
    assert found["col_e"]["kind"] == "free text"
    assert not {"offence", "priors", "group", "y", "p"} & set(found)
    assert all(not f["by_name"] for f in found.values())
    assert found["col_b"]["value_share"] == 1.0


def test_compas_names_and_dates_of_birth_flagged(shared_data):
    df = pd.read_csv(shared_data / "compas" / "compas-scores-two-years.csv")
    df["flag"] = (df["score_text"] != "Low").astype(int)
    rep = audit(df, target="two_year_recid", sensitive=["race"], prediction="flag",
                checks=["data.protection"])
    (res,) = rep.checks
    assert res.raw_status.value == "fail" and res.status.value == "warn"  # advisory in the pack
    rows = {r["column"]: r for r in rep.table("identifiers")}
    for col, kind in (("name", "person name"), ("first", "person name"),
                      ("last", "person name"), ("dob", "date of birth")):
        assert rows[col]["kind"] == kind and rows[col]["verdict"] == "flagged"
    assert rows["c_case_number"]["verdict"] == "noted"
    assert "name (person name)" in res.message and "dob (date of birth)" in res.message
    # the report never holds the personal data itself
    text = rep.to_json()
    assert "miguel hernandez" not in text and "1947-04-18" not in text


def test_sensitive_attribute_as_model_input_is_flagged():
    from sklearn.linear_model import LogisticRegression

    df = _people()
    df["sex"] = np.random.default_rng(1).integers(0, 2, len(df))
    model = LogisticRegression().fit(df[["priors", "sex"]], df["y"])
    rep = audit(df, target="y", sensitive=["sex"], model=model, features=["priors", "sex"],
                checks=["data.protection"])
    assert "sensitive attribute(s) used as model input(s): sex" in rep.checks[0].message
    assert rep.checks[0].metrics["sensitive_inputs"] == 1


def test_clean_data_passes_and_allow_list_accepts():
    df = _people()[["offence", "priors", "group", "y", "p"]]
    rep = audit(df, target="y", sensitive=["group"], prediction="p", checks=["data.protection"])
    assert rep.checks[0].status.value == "pass"
    from lea_ai_audit.policy import load_policy
    pol = load_policy({"id": "x", "version": "1", "title": "x", "requirements": [
        {"id": "dp", "clauses": ["x"], "check": "data.protection",
         "params": {"allow": ["col_a", "col_b", "col_c", "col_d", "col_e"]}}]})
    rep = audit(_people(), target="y", sensitive=["group"], prediction="p", policy=pol)
    assert rep.checks[0].status.value == "pass"
    assert {r["verdict"] for r in rep.table("identifiers")} == {"accepted"}


@pytest.mark.parametrize("col", ["Date_of_Birth", "e-mail", "Phone", "SSN", "case_notes"])
def test_identifier_names(col):
    df = pd.DataFrame({col: ["x"] * 5, "y": [0, 1, 0, 1, 0]})
    assert [f["column"] for f in scan_identifiers(df)] == [col]
