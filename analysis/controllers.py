"""HTTP routes for contract monitors: quarterly figures, referral quality, reoffending."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from analysis import pack, plots, rules, services
from analysis.formats import (
    MEDIA_TYPES,
    XLSX,
    Download,
    csv_download,
    feedback_download,
    quality_download,
    quarterly_download,
    xlsx_download,
)
from analysis.schemas import GroupRatesOut, QualityOut, QuarterlyOut, RateOut, ReoffendingOut
from outcomes.schemas import FeedbackReport
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.openapi import docs
from programme.platform.tables import Role
from programme.platform.threads import off_loop

From = Annotated[str | None, QueryParameter(name="from")]
To = Annotated[str | None, QueryParameter(name="to")]
Horizon = Annotated[int, QueryParameter(ge=1, le=rules.MAX_HORIZON_DAYS)]
Format = Literal["json", "csv", "xlsx"]
By = Literal["agency", "local_authority"]
AS_FILES = docs(
    also_answers={
        "text/csv": "with format=csv: the tables, the definitions, the data cut-off",
        XLSX: "with format=xlsx: one sheet per table, then the definitions",
    }
)


def _rate(rate: services.Rate) -> RateOut:
    return RateOut(rate.numerator, rate.denominator, rate.rate, rate.ci_low, rate.ci_high)


async def _file(download: Download, fmt: str) -> Response[Any]:
    """A report as a download: named, so a browser saves it under that name."""
    if fmt == "csv":
        body: str | bytes = csv_download(download)
    else:
        body = await off_loop(xlsx_download, download)
    name = download.filename(fmt)
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [access.requires(Role.monitor, Role.admin)]

    @get(
        "/quarterly",
        opt=AS_FILES,
        responses={
            200: ResponseSpec(
                QuarterlyOut, description="The quarterly figures", generate_examples=False
            )
        },
    )
    async def quarterly(
        self,
        actor: access.SignedIn,
        state: State,
        first: From = None,
        last: To = None,
        format: FromQuery[Format] = "json",
        by: FromQuery[By | None] = None,
    ) -> Response[Any]:
        """Referrals, returns, contact, engagement, starts and completions per UK quarter;
        for the programme, or per agency or local authority (``by``). Counts from 1 to
        INSPIRE_SUPPRESS_BELOW - 1 are published as '<5'."""
        now = today()
        start, end = rules.default_range(first, last, now)
        threshold = state.settings.suppress_below
        report = await services.published_quarterly(
            await services.quarterly(start, end, by), threshold
        )
        await services.record_report_export(actor, "quarterly", start, end, format=format, by=by)
        notes = [*services.QUARTERLY_NOTES, *services.suppression_note(threshold)]
        if format != "json":
            return await _file(quarterly_download(report, start, end, now, notes), format)
        return Response(
            QuarterlyOut(
                rows=report.rows,
                completion_rate=_rate(report.completion_rate),
                engagement_rate=_rate(report.engagement_rate),
                notes=notes,
                by=by,
                group_rates=[
                    GroupRatesOut(g.group, _rate(g.completion_rate), _rate(g.engagement_rate))
                    for g in report.group_rates
                ],
                suppression_threshold=threshold,
            )
        )

    @get(
        "/referral-quality",
        opt=AS_FILES,
        responses={
            200: ResponseSpec(
                QualityOut, description="Referral quality per agency", generate_examples=False
            )
        },
    )
    async def referral_quality(
        self,
        actor: access.SignedIn,
        state: State,
        first: From = None,
        last: To = None,
        format: FromQuery[Format] = "json",
        by: FromQuery[By] = "agency",
    ) -> Response[Any]:
        """Per agency (or local authority) and quarter: received, accepted, returned by
        reason, quality, engagement; small counts published as '<5'."""
        now = today()
        start, end = rules.default_range(first, last, now)
        threshold = state.settings.suppress_below
        rows = await services.published_quality(
            await services.referral_quality(start, end, by), threshold
        )
        await services.record_report_export(
            actor, "referral-quality", start, end, format=format, by=by
        )
        notes = [*services.QUALITY_NOTES, *services.suppression_note(threshold)]
        if format != "json":
            return await _file(quality_download(rows, by, start, end, now, notes), format)
        return Response(QualityOut(rows=rows, notes=notes, by=by, suppression_threshold=threshold))

    @get(
        "/victim-feedback",
        opt=AS_FILES,
        responses={
            200: ResponseSpec(
                FeedbackReport, description="What victims say", generate_examples=False
            )
        },
    )
    async def victim_feedback(
        self,
        actor: access.SignedIn,
        state: State,
        first: From = None,
        last: To = None,
        format: FromQuery[Format] = "json",
        by: FromQuery[By | None] = None,
    ) -> Response[Any]:
        """Share of victims/survivors saying the abuse stopped or reduced, by quarter and
        stage (and by agency or local authority of the referral); small counts as '<5'."""
        start, end = rules.quarter_range(first, last)
        report = await services.victim_feedback_report(
            start, end, state.settings.suppress_below, by
        )
        await services.record_report_export(
            actor, "victim-feedback", start, end, format=format, by=by
        )
        if format != "json":
            return await _file(feedback_download(report, start, end, today()), format)
        return Response(report)

    @get(
        "/pack",
        opt=docs(
            also_answers={
                pack.FORMATS["pdf"]: "with format=pdf (the default): the pack to print",
                pack.FORMATS["html"]: "with format=html: the same pack as one HTML page",
            },
        ),
    )
    async def pack(
        self,
        actor: access.SignedIn,
        state: State,
        quarter: FromQuery[str | None] = None,
        format: FromQuery[Literal["pdf", "html"]] = "pdf",
    ) -> Response[bytes]:
        """The quarterly pack for a contract meeting: the quarter's and the year-to-date
        figures, rates with intervals, referral quality, the trend, victims' feedback, the
        reoffending comparisons in plain words, the definitions and the data cut-off.
        Aggregates only; counts under INSPIRE_SUPPRESS_BELOW shown as '<5'."""
        now = today()
        chosen = rules.pack_quarter(quarter, now)
        built, body = await pack.document(chosen, format, now, state.settings.suppress_below)
        await services.record_report_export(actor, "pack", chosen, chosen, format=format)
        return Response(
            body,
            media_type=pack.FORMATS[format],
            headers={
                "Content-Disposition": f'attachment; filename="{built.filename_stem}.{format}"'
            },
        )


class AnalysisController(Controller):
    path = "/analysis"
    tags = ["analysis"]
    guards = [access.requires(Role.monitor, Role.admin)]

    @get("/reoffending")
    async def reoffending(
        self,
        actor: access.SignedIn,
        state: State,
        horizon_days: Horizon = rules.HORIZON_DAYS,
        as_of: FromQuery[date | None] = None,
        group_by: FromQuery[str | None] = None,
        covariates: FromQuery[str | None] = None,
        landmark_days: Annotated[
            int | None, QueryParameter(ge=1, le=rules.MAX_HORIZON_DAYS)
        ] = None,
    ) -> ReoffendingOut:
        """Kaplan-Meier, log-rank, Cox, and for programme status the immortal-time corrected
        models (a time-varying Cox model and a landmark analysis)."""
        parsed = rules.analysis_request(
            horizon_days, as_of, group_by, covariates, landmark_days, today()
        )
        await services.record_analysis_export(actor, group_by)
        return await services.analyse(parsed, today(), state.settings.suppress_below)

    @get(
        ["/reoffending/plot.png", "/reoffending/plot.svg"],
        opt=docs(answers_by_extension=plots.FORMATS),
    )
    async def plot(
        self,
        request: Request,
        state: State,
        horizon_days: Horizon = rules.HORIZON_DAYS,
        as_of: FromQuery[date | None] = None,
        group_by: FromQuery[str | None] = None,
        landmark_days: Annotated[
            int | None, QueryParameter(ge=1, le=rules.MAX_HORIZON_DAYS)
        ] = None,
        naive: FromQuery[bool] = False,
    ) -> Response[bytes]:
        """The Kaplan-Meier curves with bands, the horizon and numbers at risk.

        By programme status: the landmark curves (immortal-time corrected); the naive
        curves from referral, titled as biased, only with naive=true."""
        fmt = "svg" if request.url.path.endswith(".svg") else "png"
        parsed = rules.analysis_request(horizon_days, as_of, group_by, None, landmark_days, today())
        image = await plots.reoffending_plot(
            parsed, today(), fmt, state.settings.suppress_below, naive
        )
        return Response(image, media_type=plots.FORMATS[fmt])
