"""The HTML evidence we ship (evidently's drift report) is safe to open when column names and
category labels were written by an outsider.

evidently embeds names and labels in an inline ``<script>``: a column named
``</script><script>...</script>`` would close it and run its own script in the browser of
whoever opens the bundle or the MLflow artifact. The drift check hands evidently look-alikes of
``<``, ``>`` and ``&`` (mapped one-to-one, so the figures do not change) and gives the page a
Content-Security-Policy that lets only its own scripts run and forbids network access.

The browser part follows tests/cards/test_browser.py: headless Chromium (Debian's package)
through Playwright, both required (CI installs them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lea_ai_audit import audit
from lea_ai_audit.checks.drift import _safe_names, _safe_text
from lea_ai_audit.datasets import make_police_triage
from lea_ai_audit.policy import load_policy

PWN_NAME = "</script><script>window.__pwned=1</script>"
PWN_ATTR = '"><img src=x onerror="window.__pwned=2">'
PWN_LABEL = "</script><script>window.__pwned=3</script>"
PWN_GROUP = "<!--<script>window.__pwned=4</script>"
RENAMED = {"age": PWN_NAME, "district": PWN_ATTR}


def _policy():
    return load_policy({"id": "test", "version": "1", "title": "drift", "requirements": [
        {"id": "drift", "clauses": ["AI Act Art. 10"], "check": "data.drift",
         "params": {"html": True, "group_sample": 1000}}]})


def _hostile(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.rename(columns=RENAMED)
    out["offence_type"] = out["offence_type"].replace({"property": PWN_LABEL,
                                                       "violent": "drugs & violence"})
    out["ethnicity"] = out["ethnicity"].replace({"minority_b": PWN_GROUP})
    return out


def _audit(cur: pd.DataFrame, ref: pd.DataFrame):
    rep = audit(cur, reference=ref, policy=_policy(), track=False, target="reoffended",
                sensitive=["ethnicity", "sex"], prediction="rearrested")
    (res,) = rep.checks
    return rep, res


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    ref, cur = make_police_triage(3000, seed=31), make_police_triage(3000, seed=32)
    cur = cur.assign(age=cur["age"] + 3)  # some drift, so the report has something to show
    clean = _audit(cur, ref)
    hostile = _audit(_hostile(cur), _hostile(ref))
    d = tmp_path_factory.mktemp("html")
    (f,) = hostile[1].files()
    page = d / "drift_report.html"
    page.write_bytes(f.read())
    return clean, hostile, page


def test_no_hostile_markup_in_the_page(reports) -> None:
    (_, clean), _, page = reports
    html = page.read_text(encoding="utf-8")
    for bad in ("</script><script>", "<img src=x", "<!--<script>", "window.__pwned=1</script>",
                "drugs & violence"):
        assert bad not in html, bad
    # the look-alikes are there instead (evidently writes them as JSON, \\u escaped): the
    # report still names the columns and labels
    for text in (PWN_NAME, PWN_ATTR, PWN_LABEL, "drugs & violence", PWN_GROUP):
        assert json.dumps(_safe_text(text))[1:-1] in html, text
    # as many script elements as in the report on the same data with plain names: none was
    # opened by the data
    plain = clean.files()[0].read().decode("utf-8")
    assert html.count("<script") == plain.count("<script")
    assert html.count("</script") == plain.count("</script")


def test_csp_meta_is_the_first_element_of_head(reports) -> None:
    _, _, page = reports
    html = page.read_text(encoding="utf-8")
    m = re.search(r"<head>\s*<meta http-equiv=\"Content-Security-Policy\" content=\"([^\"]+)\">",
                  html)
    assert m, html[:600]
    policy = dict([*d.split(" ", 1), ""][:2] for d in
                  (p.strip() for p in m.group(1).split(";")))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'none'" and policy["form-action"] == "'none'"
    assert policy["img-src"] == "data:" and policy["font-src"] == "data:"
    assert policy["base-uri"] == "'none'" and policy["object-src"] == "'none'"
    scripts = policy["script-src"].split()
    assert scripts and all(s.startswith("'sha256-") for s in scripts), scripts
    assert "'unsafe-inline'" not in policy["script-src"] and "http" not in m.group(1)
    # the meta charset still falls within the first 1024 bytes (the hashes are over UTF-8)
    assert b"<meta charset" in page.read_bytes()[:1024]


def test_drift_figures_do_not_change(reports) -> None:
    (clean_rep, clean), (hostile_rep, hostile), _ = reports
    back = {v: k for k, v in RENAMED.items()}
    want = {r["column"]: r for r in clean_rep.table("drift")}
    got = {back.get(r["column"], r["column"]): r for r in hostile_rep.table("drift")}
    assert set(got) == set(want) and len(want) > 5
    for col, row in want.items():
        for key in ("test", "statistic_kind", "statistic", "threshold", "drift"):
            assert got[col][key] == row[key], (col, key)
    assert got["age"]["drift"]  # the drift put in is found under the hostile name
    assert clean.status == hostile.status
    for k, v in clean.metrics.items():
        col = k.split("/", 1)[1] if k.startswith("drift_score/") else None
        k2 = f"drift_score/{RENAMED[col]}" if col in RENAMED else k
        assert hostile.metrics[k2] == v, k


def test_safe_names_are_one_to_one() -> None:
    cols = ["a<b", "a\u2039b", "a\u2039b (2)", "x & y", 3]
    names = _safe_names(cols)
    assert len(set(names.values())) == len(cols)
    assert all("<" not in str(v) and "&" not in str(v) for v in names.values())
    assert names[3] == 3 and names["a\u2039b"] == "a\u2039b"


def _open(browser, page_file: Path):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    seen = {"requests": [], "dialogs": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.add_init_script("window.__csp = []; document.addEventListener("
                         "'securitypolicyviolation', e => window.__csp.push("
                         "e.violatedDirective + ' ' + e.blockedURI))")
    page.goto(page_file.as_uri(), wait_until="load")
    return page, seen


def test_evidently_page_renders_and_runs_no_script_from_the_data(browser, reports,
                                                                 tmp_path: Path) -> None:
    _, _, page_file = reports
    page, seen = _open(browser, page_file)
    try:
        page.wait_for_selector("text=Dataset Drift", timeout=20_000)
        page.locator("tbody button").first.click()  # open a column's distribution plot
        page.wait_for_timeout(1000)
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("window.__csp") == [], "evidently's own scripts were blocked"
        assert seen["requests"] == [page_file.as_uri()], seen["requests"]
        assert seen["dialogs"] == [] and seen["errors"] == []
        body = page.inner_text("body")
        assert _safe_text(PWN_NAME) in body and "Drifted Columns" in body
        assert page.evaluate("document.querySelectorAll('svg.main-svg').length") > 0
        shot = tmp_path / "drift.png"
        page.screenshot(path=str(shot), full_page=False)
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
    finally:
        page.close()


def test_the_browser_check_catches_an_unsafe_page(browser, tmp_path: Path) -> None:
    """The same data given to evidently as it is, without the check's precautions: the script
    runs (so the test above could fail)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        rng = np.random.default_rng(0)
        frames = [pd.DataFrame({"age": rng.normal(30 + i, 5, 200),
                                PWN_NAME: rng.choice(["a", "b"], 200).astype(object)})
                  for i in range(2)]
        dd = DataDefinition(numerical_columns=["age"], categorical_columns=[PWN_NAME])
        snap = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(frames[0], data_definition=dd),
            reference_data=Dataset.from_pandas(frames[1], data_definition=dd))
    raw = tmp_path / "raw.html"
    raw.write_text(snap.get_html_str(as_iframe=False), encoding="utf-8")
    page, _ = _open(browser, raw)
    try:
        page.wait_for_timeout(500)
        assert page.evaluate("window.__pwned") == 1
    finally:
        page.close()
