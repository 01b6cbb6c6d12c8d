"""HTTP routes for victims/survivors (victim workers only), their feedback report,
and the reoffending import."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from analysis.quarters import Quarter
from outcomes import reoffending, reports, schemas, services
from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.tables import Role

AnyUser = Request[Principal, Any, Any]


class VictimController(Controller):
    """Victims'/survivors' records: victim workers, and admins (audited). Nobody else."""

    path = "/"
    tags = ["victims"]
    guards = [access.requires(Role.victim_worker, Role.admin)]

    @get("/referrals/{referral_id:uuid}/victims")
    async def list_victims(
        self, referral_id: FromPath[UUID], request: AnyUser
    ) -> list[schemas.Victim]:
        return await services.list_victims(referral_id, access.current_user(request))

    @post("/referrals/{referral_id:uuid}/victims")
    async def add_victim(
        self, referral_id: FromPath[UUID], data: JSONBody[dict[str, Any]], request: AnyUser
    ) -> schemas.Victim:
        """Fields: first_name, last_name, phone, relationship, consent_to_contact,
        consent_obtained_on."""
        return await services.add_victim(referral_id, data, access.current_user(request), today())

    @get("/victims/{victim_id:uuid}")
    async def get_victim(self, victim_id: FromPath[UUID], request: AnyUser) -> schemas.Victim:
        return await services.get_victim(victim_id, access.current_user(request))

    @post("/victims/{victim_id:uuid}/consent", guards=[access.requires(Role.victim_worker)])
    async def change_consent(
        self, victim_id: FromPath[UUID], data: JSONBody[schemas.ConsentChange], request: AnyUser
    ) -> schemas.Victim:
        """Record consent to contact given or refused, or withdraw it."""
        actor = access.current_user(request)
        return await services.change_consent(victim_id, data, actor, today())

    @post("/victims/{victim_id:uuid}/feedback", guards=[access.requires(Role.victim_worker)])
    async def record_feedback(
        self, victim_id: FromPath[UUID], data: JSONBody[schemas.FeedbackCreate], request: AnyUser
    ) -> schemas.Feedback:
        """One feedback per stage; the same stage again replaces it (audited)."""
        actor = access.current_user(request)
        return await services.record_feedback(victim_id, data, actor, today())

    @get("/victims/{victim_id:uuid}/feedback")
    async def list_feedback(
        self, victim_id: FromPath[UUID], request: AnyUser
    ) -> list[schemas.Feedback]:
        return await services.list_feedback(victim_id, access.current_user(request))

    @get("/victims/{victim_id:uuid}/progress", guards=[access.requires(Role.victim_worker)])
    async def progress(
        self, victim_id: FromPath[UUID], request: AnyUser
    ) -> schemas.PerpetratorProgress:
        """The referred person's programme status and disengagement/at-risk alerts."""
        return await services.perpetrator_progress(victim_id, access.current_user(request))


def quarter_range(first: str | None, last: str | None) -> tuple[Quarter | None, Quarter | None]:
    """Parse ?from=&to= quarter labels, reporting both problems at once."""
    problems, parsed = [], []
    for name, label in (("from", first), ("to", last)):
        try:
            parsed.append(Quarter.parse(label) if label else None)
        except ValueError as exc:
            problems.append(FieldError("invalid", name, str(exc)))
            parsed.append(None)
    if not problems and parsed[0] and parsed[1] and parsed[1] < parsed[0]:
        problems.append(FieldError("invalid", "to", "Comes before 'from'."))
    if problems:
        raise InvalidInput(errors=problems)
    return parsed[0], parsed[1]


class VictimFeedbackReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [access.requires(Role.monitor, Role.admin)]

    @get("/victim-feedback")
    async def victim_feedback(
        self,
        state: State,
        first: Annotated[str | None, QueryParameter(name="from")] = None,
        last: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> schemas.FeedbackReport:
        """Share of victims/survivors saying the abuse stopped or reduced, by quarter and stage."""
        start, end = quarter_range(first, last)
        return await reports.victim_feedback_report(start, end, state.settings.suppress_below)


class ReoffendingImportController(Controller):
    path = "/imports"
    tags = ["imports"]
    guards = [access.requires(Role.admin)]

    @post("/reoffending")
    async def import_reoffending(
        self, request: AnyUser, state: State, skip_invalid: FromQuery[bool] = False
    ) -> Response[schemas.ReoffenceImportReport]:
        """Import police-recorded incidents (CSV body); 422 listing every row if none imported."""
        report = await reoffending.import_reoffending(
            await request.body(), access.current_user(request),
            purpose_key(state.settings, KeyPurpose.import_fingerprint), today(),
            skip_invalid=skip_invalid,
        )  # fmt: skip
        nothing_written = bool(report.errors) and not skip_invalid
        return Response(report, status_code=422 if nothing_written else 200)
