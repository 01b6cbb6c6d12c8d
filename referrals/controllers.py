"""HTTP routes for submitting, following and reading referrals."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter

from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.errors import Conflict, InvalidInput, NotFound
from programme.platform.http_inputs import Limit, Offset
from programme.platform.openapi import docs
from programme.platform.paging import DEFAULT_LIMIT, Paging
from programme.platform.tables import Role
from referrals import services
from referrals.rules import Status
from referrals.schemas import (
    EventCreate,
    ReferralAccepted,
    ReferralCorrection,
    ReferralHistory,
    ReferralPage,
    ReferralSearch,
    ReferralSubmission,
    ReferralView,
    ReturnedReferralView,
    TimelineEntry,
    VoidRequest,
)
from referrals.services import OutcomesHooks


class ReferralController(Controller):
    path = "/referrals"
    tags = ["referrals"]

    @post(
        "/",
        guards=[access.requires(Role.referrer, Role.facilitator)],
        opt=docs(body=ReferralSubmission, raises=(Conflict,)),
        description="Every check runs; a refused referral answers 422 listing every reason and "
        "keeps no personal details.",
    )
    async def submit(
        self,
        data: JSONBody[dict[str, Any]],
        actor: access.SignedIn,
        state: State,
        outcomes: NamedDependency[OutcomesHooks],
    ) -> ReferralAccepted:
        """Submit a referral (referrers for their agency; facilitators for self-referrals)."""
        return await services.submit_referral(data, actor, state.settings, today(), outcomes)

    @get(
        "/",
        guards=[access.requires(Role.referrer, Role.facilitator, Role.admin, Role.monitor)],
    )
    async def list_referrals(
        self,
        actor: access.SignedIn,
        state: State,
        status: FromQuery[Status | None] = None,
        agency: FromQuery[UUID | None] = None,
        received_from: FromQuery[date | None] = None,
        received_to: FromQuery[date | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> ReferralPage:
        """Referrals newest first, in the caller's role's view."""
        filters = services.ReferralFilters(status, agency, received_from, received_to)
        secret = purpose_key(state.settings, KeyPurpose.pseudonym)
        return await services.list_referrals(actor, filters, limit, offset, secret)

    @post(
        "/search",
        status_code=200,
        guards=[access.requires(Role.referrer, Role.facilitator, Role.admin, Role.victim_worker)],
    )
    async def search(
        self,
        data: JSONBody[ReferralSearch],
        actor: access.SignedIn,
        state: State,
        outcomes: NamedDependency[OutcomesHooks],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> ReferralPage:
        """Find referrals by reference, name or date of birth (every term given must match),
        newest first, in the caller's view; audited. Referrers: by reference only, own agency.
        Victim workers: among the referrals of the victims they support."""
        secret = purpose_key(state.settings, KeyPurpose.pseudonym)
        paging = Paging(limit, offset)
        return await services.search_referrals(actor, data, paging, secret, outcomes)

    @get(
        "/{referral_id:uuid}",
        guards=[access.requires(Role.referrer, Role.facilitator, Role.admin, Role.monitor)],
    )
    async def get_referral(
        self,
        referral_id: FromPath[UUID],
        actor: access.SignedIn,
        state: State,
        outcomes: NamedDependency[OutcomesHooks],
    ) -> ReferralView:
        """One referral with its dated timeline, in the caller's role's view."""
        secret = purpose_key(state.settings, KeyPurpose.pseudonym)
        return await services.get_referral(actor, referral_id, secret, outcomes)

    @post(
        "/{referral_id:uuid}/events",
        guards=[access.requires(Role.facilitator, Role.admin)],
        opt=docs(raises=(Conflict,)),
    )
    async def record_event(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[EventCreate],
        actor: access.SignedIn,
        state: State,
    ) -> list[TimelineEntry]:
        """Move the referral on: contacted, engaged, started, completed, or an exit."""
        return await services.record_event(
            referral_id, data, actor, today(), state.settings.backdate_days
        )

    @patch(
        "/{referral_id:uuid}",
        guards=[access.requires(Role.facilitator, Role.admin)],
        opt=docs(body=ReferralCorrection, raises=(Conflict, NotFound, InvalidInput)),
        description="The intake rules run on the corrected record and every problem is "
        "reported at once; a new name, date of birth or phone runs the same-person check "
        "again (409 as on submission). The earlier values and the reason are kept.",
    )
    async def correct(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[dict[str, Any]],
        actor: access.SignedIn,
        state: State,
        outcomes: NamedDependency[OutcomesHooks],
    ) -> ReferralView:
        """Correct a referral's details (spelling, phone, date of birth, risk, notes, ...)."""
        await services.correct_referral(referral_id, data, actor, state.settings, today())
        secret = purpose_key(state.settings, KeyPurpose.pseudonym)
        return await services.get_referral(actor, referral_id, secret, outcomes)

    @get(
        "/{referral_id:uuid}/history",
        guards=[access.requires(Role.facilitator, Role.admin)],
        opt=docs(raises=(NotFound,)),
    )
    async def history(self, referral_id: FromPath[UUID], actor: access.SignedIn) -> ReferralHistory:
        """Every correction (earlier and new values, why, who, when) and every voided step."""
        return await services.referral_history(referral_id, actor)

    @post(
        "/{referral_id:uuid}/events/{event_id:int}/void",
        guards=[access.requires(Role.facilitator, Role.admin)],
        opt=docs(raises=(Conflict, NotFound)),
        status_code=200,
    )
    async def void_event(
        self,
        referral_id: FromPath[UUID],
        event_id: Annotated[int, PathParameter(ge=1, le=2**63 - 1)],
        data: JSONBody[VoidRequest],
        actor: access.SignedIn,
    ) -> list[TimelineEntry]:
        """Void a mistaken step: it stays, struck through, and counts for nothing; the
        status follows from the steps that remain."""
        return await services.void_event(
            referral_id, event_id, data.reason, data.override_reason, actor, today()
        )


class ReturnedReferralController(Controller):
    path = "/returned-referrals"
    tags = ["referrals"]
    guards = [access.requires(Role.referrer, Role.admin)]

    @get("/{returned_id:uuid}")
    async def get_returned_referral(
        self, returned_id: FromPath[UUID], actor: access.SignedIn
    ) -> ReturnedReferralView:
        """A refused referral: reasons, date, agency; nothing about the person. Its own
        agency's referrers and admins."""
        return await services.get_returned_referral(actor, returned_id)
