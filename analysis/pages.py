"""The contract monitors' web pages: the dashboard, report downloads, the reoffending page.

Each page calls the services the API's report routes call (``services.dashboard`` puts
the dashboard's figures in one object, which the quarterly pack reuses), and publishes
them the same way: no count from 1 to ``INSPIRE_SUPPRESS_BELOW`` - 1. The forms are
GET forms over quarters, groupings and model options only: nothing personal is ever in
an address. Every figure taken away, on screen or as a file, is in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from markupsafe import Markup

from analysis import charts, pack, plots, reading, rules, services
from analysis.formats import (
    MEDIA_TYPES,
    Download,
    csv_download,
    feedback_download,
    quality_download,
    quarterly_download,
    xlsx_download,
)
from analysis.survival import AnalysisError
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.quarters import Quarter, quarters_between
from programme.platform.tables import Role
from programme.platform.threads import off_loop
from programme.platform.web import browser

TEMPLATES = Path(__file__).resolve().parent / "templates"

From = Annotated[str | None, QueryParameter(name="from")]
To = Annotated[str | None, QueryParameter(name="to")]

MONITORS = access.requires(Role.monitor, Role.admin)

DASHBOARD = "/monitoring"
REOFFENDING = "/monitoring/reoffending"
DOWNLOADS = "/monitoring/download"
PACK = "/monitoring/pack"

REPORTS = {
    "quarterly": "Quarterly figures",
    "referral-quality": "Referral quality",
    "victim-feedback": "What victims and survivors say",
}
BREAKDOWNS = {
    "": "The programme as a whole",
    **{b: f"By {b.replace('_', ' ')}" for b in services.BY},
}
YEARS_OFFERED = 8
"""How many financial years back the quarter lists go."""

GROUPINGS = {
    "": "Everyone together",
    "engaged": "Whether they engaged",
    "completed": "Whether they completed",
    **{g: g.replace("_", " ").capitalize() for g in rules.BASELINE_GROUPS},
}


def _quarters_offered(now: date) -> list[str]:
    current = Quarter.of(now)
    first = Quarter(current.year - YEARS_OFFERED + 1, 1)
    return [q.label for q in quarters_between(first, current)]


def _range(first: str | None, last: str | None, now: date) -> tuple[Quarter, Quarter]:
    """The asked-for quarters, as the API reads them (its problems, named by field)."""
    return rules.default_range(first or None, last or None, now)


# --- the dashboard ---


@get(DASHBOARD, guards=[MONITORS], opt={browser.NAV: "Dashboard", "nav_order": 60})
async def dashboard_page(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    first: From = None,
    last: To = None,
) -> Template:
    """The quarterly table and rates, the trend, referral quality per agency, the waiting
    list and victims' feedback for a range of quarters (the last four by default)."""
    now = today()
    offered = _quarters_offered(now)
    try:
        start, end = _range(first, last, now)
    except InvalidInput as error:
        fallback_start, fallback_end = rules.default_range(None, None, now)
        return browser.page(
            request,
            "analysis/dashboard.html",
            status_code=422,
            errors=list(error.errors),
            title="Dashboard",
            offered=offered,
            chosen=(first or fallback_start.label, last or fallback_end.label),
            board=None,
        )
    threshold = state.settings.suppress_below
    board = await services.dashboard(start, end, now, threshold)
    await services.record_report_export(actor, "dashboard", start, end, format="html")
    rates = [
        ("Completion", board.quarterly.completion_rate),
        ("Engagement", board.quarterly.engagement_rate),
    ]
    return browser.page(
        request,
        "analysis/dashboard.html",
        title="Dashboard",
        offered=offered,
        chosen=(start.label, end.label),
        board=board,
        rates=rates,
        rates_chart=Markup(charts.rates_svg(rates)),  # noqa: S704 - our own SVG, values escaped
        trend_chart=Markup(charts.trend_svg(board.trend, threshold)),  # noqa: S704
        columns=services.QUARTERLY_COLUMNS,
        reasons=services.queries.REASONS,
        reports=REPORTS,
        breakdowns=BREAKDOWNS,
    )


