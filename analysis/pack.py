"""The quarterly pack: one document a commissioner reads at a contract meeting.

For one UK financial quarter: the quarter's and the year-to-date table, the rates with
their 95% intervals, referral quality by agency, the trend, victims' feedback, the
reoffending figure with its caveat and its comparisons in plain words, the definitions
used and the data cut-off. Laid out like the council's own progress reports: numbered
sections, a cover block saying what period and what data.

Every figure comes from ``services.dashboard`` (already published: no count from 1 to
``INSPIRE_SUPPRESS_BELOW`` - 1) and the reoffending analysis the monitors' page uses,
worded by ``reading``: the pack says what the dashboard and the page say. It holds
aggregates only, so no name, date of birth or phone number can be in it.

One HTML document, self-contained (its style and pictures inside it, so the saved file
prints as it was sent); the PDF is that same HTML laid out by WeasyPrint, which needs no
browser and no network, and numbers the pages.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import jinja2
from markupsafe import Markup

from analysis import charts, plots, reading, rules, services
from analysis.schemas import ReoffendingOut
from programme.platform.errors import InvalidInput
from programme.platform.quarters import Quarter
from programme.platform.threads import off_loop

FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
TEMPLATES = Path(__file__).resolve().parent / "templates"
REOFFENDING_BY = "engaged"
"""The pack compares people by engagement: the contract's own measure, and the one whose
naive figures councils publish (so the pack shows the fair ones beside them)."""


@dataclass(frozen=True)
class Reoffending:
    result: ReoffendingOut | None
    reading: reading.Reading | None
    plot_svg: bytes | None
    unfitted: str | None
    """Why the figures cannot be worked out on this data (None when they could)."""


@dataclass(frozen=True)
class Pack:
    quarter: Quarter
    generated_on: date
    data_cut_off: date
    suppression_threshold: int
    this_quarter: services.Dashboard
    year_to_date: services.Dashboard
    """From the financial year's Q1 to the quarter: its rows are the year's quarters."""
    trend: list[services.TrendPoint]
    """The four quarters up to the pack's (the dashboard's default range)."""
    reoffending: Reoffending

    @property
    def filename_stem(self) -> str:
        return "inspire-pack-" + self.quarter.label.replace(" ", "-")


async def _reoffending(cut_off: date, today: date, threshold: int) -> Reoffending:
    """The monitors' reoffending analysis by engagement, to the pack's cut-off or the
    latest police extract if that is earlier (past it, days would count as offence-free)."""
    latest = (await services.data_cut_off(None, today)).latest_extract
    as_of = min(cut_off, latest) if latest else cut_off
    try:
        request = rules.analysis_request(
            rules.HORIZON_DAYS, as_of, REOFFENDING_BY, None, None, today
        )
        result = await services.analyse(request, today, threshold)
    except InvalidInput as error:  # AnalysisError among them: the data cannot support it
        return Reoffending(None, None, None, "; ".join(e.message for e in error.errors))
    try:
        plot: bytes | None = await plots.reoffending_plot(request, today, "svg", threshold)
    except InvalidInput:
        plot = None  # the figures and their words stand without the picture
    return Reoffending(result, reading.reading(result), plot, None)


async def build(quarter: Quarter, today: date, threshold: int) -> Pack:
    """The pack's figures for ``quarter``, as of ``today``."""
    this_quarter = await services.dashboard(quarter, quarter, today, threshold)
    year_to_date = await services.dashboard(Quarter(quarter.year, 1), quarter, today, threshold)
    trend_from = quarter.previous().previous().previous()
    trend = services.trend_points(
        await services.published_quarterly(await services.quarterly(trend_from, quarter), threshold)
    )
    return Pack(
        quarter=quarter,
        generated_on=today,
        data_cut_off=this_quarter.data_cut_off,
        suppression_threshold=threshold,
        this_quarter=this_quarter,
        year_to_date=year_to_date,
        trend=trend,
        reoffending=await _reoffending(this_quarter.data_cut_off, today, threshold),
    )


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def render_html(pack: Pack) -> str:
    """The pack as one self-contained, printable HTML document."""
    charts_of_rates = {
        key: Markup(  # noqa: S704 - our own SVG, values escaped
            charts.rates_svg(
                [
                    ("Completion", board.quarterly.completion_rate),
                    ("Engagement", board.quarterly.engagement_rate),
                ],
                key=f"pack-rates-{key}",
            )
        )
        for key, board in (("quarter", pack.this_quarter), ("year", pack.year_to_date))
    }
    plot = pack.reoffending.plot_svg
    return _environment.get_template("analysis/pack.html").render(
        pack=pack,
        columns=services.QUARTERLY_COLUMNS[:-1],
        reasons=services.queries.REASONS,
        rates_charts=charts_of_rates,
        trend_chart=Markup(  # noqa: S704 - our own SVG, values escaped
            charts.trend_svg(pack.trend, pack.suppression_threshold, key="pack-trend")
        ),
        plot_src=("data:image/svg+xml;base64," + base64.b64encode(plot).decode() if plot else None),
    )


def render_pdf(html: str) -> bytes:
    """The same HTML laid out on A4 pages (slow: seconds of CPU, so run off the loop)."""
    import weasyprint  # a heavy import, needed only when a PDF is asked for

    # The document carries its pictures as data: addresses; nothing else is ever fetched,
    # from the network or the server's files, whatever a text in it might say.
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()


async def document(quarter: Quarter, fmt: str, today: date, threshold: int) -> tuple[Pack, bytes]:
    """The pack for ``quarter`` as HTML or PDF bytes, built off the event loop."""
    pack = await build(quarter, today, threshold)
    html = await off_loop(render_html, pack)
    if fmt == "pdf":
        return pack, await off_loop(render_pdf, html)
    return pack, html.encode()
