"""Render a built card as self-contained HTML, Markdown or JSON (validated against the schema)."""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from .._resources import shipped_dir
from ..errors import ReportError
from .builder import ModelCard, _fmt

SCHEMA_FILE = "model-card.schema.json"
#: characters that are Markdown markup wherever they stand (GitHub/GitLab flavour)
_MD_ALWAYS = re.compile(r"([\\`*|~\[\]])")
#: an underscore is emphasis only at a word's edge (GFM leaves snake_case alone)
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: text that could open an HTML tag, comment or entity
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_MD_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: what opens a block at the start of a line: a quote, heading, list item or rule
_MD_LINE_START = re.compile(r"^(\s*)(>|#{1,6}(?=\s|$)|[+=-](?=[\s=-]|$))")
_MD_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")


def templates_dir() -> Path:
    """``model_cards/templates`` (shipped inside the wheel)."""
    return shipped_dir("model_cards") / "templates"


@cache
def card_schema() -> dict[str, Any]:
    """The JSON Schema of a card (``model_cards/model-card.schema.json``)."""
    return json.loads((shipped_dir("model_cards") / SCHEMA_FILE).read_text(encoding="utf-8"))


def validate_card(data: dict[str, Any]) -> None:
    """Raise :class:`ReportError` naming the first problem if ``data`` breaks the schema.

    Examples
    --------
    >>> validate_card(card.data)                        # doctest: +SKIP
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(card_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ReportError(f"the model card does not match its schema at {where}: "
                          f"{e.message[:300]}",
                          "this is a bug in lea-ai-audit's card builder: report it")


def md_escape(value: Any) -> str:
    """Text safe inside Markdown and its tables, escaped only where it would be markup (so the
    plain text stays plain: no ``&amp;`` or ``\\_`` noise in "A & B" or snake_case): a ``<``
    that could open a tag and an ``&`` that could form an entity become entities; backslashes,
    backticks, ``* | ~ [ ]`` and underscores at a word's edge are backslash-escaped; a ``>``, a
    ``#``, ``+``, ``-``, ``=`` or ``1.`` marker at the start of the text, where it would open a
    quote, heading, list or rule, too (``-0.12`` stays as it is); line breaks become spaces."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    text = _MD_CONTROL.sub("\ufffd", text)  # an escape sequence from data cannot reach a terminal
    text = _MD_ENTITY.sub("&amp;", text)
    text = _MD_TAG.sub("&lt;", text)
    text = _MD_ALWAYS.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = _MD_LINE_START.sub(r"\1\\\2", text)
    text = _MD_ORDERED.sub(r"\1\\\2", text)
    return text


def _environment(markdown: bool) -> Any:
    import jinja2
    from markupsafe import Markup

    if markdown:
        def finalize(value: Any) -> Any:
            return value if isinstance(value, Markup) else md_escape(value)
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                                 autoescape=False, finalize=finalize,
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

        def md_table(t: dict[str, Any]) -> Markup:
            head = f"*{md_escape(t['title'])}*"
            if t.get("description"):
                head += f" — {md_escape(t['description'])}"
            lines = [head, "", "| " + " | ".join(md_escape(c) for c in t["columns"]) + " |",
                     "|" + "---|" * len(t["columns"])]
            lines += ["| " + " | ".join(md_escape(v) for v in row) + " |" for row in t["rows"]]
            return Markup("\n".join(lines) + "\n")
        env.globals["md_table"] = md_table

        def md_url(href: Any) -> Markup:  # already percent-encoded by the builder; no ( ) < >
            return Markup(re.sub(r"[()<>\s]", lambda m: f"%{ord(m.group(0)):02X}", str(href)))
        env.filters["md_url"] = md_url
    else:
        from .glossary import annotator
        from .harm import chart_svg

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        env.filters["g"] = annotator()  # one per rendering: the first occurrence is linked
        env.globals["chart"] = lambda finding, grouping: Markup(chart_svg(finding, grouping))
    env.globals["fmt"] = _fmt
    env.globals["pct"] = _pct
    return env


def _pct(value: Any) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{100 * float(value):.1f}%"


@cache
def template_text() -> str:
    """The text of the shipped templates (for the terms their fixed wording uses)."""
    return "\n".join(p.read_text(encoding="utf-8")
                     for p in sorted(templates_dir().glob("card.*.j2")))


def render_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page: inline CSS, images as ``data:`` URIs, no
    scripts and no remote resources; every value from the report or metadata is escaped.

    Examples
    --------
    >>> html = render_html(build_card(report))          # doctest: +SKIP
    """
    images = {fid: f"data:{mt};base64,{base64.b64encode(raw).decode('ascii')}"
              for fid, (mt, raw) in card.images.items()}
    return _environment(False).get_template("card.html.j2").render(card=card.data,
                                                                   images=images)


def render_markdown(card: ModelCard) -> str:
    """The card as Markdown (figures are listed; the HTML card shows them)."""
    text = _environment(True).get_template("card.md.j2").render(card=card.data)
    return re.sub(r"\n{3,}", "\n\n", text)


def render_json(card: ModelCard) -> str:
    """The card as JSON, validated against the shipped schema first."""
    validate_card(card.data)
    return card.to_json() + "\n"
