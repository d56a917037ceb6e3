"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched from elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

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

    parts = [
        format_html(
            '<line class="ff-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="ff-tick" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
            left,
            width - right,
            n(py(tick)),
            n(py(tick)),
            left - 8,
            n(py(tick)),
            tick_label(tick),
        )
        for tick in y_ticks
    ]
    parts += [
        format_html(
            '<line class="ff-axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="ff-tick" x="{}" y="{}" text-anchor="middle">{}</text>',
            n(px(tick)),
            n(px(tick)),
            top + plot_h,
            top + plot_h + 5,
            n(px(tick)),
            top + plot_h + 18,
            tick_label(tick),
        )
        for tick in x_ticks
    ]
    parts.append(
        format_html(
            '<line class="ff-axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="ff-axis-label" x="{}" y="{}" text-anchor="middle">{}</text>'
            '<text class="ff-axis-label" x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>',
            left,
            width - right,
            top + plot_h,
            top + plot_h,
            n(left + plot_w / 2),
            height - 6,
            x_label,
            n(top + plot_h / 2),
            n(top + plot_h / 2),
            y_label,
        )
    )
    for position, s in enumerate(drawn):
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(s.points))
        last_x, last_y = s.points[-1]
        if len(s.points) <= MARKED_POINTS:
            # Few points (an evaluation every epoch, say): mark each, or a lone point would be invisible.
            parts.append(
                format_html_join(
                    "",
                    '<circle class="ff-dot {}" cx="{}" cy="{}" r="2.5"><title>{}: {}</title></circle>',
                    ((s.css_class, n(px(x)), n(py(y)), s.label, tick_label(y)) for x, y in s.points[:-1]),
                )
            )
        parts.append(
            format_html(
                '<path class="ff-line {}" d="{}"><title>{}</title></path>'
                '<circle class="ff-dot {}" cx="{}" cy="{}" r="3.5"><title>{}: {}</title></circle>',
                s.css_class,
                path,
                s.label,
                s.css_class,
                n(px(last_x)),
                n(py(last_y)),
                s.label,
                tick_label(last_y),
            )
        )
        legend_x = width - right - 190 * (len(drawn) - position)
        parts.append(
            format_html(
                '<rect class="ff-swatch {}" x="{}" y="6" width="14" height="4" rx="2"/>'
                '<text class="ff-legend" x="{}" y="12">{} (last {})</text>',
                s.css_class,
                legend_x,
                legend_x + 20,
                s.label,
                tick_label(last_y),
            )
        )
    return format_html(
        '<svg class="ff-chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        f"{y_label} by {x_label}",
        # Every part was built with format_html, so joining them keeps them escaped.
        mark_safe("".join(parts)),
    )


def bar_chart(items: Sequence[tuple[str, int]], *, width: int = 560, unit: str = "") -> SafeString:
    """Horizontal bars, one per (label, value), longest first as given."""
    if not items:
        return SafeString("")
    row, label_w, value_w = 28, 150, 90
    height = row * len(items) + 8
    biggest = max(value for _, value in items) or 1
    bar_space = width - label_w - value_w
    rows = format_html_join(
        "",
        "<g><title>{}: {}</title>"
        '<text class="ff-bar-label" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>'
        '<rect class="ff-bar" x="{}" y="{}" width="{}" height="{}" rx="3"/>'
        '<text class="ff-bar-value" x="{}" y="{}" dominant-baseline="middle">{}</text></g>',
        (
            (
                label,
                f"{value:,}{unit}",
                label_w - 10,
                n(8 + i * row + row / 2 - 4),
                label if len(label) <= 20 else label[:19] + "…",
                label_w,
                8 + i * row,
                n(max(value / biggest * bar_space, 2 if value else 0)),
                row - 10,
                n(label_w + max(value / biggest * bar_space, 2 if value else 0) + 8),
                n(8 + i * row + row / 2 - 4),
                f"{value:,}{unit}",
            )
            for i, (label, value) in enumerate(items)
        ),
    )
    return format_html(
        '<svg class="ff-chart ff-bars" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        "bar chart",
        rows,
    )
