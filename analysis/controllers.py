"""HTTP routes for contract monitors: quarterly figures, referral quality, reoffending."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, QueryParameter

from analysis import plots, reoffending, reports
from analysis.formats import flatten_quality, to_csv
from analysis.quarters import Quarter
from analysis.reports import QUARTERLY_COLUMNS, REASONS
from analysis.schemas import QualityOut, QuarterlyOut, RateOut, ReoffendingOut
from outcomes.controllers import quarter_range
from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.clock import today
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.tables import AuditAction, Role

AnyUser = Request[Principal, Any, Any]
From = Annotated[str | None, QueryParameter(name="from")]
To = Annotated[str | None, QueryParameter(name="to")]
QUALITY_COLUMNS = (
    "agency",
    "quarter",
    "received",
    "accepted",
    "returned",
    *REASONS,
    "mean_quality_score",
    "engaged",
    "share_engaged",
)


def default_range(first: str | None, last: str | None) -> tuple[Quarter, Quarter]:
    """The asked-for quarters; by default the last four up to the current one."""
    start, end = quarter_range(first, last)
    end = end or Quarter.of(today())
    if start is None:
        start = end.previous().previous().previous()
    if end < start:
        raise InvalidInput(errors=[FieldError("invalid", "to", "Comes before 'from'.")])
    return start, end


def _rate(rate: reports.Rate) -> RateOut:
    return RateOut(rate.numerator, rate.denominator, rate.rate, rate.ci_low, rate.ci_high)


def parse_request(
    horizon_days: int,
    as_of: date | None,
    group_by: str | None,
    covariates: str | None,
    landmark_days: int | None,
) -> reoffending.AnalysisRequest:
    names = tuple(c.strip() for c in (covariates or "").split(",") if c.strip())
    request = reoffending.AnalysisRequest(
        horizon_days, as_of, group_by or None, names, landmark_days
    )
    problems = reoffending.check_request(request, today())
    if problems:
        raise InvalidInput(errors=[FieldError("invalid", f, m) for f, m in problems])
    return request


async def _record_export(request: AnyUser, report: str, start: Quarter, end: Quarter) -> None:
    """Aggregate reports name no one, but who took which figures is still kept."""
    details = {"from": start.label, "to": end.label}
    await audit.record(access.current_user(request), AuditAction.export, "report", report, details)


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [access.requires(Role.monitor, Role.admin)]

    @get("/quarterly")
    async def quarterly(
        self,
        request: AnyUser,
        first: From = None,
        last: To = None,
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response[Any]:
        """Referrals, returns, contact, engagement, starts and completions per UK quarter."""
        start, end = default_range(first, last)
        report = await reports.quarterly(start, end)
        await _record_export(request, "quarterly", start, end)
        if format == "csv":
            return Response(to_csv(report.rows, QUARTERLY_COLUMNS), media_type="text/csv")
        return Response(
            QuarterlyOut(
                rows=report.rows,
                completion_rate=_rate(report.completion_rate),
                engagement_rate=_rate(report.engagement_rate),
                notes=reports.QUARTERLY_NOTES,
            )
        )

    @get("/referral-quality")
    async def referral_quality(
        self,
        request: AnyUser,
        first: From = None,
        last: To = None,
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response[Any]:
        """Per agency and quarter: received, accepted, returned by reason, quality, engagement."""
        start, end = default_range(first, last)
        rows = await reports.referral_quality(start, end)
        await _record_export(request, "referral-quality", start, end)
        if format == "csv":
            return Response(to_csv(flatten_quality(rows), QUALITY_COLUMNS), media_type="text/csv")
        return Response(QualityOut(rows=rows, notes=reports.QUALITY_NOTES))


class AnalysisController(Controller):
    path = "/analysis"
    tags = ["analysis"]
    guards = [access.requires(Role.monitor, Role.admin)]

    @get("/reoffending")
    async def reoffending(
        self,
        request: AnyUser,
        horizon_days: Annotated[int, QueryParameter(ge=1, le=3650)] = 182,
        as_of: FromQuery[date | None] = None,
        group_by: FromQuery[str | None] = None,
        covariates: FromQuery[str | None] = None,
        landmark_days: FromQuery[int | None] = None,
    ) -> ReoffendingOut:
        """Kaplan-Meier, log-rank, Cox, and for programme status the bias-aware models."""
        parsed = parse_request(horizon_days, as_of, group_by, covariates, landmark_days)
        await audit.record(
            access.current_user(request),
            AuditAction.export,
            "analysis",
            "reoffending",
            {"group_by": group_by},
        )
        return await reoffending.analyse(parsed, today())

    @get(["/reoffending/plot.png", "/reoffending/plot.svg"])
    async def plot(
        self,
        request: AnyUser,
        horizon_days: Annotated[int, QueryParameter(ge=1, le=3650)] = 182,
        as_of: FromQuery[date | None] = None,
        group_by: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """The Kaplan-Meier curves with bands, the horizon and numbers at risk."""
        fmt = "svg" if request.url.path.endswith(".svg") else "png"
        parsed = parse_request(horizon_days, as_of, group_by, None, None)
        image = await plots.reoffending_plot(parsed, today(), fmt)
        return Response(image, media_type=plots.FORMATS[fmt])
