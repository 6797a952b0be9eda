"""The history dashboard: one self-contained HTML file with inline SVG plots (no scripts, no CDN, no network).

What the user gets from ``codeconductor stats --html report.html`` (and the editor's "history dashboard"): a page
they can open offline showing each model's record (table), its latency over time, its learned reliability (with
uncertainty) and its reliability per task kind (heat map). :func:`render_report` is the history's own view, shared
by both front ends; :func:`render_html` draws it from plain data.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from ..types import TaskKind
from ._store import History, ModelStats

__all__ = ["render_html", "render_report"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;font-size:14px}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}h2{margin-top:1.6em}svg{background:#fff;border:1px solid #eee}
.muted{color:#777}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}s"


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _table(stats: Sequence[ModelStats]) -> str:
    head = (
        "<tr><th>model</th><th>runs</th><th>success</th><th>agreement</th><th>examples</th><th>tests</th>"
        "<th>applied</th><th>p50</th><th>p95</th><th>weight</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{_e(s.name)}</td><td>{s.attempts}</td><td>{_pct(s.success_rate)}</td>"
        f"<td>{_pct(s.agreement_rate)}</td><td>{_pct(s.examples_pass_rate)}</td><td>{_pct(s.tests_pass_rate)}</td>"
        f"<td>{_pct(s.applied_rate)}</td><td>{_secs(s.latency_p50_s)}</td><td>{_secs(s.latency_p95_s)}</td>"
        f"<td>{s.weight:.2f} ± {s.weight_sd:.2f}</td></tr>"
        for s in stats
    )
    return f"<table>{head}{rows}</table>"


def _latency_plot(series: Mapping[str, Sequence[tuple[float, float]]], names: Sequence[str]) -> str:
    points = [(t, lat) for name in names for t, lat in series.get(name, ())]
    if not points:
        return '<p class="muted">No answered runs yet.</p>'
    width, height, left, bottom, top, right = 900, 320, 60, 40, 15, 170
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    ymax = max(lat for _, lat in points) * 1.05 or 1.0
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return left + (t - t0) / span * (width - left - right)

    def y(v: float) -> float:
        return height - bottom - v / ymax * (height - bottom - top)

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for k in range(5):
        v = ymax * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">{v:.1f}s</text>'
        )
    for k, t in enumerate((t0, t1)):
        label = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        anchor = "start" if k == 0 else "end"
        parts.append(f'<text x="{x(t):.1f}" y="{height - 12}" font-size="11" text-anchor="{anchor}">{label}</text>')
    for i, name in enumerate(names):
        pts = series.get(name, ())
        if not pts:
            continue
        color = _color(i)
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.2" opacity="0.6"/>')
        parts.extend(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{color}"/>' for t, v in pts[-400:])
        ly = top + 16 * i
        parts.append(
            f'<rect x="{width - right + 12}" y="{ly}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - right + 28}" y="{ly + 9}" font-size="12">{_e(name[:22])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _reliability_plot(stats: Sequence[ModelStats]) -> str:
    if not stats:
        return '<p class="muted">No models yet.</p>'
    row, left, width = 26, 200, 700
    height = row * len(stats) + 40
    scale = width - left - 30

    def x(v: float) -> float:
        return left + v * scale

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for k in range(6):
        v = k / 5
        parts.append(
            f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="10" y2="{height - 25}" stroke="#eee"/>'
            f'<text x="{x(v):.1f}" y="{height - 8}" font-size="11" text-anchor="middle">{v:.1f}</text>'
        )
    for i, s in enumerate(stats):
        yy = 12 + i * row
        lo, hi = max(0.0, s.weight - s.weight_sd), min(1.0, s.weight + s.weight_sd)
        parts.append(
            f'<text x="{left - 8}" y="{yy + 14}" font-size="12" text-anchor="end">{_e(s.name[:28])}</text>'
            f'<rect x="{left}" y="{yy + 3}" width="{s.weight * scale:.1f}" height="{row - 10}" fill="{_color(i)}"/>'
            f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{yy + row / 2 - 2:.1f}" y2="{yy + row / 2 - 2:.1f}" '
            f'stroke="#222" stroke-width="1.5"/>'
            f'<text x="{x(s.weight) + 6:.1f}" y="{yy + 14}" font-size="11">{s.weight:.2f}</text>'
        )
    parts.append(
        f'<line x1="{x(0.5):.1f}" x2="{x(0.5):.1f}" y1="8" y2="{height - 25}" stroke="#999" stroke-dasharray="4 3"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(task_weights: Mapping[str, Mapping[str, float]]) -> str:
    if not task_weights:
        return ""
    names = list(task_weights)
    tasks = list(next(iter(task_weights.values())))
    cell, left, top = 62, 200, 30
    width, height = left + cell * len(tasks) + 10, top + 24 * len(names) + 10
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for j, task in enumerate(tasks):
        parts.append(
            f'<text x="{left + j * cell + cell / 2:.1f}" y="{top - 10}" font-size="11" '
            f'text-anchor="middle">{_e(task)}</text>'
        )
    for i, name in enumerate(names):
        yy = top + 24 * i
        parts.append(f'<text x="{left - 8}" y="{yy + 16}" font-size="12" text-anchor="end">{_e(name[:28])}</text>')
        for j, task in enumerate(tasks):
            w = task_weights[name][task]
            # Red (unreliable) through white (prior) to green (reliable).
            if w >= 0.5:
                k = (w - 0.5) * 2
                rgb = (int(255 - 200 * k), int(255 - 80 * k), int(255 - 200 * k))
            else:
                k = (0.5 - w) * 2
                rgb = (int(255 - 40 * k), int(255 - 200 * k), int(255 - 200 * k))
            parts.append(
                f'<rect x="{left + j * cell}" y="{yy}" width="{cell - 2}" height="22" '
                f'fill="rgb({rgb[0]},{rgb[1]},{rgb[2]})"/>'
                f'<text x="{left + j * cell + cell / 2 - 1:.1f}" y="{yy + 15}" font-size="11" '
                f'text-anchor="middle">{w:.2f}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    stats: Sequence[ModelStats],
    latency_series: Mapping[str, Sequence[tuple[float, float]]],
    task_weights: Mapping[str, Mapping[str, float]],
    *,
    title: str = "CodeConductor history",
    source: str = "",
    runs: int = 0,
) -> str:
    """The dashboard page. ``latency_series``: model name -> [(unix time, latency s)], oldest first."""
    names = [s.name for s in stats]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"
        f'<p class="muted">{runs} runs · {_e(source)} · generated {generated}</p>'
        f"<h2>Models</h2>{_table(stats)}"
        f"<h2>Latency over time</h2>{_latency_plot(latency_series, names)}"
        f"<h2>Learned reliability</h2><p class='muted'>Posterior mean ± one standard deviation; dashed: the 0.5 "
        f"default prior.</p>{_reliability_plot(stats)}"
        f"<h2>Reliability per task kind</h2>{_heatmap(task_weights)}"
        "</body></html>"
    )


def render_report(history: History, *, task: TaskKind | str | None = None, since: float | None = None) -> str:
    """The HTML dashboard of ``history`` (only runs of ``task``, and since the time ``since``, when given)."""
    stats = history.model_stats(task=task, since=since)
    return render_html(
        stats,
        history.latency_series(task=task, since=since),
        history.task_weights([s.name for s in stats]),
        source=str(history.path),
        runs=history.run_count(),
    )