@get(DOWNLOADS, guards=[MONITORS])
async def download(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    report: FromQuery[str] = "quarterly",
    first: From = None,
    last: To = None,
    by: FromQuery[str | None] = None,
    format: FromQuery[str] = "xlsx",
) -> Response[Any]:
    """A report as a CSV file or an Excel workbook: what the API's report routes give."""
    problems = []
    if report not in REPORTS:
        problems.append(FieldError("invalid", "report", f"Expected one of: {', '.join(REPORTS)}."))
    if by and by not in services.BY:
        problems.append(FieldError("invalid", "by", f"Expected one of: {', '.join(services.BY)}."))
    if format not in MEDIA_TYPES:
        problems.append(FieldError("invalid", "format", "Expected one of: csv, xlsx."))
    if problems:
        raise InvalidInput(errors=problems)
    now = today()
    start, end = _range(first, last, now)
    threshold = state.settings.suppress_below
    grouping = by or None
    built: Download
    if report == "quarterly":
        published = await services.published_quarterly(
            await services.quarterly(start, end, grouping), threshold
        )
        notes = [*services.QUARTERLY_NOTES, *services.suppression_note(threshold)]
        built = quarterly_download(published, start, end, now, notes)
    elif report == "referral-quality":
        grouping = grouping or "agency"
        rows = await services.published_quality(
            await services.referral_quality(start, end, grouping), threshold
        )
        notes = [*services.QUALITY_NOTES, *services.suppression_note(threshold)]
        built = quality_download(rows, grouping, start, end, now, notes)
    else:
        feedback = await services.victim_feedback_report(start, end, threshold, grouping)
        built = feedback_download(feedback, start, end, now)
    await services.record_report_export(actor, report, start, end, format=format, by=grouping)
    body: str | bytes = (
        csv_download(built) if format == "csv" else await off_loop(xlsx_download, built)
    )
    return Response(
        body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{built.filename(format)}"'},
    )


@get(PACK, guards=[MONITORS])
async def quarterly_pack(
    actor: access.SignedIn,
    state: State,
    quarter: FromQuery[str | None] = None,
    format: FromQuery[str] = "pdf",
) -> Response[bytes]:
    """The quarterly pack from the dashboard: what ``GET /reports/pack`` gives; a field
    left empty means the current quarter, as a PDF."""
    now = today()
    quarter = quarter or Quarter.of(now).label
    format = format or "pdf"
    problems = []
    if format not in pack.FORMATS:
        problems.append(FieldError("invalid", "format", "Expected one of: pdf, html."))
    try:
        chosen = rules.pack_quarter(quarter, now)
    except InvalidInput as error:
        problems.extend(error.errors)
    if problems:
        raise InvalidInput(errors=problems)
    built, body = await pack.document(chosen, format, now, state.settings.suppress_below)
    await services.record_report_export(actor, "pack", chosen, chosen, format=format)
    return Response(
        body,
        media_type=pack.FORMATS[format],
        headers={"Content-Disposition": f'attachment; filename="{built.filename_stem}.{format}"'},
    )


# --- reoffending ---


@dataclass(frozen=True)
class Controls:
    """The reoffending form as typed (strings), so a problem shows what was entered."""

    horizon_days: str
    as_of: str
    group_by: str
    covariates: tuple[str, ...]
    landmark_days: str

    def query(self) -> str:
        from urllib.parse import urlencode

        pairs = [
            (k, v)
            for k, v in (
                ("horizon_days", self.horizon_days),
                ("as_of", self.as_of),
                ("group_by", self.group_by),
                ("landmark_days", self.landmark_days),
            )
            if v
        ]
        return urlencode(pairs)


