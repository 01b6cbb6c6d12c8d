"""Small charts of the dashboard as SVG, drawn on the server: no script, no chart library.

Each chart is a few dozen shapes written as text (microseconds, so they are drawn where
they are asked for, on the event loop). Only presentation attributes colour them, never
a ``style`` attribute, so the Content-Security-Policy (no inline style) lets them show.
Each carries a ``<title>`` and ``<desc>`` saying what it shows; the page puts the same
figures in a table beside it, for anyone who cannot see it.

A suppressed count ('<5') is never drawn at a height that would give it away: its bar
is an outline up to the threshold, labelled '<5'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from analysis.proportions import WITHHELD
from analysis.services import Rate, TrendPoint

BLUE = "#1d70b8"
GREEN = "#00703c"
ORANGE = "#d4351c"
TEXT = "#0b0c0c"
GREY = "#505a5f"
LIGHT = "#b1b4b6"
TREND_SERIES = (
    ("referrals", "Referrals", BLUE),
    ("started", "Started", GREEN),
    ("completed", "Completed", "#f47738"),
)
FONT = 'font-family="Arial, sans-serif"'


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _svg(width: int, height: int, title: str, desc: str, body: list[str], key: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{key}-title {key}-desc" class="app-chart">'
        f'<title id="{key}-title">{escape(title)}</title>'
        f'<desc id="{key}-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def rates_svg(rates: Sequence[tuple[str, Rate]], key: str = "rates") -> str:
    """Each rate as a bar from 0 to 100% with its 95% interval as a whisker."""
    left, right, row = 130, 60, 50
    width, height = 520, 44 + row * len(rates)
    span = width - left - right
    body = []
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x = left + span * tick
        body.append(
            f'<line x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="{height - 14}" stroke="{LIGHT}" '
            f'stroke-width="1"/><text x="{x:.1f}" y="{height - 2}" {FONT} font-size="15" '
            f'fill="{GREY}" text-anchor="middle">{_percent(tick)}</text>'
        )
    said = []
    for i, (label, rate) in enumerate(rates):
        y = 24 + row * i
        body.append(
            f'<text x="{left - 8}" y="{y + 16}" {FONT} font-size="17" fill="{TEXT}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        if rate.rate is None or rate.ci_low is None or rate.ci_high is None:
            body.append(
                f'<text x="{left + 4}" y="{y + 16}" {FONT} font-size="16" fill="{GREY}">'
                f"withheld (small numbers) or none yet</text>"
            )
            said.append(f"{label}: withheld or none yet")
            continue
        body.append(
            f'<rect x="{left}" y="{y + 2}" width="{span * rate.rate:.1f}" height="20" '
            f'fill="{BLUE}"/>'
        )
        low, high = left + span * rate.ci_low, left + span * rate.ci_high
        body.append(
            f'<line x1="{low:.1f}" y1="{y + 12}" x2="{high:.1f}" y2="{y + 12}" '
            f'stroke="{TEXT}" stroke-width="2"/>'
            f'<line x1="{low:.1f}" y1="{y + 5}" x2="{low:.1f}" y2="{y + 19}" stroke="{TEXT}" '
            f'stroke-width="2"/><line x1="{high:.1f}" y1="{y + 5}" x2="{high:.1f}" '
            f'y2="{y + 19}" stroke="{TEXT}" stroke-width="2"/>'
        )
        body.append(
            f'<text x="{min(high + 6, width - right + 4):.1f}" y="{y + 17}" {FONT} '
            f'font-size="16" fill="{TEXT}">{_percent(rate.rate)}</text>'
        )
        said.append(
            f"{label}: {_percent(rate.rate)} (95% interval {_percent(rate.ci_low)} to "
            f"{_percent(rate.ci_high)})"
        )
    return _svg(
        width,
        height,
        "Rates with their 95% intervals",
        "; ".join(said) + ". The black line across each bar is the 95% interval.",
        body,
        key,
    )


def trend_svg(points: Sequence[TrendPoint], threshold: int, key: str = "trend") -> str:
    """Referrals, starts and completions per quarter, as grouped bars."""
    left, bottom, top = 46, 58, 30
    width = max(420, 90 + 96 * len(points))
    height = 300
    values = [
        getattr(p, name)
        for p in points
        for name, _, _ in TREND_SERIES
        if isinstance(getattr(p, name), int)
    ]
    highest = max([threshold, *values]) if values else threshold
    step = _nice(math.ceil(highest / 4))
    steps = math.ceil(highest / step)
    scale = step * steps
    plot_height = height - top - bottom
    span = width - left - 16
    group = span / max(len(points), 1)
    bar = min(24.0, (group - 16) / 3)
    body = []
    for i in range(steps + 1):
        value = step * i
        y = top + plot_height * (1 - i / steps)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 16}" y2="{y:.1f}" stroke="{LIGHT}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" {FONT} font-size="15" fill="{GREY}" '
            f'text-anchor="end">{value:g}</text>'
        )
    for i, point in enumerate(points):
        x0 = left + group * i + (group - bar * 3) / 2
        for j, (name, _, colour) in enumerate(TREND_SERIES):
            value = getattr(point, name)
            x = x0 + bar * j
            if isinstance(value, int):
                h = plot_height * value / scale
                body.append(
                    f'<rect x="{x:.1f}" y="{top + plot_height - h:.1f}" width="{bar - 2:.1f}" '
                    f'height="{h:.1f}" fill="{colour}"/>'
                )
            elif value == WITHHELD:
                # Withheld beside a small count: no height at all, only the mark.
                body.append(
                    f'<text x="{x + bar / 2 - 1:.1f}" y="{top + plot_height - 3:.1f}" {FONT} '
                    f'font-size="13" fill="{TEXT}" text-anchor="middle">{escape(value)}</text>'
                )
            else:
                # Suppressed: an outline up to the threshold, never the count itself.
                h = plot_height * threshold / scale
                body.append(
                    f'<rect x="{x:.1f}" y="{top + plot_height - h:.1f}" width="{bar - 2:.1f}" '
                    f'height="{h:.1f}" fill="none" stroke="{colour}" stroke-dasharray="3 2"/>'
                    f'<text x="{x + bar / 2 - 1:.1f}" y="{top + plot_height - h - 3:.1f}" {FONT} '
                    f'font-size="13" fill="{TEXT}" text-anchor="middle">{escape(value)}</text>'
                )
        body.append(
            f'<text x="{left + group * (i + 0.5):.1f}" y="{top + plot_height + 18}" {FONT} '
            f'font-size="15" fill="{TEXT}" text-anchor="middle">{escape(point.quarter)}</text>'
        )
    for j, (_, label, colour) in enumerate(TREND_SERIES):
        x = left + 140 * j
        body.append(
            f'<rect x="{x}" y="{height - 24}" width="16" height="16" fill="{colour}"/>'
            f'<text x="{x + 22}" y="{height - 10}" {FONT} font-size="16" fill="{TEXT}">'
            f"{label}</text>"
        )
    body.append(
        f'<text x="{left}" y="16" {FONT} font-size="15" fill="{GREY}">Number in each quarter</text>'
    )
    said = "; ".join(
        f"{p.quarter}: {p.referrals} referrals, {p.started} started, {p.completed} completed"
        for p in points
    )
    return _svg(
        width,
        height,
        "Referrals, starts and completions per quarter",
        said
        + (
            f". Dashed outlines are counts under {threshold}, not drawn to scale; [c] marks a "
            "count withheld so that a small one cannot be worked out from a total."
            if threshold > 1
            else "."
        ),
        body,
        key,
    )


def _nice(highest: int) -> int:
    """A round step for the axis: 1, 2 or 5 times a power of ten, at least ``highest``."""
    power = 1
    while True:
        for step in (1, 2, 5):
            if step * power >= highest:
                return step * power
        power *= 10
