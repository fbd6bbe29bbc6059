"""The model card as an oversight officer reads it: who is harmed (with a direction and counts a
person can check), a chart of every group, plain words for every term, a page that fits 800 px
and prints, a PDF with the report id on every page, and Markdown that GitHub renders cleanly.

Browser checks run in headless Chromium (Debian's package, through Playwright); the Markdown
is rendered by cmarkgfm, GitHub's own cmark-gfm; the PDF's pages are read back with pypdf.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lea_ai_audit.cards import build_card, render_markdown, write_cards
from lea_ai_audit.cards.glossary import _TERMS, GLOSSARY, _key
from lea_ai_audit.cli import main
from lea_ai_audit.results import AuditReport

from .conftest import EVIL_COLUMN, EVIL_GROUPS


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """The demo as a user runs it: a model, its evidence files and the cards beside them."""
    out = tmp_path_factory.mktemp("officer") / "audit"
    rc = main(["demo", "--rows", "4000", "--out", str(out), "--no-track", "--quiet",
               "--ledger", str(out.parent / "ledger.jsonl")])
    assert rc == 1  # the demo's injected bias fails the audit
    return out


@pytest.fixture(scope="module")
def evil_cards_dir(evil_report_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evil-officer")
    write_cards(evil_report_dir / "report.json", out, report_dir=evil_report_dir)
    return out


def _card(d: Path) -> dict:
    return json.loads((d / "card.json").read_text(encoding="utf-8"))


def _open(browser, path: Path, width: int, media: str = "screen"):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.emulate_media(media=media)
    page.goto(path.as_uri(), wait_until="load")
    return page


# -- 1. harm has a direction ----------------------------------------------------------------
def test_harmed_groups_are_on_the_harmful_side_and_others_apart(demo_dir: Path) -> None:
    rep = AuditReport.load(demo_dir)
    card = _card(demo_dir)
    fpr = next(f for f in card["harm"] if f["requirement"] == "fpr-parity")
    assert fpr["status"] == "fail" and fpr["harmful_side"] == "higher"
    assert fpr["test"] == "two-sided" and "two-sided" in fpr["title"]
    table = {}
    for e in rep.result("fpr-parity").evidence:
        if e.kind == "table" and e.name.startswith("fpr:"):
            cols = e.data["columns"]
            ref = next(dict(zip(cols, r, strict=True)) for r in e.data["rows"]
                       if dict(zip(cols, r, strict=True))["verdict"] == "reference")
            for r in e.data["rows"]:
                row = dict(zip(cols, r, strict=True))
                table[(e.name[4:], row["group"])] = (row, ref)
    assert fpr["harmed"], "the demo's injected bias harms a group"
    for item in fpr["harmed"] + fpr["possibly_harmed"]:
        row, ref = table[(item["grouping"], item["group"])]
        # independent of the card: the counts of the report's own table
        assert row["numerator"] / row["denominator"] > ref["numerator"] / ref["denominator"]
        assert row["side"] == "harmful"
    for item in fpr["other_side"]:
        row, ref = table[(item["grouping"], item["group"])]
        assert row["numerator"] / row["denominator"] < ref["numerator"] / ref["denominator"]
        assert row["side"] == "favourable" and row["verdict"] == "violation"
    # the check's own message says the same, harmful side first
    msg = rep.result("fpr-parity").message
    assert "two-sided" in msg and msg.index("on the harmful side") < msg.index(
        "on the other side") if "on the other side" in msg else "on the harmful side" in msg


def test_card_html_lists_the_harmed_first_on_the_first_screen(browser, demo_dir: Path) -> None:
    page = _open(browser, demo_dir / "card.html", 1200)
    try:
        top = {s: page.eval_on_selector(s, "e => e.getBoundingClientRect().top")
               for s in ("#harmed", "#next", "#binds", "#oversight", "#compliance",
                         "#quantitative", "#glossary")}
        assert top["#harmed"] < top["#next"] < top["#binds"] < top["#oversight"] \
            < top["#compliance"] < top["#quantitative"] < top["#glossary"]
        first = page.inner_text("#harm-1")
        assert "Harmed:" in first and "times as often" in first
        binds = page.inner_text("#binds").lower()
        for what in ("audit report", "card", "model file", "audited data", "policy pack",
                     "waiver"):
            assert what in binds, what
        card = _card(demo_dir)
        assert card["report"]["sha256"] in page.inner_text("#binds")
        assert page.inner_text("h1") == "Demo risk tool (synthetic data)"
    finally:
        page.close()


# -- 4. a chart of every group of a failing requirement ---------------------------------------
def test_every_group_of_a_failing_requirement_is_in_its_chart(browser, demo_dir: Path) -> None:
    rep = AuditReport.load(demo_dir)
    card = _card(demo_dir)
    failing = [f for f in card["harm"] if f["status"] == "fail"]
    assert failing
    page = _open(browser, demo_dir / "card.html", 1200)
    try:
        charts = page.eval_on_selector_all(
            ".finding svg.chart", "els => els.map(s => ({groups: +s.dataset.groups, "
            "labels: Array.from(s.querySelectorAll('g.group')).map(g => g.dataset.group), "
            "verdicts: Array.from(s.querySelectorAll('g.group')).map(g => g.dataset.verdict)}))")
        expected = []
        for f in failing:
            for e in rep.result(f["requirement"]).evidence:
                if e.kind == "table" and ":" in e.name:
                    cols = e.data["columns"]
                    rows = [dict(zip(cols, r, strict=True)) for r in e.data["rows"]]
                    expected.append(([r["group"] for r in rows], [r["verdict"] for r in rows]))
        assert len(charts) == len(expected)
        for chart, (groups, verdicts) in zip(charts, expected, strict=True):
            assert chart["groups"] == len(groups)
            assert sorted(chart["labels"]) == sorted(groups)  # every group, none dropped
            assert sorted(chart["verdicts"]) == sorted(verdicts)
            assert chart["verdicts"][0] == "reference"
        # sorted by harm: within each chart the rates fall (harmful side: higher)
        for f in failing:
            for g in f["groupings"]:
                vals = [r["value"] for r in g["rows"][1:] if r["value"] is not None]
                assert vals == sorted(vals, reverse=True)
    finally:
        page.close()


def test_chart_escapes_hostile_labels_and_states_omissions() -> None:
    from lea_ai_audit.cards.harm import MAX_CHART_ROWS, chart_svg

    rows = [{"group": "ref", "n": 100, "value": 0.2, "low": 0.15, "high": 0.25,
             "verdict": "reference", "side": None}]
    rows += [{"group": f'<script>alert({i})</script>"', "n": 50, "value": 0.3, "low": 0.2,
              "high": 0.4, "verdict": "violation", "side": "harmful"}
             for i in range(MAX_CHART_ROWS + 5)]
    finding = {"metric_label": "false positive rate", "tolerance": {"max_difference": 0.1}}
    svg = chart_svg(finding, {"grouping": "g<b>", "reference_value": 0.2, "rows": rows})
    assert "<script" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
    assert f'data-groups="{len(rows)}"' in svg and f'data-shown="{MAX_CHART_ROWS}"' in svg
    assert f"{MAX_CHART_ROWS} of {len(rows)} groups drawn" in svg


# -- 2. reference groups of an intersection ---------------------------------------------------
def test_intersection_reference_follows_the_declared_references(demo_dir: Path) -> None:
    rep = AuditReport.load(demo_dir)
    refs = rep.subject["reference_groups"]
    inter = next(k for k in refs if " & " in k)
    parts = [refs[a]["group"] for a in ("ethnicity", "sex", "age_band")]
    assert refs["ethnicity"] == {"group": "majority", "chosen": "given"}
    assert refs[inter]["group"] == " & ".join(parts)
    assert "combination of each attribute's reference group" in refs[inter]["chosen"]
    assert "ethnicity=majority (declared)" in refs[inter]["chosen"]
    card = _card(demo_dir)
    shown = {r["attribute"]: r for r in card["factors"]["reference_groups"]}
    assert shown[inter]["group"] == " & ".join(parts)


# -- 3. headline sentences with counts ---------------------------------------------------------
def test_headline_sentences_carry_counts_that_match_the_report(demo_dir: Path) -> None:
    rep = AuditReport.load(demo_dir)
    card = _card(demo_dir)
    fpr = next(f for f in card["harm"] if f["requirement"] == "fpr-parity")
    item = fpr["harmed"][0]
    e = next(e for e in rep.result("fpr-parity").evidence if e.name == f"fpr:{item['grouping']}")
    cols = e.data["columns"]
    rows = {r["group"]: r for r in (dict(zip(cols, x, strict=True)) for x in e.data["rows"])}
    row, ref = rows[item["group"]], rows[item["reference_group"]]
    k, m, kr, mr = row["numerator"], row["denominator"], ref["numerator"], ref["denominator"]
    want = (f"{k:,} of {m:,} ", f"who did not reoffend were flagged ({100 * k / m:.1f}%), "
            f"against {kr:,} of {mr:,} ", f"({100 * kr / mr:.1f}%): "
            f"{(k / m) / (kr / mr):.1f} times as often")
    for part in want:
        assert part in item["sentence"], (part, item["sentence"])


# -- 5. every term explained where it first appears, and in the glossary --------------------
_TEXT_NODES = """() => {
  const out = [];
  const skip = el => el.closest('svg, nav, #glossary, title, style, head');
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, p = n.parentElement;
    if (!p || skip(p) || !n.textContent.trim()) continue;
    const abbr = p.closest('abbr');
    out.push([n.textContent, abbr ? (abbr.dataset.term || '*') : null]);
  }
  return out;
}"""


@pytest.mark.parametrize("which", ["demo", "evil"])
def test_terms_are_explained_where_they_first_appear(browser, which: str, demo_dir: Path,
                                                     evil_cards_dir: Path) -> None:
    d = demo_dir if which == "demo" else evil_cards_dir
    card = _card(d)
    listed = {t["key"] for t in card["glossary"]}
    page = _open(browser, d / "card.html", 1200)
    try:
        nodes = page.evaluate(_TEXT_NODES)
        ids = set(page.eval_on_selector_all("#glossary dt", "els => els.map(e => e.id)"))
        links = page.eval_on_selector_all("a.term", "els => els.map(e => e.hash)")
    finally:
        page.close()
    first: dict[str, str | None] = {}
    for text, term in nodes:
        for m in _TERMS.finditer(text):
            first.setdefault(_key(m), term)
    assert len(first) >= 12, sorted(first)
    for key, term in first.items():
        assert term == key, f"the first {GLOSSARY[key][0]!r} is not explained where it stands"
        assert key in listed and f"term-{key}" in ids, key
        assert f"#term-{key}" in links
    # the list of jargon, wherever the card uses it
    for word in ("FPR", "PPV", "SHAP", "AUC", "PSI", "Holm", "interval"):
        if any(re.search(rf"\b{word}\b", t) for t, _ in nodes):
            assert any(GLOSSARY[k][0].lower().startswith(word.lower()) or
                       word.lower() in GLOSSARY[k][0].lower() for k in listed), word


# -- 6. 800-1600 px and print ------------------------------------------------------------------
@pytest.mark.parametrize("width", [800, 1600])
def test_no_horizontal_overflow(browser, width: int, demo_dir: Path,
                                evil_cards_dir: Path) -> None:
    for d in (demo_dir, evil_cards_dir):
        page = _open(browser, d / "card.html", width)
        try:
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            # numbers are not broken mid-token in the compliance figures
            spans = page.eval_on_selector_all(
                ".figs span", "els => els.map(e => e.getClientRects().length)")
            assert spans and max(spans) == 1
            if width == 800:
                page.screenshot(path=str(d.parent / f"card-{d.name}-800.png"), full_page=False)
        finally:
            page.close()


def test_print_stylesheet_reads_in_black_and_white(browser, demo_dir: Path) -> None:
    page = _open(browser, demo_dir / "card.html", 794, media="print")
    try:
        style = page.eval_on_selector("#status", "e => { const s = getComputedStyle(e); "
                                      "return [s.color, s.borderTopWidth, s.borderTopStyle,"
                                      " s.backgroundColor]; }")
        assert style[0] == "rgb(0, 0, 0)" and float(style[1][:-2]) >= 1 and style[2] == "solid"
        assert style[3] in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
        assert page.eval_on_selector("thead", "e => getComputedStyle(e).display") == \
            "table-header-group"
        assert page.eval_on_selector("nav", "e => getComputedStyle(e).display") == "none"
        assert page.evaluate("document.documentElement.scrollWidth") <= 794
    finally:
        page.close()


def test_pdf_has_the_report_id_and_page_numbers_on_every_page(demo_dir: Path,
                                                               tmp_path: Path) -> None:
    import pypdf

    out = tmp_path / "card.pdf"
    rc = main(["card", str(demo_dir), "--format", "pdf", "--out", str(out)])
    assert rc == 0 and out.read_bytes().startswith(b"%PDF")
    rid = AuditReport.load(demo_dir).report_id
    pages = pypdf.PdfReader(str(out)).pages
    n = len(pages)
    assert 3 <= n <= 40, n
    for i, p in enumerate(pages, 1):
        raw = p.extract_text()
        # ids print without ligatures ("ff" stays two letters a reader can copy)
        assert "\ufb00" not in raw, (i, raw[-300:])
        # the footer of every page: the report id and "page i of n" (spacing as extracted)
        assert rid in "".join(raw.split()), (i, raw[-300:])
        assert re.search(rf"page\s*{i}\s*of\s*{n}\b", raw), (i, raw[-300:])
    first = " ".join(pages[0].extract_text().split())
    assert "Demo risk tool" in first and "FAIL" in first and "Harmed:" in first


def test_pdf_from_the_python_api_when_asked(tmp_path: Path) -> None:
    from lea_ai_audit import audit
    from lea_ai_audit.datasets import make_demo

    df = make_demo(2000, bias=0.6, seed=3).test
    audit(df, target="reoffended", sensitive=["ethnicity"], prediction="flagged",
          checks=["fairness"], track=False, out=tmp_path / "a",
          card_formats=["html", "json", "pdf"])
    assert (tmp_path / "a" / "card.pdf").read_bytes().startswith(b"%PDF")
    assert not (tmp_path / "a" / "card.md").exists()


# -- 7. title, evidence links, merged caveats, ethics ------------------------------------------
def test_evidence_links_resolve_and_anchors_exist(browser, demo_dir: Path) -> None:
    page = _open(browser, demo_dir / "card.html", 1200)
    try:
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute("
                                                     "'href'))")
        ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
    finally:
        page.close()
    files = [h for h in hrefs if not h.startswith("#")]
    anchors = [h[1:] for h in hrefs if h.startswith("#")]
    assert files and anchors
    for h in files:
        assert (demo_dir / h).is_file(), h
    missing = [a for a in anchors if a not in ids]
    assert not missing, missing
    card = _card(demo_dir)
    linked = [x for r in card["compliance"] for x in r["links"] if x["href"]]
    assert any(x["kind"] == "file" for x in linked) and any(x["kind"] == "table"
                                                            for x in linked)


def test_title_caveats_and_ethics(demo_dir: Path, report_dir: Path) -> None:
    card = _card(demo_dir)
    assert card["model_details"]["name"] == "Demo risk tool (synthetic data)"
    caveats = card["caveats_and_recommendations"]
    assert len(caveats) == len(set(caveats))
    ethics = " ".join(card["ethical_considerations"])
    assert "proxy" in ethics and "district" in ethics  # the demo's proxy of ethnicity
    unnamed = build_card(report_dir / "report.json", figures=False).data
    assert unnamed["model_details"]["name"].startswith("Unnamed tool")
    assert "name:" in unnamed["model_details"]["name"]  # says how to set it
    assert unnamed["model_details"]["named"] is False


def test_skipped_requirements_with_one_reason_are_one_caveat(tmp_path: Path) -> None:
    from lea_ai_audit import audit
    from lea_ai_audit.datasets import make_demo

    df = make_demo(2000, bias=0.0, seed=3).test
    rep = audit(df, target="reoffended", sensitive=["ethnicity"], prediction="flagged",
                score="risk", track=False)
    caveats = build_card(rep, figures=False).data["caveats_and_recommendations"]
    skipped = [c for c in caveats if c.startswith("3 requirements not checked")]
    assert len(skipped) == 1 and "no model to explain" in skipped[0]
    for title in ("Which inputs drive the score", "Each decision can be explained",
                  "Inputs weigh alike"):
        assert sum(title in c for c in caveats) == 1, title


# -- 8. Markdown that renders cleanly on GitHub ---------------------------------------------
class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_starttag(self, tag: str, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def _gfm(md: str) -> _Text:
    import cmarkgfm
    from cmarkgfm.cmark import Options

    html = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
    p = _Text()
    p.feed(html)
    return p


def test_markdown_renders_cleanly_in_github_flavour(demo_dir: Path,
                                                    evil_cards_dir: Path) -> None:
    md = (demo_dir / "card.md").read_text(encoding="utf-8")
    p = _gfm(md)
    text = "".join(p.text)
    assert "&amp;" not in text and "\\_" not in text and "\\&" not in text
    assert "age_band" in md and "ethnicity & sex & age_band" in md  # no escaping noise
    names = [t for t, _ in p.tags]
    assert names.count("table") >= 5 and "h3" in names
    assert "Who is harmed, and by how much" in text and "times as often" in text
    # hostile labels and metadata: shown as text, never as markup
    evil = _gfm((evil_cards_dir / "card.md").read_text(encoding="utf-8"))
    etext = "".join(evil.text)
    for value in [EVIL_COLUMN, *EVIL_GROUPS.values()]:
        assert value.replace("\n", " ") in etext, value
    bad = [(t, a) for t, a in evil.tags if t in ("script", "img", "iframe", "b")
           or any(k.startswith("on") for k in a) or str(a.get("href", "")).startswith(
               "javascript")]
    assert not bad, bad


def test_markdown_rows_stay_in_their_table(evil_report_dir: Path) -> None:
    card = build_card(evil_report_dir / "report.json", figures=False)
    p = _gfm(render_markdown(card))
    # the table of the hostile attribute keeps one row per group: no | broke a row apart
    cells = sum(1 for t, _ in p.tags if t == "tr")
    assert cells > 20


def test_pdf_without_a_browser_is_a_clear_error(demo_dir: Path, tmp_path: Path, capsys,
                                                monkeypatch) -> None:
    monkeypatch.setenv("LEA_AUDIT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    out = tmp_path / "card.pdf"
    capsys.readouterr()
    rc = main(["card", str(demo_dir), "--format", "pdf", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and " — " in err[0]
    assert "Chromium" in err[0] and not out.exists()