def _parse(controls: Controls, now: date) -> rules.AnalysisRequest:
    """The analysis request, or every problem with the form (the API's own checks)."""
    problems = []
    horizon = rules.HORIZON_DAYS
    if controls.horizon_days:
        try:
            horizon = int(controls.horizon_days)
        except ValueError:
            problems.append(FieldError("invalid", "horizon_days", "Enter the days as a number."))
    landmark = None
    if controls.landmark_days:
        try:
            landmark = int(controls.landmark_days)
        except ValueError:
            problems.append(FieldError("invalid", "landmark_days", "Enter the day as a number."))
    cut_off = None
    if controls.as_of:
        try:
            cut_off = date.fromisoformat(controls.as_of)
        except ValueError:
            problems.append(FieldError("invalid", "as_of", "Enter the date as YYYY-MM-DD."))
    if problems:
        raise InvalidInput(errors=problems)
    return rules.analysis_request(
        horizon, cut_off, controls.group_by or None, ",".join(controls.covariates), landmark, now
    )


def _controls(
    horizon_days: str | None,
    as_of: str | None,
    group_by: str | None,
    covariates: list[str] | None,
    landmark_days: str | None,
) -> Controls:
    return Controls(
        (horizon_days or "").strip(),
        (as_of or "").strip(),
        (group_by or "").strip(),
        tuple(c for c in (covariates or []) if c),
        (landmark_days or "").strip(),
    )


@get(REOFFENDING, guards=[MONITORS], opt={browser.NAV: "Reoffending", "nav_order": 61})
async def reoffending_page(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    horizon_days: FromQuery[str | None] = None,
    as_of: FromQuery[str | None] = None,
    group_by: FromQuery[str | None] = None,
    covariates: FromQuery[list[str] | None] = None,
    landmark_days: FromQuery[str | None] = None,
) -> Template:
    """Who reoffended after referral: the curves and the table per group, the naive and the
    immortal-time corrected comparisons side by side, and what they can and cannot show."""
    controls = _controls(horizon_days, as_of, group_by, covariates, landmark_days)
    now = today()
    context: dict[str, Any] = {
        "title": "Reoffending after referral",
        "controls": controls,
        "groupings": GROUPINGS,
        "covariate_choices": rules.COVARIATES,
        "result": None,
        "unfitted": None,
    }
    try:
        parsed = _parse(controls, now)
    except InvalidInput as error:
        return browser.page(
            request,
            "analysis/reoffending.html",
            status_code=422,
            errors=list(error.errors),
            **context,
        )
    await services.record_analysis_export(actor, parsed.group_by)
    try:
        result = await services.analyse(parsed, now, state.settings.suppress_below)
    except AnalysisError as error:
        # A model that cannot be fitted on this data is news, not a broken page.
        context["unfitted"] = str(error)
        return browser.page(request, "analysis/reoffending.html", **context)
    except InvalidInput as error:
        return browser.page(
            request, "analysis/reoffending.html", status_code=422, errors=list(error.errors),
            **context,
        )  # fmt: skip
    context.update(
        result=result,
        reading=reading.reading(result),
        plot_query=controls.query(),
    )
    return browser.page(request, "analysis/reoffending.html", **context)


@get(REOFFENDING + "/plot.svg", guards=[MONITORS])
async def reoffending_plot(
    state: State,
    horizon_days: FromQuery[str | None] = None,
    as_of: FromQuery[str | None] = None,
    group_by: FromQuery[str | None] = None,
    landmark_days: FromQuery[str | None] = None,
) -> Response[bytes]:
    """The page's picture: the curves drawn by ``plots.reoffending_plot``."""
    controls = _controls(horizon_days, as_of, group_by, None, landmark_days)
    parsed = _parse(controls, today())
    image = await plots.reoffending_plot(parsed, today(), "svg", state.settings.suppress_below)
    return Response(image, media_type=plots.FORMATS["svg"])


PAGES = [dashboard_page, download, quarterly_pack, reoffending_page, reoffending_plot]
