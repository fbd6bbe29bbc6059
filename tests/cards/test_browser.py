"""The HTML card in a real browser: headless Chromium (Debian's package) through Playwright.

It must render, show its plots (every image decoded: naturalWidth > 0), fetch nothing but
itself, run no script (markup in the data must not open a dialog) and give a screenshot.
CI installs the browser with ``apt-get install -y chromium`` (see .ci/run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lea_ai_audit.cards import write_cards


def _open(browser, page_file: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"requests": [], "dialogs": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(page_file.as_uri(), wait_until="load")
    return page, seen


@pytest.mark.parametrize("which", ["report_dir", "evil_report_dir"])
def test_card_renders_in_chromium_with_its_plots(browser, which: str, request,
                                                 tmp_path: Path) -> None:
    src = request.getfixturevalue(which)
    paths = write_cards(src / "report.json", tmp_path, report_dir=src, formats=["html", "json"])
    import json

    figures = json.loads(paths["json"].read_text())["figures"]
    page, seen = _open(browser, paths["html"])
    try:
        assert "Model card" in page.title()
        assert page.inner_text("#status") == "FAIL"
        assert page.is_visible("text=Summary for oversight officers")
        imgs = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
        assert len(imgs) == len(figures) >= 3
        assert all(done and w > 0 and h > 0 for done, w, h in imgs), imgs
        # the plots are laid out on the page, below the plain-language summary
        boxes = page.eval_on_selector_all(
            "img", "els => els.map(e => e.getBoundingClientRect().width)")
        assert min(boxes) > 100
        top_summary = page.eval_on_selector("#summary", "e => e.getBoundingClientRect().top")
        top_img = page.eval_on_selector("img", "e => e.getBoundingClientRect().top")
        assert top_summary < top_img
        # nothing fetched but the page itself; no script ran
        assert seen["requests"] == [paths["html"].as_uri()], seen["requests"]
        assert seen["dialogs"] == [] and seen["errors"] == []
        assert page.evaluate("document.scripts.length") == 0
        shot = tmp_path / "card.png"
        page.screenshot(path=str(shot), full_page=True)
        raw = shot.read_bytes()
        assert raw.startswith(b"\x89PNG") and len(raw) > 20_000
    finally:
        page.close()
