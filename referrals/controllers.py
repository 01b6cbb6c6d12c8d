"""HTTP routes for submitting, following and reading referrals."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.tables import Role
from referrals import reading, services
from referrals.intake import SUBMISSION_FIELDS
from referrals.rules import Status
from referrals.schemas import (
    EventCreate,
    ReferralAccepted,
    ReferralPage,
    ReferralView,
    TimelineEntry,
)

AnyUser = Request[Principal, Any, Any]


class ReferralController(Controller):
    path = "/referrals"
    tags = ["referrals"]

    @post(
        "/",
        guards=[access.requires(Role.referrer, Role.facilitator)],
        description="A JSON object with the fields: " + ", ".join(SUBMISSION_FIELDS) + ". "
        "Every check runs; a refused referral answers 422 listing every reason and keeps "
        "no personal details.",
    )
    async def submit(
        self, data: JSONBody[dict[str, Any]], request: AnyUser, state: State
    ) -> ReferralAccepted:
        """Submit a referral (referrers for their agency; facilitators for self-referrals)."""
        actor = access.current_user(request)
        return await services.submit_referral(data, actor, state.settings, today())

    @get(
        "/",
        guards=[access.requires(Role.referrer, Role.facilitator, Role.admin, Role.monitor)],
    )
    async def list_referrals(
        self,
        request: AnyUser,
        state: State,
        status: FromQuery[Status | None] = None,
        agency: FromQuery[UUID | None] = None,
        received_from: FromQuery[date | None] = None,
        received_to: FromQuery[date | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> ReferralPage:
        """Referrals newest first, in the caller's role's view."""
        filters = reading.ReferralFilters(status, agency, received_from, received_to)
        secret = purpose_key(state.settings, KeyPurpose.pseudonym)
        return await reading.list_referrals(
            access.current_user(request), filters, limit, offset, secret
        )

    @get(
        "/{referral_id:uuid}",
        guards=[access.requires(Role.referrer, Role.facilitator, Role.admin, Role.monitor)],
    )
    async def get_referral(
        self, referral_id: FromPath[UUID], request: AnyUser, state: State
    ) -> ReferralView:
        """One referral with its dated timeline, in the caller's role's view."""
        secret = purpose_key(state.settings, KeyPurpose.pseudonym)
        return await reading.get_referral(access.current_user(request), referral_id, secret)

    @post("/{referral_id:uuid}/events", guards=[access.requires(Role.facilitator, Role.admin)])
    async def record_event(
        self, referral_id: FromPath[UUID], data: JSONBody[EventCreate], request: AnyUser
    ) -> list[TimelineEntry]:
        """Move the referral on: contacted, engaged, started, completed, or an exit."""
        actor = access.current_user(request)
        return await services.record_event(referral_id, data, actor, today())
