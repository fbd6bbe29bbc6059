"""The model card as a PDF: the HTML card printed by headless Chromium (through Playwright),
A4, with the card's print stylesheet, the report id and "page N of M" on every page.

Needs Playwright (``pip install 'lea-ai-audit[pdf]'``) and a Chromium: the system's
(``apt-get install chromium``), ``LEA_AUDIT_CHROMIUM=/path/to/chrome``, or Playwright's own
(``python -m playwright install chromium``). Without them: a one-line error, nothing written.
"""

from __future__ import annotations

import html as _html
import os
import shutil
from pathlib import Path

from ..errors import InputError

_FIX = ("install Chromium (apt-get install chromium, or python -m playwright install "
        "chromium) or set LEA_AUDIT_CHROMIUM=/path/to/chromium")
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: how long Chromium may take to print one card
TIMEOUT_S = 120


def chromium_path() -> str | None:
    """The Chromium the PDF is printed with: ``LEA_AUDIT_CHROMIUM``, else one on PATH, else
    None (Playwright's own browser, if installed)."""
    env = os.environ.get("LEA_AUDIT_CHROMIUM")
    if env:
        if not Path(env).is_file():
            raise InputError(f"LEA_AUDIT_CHROMIUM={env!r} is not a file", _FIX)
        return env
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _footer(report_id: str) -> str:
    rid = _html.escape(report_id, quote=True)
    return ('<div style="font:8px sans-serif;font-variant-ligatures:none;width:100%;'
            'margin:0 12mm;display:flex;justify-content:space-between;color:#333">'
            '<span>Model card · audit report '
            f'{rid}</span><span>page <span class="pageNumber"></span> of '
            '<span class="totalPages"></span></span></div>')


def _print(page_html: str, report_id: str) -> bytes:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise InputError("a PDF card needs Playwright, which is not installed",
                         "pip install 'lea-ai-audit[pdf]' (and Chromium: apt-get install "
                         "chromium)") from None
    exe = chromium_path()
    args = ["--headless", "--disable-gpu", "--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=args,
                                        timeout=TIMEOUT_S * 1000)
            try:
                page = browser.new_page()
                # the card fetches nothing (its CSP forbids it); a request would hang nothing
                page.route("**/*", lambda route: route.abort()
                           if not route.request.url.startswith("data:") else route.continue_())
                page.set_content(page_html, wait_until="load", timeout=TIMEOUT_S * 1000)
                page.emulate_media(media="print")
                return page.pdf(format="A4", print_background=True,
                                display_header_footer=True,
                                header_template="<div></div>",
                                footer_template=_footer(report_id),
                                margin={"top": "14mm", "bottom": "16mm", "left": "12mm",
                                        "right": "12mm"})
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"Chromium could not print the card: {first[:200]}", _FIX) from None


def render_pdf(page_html: str, report_id: str) -> bytes:
    """The PDF of an HTML card (bytes). Runs in a thread of its own, so it works inside a
    running asyncio loop (a notebook) too."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print, page_html, report_id).result()


def write_pdf(page_html: str, path: str | os.PathLike[str], report_id: str) -> Path:
    """Print the card to ``path`` (written atomically: a failure leaves nothing behind)."""
    from .._io import atomic_write_bytes

    return atomic_write_bytes(path, render_pdf(page_html, report_id))
