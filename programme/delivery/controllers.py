"""HTTP routes for programme delivery: settings, groups, sessions, the register."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, JSONBody

from programme.delivery import register, schemas, services
from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.tables import Role

AnyUser = Request[Principal, Any, Any]
STAFF = (Role.facilitator, Role.admin)


class ProgrammeController(Controller):
    path = "/programme"
    tags = ["programme"]

    @get("/settings", guards=[access.requires(Role.admin, Role.facilitator, Role.monitor)])
    async def get_settings(self) -> schemas.ProgrammeSettings:
        """The programme's length and completion rule."""
        return await services.get_settings()

    @put("/settings", guards=[access.requires(Role.admin)])
    async def update_settings(
        self, data: JSONBody[schemas.ProgrammeSettingsUpdate], request: AnyUser
    ) -> schemas.ProgrammeSettings:
        """Change the completion rule; commissioners set the numbers."""
        return await services.update_settings(data, access.current_user(request))

    @get("/at-risk", guards=[access.requires(*STAFF)])
    async def at_risk(self, request: AnyUser) -> list[schemas.AtRisk]:
        """Participants with the set number of unexcused absences in a row (own groups)."""
        limit = (await services.get_settings()).at_risk_absences
        return await services.at_risk(access.current_user(request), limit)

    @get("/waiting-list", guards=[access.requires(Role.facilitator, Role.admin, Role.monitor)])
    async def waiting_list(self, request: AnyUser) -> schemas.WaitingList:
        """Engaged referrals without a group place; monitors see the counts only."""
        return await services.waiting_list(access.current_user(request), today())

    @post("/exit-reviews", guards=[access.requires(*STAFF)])
    async def exit_review(
        self, data: JSONBody[schemas.ExitReviewCreate], request: AnyUser
    ) -> schemas.ReferralProgress:
        """Record an exit review; completion follows when the register meets the rule."""
        return await register.record_exit_review(data, access.current_user(request), today())


class GroupController(Controller):
    path = "/groups"
    tags = ["programme"]
    guards = [access.requires(*STAFF)]

    @post("/")
    async def create_group(
        self, data: JSONBody[schemas.GroupCreate], request: AnyUser
    ) -> schemas.Group:
        return await services.create_group(data, access.current_user(request))

    @get("/")
    async def list_groups(self, request: AnyUser) -> list[schemas.Group]:
        """Admins see every group; facilitators the groups they facilitate."""
        return await services.list_groups(access.current_user(request))

    @get("/{group_id:uuid}")
    async def get_group(self, group_id: FromPath[UUID], request: AnyUser) -> schemas.Group:
        await services.require_group_access(access.current_user(request), group_id)
        return await services.get_group(group_id)

    @post("/{group_id:uuid}/members")
    async def add_member(
        self, group_id: FromPath[UUID], data: JSONBody[schemas.MemberAdd], request: AnyUser
    ) -> schemas.Group:
        """Give an engaged referral a place (or transfer a started one here)."""
        return await services.add_member(group_id, data, access.current_user(request), today())

    @post("/{group_id:uuid}/sessions")
    async def add_session(
        self, group_id: FromPath[UUID], data: JSONBody[schemas.SessionCreate], request: AnyUser
    ) -> schemas.SessionSummary:
        return await services.add_session(group_id, data, access.current_user(request))


class SessionController(Controller):
    path = "/sessions"
    tags = ["programme"]
    guards = [access.requires(*STAFF)]

    @get("/{session_id:uuid}/attendance")
    async def get_register(self, session_id: FromPath[UUID], request: AnyUser) -> schemas.Register:
        return await register.get_register(session_id, access.current_user(request))

    @put("/{session_id:uuid}/attendance")
    async def save_register(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[list[schemas.AttendanceMark]],
        request: AnyUser,
    ) -> schemas.Register:
        """Save the register; the same register twice changes nothing; corrections replace."""
        actor = access.current_user(request)
        return await register.save_register(session_id, data, actor, today())
