"""HTTP routes for victims/survivors (victim workers only) and their feedback report."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.params import FromPath, JSONBody

from outcomes import schemas, services
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.errors import Conflict, InvalidInput, NotFound
from programme.platform.http_inputs import Limit, Offset
from programme.platform.openapi import docs
from programme.platform.paging import DEFAULT_LIMIT, Page, Paging
from programme.platform.tables import Role
from referrals.schemas import VictimSubmission


class VictimController(Controller):
    """Victims'/survivors' records: victim workers; admins may read them (audited), never
    write. Nobody else."""

    path = "/"
    tags = ["victims"]
    guards = [access.requires(Role.victim_worker, Role.admin)]

    @get("/referrals/{referral_id:uuid}/victims")
    async def list_victims(
        self, referral_id: FromPath[UUID], actor: access.SignedIn
    ) -> list[schemas.Victim]:
        return await services.list_victims(referral_id, actor)

    @post(
        "/referrals/{referral_id:uuid}/victims",
        guards=[access.requires(Role.victim_worker)],
        opt=docs(body=VictimSubmission),
    )
    async def add_victim(
        self, referral_id: FromPath[UUID], data: JSONBody[dict[str, Any]], actor: access.SignedIn
    ) -> schemas.Victim:
        """Name a victim/survivor of the referred person; every problem is reported at once."""
        return await services.add_victim(referral_id, data, actor, today())

    @get("/victims")
    async def caseload(
        self, actor: access.SignedIn, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[schemas.Case]:
        """The victims/survivors the signed-in victim worker supports (those they recorded, or
        whose consent or feedback they recorded), newest first: consent to contact and the
        perpetrator's latest alert for each. Admins read every victim (audited)."""
        return await services.list_cases(actor, Paging(limit, offset))

    @get("/victims/alerts")
    async def alerts(
        self, actor: access.SignedIn, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[schemas.CaseAlert]:
        """The perpetrators' disengagement and at-risk alerts across the caseload, newest
        first, each with the victims it concerns."""
        return await services.list_case_alerts(actor, Paging(limit, offset))

    @get("/victims/{victim_id:uuid}")
    async def get_victim(self, victim_id: FromPath[UUID], actor: access.SignedIn) -> schemas.Victim:
        return await services.get_victim(victim_id, actor)

    @post(
        "/victims/{victim_id:uuid}/consent",
        guards=[access.requires(Role.victim_worker)],
        opt=docs(raises=(Conflict,)),
    )
    async def change_consent(
        self,
        victim_id: FromPath[UUID],
        data: JSONBody[schemas.ConsentChange],
        actor: access.SignedIn,
    ) -> schemas.Victim:
        """Record consent to contact given or refused, or withdraw it."""
        return await services.change_consent(victim_id, data, actor, today())

    @post(
        "/victims/{victim_id:uuid}/feedback",
        guards=[access.requires(Role.victim_worker)],
        opt=docs(raises=(Conflict,)),
    )
    async def record_feedback(
        self,
        victim_id: FromPath[UUID],
        data: JSONBody[schemas.FeedbackCreate],
        actor: access.SignedIn,
    ) -> schemas.Feedback:
        """One feedback per stage; the same stage again replaces it (audited)."""
        return await services.record_feedback(victim_id, data, actor, today())

    @get("/victims/{victim_id:uuid}/feedback")
    async def list_feedback(
        self, victim_id: FromPath[UUID], actor: access.SignedIn
    ) -> list[schemas.Feedback]:
        return await services.list_feedback(victim_id, actor)

    @get("/victims/{victim_id:uuid}/progress", guards=[access.requires(Role.victim_worker)])
    async def progress(
        self, victim_id: FromPath[UUID], actor: access.SignedIn
    ) -> schemas.PerpetratorProgress:
        """The referred person's programme status and disengagement/at-risk alerts."""
        return await services.perpetrator_progress(victim_id, actor)

    @patch(
        "/victims/{victim_id:uuid}",
        guards=[access.requires(Role.victim_worker)],
        opt=docs(body=schemas.VictimCorrection, raises=(InvalidInput, NotFound)),
    )
    async def correct_victim(
        self, victim_id: FromPath[UUID], data: JSONBody[dict[str, Any]], actor: access.SignedIn
    ) -> schemas.Victim:
        """Correct a victim's/survivor's details, with a reason; the earlier values are kept
        (encrypted) and shown in the victim's history."""
        return await services.correct_victim(victim_id, data, actor, today())

    @get("/victims/{victim_id:uuid}/history", opt=docs(raises=(NotFound,)))
    async def victim_history(
        self, victim_id: FromPath[UUID], actor: access.SignedIn
    ) -> schemas.VictimHistory:
        """Every correction of the victim's details: earlier and new values, why, who, when."""
        return await services.victim_history(victim_id, actor)
