"""Who is harmed, and by how much: the fairness findings of a card in plain sentences with
counts a person can check, and a dot-and-interval chart per failing requirement.

A disparity requirement is tested two-sided (a gap either way beyond the tolerance counts), but
the two sides do not mean the same to the people of a group: with a police flag, a *higher*
false positive rate means more people wrongly flagged. Each requirement's harmful side comes
from its ``harm`` parameter or the metric's default (:data:`lea_ai_audit.stats.HARMFUL_SIDE`);
the groups on the harmful side are listed first, the groups that differ the other way (where
the reference group is the disadvantaged one) separately.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from ..stats import HARMFUL_SIDE, LABELS, SENTENCE, SIDE_TEXT

#: verdicts that mean "beyond the tolerance" and "could be beyond it"
BEYOND = ("violation",)
DOUBT = ("not demonstrated", "inconclusive")
#: the most rows a chart draws (the omission is stated on it)
MAX_CHART_ROWS = 150

#: a metric's name in a heading
SHORT_NAME = {"fpr": "false positive rate", "fnr": "false negative rate",
              "selection_rate": "selection rate", "ppv": "precision (PPV)",
              "tpr": "true positive rate", "tnr": "true negative rate",
              "npv": "negative predictive value (NPV)", "fdr": "false discovery rate",
              "for": "false omission rate", "accuracy": "accuracy", "base_rate": "base rate"}

_WORDS_DEFAULT = {"persons": "people", "outcome": "had the outcome",
                  "no_outcome": "did not have the outcome", "flag": "flagged"}


def words(meta: Mapping[str, Any]) -> dict[str, str]:
    """The nouns and verbs of the sentences: card metadata ``persons``, ``outcome``,
    ``no_outcome`` and ``flag`` (e.g. defendants / reoffended within two years / did not
    reoffend within two years / labelled medium or high risk), or plain defaults."""
    out = dict(_WORDS_DEFAULT)
    for k in out:
        v = meta.get(k)
        if isinstance(v, str) and v.strip():
            out[k] = " ".join(v.split())
    return out


def harmful_side(params: Mapping[str, Any]) -> str:
    """"higher", "lower" or "either" for a disparity requirement's parameters."""
    harm = params.get("harm")
    if harm in ("higher", "lower", "either"):
        return str(harm)
    return HARMFUL_SIDE.get(str(params.get("metric")), None) or "either"


def side_words(metric: str, side: str) -> tuple[str, str]:
    """(what the harmful side means, what the other side means)."""
    hi, lo = SIDE_TEXT.get(metric, ("higher", "lower"))
    return (lo, hi) if side == "lower" else (hi, lo)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def _int(x: Any) -> int | None:
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x == x else None


def _pct(k: int | None, m: int | None, value: float | None) -> str:
    """A rate as a percentage with one decimal, from the exact counts when known."""
    if k is not None and m:
        return f"{100 * k / m:.1f}%"
    return "—" if value is None else f"{100 * value:.1f}%"


def _rate(k: int | None, m: int | None, value: float | None) -> float | None:
    return k / m if k is not None and m else value


_ADJECTIVE = re.compile(r"^[A-Za-z][A-Za-z'-]*(?: [A-Za-z][A-Za-z'-]*){0,2}$")


def who(group: str, persons: str) -> str:
    """"African-American defendants", or "defendants of group “Less than 25”" when the label
    does not read as a word before the noun (numbers, comparisons, combinations)."""
    if _ADJECTIVE.match(group) and " than " not in f" {group} ".lower():
        return f"{group} {persons}"
    return f"{persons} of group “{group}”"


