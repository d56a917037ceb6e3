"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched from elsewhere.

This module computes the geometry; the markup is in templates/admin/storage/charts/.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

MAX_POINTS = 600
MARKED_POINTS = 60


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    css_class: str


def n(value: float) -> str:
    """A coordinate with one decimal: enough for a chart, small in the page."""
    return f"{value:.1f}"


def nice_ticks(low: float, high: float, *, count: int = 5) -> list[float]:
    """Round tick values covering [low, high], e.g. 1.4, 1.6, 1.8 rather than 1.43, 1.61, 1.79."""
    if high <= low:
        high = low + 1
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def tick_label(value: float) -> str:
    return f"{value:.4g}"


def thin(points: Sequence[tuple[float, float]], *, limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Keep every n-th point (and the last) so a 50,000-step run still draws a small SVG."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil(len(points) / limit)
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def line_chart(
    series: Sequence[Series], *, x_label: str, y_label: str, width: int = 760, height: int = 280
) -> SafeString:
    """A line chart of one or more series sharing both axes."""
    drawn = [Series(s.label, thin(s.points), s.css_class) for s in series if s.points]
    if not drawn:
        return SafeString("")
    left, right, top, bottom = 56, 20, 28, 44
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    x_ticks = nice_ticks(min(xs), max(xs), count=6)
    y_ticks = nice_ticks(min(ys), max(ys), count=5)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    bottom_y = top + plot_h
    context = {
        "width": width,
        "height": height,
        "x_label": x_label,
        "y_label": y_label,
        "left": left,
        "right": width - right,
        "bottom": bottom_y,
        "y_tick_x": left - 8,
        "x_tick_end": bottom_y + 5,
        "x_tick_y": bottom_y + 18,
        "x_label_x": n(left + plot_w / 2),
        "x_label_y": height - 6,
        "y_label_y": n(top + plot_h / 2),
        "y_ticks": [{"at": n(py(tick)), "label": tick_label(tick)} for tick in y_ticks],
        "x_ticks": [{"at": n(px(tick)), "label": tick_label(tick)} for tick in x_ticks],
        "series": [],
    }
    for position, s in enumerate(drawn):
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(s.points))
        dots = [{"x": n(px(x)), "y": n(py(y)), "value": tick_label(y)} for x, y in s.points]
        legend_x = width - right - 190 * (len(drawn) - position)
        context["series"].append(
            {
                "label": s.label,
                "css_class": s.css_class,
                "path": path,
                # Few points (an evaluation every epoch, say): mark each, or a lone point would be invisible.
                "dots": dots[:-1] if len(s.points) <= MARKED_POINTS else [],
                "last": dots[-1],
                "legend_x": legend_x,
                "legend_text_x": legend_x + 20,
            }
        )
    return render_to_string("admin/storage/charts/line_chart.html", context)


def bar_chart(items: Sequence[tuple[str, int]], *, width: int = 560, unit: str = "") -> SafeString:
    """Horizontal bars, one per (label, value), longest first as given."""
    if not items:
        return SafeString("")
    row, label_w, value_w = 28, 150, 90
    height = row * len(items) + 8
    biggest = max(value for _, value in items) or 1
    bar_space = width - label_w - value_w
    bars = []
    for i, (label, value) in enumerate(items):
        length = max(value / biggest * bar_space, 2 if value else 0)
        bars.append(
            {
                "label": label,
                "short_label": label if len(label) <= 20 else label[:19] + "…",
                "value": f"{value:,}{unit}",
                "top": 8 + i * row,
                "middle": n(8 + i * row + row / 2 - 4),
                "length": n(length),
                "value_x": n(label_w + length + 8),
            }
        )
    context = {
        "width": width,
        "height": height,
        "bars": bars,
        "label_x": label_w - 10,
        "bar_x": label_w,
        "bar_height": row - 10,
    }
    return render_to_string("admin/storage/charts/bar_chart.html", context)
