"""Model cards: sections, escaping of everything data-borne, schema, sign-offs, comparison."""

from __future__ import annotations

import base64
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from lea_ai_audit._io import sha256_bytes
from lea_ai_audit.cards import (
    build_card,
    load_metadata,
    render_html,
    render_markdown,
    validate_card,
    write_cards,
)
from lea_ai_audit.errors import InputError, ReportError
from lea_ai_audit.results import AuditReport

from .conftest import EVIL_COLUMN, EVIL_GROUPS, EVIL_META

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "model_cards" / "model-card.schema.json").read_text())


class _Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(text)
    return p.tags


@pytest.fixture(scope="module")
def evil_cards(evil_report_dir: Path, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("evil-cards")
    paths = write_cards(evil_report_dir / "report.json", out, report_dir=evil_report_dir)
    return {f: p.read_text(encoding="utf-8") for f, p in paths.items()}


def test_html_escapes_markup_from_data_and_metadata(evil_cards: dict[str, str]) -> None:
    page = evil_cards["html"]
    tags = _tags(page)
    names = {t for t, _ in tags}
    assert not names & {"script", "iframe", "object", "embed", "link", "base", "form"}, names
    for raw in ("<script>", "<img src=x", "<b onclick", "<iframe", "<a href='https",
                '"B" </td></table>'):
        assert raw not in page, raw
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for a in ("src", "href"):
            if attrs.get(a) is not None:
                # images inline; links to an anchor of the card or to an evidence file beside it
                ok = attrs[a].startswith(("data:image/", "#")) or (
                    a == "href" and attrs[a].startswith("evidence/") and ":" not in attrs[a]
                    and ".." not in attrs[a].split("/"))
                assert ok, (tag, attrs)
    # the values are all there, as text a reader sees (the parser unescapes entities)
    p = _Tags()
    p.feed(page)
    text = "".join(p.text)
    for value in [EVIL_COLUMN, *EVIL_GROUPS.values(), EVIL_META["owner"],
                  EVIL_META["intended_use"][0]]:
        assert value in text, value
    # only the images the card itself embeds: its plots and the evidence file
    assert sum(1 for t, _ in tags if t == "img") >= 3


def test_markdown_escapes_markup(evil_cards: dict[str, str]) -> None:
    md = evil_cards["md"]
    for raw in ("<script", "<img", "<iframe", "<b ", "<a "):
        assert raw not in md, raw
    assert "\\[link\\](javascript:" in md  # brackets escaped: no link can form
    assert not re.search(r"(?<!\\)\]\(javascript:", md)
    # a table cell cannot be broken by a '|' or a newline in a value
    row = next(line for line in md.splitlines() if "table \\| breaker" in line)
    assert "\n" not in row and "# heading" in row
    tables = [line for line in md.splitlines() if line.startswith("| ")]
    widths = {line.count(" | ") - line.count("\\|") for line in tables}
    assert tables and len(widths) > 1  # (sanity: several tables of various widths)


def test_json_card_is_valid_against_the_shipped_schema(evil_cards: dict[str, str]) -> None:
    card = json.loads(evil_cards["json"])
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(card, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert card["intended_use"]["primary_uses"] == EVIL_META["intended_use"]
    assert card["factors"]["sensitive_attributes"] == [EVIL_COLUMN, "sex"]
    broken = copy.deepcopy(card)
    del broken["compliance"][0]["status"]
    with pytest.raises(ReportError, match="compliance/0"):
        validate_card(broken)
    broken = copy.deepcopy(card)
    broken["summary"]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_card_sections_and_figures(report_dir: Path) -> None:
    rep = AuditReport.load(report_dir)
    card = build_card(report_dir, metadata={"owner": "Unit 7", "training_data": "2015-2020"})
    page = render_html(card)
    headings = ["Summary for oversight officers", "Human oversight", "Compliance with the policy",
                "Model details", "Intended use", "Factors", "Metrics", "Evaluation data",
                "Training data", "Quantitative analyses", "Unitary", "Intersectional",
                "Ethical considerations", "Caveats and recommendations", "AI Act Annex IV",
                "Evidence and provenance"]
    found = [(m.start(), m.group(1)) for m in re.finditer(r"<h[23][^>]*>(.*?)</h[23]>", page)]
    pos = [next(i for i, text in found if text.startswith(h)) for h in headings]
    assert pos == sorted(pos), "sections in the documented order"
    assert pos[0] < pos[2] < page.index("<img"), "plain language first, figures after"
    md = render_markdown(card)
    for h in headings:
        assert h in md
    d = card.data
    assert d["summary"]["status"] == "fail" and "does NOT meet" in d["summary"]["verdict"]
    # the compliance table: one row per requirement with its clauses and status
    assert [r["requirement"] for r in d["compliance"]] == [c.requirement_id for c in rep.checks]
    fpr = next(r for r in d["compliance"] if r["requirement"] == "fpr-parity")
    assert fpr["status"] == "fail" and "Council 13083/1/20 §26" in fpr["clauses"]
    # the unitary table holds the report's own numbers, with their intervals
    eth = next(t for t in d["quantitative_analyses"]["unitary"] if t["attribute"] == "ethnicity")
    row = next(r for r in eth["rows"] if r[0] == "minority_a")
    src = next(r for r in rep.table("group_metrics:ethnicity")
               if r["group"] == "minority_a" and r["metric"] == "fpr")
    cell = row[eth["columns"].index("fpr")]
    assert cell == f"{src['value']:.3f} [{src['ci_low']:.3f}, {src['ci_high']:.3f}]"
    assert "disparity" in row[-1] and "fpr" in row[-1]
    assert d["quantitative_analyses"]["intersectional"][0]["attribute"] == "ethnicity & sex"
    # the evidence plot is inlined byte for byte; the card's own plots are PNGs too
    plot = next(e for e in rep.files() if e.name == "importance <plot>")
    ev_fig = next(f for f in d["figures"]
                  if f["source"] == "evidence" and f["path"] == plot.data["path"])
    assert ev_fig["path"] == plot.data["path"]
    imgs = [t[1]["src"] for t in _tags(page) if t[0] == "img"]
    raws = [base64.b64decode(s.split(",", 1)[1]) for s in imgs]
    assert plot.read(report_dir) in raws
    assert all(r.startswith(b"\x89PNG") for r in raws) and len(raws) == len(d["figures"])
    assert sha256_bytes(plot.read(report_dir)) == plot.data["sha256"]
    annex = {a["item"]: a for a in d["annex_iv"]}
    assert annex["2(g)"]["filled"] and rep.report_id in annex["2(g)"]["content"]
    assert annex["2(d)"]["filled"] and "2015-2020" in annex["2(d)"]["content"]
    assert not annex["6"]["filled"]


def test_changed_evidence_file_is_reported_not_shown(report_dir: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "r"
    shutil.copytree(report_dir, d)
    plot = next(e for e in AuditReport.load(d).files() if e.name == "importance <plot>")
    (d / plot.data["path"]).write_bytes(b"\x89PNG tampered")
    card = build_card(d)
    shown = [f["path"] for f in card.data["figures"] if f["source"] == "evidence"]
    assert plot.data["path"] not in shown  # the tampered file is not shown; the others are
    assert any("changed after the audit" in c for c in card.data["caveats_and_recommendations"])


def test_human_oversight_from_signoffs(report_dir: Path, tmp_path: Path) -> None:
    """Only sign-offs verified against the trust store count; hand-written, unknown-key and
    expired ones are listed as not counted, with the reason; data from records is escaped."""
    import shutil
    from datetime import UTC, datetime, timedelta

    from lea_ai_audit.signoff import generate_keys, sign_report

    d = tmp_path / "r"
    shutil.copytree(report_dir, d)
    none = build_card(d, figures=False).data["human_oversight"]
    assert none["signoffs"] == [] and none["summary"].startswith("No sign-off yet")
    assert "No sign-off yet" in render_html(build_card(d, figures=False))
    rep = AuditReport.load(d)
    store = tmp_path / "trust.yaml"
    keys = {who: generate_keys(who, role=role, out=tmp_path / "k", trust_store=store
                               ).private_key
            for who, role in (("Ana <Officer>", "dpo"), ("Ben", "head"), ("Cem", "legal"))}
    keys["Eve"] = generate_keys("Eve", role="dpo", out=tmp_path / "k").private_key  # no store
    past = datetime.now(UTC) - timedelta(days=10)
    from lea_ai_audit.signoff import failed_requirements

    failed = failed_requirements(rep)  # FAIL, or a blocking ERROR
    waive = {"waive": failed, "justification": "pilot only"} if failed else {}
    sign_report(d, key=keys["Ana <Officer>"], reviewer="Ana <Officer>", decision="approve",
                comment="checked <b>", ledger=False, track=False, **waive)
    sign_report(d, key=keys["Ben"], reviewer="Ben", decision="approve", comment="ok",
                ledger=False, track=False, now=past, expires=3, **waive)
    sign_report(d, key=keys["Cem"], reviewer="Cem", decision="reject", comment="no DPIA",
                ledger=False, track=False)
    sign_report(d, key=keys["Eve"], reviewer="Eve", decision="approve", comment="ok",
                ledger=False, track=False, **waive)
    (d / "signoffs" / "zz-handwritten.json").write_text(json.dumps(
        {"reviewer": "Dan", "role": "dpo", "decision": "approve", "comment": "",
         "signed_at": "2026-11-20T09:00:00+00:00", "expires_at": None, "waiver": None,
         "report_id": rep.report_id, "report_digest": rep.digest()}))
    # without a trust store, nothing is counted
    ov = build_card(d, figures=False).data["human_oversight"]
    assert ov["approvals"] == 0 and {s["state"] for s in ov["signoffs"]} == {"not verified"}
    card = build_card(d, figures=False, trust_store=store)
    ov = card.data["human_oversight"]
    states = {s["reviewer"]: s["state"] for s in ov["signoffs"]}
    assert states == {"Ana <Officer>": "valid", "Ben": "expired", "Cem": "valid",
                      "Eve": "invalid", "Dan": "invalid"}
    why = {s["reviewer"]: s["reason"] for s in ov["signoffs"]}
    assert "not in the trust store" in why["Eve"] and "not a signed record" in why["Dan"]
    fps = {s["reviewer"]: s["fingerprint"] for s in ov["signoffs"]}
    assert fps["Ana <Officer>"].startswith("sha256:") and fps["Eve"] == fps["Dan"] == ""
    assert ov["approvals"] == 1
    assert "1 approval(s), 1 rejection(s), 3 not counted" in ov["summary"]
    page = render_html(card)
    assert "Ana &lt;Officer&gt;" in page and "checked &lt;b&gt;" in page
    assert "no: &#39;Ben&#39;: the sign-off expired" in page or "no: 'Ben': the sign-off " \
        "expired" in page
    assert f"yes (key {fps['Ana <Officer>'][:19]}" in page
    if failed:
        assert f"waives {', '.join(failed)}: pilot only" in page
    assert "Ana &lt;Officer>" in render_markdown(card)  # no tag can open; no other noise
    jsonschema.validate(card.data, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_compare_with_the_previous_version(report_dir: Path, fair_report_dir: Path) -> None:
    old, new = AuditReport.load(fair_report_dir), AuditReport.load(report_dir)
    card = build_card(report_dir, previous=fair_report_dir / "report.json", figures=False)
    ch = card.data["changes"]
    assert ch["previous_report_id"] == old.report_id
    assert ch["summary"][0] == f"The overall result changed from {old.status.value.upper()} " \
                               f"to {new.status.value.upper()}."
    assert any("audited data changed" in s for s in ch["summary"])
    req = {r["requirement"]: (r["before"], r["after"]) for r in ch["requirements"]}
    assert req["fpr-parity"] == (old.result("fpr-parity").status.value, "fail")
    assert req["plot-evidence"] == ("absent", "pass")
    # figure deltas: the largest change first, each equal to new - old from the reports
    m = ch["metrics"][0]
    rid, key = m["metric"].split("/", 1)
    assert m["change"] == pytest.approx(new.result(rid).metrics[key]
                                        - old.result(rid).metrics[key], abs=1e-6)
    assert all(abs(a["change"]) >= abs(b["change"])
               for a, b in zip(ch["metrics"], ch["metrics"][1:], strict=False))
    assert "What changed since the previous version" in render_html(card)
    assert card.data["annex_iv"][-1]["filled"]


def test_metadata_file_checked(tmp_path: Path) -> None:
    good = tmp_path / "m.yaml"
    good.write_text("owner: Unit 7\nusers: triage officers\nout_of_scope_uses:\n  - sentencing\n")
    assert load_metadata(good) == {"owner": "Unit 7", "users": ["triage officers"],
                                   "out_of_scope_uses": ["sentencing"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("ownr: Unit 7\n")
    with pytest.raises(InputError, match=r"unknown key\(s\) \['ownr'\]"):
        load_metadata(bad)
    bad.write_text("owner: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_metadata(bad)
    bad.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError):
        load_metadata(bad)
    example = ROOT / "model_cards" / "example-metadata.yaml"
    assert load_metadata(example)["owner"]


def test_card_shows_each_explained_decision_with_its_reasons(tmp_path: Path) -> None:
    """§26: the per-decision explanations of the audit are in every format of the card."""
    from lea_ai_audit import audit
    from lea_ai_audit.datasets import FEATURES, make_demo

    demo = make_demo(4000, bias=0.6, seed=4)
    rep = audit(demo.test, target="reoffended", sensitive=["ethnicity", "sex"],
                model=demo.model, features=FEATURES, reference=demo.train,
                checks=["explain.local"], track=False, out=tmp_path)
    (res,) = rep.checks
    detail = res.evidence_named("local_explanations_detail").data
    assert len(detail) == 10
    card = json.loads((tmp_path / "card.json").read_text())
    jsonschema.validate(card, SCHEMA, cls=jsonschema.Draft202012Validator)
    table = card["quantitative_analyses"]["decisions"]
    assert len(table["rows"]) == len(detail)
    for row, d in zip(table["rows"], detail, strict=True):
        assert row[0] == str(d["row"]) and row[1] == d["decision"]
        assert row[4] == "; ".join(r["text"] for r in d["reasons"])
    md = (tmp_path / "card.md").read_text()
    html = (tmp_path / "card.html").read_text()
    first = detail[0]["reasons"][0]["text"]
    assert "### Decisions explained" in md and first in md  # snake_case stays plain
    assert "<h3>Decisions explained</h3>" in html
    assert first.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html
    # a report without explanations has none (and stays valid)
    plain = audit(demo.test, target="reoffended", sensitive=["sex"], prediction="flagged",
                  checks=["fairness.group_metrics"], track=False, out=tmp_path / "plain")
    assert plain.checks and json.loads((tmp_path / "plain" / "card.json").read_text())[
        "quantitative_analyses"]["decisions"] is None


def test_card_shows_the_interval_each_disparity_verdict_read(report_dir: Path) -> None:
    """Every disparity requirement's groups appear with their verdict, the decision interval
    at its level (what the verdict read) and the plain interval beside it, labelled; the
    figures are the report's own (hand-checked against statsmodels in test_fairness)."""
    rep = AuditReport.load(report_dir)
    card = build_card(report_dir)
    shown = {t["attribute"]: t for t in card.data["quantitative_analyses"]["disparity"]}
    disparity = [c for c in rep.checks if c.check_id == "fairness.disparity"]
    assert disparity and len(shown) == sum(len(c.evidence) for c in disparity)
    seen_levels = set()
    for c in disparity:
        for e in c.evidence:
            t = shown[e.name]
            assert f"plain {c.params['confidence']:.0%} interval" in " ".join(t["columns"])
            cols = e.data["columns"]
            for raw, row in zip(e.data["rows"], t["rows"], strict=True):
                r = dict(zip(cols, raw, strict=True))
                cells = dict(zip(t["columns"], row, strict=True))
                assert cells["group"] == r["group"] and cells["verdict"].startswith(r["verdict"])
                if r["verdict"] in ("reference", "insufficient"):
                    assert cells["decision level"] == "—"
                    continue
                assert cells["decision level"] == f"{r['decision_confidence']:.2%}"
                seen_levels.add(cells["decision level"])
                if c.params.get("max_difference") is not None:
                    assert cells["difference: decision interval"] == (
                        f"[{r['decision_diff_low']:.3f}, {r['decision_diff_high']:.3f}]")
                    assert cells["difference [plain 95% interval]"] == (
                        f"{r['diff']:.3f} [{r['diff_ci_low']:.3f}, {r['diff_ci_high']:.3f}]")
                assert cells["smallest detectable difference"] == f"{r['detectable_diff']:.3f}"
    assert len(seen_levels) > 1  # Holm's levels differ between groups, and the card says so
    page, md = render_html(card), render_markdown(card)
    assert "<h3>Disparity decisions</h3>" in page and "### Disparity decisions" in md
