"""Model cards: a rendering of an audit report plus the owner's metadata.

A card has the sections of Mitchell et al., "Model Cards for Model Reporting" (model details,
intended use, factors, metrics, evaluation and training data, quantitative analyses unitary
and intersectional, ethical considerations, caveats and recommendations), the items of AI Act
Annex IV an audit can fill, a compliance table (requirement, clauses, status, figures,
evidence) and the human oversight (sign-offs, attestations). Plain language first, figures
after. Formats: self-contained HTML, Markdown, and JSON valid against
``model_cards/model-card.schema.json``. Re-rendering needs only the report's directory.

Examples
--------
>>> from lea_ai_audit.cards import write_cards                  # doctest: +SKIP
>>> write_cards("audit/report.json", "audit/", metadata="card.yaml")
{'html': PosixPath('audit/card.html'), 'md': ..., 'json': ...}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .builder import METADATA_KEYS, ModelCard, build_card, load_metadata
from .render import card_schema, render_html, render_json, render_markdown, validate_card

__all__ = ["FORMATS", "METADATA_KEYS", "ModelCard", "build_card", "card_schema",
           "load_metadata", "render", "render_html", "render_json", "render_markdown",
           "validate_card", "write_cards"]

#: format -> (renderer, file suffix)
FORMATS = {"html": (render_html, "html"), "md": (render_markdown, "md"),
           "json": (render_json, "json")}


def render(card: ModelCard, fmt: str) -> str:
    """The card in ``fmt`` (``html``, ``md`` or ``json``)."""
    from ..errors import InputError

    if fmt not in FORMATS:
        raise InputError(f"unknown card format {fmt!r}", "use html, md or json")
    return FORMATS[fmt][0](card)


def write_cards(report: Any, out: str | os.PathLike[str], *,
                report_dir: str | os.PathLike[str] | None = None,
                metadata: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                previous: Any = None, formats: Sequence[str] = ("html", "md", "json"),
                name: str = "card", trust_store: Any = None) -> dict[str, Path]:
    """Build the card once and write ``<out>/card.<html|md|json>`` atomically.

    Parameters
    ----------
    report : AuditReport or path
        The report, or its report.json / directory.
    out : path
        Output directory.
    report_dir, metadata, previous, trust_store
        See :func:`build_card`.
    formats : list of str
        Any of ``html``, ``md``, ``json`` and ``pdf`` (printed from the HTML card by headless
        Chromium: :mod:`lea_ai_audit.cards.pdf`).

    Returns
    -------
    dict
        format -> path written.

    Examples
    --------
    >>> paths = write_cards(report, "audit", report_dir="audit")      # doctest: +SKIP
    >>> sorted(paths)
    ['html', 'json', 'md']
    """
    from .._io import atomic_write_text

    for f in formats:
        if f not in FORMATS and f != "pdf":
            from ..errors import InputError
            raise InputError(f"unknown card format {f!r}", "use html, md, json or pdf")
    card = build_card(report, report_dir=report_dir, metadata=metadata, previous=previous,
                      figures="html" in formats or "pdf" in formats, trust_store=trust_store)
    out_dir = Path(out)
    texts = {f: FORMATS[f][0](card) for f in formats if f in FORMATS}
    pdf = None
    if "pdf" in formats:  # printed first: a missing browser stops before anything is written
        from .pdf import render_pdf

        pdf = render_pdf(texts.get("html") or render_html(card),
                         str(card.data["report"]["report_id"]))
    written = {}
    for f, text in texts.items():
        written[f] = atomic_write_text(out_dir / f"{name}.{FORMATS[f][1]}", text)
    if pdf is not None:
        from .._io import atomic_write_bytes

        written["pdf"] = atomic_write_bytes(out_dir / f"{name}.pdf", pdf)
    return written
