"""HTTP routes for programme delivery: settings, groups, sessions, the register."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from programme.delivery import schemas, services
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.errors import Conflict, InvalidInput, NotFound
from programme.platform.http_inputs import Limit, Offset
from programme.platform.openapi import docs
from programme.platform.paging import DEFAULT_LIMIT, Page, Paging
from programme.platform.tables import Role

STAFF = (Role.facilitator, Role.admin)


class ProgrammeController(Controller):
    path = "/programme"
    tags = ["programme"]

    @get("/settings", guards=[access.requires(Role.admin, Role.facilitator, Role.monitor)])
    async def get_settings(self) -> schemas.ProgrammeSettings:
        """The programme's length and completion rule."""
        return await services.programme_settings()

    @put("/settings", guards=[access.requires(Role.admin)])
    async def update_settings(
        self, data: JSONBody[schemas.ProgrammeSettingsUpdate], actor: access.SignedIn
    ) -> schemas.ProgrammeSettings:
        """Change the completion rule; commissioners set the numbers."""
        return await services.update_settings(data, actor)

    @get("/at-risk", guards=[access.requires(*STAFF)])
    async def at_risk(
        self, actor: access.SignedIn, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[schemas.AtRisk]:
        """Participants with the set number of unexcused absences in a row (own groups)."""
        absences = (await services.programme_settings()).at_risk_absences
        return await services.at_risk(actor, absences, Paging(limit, offset))

    @get("/waiting-list", guards=[access.requires(Role.facilitator, Role.admin, Role.monitor)])
    async def waiting_list(
        self, actor: access.SignedIn, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> schemas.WaitingList:
        """Engaged referrals without a group place, longest waiting first, a page of them;
        monitors see the counts only."""
        return await services.waiting_list(actor, today(), Paging(limit, offset))

    @post("/exit-reviews", guards=[access.requires(*STAFF)], opt=docs(raises=(Conflict, NotFound)))
    async def exit_review(
        self, data: JSONBody[schemas.ExitReviewCreate], actor: access.SignedIn
    ) -> schemas.ReferralProgress:
        """Record an exit review; completion follows when the register meets the rule."""
        return await services.record_exit_review(data, actor, today())


class GroupController(Controller):
    path = "/groups"
    tags = ["programme"]
    guards = [access.requires(*STAFF)]

    @post("/", opt=docs(raises=(Conflict,)))
    async def create_group(
        self, data: JSONBody[schemas.GroupCreate], actor: access.SignedIn
    ) -> schemas.Group:
        return await services.create_group(data, actor)

    @get("/")
    async def list_groups(
        self, actor: access.SignedIn, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[schemas.Group]:
        """Admins see every group; facilitators the groups they facilitate. Earliest first."""
        return await services.list_groups(actor, Paging(limit, offset))

    @get("/{group_id:uuid}")
    async def get_group(self, group_id: FromPath[UUID], actor: access.SignedIn) -> schemas.Group:
        await services.require_group_access(actor, group_id)
        return await services.get_group(group_id)

    @post("/{group_id:uuid}/members", opt=docs(raises=(Conflict,)))
    async def add_member(
        self, group_id: FromPath[UUID], data: JSONBody[schemas.MemberAdd], actor: access.SignedIn
    ) -> schemas.Group:
        """Give an engaged referral a place (or transfer a started one here)."""
        return await services.add_member(group_id, data, actor, today())

    @post(
        "/{group_id:uuid}/members/{referral_id:uuid}/remove",
        opt=docs(raises=(InvalidInput, NotFound)),
        status_code=200,
    )
    async def remove_member(
        self,
        group_id: FromPath[UUID],
        referral_id: FromPath[UUID],
        data: JSONBody[schemas.MemberRemove],
        actor: access.SignedIn,
    ) -> schemas.Group:
        """End a place in the group, with a reason; the person keeps their status (an
        engaged person is back on the waiting list). Refused before their last marked
        session."""
        return await services.remove_member(group_id, referral_id, data, actor, today())

    @post("/{group_id:uuid}/sessions", opt=docs(raises=(Conflict,)))
    async def add_session(
        self,
        group_id: FromPath[UUID],
        data: JSONBody[schemas.SessionCreate],
        actor: access.SignedIn,
    ) -> schemas.SessionSummary:
        return await services.add_session(group_id, data, actor)


class SessionController(Controller):
    path = "/sessions"
    tags = ["programme"]
    guards = [access.requires(*STAFF)]

    @get("/{session_id:uuid}/attendance")
    async def get_register(
        self, session_id: FromPath[UUID], actor: access.SignedIn
    ) -> schemas.Register:
        return await services.get_register(session_id, actor)

    @put("/{session_id:uuid}/attendance", opt=docs(raises=(Conflict,)))
    async def save_register(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[list[schemas.AttendanceMark]],
        actor: access.SignedIn,
        override_reason: Annotated[
            str | None,
            QueryParameter(
                description="Admins only: why this register changes a reported (locked) "
                "quarter; kept in the audit trail.",
                max_length=500,
            ),
        ] = None,
    ) -> schemas.Register:
        """Save the register; the same register twice changes nothing; corrections replace."""
        return await services.save_register(session_id, data, actor, today(), override_reason)

    @patch("/{session_id:uuid}", opt=docs(raises=(Conflict, InvalidInput, NotFound)))
    async def move_session(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[schemas.SessionMove],
        actor: access.SignedIn,
    ) -> schemas.SessionSummary:
        """Move a session to another day, with a reason; a session with marks was held and
        never moves into the future. Started and completed follow the register again."""
        return await services.move_session(session_id, data, actor, today())

    @post(
        "/{session_id:uuid}/cancel",
        opt=docs(raises=(Conflict, NotFound)),
        status_code=200,
    )
    async def cancel_session(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[schemas.SessionCancel],
        actor: access.SignedIn,
    ) -> schemas.SessionSummary:
        """Cancel a session, with a reason: it stays listed, its marks count for nothing,
        and started and completed follow the register again."""
        return await services.cancel_session(session_id, data, actor)
