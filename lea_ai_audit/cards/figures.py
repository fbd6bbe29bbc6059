"""Plots of a model card, drawn from the report's tables (no model or data needed)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

_METRICS = ("selection_rate", "fpr", "fnr", "ppv")
_LABEL = {"selection_rate": "flagged (selection rate)", "fpr": "false positive rate",
          "fnr": "false negative rate", "ppv": "precision (PPV)"}
_MAX_GROUPS = 60


def _short(text: str, n: int = 34) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


#: figures being drawn by the worker process, by report id (see :func:`prefetch`)
_PREFETCHED: dict[str, Any] = {}
_KEEP = 4
#: figures already drawn in this process, by the digest of their inputs (a card is rendered
#: again at every sign-off, gate and page view of the same report: the same PNG bytes)
_DRAWN: dict[str, list[tuple[str, str, bytes]]] = {}
_KEEP_DRAWN = 8


def _inputs(checks: Any, reference_groups: Any
            ) -> tuple[list[tuple[str, dict[str, Any], str, int]], dict[str, Any]]:
    """What the figures are drawn from: each group_metrics table, and the reference groups."""
    tables: dict[str, tuple[str, dict[str, Any], str, int]] = {}
    for c in checks:
        if c.check_id != "fairness.group_metrics":
            continue
        min_n = int(c.params.get("min_group_size") or 30)
        for e in c.evidence:
            if e.kind == "table" and e.name.startswith("group_metrics:"):
                grouping = e.name.split(":", 1)[1]
                tables[grouping] = (grouping, e.data, e.description, min_n)
    return list(tables.values()), dict(reference_groups or {})


def _digest(inputs: Any) -> str:
    import hashlib
    import pickle

    return hashlib.sha256(pickle.dumps(inputs, protocol=4)).hexdigest()


def prefetch(report_id: str, checks: Any, reference_groups: Any) -> None:
    """Have the worker process draw the figures of report ``report_id`` from its
    group_metrics results (``checks``) while the audit goes on (:mod:`lea_ai_audit._background`).

    :func:`group_figures` collects them if the report's inputs are the same, else draws them
    itself. Does nothing without a worker or a group_metrics table.
    """
    from .. import _background

    inputs = _inputs(checks, reference_groups)
    if not inputs[0] or not _background.available():
        return
    job = _background.start(draw_group_figures, *inputs)
    if job is None:
        return
    old = _PREFETCHED.pop(report_id, None)
    if old is not None:
        old[1].close()
    _PREFETCHED[report_id] = (_digest(inputs), job)
    while len(_PREFETCHED) > _KEEP:  # figures nobody asked for (no cards written)
        _PREFETCHED.pop(next(iter(_PREFETCHED)))[1].close()


def group_figures(report: Any) -> list[tuple[str, str, bytes]]:
    """One PNG per grouping: the key rates of each group with their intervals.

    Returns (title, description, png bytes). A group's point is hollow when it has fewer
    cases than the policy's minimum group size; the dashed line is the reference group.

    Examples
    --------
    >>> figs = group_figures(report)                     # doctest: +SKIP
    >>> figs[0][0]
    'Rates by ethnicity'
    """
    from .. import _background

    inputs = _inputs(report.checks, report.subject.get("reference_groups"))
    digest = _digest(inputs)
    figures = _DRAWN.pop(digest, None)
    pending = _PREFETCHED.pop(getattr(report, "report_id", ""), None)
    if pending is not None:
        if figures is None and pending[0] == digest:
            # without the worker's answer they are drawn here instead: the same figures
            with contextlib.suppress(_background.BackgroundUnavailable):
                figures = list(pending[1].result())
        pending[1].close()
    if figures is None:
        figures = draw_group_figures(*inputs)
    _DRAWN[digest] = figures  # most recently used last
    while len(_DRAWN) > _KEEP_DRAWN:
        _DRAWN.pop(next(iter(_DRAWN)))
    return list(figures)


def draw_group_figures(tables: list[tuple[str, dict[str, Any], str, int]],
                       refs: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """The figures of :func:`group_figures` from its inputs (a pure function: it runs in the
    worker process when it can)."""
    if not tables:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for grouping, data, description, min_n in tables:
        cols = data["columns"]
        rows = [dict(zip(cols, r, strict=False)) for r in data["rows"]]
        metrics = [m for m in _METRICS if any(r.get("metric") == m for r in rows)]
        groups: list[str] = []
        for r in rows:
            g = str(r.get("group"))
            if g not in groups:
                groups.append(g)
        if not metrics or not groups:
            continue
        shown = groups[:_MAX_GROUPS]
        ref = str((refs.get(grouping) or {}).get("group"))
        height = 1.4 + 0.28 * len(shown)
        fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics) + 1.6, height),
                                 sharey=True, squeeze=False, dpi=80)
        ys = list(range(len(shown)))
        labels = [_short(g) + (" (ref.)" if g == ref else "") for g in shown]
        for ax, m in zip(axes[0], metrics, strict=True):
            by = {str(r.get("group")): r for r in rows if r.get("metric") == m}
            kinds: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {
                "normal": ([], [], [], []), "small": ([], [], [], []), "ref": ([], [], [], [])}
            for y, g in zip(ys, shown, strict=True):
                r = by.get(g)
                if not r or r.get("value") is None:
                    continue
                v = float(r["value"])
                lo = float(r["ci_low"]) if r.get("ci_low") is not None else v
                hi = float(r["ci_high"]) if r.get("ci_high") is not None else v
                small = isinstance(r.get("n"), int) and r["n"] < min_n
                kind = "ref" if g == ref else ("small" if small else "normal")
                xs, yy, lows, highs = kinds[kind]
                xs.append(v)
                yy.append(y)
                lows.append(max(v - lo, 0.0))
                highs.append(max(hi - v, 0.0))
                if kind == "ref":
                    ax.axvline(v, color="#999999", ls="--", lw=0.8)
            for kind, color, face in (("normal", "#1f4e79", "#1f4e79"),
                                      ("small", "#888888", "white"),
                                      ("ref", "#000000", "#000000")):
                xs, yy, lows, highs = kinds[kind]
                if xs:
                    ax.errorbar(xs, yy, xerr=[lows, highs], fmt="o", color=color, mfc=face,
                                ms=4.5, lw=1.4, capsize=0)
            ax.set_title(_LABEL.get(m, m), fontsize=9)
            ax.set_xlim(0, 1)
            ax.set_ylim(len(shown) - 0.5, -0.5)
            ax.tick_params(labelsize=7)
        axes[0][0].set_yticks(ys)
        axes[0][0].set_yticklabels(labels, fontsize=7)
        width_px = fig.get_figwidth() * fig.dpi
        left = min(0.45, (6.0 * max(len(t) for t in labels) + 16) / width_px)
        top = 1 - 0.55 / fig.get_figheight()
        fig.subplots_adjust(left=left, right=0.98, top=top, bottom=0.3 / fig.get_figheight()
                            + 0.05, wspace=0.12)
        omitted = (f" (the first {len(shown)} of {len(groups)} groups; every group is in the "
                   "table)") if len(groups) > len(shown) else ""
        fig.suptitle(f"Rates by {grouping}{omitted}", fontsize=10)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        desc = (f"Each dot is a group's rate with its {description.split(';')[-1].strip()}"
                if ";" in description else "Each dot is a group's rate with its interval")
        desc += ("; the dashed line is the reference group; hollow grey dots are groups with "
                 f"fewer than {min_n} cases (no conclusion drawn)")
        if len(groups) > len(shown):
            desc += f"; the first {len(shown)} of {len(groups)} groups are shown"
        out.append((f"Rates by {grouping}{omitted}", desc, buf.getvalue()))
    return out