def sentence(metric: str, w: Mapping[str, str], group: str, row: Mapping[str, Any],
             ref_group: str, ref: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """"805 of 1,795 African-American defendants who did not reoffend were labelled medium or
    high risk (44.8%), against 349 of 1,488 Caucasian defendants (23.5%): 1.9 times as often,
    21.4 points more (the policy allows 10 either way)." Every figure is rounded once, from
    the exact counts."""
    whom, what = SENTENCE.get(metric, ("", "{pos}"))
    fill = {"pos": w["outcome"], "neg": w["no_outcome"], "flag": w["flag"]}
    whom, what = whom.format(**fill), what.format(**fill)
    k, m = _int(row.get("numerator")), _int(row.get("denominator"))
    kr, mr = _int(ref.get("numerator")), _int(ref.get("denominator"))
    v, vr = _rate(k, m, _num(row.get("value"))), _rate(kr, mr, _num(ref.get("value")))
    persons = w["persons"]
    if k is not None and m is not None:
        head = f"{k:,} of {m:,} {who(group, persons)}"
    else:
        head = f"Of {m:,} {who(group, persons)}" if m else who(group, persons)
    head += f" {whom}" if whom else ""
    text = f"{head} {what} ({_pct(k, m, v)})"
    if kr is not None and mr is not None:
        text += f", against {kr:,} of {mr:,} {who(ref_group, persons)} ({_pct(kr, mr, vr)})"
    else:
        text += f", against {_pct(kr, mr, vr)} of {who(ref_group, persons)}"
    extra = []
    if v is not None and vr:
        r = v / vr
        extra.append(f"{r:.1f} times as often" if r >= 1 else f"{r:.2f} times as often")
    elif v is not None and vr == 0 and v > 0:
        extra.append(f"while none of the {who(ref_group, persons)} were")
    if v is not None and vr is not None:
        d = 100 * (v - vr)
        limit = params.get("max_difference")
        more = "more" if d >= 0 else "fewer"
        part = f"{abs(d):.1f} percentage points {more}"
        if isinstance(limit, (int, float)):
            part += f" (the policy allows {100 * float(limit):g} either way)"
        extra.append(part)
    ratio = params.get("min_ratio")
    if isinstance(ratio, (int, float)) and ratio:
        extra.append(f"the policy allows a ratio between {float(ratio):g} and "
                     f"{1 / float(ratio):.3g}")
    return text + (": " + ", ".join(extra) if extra else "") + "."


def _rows(e: Any) -> list[dict[str, Any]]:
    """A table evidence's rows as dicts (column -> value)."""
    cols = e.data.get("columns", [])
    return [dict(zip(cols, r, strict=False)) for r in e.data.get("rows", [])]


def verdict_tables(c: Any) -> list[tuple[Any, list[dict[str, Any]]]]:
    """(evidence, rows) of each per-group verdict table of a disparity result."""
    out = []
    for e in c.evidence:
        if e.kind != "table" or not isinstance(e.data, Mapping):
            continue
        rows = _rows(e)
        if rows and "verdict" in rows[0]:
            out.append((e, rows))
    return out


def _side(diff: float | None, side: str) -> str | None:
    if diff is None:
        return None
    if diff == 0:
        return "equal"
    where = "higher" if diff > 0 else "lower"
    if side == "either":
        return where
    return "harmful" if where == side else "favourable"


def _order(side: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups sorted by harm: the most harmed first (reference first of all)."""
    def key(r: dict[str, Any]) -> tuple[int, float]:
        v = _num(r.get("value"))
        if r.get("verdict") == "reference":
            return (0, 0.0)
        if v is None:
            return (2, 0.0)
        if side == "higher":
            return (1, -v)
        if side == "lower":
            return (1, v)
        return (1, -abs(_num(r.get("diff")) or 0.0))
    return sorted(rows, key=key)


def findings(rep: Any, meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per disparity requirement that did not pass: who is harmed (with sentences), who differs
    the other way, who could not be judged, and the chart's rows of every grouping."""
    w = words(meta)
    out = []
    for c in rep.checks:
        if c.check_id != "fairness.disparity" or c.status.value not in ("fail", "warn"):
            continue
        metric = str(c.params.get("metric", ""))
        side = harmful_side(c.params)
        harm_text, other_text = side_words(metric, side)
        groupings = []
        harmed, possibly, other, small = [], [], [], 0
        for e, rows in verdict_tables(c):
            grouping = e.name.split(":", 1)[1] if ":" in e.name else e.name
            ref = next((r for r in rows if r.get("verdict") == "reference"), None)
            if ref is None:
                continue
            ref_group = str(ref.get("group"))
            for r in rows:
                r["side"] = None if r is ref else _side(_num(r.get("diff")), side)
            for r in rows:
                v = r.get("verdict")
                if v == "insufficient":
                    small += 1
                if r is ref or v not in BEYOND + DOUBT:
                    continue
                item = {"grouping": grouping, "group": str(r.get("group")), "verdict": v,
                        "side": r["side"], "value": _num(r.get("value")),
                        "reference_group": ref_group,
                        "sentence": sentence(metric, w, str(r.get("group")), r, ref_group, ref,
                                             c.params)}
                if r["side"] == "harmful" or side == "either":
                    (harmed if v in BEYOND else possibly).append(item)
                elif v in BEYOND:
                    other.append(item)
            ordered = _order(side, rows)
            groupings.append({
                "grouping": grouping, "reference_group": ref_group,
                "reference_value": _num(ref.get("value")),
                "rows": [{"group": str(r.get("group")), "n": _int(r.get("denominator")),
                          "value": _num(r.get("value")), "low": _num(r.get("ci_low")),
                          "high": _num(r.get("ci_high")), "verdict": str(r.get("verdict")),
                          "side": r.get("side")} for r in ordered]})

        order = [g["grouping"] for g in groupings]

        def rank(x: dict[str, Any], side: str = side, order: list[str] = order
                 ) -> tuple[int, float]:
            v = x["value"] if x["value"] is not None else 0.0
            return (order.index(x["grouping"]), -v if side != "lower" else v)
        for lst in (harmed, possibly, other):
            lst.sort(key=rank)
        out.append({
            "requirement": c.requirement_id, "title": c.title or c.requirement_id,
            "status": c.status.value, "blocking": bool(c.blocking), "metric": metric,
            "metric_label": SHORT_NAME.get(metric, LABELS.get(metric, metric)),
            "harmful_side": side, "harm_text": harm_text, "other_text": other_text,
            "test": "two-sided",
            "tolerance": {"max_difference": c.params.get("max_difference"),
                          "min_ratio": c.params.get("min_ratio")},
            "harmed": harmed, "possibly_harmed": possibly, "other_side": other,
            "too_small": small, "groupings": groupings})
    return out


# -- the chart -----------------------------------------------------------------------------------
_MARK = {"violation": ("#b3261e", "square", "beyond the limit"),
         "not demonstrated": ("#a86400", "diamond", "may be beyond the limit"),
         "inconclusive": ("#a86400", "diamond", "may be beyond the limit"),
         "insufficient": ("#777777", "hollow", "too few cases to judge"),
         "reference": ("#000000", "bar", "reference group"),
         "ok": ("#1f4e79", "circle", "within the limit"),
         "demonstrated": ("#1f4e79", "circle", "within the limit")}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, n: int = 44) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _marker(kind: str, x: float, y: float, color: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{color}"/>'
    if kind == "diamond":
        return (f'<path d="M{x:.1f} {y - 5.5:.1f}L{x + 5.5:.1f} {y:.1f}L{x:.1f} {y + 5.5:.1f}'
                f'L{x - 5.5:.1f} {y:.1f}Z" fill="{color}"/>')
    if kind == "hollow":
        return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#fff" stroke="{color}" '
                f'stroke-width="1.5"/>')
    if kind == "bar":
        return f'<rect x="{x - 1.5:.1f}" y="{y - 6:.1f}" width="3" height="12" fill="{color}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{color}"/>'


def chart_svg(finding: Mapping[str, Any], grouping: Mapping[str, Any]) -> str:
    """A dot-and-interval chart (SVG markup; every label escaped): each group's rate with its
    interval, sorted by harm, the reference group's rate as a dashed line, the tolerance as a
    grey band; every group drawn (beyond :data:`MAX_CHART_ROWS` the omission is written on it).
    Shapes as well as colours tell the verdicts apart, so it reads in black and white."""
    rows = list(grouping["rows"])
    shown = rows[:MAX_CHART_ROWS]
    ref_v = grouping.get("reference_value")
    tol = finding.get("tolerance") or {}
    band = None
    if ref_v is not None:
        lows, highs = [], []
        if isinstance(tol.get("max_difference"), (int, float)):
            lows.append(ref_v - float(tol["max_difference"]))
            highs.append(ref_v + float(tol["max_difference"]))
        if isinstance(tol.get("min_ratio"), (int, float)) and tol["min_ratio"]:
            lows.append(ref_v * float(tol["min_ratio"]))
            highs.append(ref_v / float(tol["min_ratio"]))
        if lows:
            band = (max(0.0, max(lows)), min(1.0, min(highs)))
    xmax = max([r["high"] or r["value"] or 0.0 for r in shown] + [band[1] if band else 0.0,
                                                                   ref_v or 0.0])
    xmax = min(1.0, max(0.1, (int(xmax * 10) + 1) / 10))
    label_w, plot_w, verdict_w, row_h, top = 300, 380, 215, 20, 34
    width = label_w + plot_w + verdict_w
    height = top + row_h * len(shown) + (40 if len(rows) > len(shown) else 22)

    def sx(v: float) -> float:
        return label_w + plot_w * max(0.0, min(v, xmax)) / xmax

    name = f"{finding['metric_label']} by {grouping['grouping']}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" data-groups="{len(rows)}" '
             f'data-shown="{len(shown)}" aria-label="{_e(name)}">',
             f"<title>{_e(name)}</title>"]
    y0, y1 = top - 6, top + row_h * len(shown)
    if band is not None:
        parts.append(f'<rect x="{sx(band[0]):.1f}" y="{y0}" width="{sx(band[1]) - sx(band[0]):.1f}"'
                     f' height="{y1 - y0}" fill="#e6e6e6"/>')
    step = 0.1 if xmax <= 0.6 else 0.2
    t = 0.0
    while t <= xmax + 1e-9:
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#cccccc" '
                     f'stroke-width="0.6"/><text x="{x:.1f}" y="{top - 12}" font-size="10" '
                     f'text-anchor="middle" fill="#333">{100 * t:.0f}%</text>')
        t += step
    if ref_v is not None:
        x = sx(ref_v)
        parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#000" '
                     f'stroke-dasharray="4 3" stroke-width="1"/>')
    for i, r in enumerate(shown):
        y = top + row_h * i + row_h / 2
        color, shape, meaning = _MARK.get(r["verdict"], _MARK["ok"])
        label = _short(r["group"]) + (" (reference)" if r["verdict"] == "reference" else "")
        n = f" n={r['n']:,}" if r.get("n") is not None else ""
        shown_v = "undefined" if r["value"] is None else f"{100 * r['value']:.1f}%"
        parts.append(f'<g class="group" data-group="{_e(r["group"])}" '
                     f'data-verdict="{_e(r["verdict"])}"><title>{_e(r["group"])}: '
                     f'{shown_v}{_e(n)} — {_e(meaning)}</title>')
        parts.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#1b1b1b">{_e(label)}<tspan fill="#555">{_e(n)}</tspan></text>')
        if r["value"] is not None:
            if r.get("low") is not None and r.get("high") is not None:
                parts.append(f'<line x1="{sx(r["low"]):.1f}" y1="{y:.1f}" x2="{sx(r["high"]):.1f}"'
                             f' y2="{y:.1f}" stroke="{color}" stroke-width="1.6"/>')
            parts.append(_marker(shape, sx(r["value"]), y, color))
            parts.append(f'<text x="{label_w + plot_w + 10}" y="{y + 4:.1f}" font-size="10.5" '
                         f'fill="{color}">{100 * r["value"]:.1f}% · {_e(meaning)}</text>')
        else:
            parts.append(f'<text x="{label_w + 6}" y="{y + 4:.1f}" font-size="10.5" '
                         f'fill="#555">undefined (no case in the denominator)</text>')
        parts.append("</g>")
    foot = y1 + 16
    legend = ("dashed line: the reference group's rate; grey band: the policy's tolerance; "
              "bars: intervals")
    parts.append(f'<text x="{label_w}" y="{foot}" font-size="10" fill="#333">{_e(legend)}</text>')
    if len(rows) > len(shown):
        parts.append(f'<text x="{label_w}" y="{foot + 16}" font-size="10.5" fill="#b3261e">'
                     f'{len(shown)} of {len(rows)} groups drawn; every group is in the table '
                     f'{_e(name)} below</text>')
    parts.append("</svg>")
    return "".join(parts)
