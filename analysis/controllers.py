"""HTTP routes for contract monitors: quarterly figures, referral quality, reoffending."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from analysis import plots, rules, services
from analysis.formats import QUALITY_COLUMNS, flatten_quality, to_csv
from analysis.schemas import QualityOut, QuarterlyOut, RateOut, ReoffendingOut
from outcomes.schemas import FeedbackReport
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.openapi import docs
from programme.platform.quarters import Quarter
from programme.platform.tables import Role

From = Annotated[str | None, QueryParameter(name="from")]
To = Annotated[str | None, QueryParameter(name="to")]
Horizon = Annotated[int, QueryParameter(ge=1, le=rules.MAX_HORIZON_DAYS)]
AS_CSV = docs(also_answers={"text/csv": "with format=csv"})


def _rate(rate: services.Rate) -> RateOut:
    return RateOut(rate.numerator, rate.denominator, rate.rate, rate.ci_low, rate.ci_high)


async def _record_export(actor: access.SignedIn, report: str, start: Quarter, end: Quarter) -> None:
    await services.record_report_export(actor, report, start, end)


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [access.requires(Role.monitor, Role.admin)]

    @get(
        "/quarterly",
        opt=AS_CSV,
        responses={
            200: ResponseSpec(
                QuarterlyOut, description="The quarterly figures", generate_examples=False
            )
        },
    )
    async def quarterly(
        self,
        actor: access.SignedIn,
        first: From = None,
        last: To = None,
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response[Any]:
        """Referrals, returns, contact, engagement, starts and completions per UK quarter."""
        start, end = rules.default_range(first, last, today())
        report = await services.quarterly(start, end)
        await _record_export(actor, "quarterly", start, end)
        if format == "csv":
            return Response(to_csv(report.rows, services.QUARTERLY_COLUMNS), media_type="text/csv")
        return Response(
            QuarterlyOut(
                rows=report.rows,
                completion_rate=_rate(report.completion_rate),
                engagement_rate=_rate(report.engagement_rate),
                notes=services.QUARTERLY_NOTES,
            )
        )

    @get(
        "/referral-quality",
        opt=AS_CSV,
        responses={
            200: ResponseSpec(
                QualityOut, description="Referral quality per agency", generate_examples=False
            )
        },
    )
    async def referral_quality(
        self,
        actor: access.SignedIn,
        first: From = None,
        last: To = None,
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response[Any]:
        """Per agency and quarter: received, accepted, returned by reason, quality, engagement."""
        start, end = rules.default_range(first, last, today())
        rows = await services.referral_quality(start, end)
        await _record_export(actor, "referral-quality", start, end)
        if format == "csv":
            return Response(to_csv(flatten_quality(rows), QUALITY_COLUMNS), media_type="text/csv")
        return Response(QualityOut(rows=rows, notes=services.QUALITY_NOTES))

    @get("/victim-feedback")
    async def victim_feedback(
        self, state: State, first: From = None, last: To = None
    ) -> FeedbackReport:
        """Share of victims/survivors saying the abuse stopped or reduced, by quarter and stage."""
        start, end = rules.quarter_range(first, last)
        return await services.victim_feedback_report(start, end, state.settings.suppress_below)


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
