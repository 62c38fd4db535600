"""Metric trend charts as inline SVG, drawn on the server.

No JavaScript and no charting library: the page works offline under a CSP
that allows no script, and the same SVG shows in a notebook. Every point is
a link to its commit with an SVG ``<title>`` (the browser's hover tooltip);
points of commits carrying a stage tag are drawn larger, in that stage's
colour, with a legend. Every string from the registry goes through
:func:`html.escape`; colours are attributes, not CSS, so the SVG carries
its look into a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from .data import Point

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 50
LINE = "#4a6fa5"
PLAIN = "#4a6fa5"
#: Stage colours, in the order the stages are listed (colour-blind safe, Okabe-Ito).
PALETTE = ("#d55e00", "#009e73", "#cc79a7", "#e69f00", "#0072b2", "#56b4e9", "#000000")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values from at most ``low`` to at least ``high``.

    The step is 1, 2 or 5 times a power of 10, so the axis reads at a glance.
    """
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [math.floor(low / step) * step]
    while ticks[-1] < high - step * 1e-9:  # the last tick is at or above high
        ticks.append(ticks[-1] + step)
    return [round(t, 12) for t in ticks]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def trend_svg(points: Sequence[Point], metric: str, stages: Sequence[str],
              link_prefix: str) -> str:
    """The chart of ``points`` (oldest first) as an ``<svg>`` element's text.

    A point links to ``link_prefix`` followed by its commit's hash (the prefix
    URL-quoted by the caller, escaped here once: a 10,000-point chart is
    drawn in one pass). One ``<circle class="point">`` per point.
    """
    colour = {stage: PALETTE[i % len(PALETTE)] for i, stage in enumerate(stages)}
    title = f"{metric} over {len(points)} commit{'s' if len(points) != 1 else ''}"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" role="img" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
           f'font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>"]
    if not points:
        out.append(f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">'
                   f"No commit holds a number at {escape(metric)}</text></svg>")
        return "".join(out)
    values = [p.value for p in points]
    ticks = nice_ticks(min(values), max(values))
    low, high = min(ticks[0], min(values)), max(ticks[-1], max(values))
    if high == low:
        low, high = low - 1, high + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(points)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    out.append(f'<g stroke="#ccc" stroke-width="1">'
               f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>'
               f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
               f'y2="{TOP + plot_h}"/></g>')
    for tick in ticks:
        ty = y(tick)
        out.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" y2="{ty:.1f}" '
                   f'stroke="#eee"/><text x="{LEFT - 6}" y="{ty + 4:.1f}" '
                   f'text-anchor="end">{escape(_fmt(tick))}</text>')
    first, last = points[0].commit, points[-1].commit
    out.append(f'<text x="{LEFT}" y="{HEIGHT - 28}">{escape(first.short_hash)} '
               f"({escape(first.timestamp.date().isoformat())})</text>"
               f'<text x="{LEFT + plot_w}" y="{HEIGHT - 28}" text-anchor="end">'
               f"{escape(last.short_hash)} ({escape(last.timestamp.date().isoformat())})</text>")
    line = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points))
    out.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="1.5" points="{line}"/>')
    radius = 3.5 if n <= 200 else 2
    prefix = escape(link_prefix)
    for i, point in enumerate(points):
        commit = point.commit
        stage = point.stages[0] if point.stages else None
        fill = colour.get(stage, PLAIN) if stage else PLAIN
        size = radius * 1.8 if stage else radius
        label = (f"{commit.short_hash} · {_fmt(point.value)} · "
                 f"{str(commit.timestamp)[:16]}"
                 + (f" · {', '.join(point.stages)}" if point.stages else "")
                 + f"\n{commit.message}")
        out.append(f'<a href="{prefix}{escape(commit.hash)}"><circle class="point" '
                   f'data-commit="{escape(commit.hash)}" cx="{x(i):.1f}" '
                   f'cy="{y(point.value):.1f}" r="{size:g}" fill="{fill}">'
                   f"<title>{escape(label)}</title></circle></a>")
    used = [s for s in stages if any(s in p.stages for p in points)]
    for i, stage in enumerate(used):
        lx = LEFT + 10 + i * 130
        out.append(f'<circle cx="{lx}" cy="{HEIGHT - 10}" r="5" fill="{colour[stage]}"/>'
                   f'<text x="{lx + 9}" y="{HEIGHT - 6}">{escape(stage)}</text>')
    out.append("</svg>")
    return "".join(out)
