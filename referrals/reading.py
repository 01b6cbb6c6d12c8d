"""Reading referrals: each role sees its own view, and every read is audited.

- referrers: their own agency's referrals; status and timeline only.
- facilitators and admins: the named record.
- monitors: a pseudonymous record (no name, date of birth or phone number).
A referral whose consent was withdrawn keeps only what audit and statistics
need in view: its personal details are withheld from everyone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from outcomes.tables import Reoffence
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.errors import NotFound, NotPermitted
from programme.platform.tables import AuditAction, Role
from referrals.intake import QUALITY_WHY, age_on
from referrals.people import age_band, pseudonym
from referrals.rules import Status
from referrals.schemas import (
    MissingDetail,
    QualityAssessment,
    ReferralNamedView,
    ReferralPage,
    ReferralPseudonymousView,
    ReferralStatusView,
    ReferralView,
    TimelineEntry,
    TimelineStep,
)
from referrals.services import timeline
from referrals.tables import Referral, ReferralEvent


@dataclass(frozen=True)
class ReferralFilters:
    status: Status | None = None
    agency_id: UUID | None = None
    received_from: date | None = None
    received_to: date | None = None


_COLUMNS = (
    Referral.id,
    Referral.reference,
    Referral.agency.name.as_alias("agency"),
    Referral.agency.id.as_alias("agency_id"),
    Referral.received_on,
    Referral.status,
    Referral.status_on,
    Referral.person.id.as_alias("person_id"),
    Referral.person.first_name.as_alias("first_name"),
    Referral.person.last_name.as_alias("last_name"),
    Referral.person.date_of_birth.as_alias("date_of_birth"),
    Referral.person.phone.as_alias("phone"),
    Referral.person.gender.as_alias("gender"),
    Referral.local_authority,
    Referral.relationship,
    Referral.risk_level,
    Referral.prior_incidents,
    Referral.substance_misuse,
    Referral.mental_health,
    Referral.children_in_household,
    Referral.consent_obtained_on,
    Referral.consent_method,
    Referral.notes,
    Referral.quality_score,
    Referral.missing_details,
)


def _scope(actor: Principal, filters: ReferralFilters) -> ReferralFilters:
    """Referrers only ever see their own agency, whatever they ask for."""
    if actor.role == Role.referrer.value:
        if actor.agency_id is None:
            raise NotPermitted("A referrer account must belong to an agency.")
        if filters.agency_id is not None and filters.agency_id != actor.agency_id:
            raise NotPermitted("Referrers see only their own agency's referrals.")
        return ReferralFilters(
            filters.status, actor.agency_id, filters.received_from, filters.received_to
        )
    return filters


def _where(filters: ReferralFilters) -> list[Any]:
    clauses: list[Any] = []
    if filters.status is not None:
        clauses.append(Referral.status == filters.status.value)
    if filters.agency_id is not None:
        clauses.append(Referral.agency == filters.agency_id)
    if filters.received_from is not None:
        clauses.append(Referral.received_on >= filters.received_from)
    if filters.received_to is not None:
        clauses.append(Referral.received_on <= filters.received_to)
    return clauses


async def _steps(referral_ids: list[UUID]) -> dict[UUID, list[TimelineStep]]:
    steps: dict[UUID, list[TimelineStep]] = defaultdict(list)
    if not referral_ids:
        return steps
    rows = (
        await ReferralEvent.select(
            ReferralEvent.referral, ReferralEvent.type, ReferralEvent.occurred_on
        )
        .where(ReferralEvent.referral.is_in(referral_ids))
        .order_by(ReferralEvent.occurred_on)
        .order_by(ReferralEvent.id)
    )
    for row in rows:
        steps[row["referral"]].append(TimelineStep(type=row["type"], on=row["occurred_on"]))
    return steps


async def _police_recorded_before(row: dict[str, Any]) -> int:
    return await Reoffence.count().where(
        (Reoffence.person == row["person_id"]) & (Reoffence.offence_date < row["received_on"])
    )


async def _previous_references(row: dict[str, Any]) -> list[str]:
    rows = (
        await Referral.select(Referral.reference)
        .where((Referral.person == row["person_id"]) & (Referral.id != row["id"]))
        .order_by(Referral.received_on)
    )
    return [r["reference"] for r in rows]


def _view(
    actor: Principal,
    row: dict[str, Any],
    steps: list[TimelineStep],
    entries: list[TimelineEntry] | None,
    previous: list[str],
    secret: str,
    recorded_prior: int | None = None,
) -> ReferralView:
    if actor.role == Role.referrer.value:
        return ReferralStatusView(
            id=row["id"], reference=row["reference"], agency=row["agency"],
            received_on=row["received_on"], status=row["status"], status_on=row["status_on"],
            timeline=steps,
        )  # fmt: skip
    if actor.role == Role.monitor.value:
        return ReferralPseudonymousView(
            id=row["id"], pseudonym=pseudonym(row["person_id"], secret),
            age_band=age_band(age_on(row["date_of_birth"], row["received_on"])),
            gender=row["gender"], agency=row["agency"], local_authority=row["local_authority"],
            risk_level=row["risk_level"], received_on=row["received_on"], status=row["status"],
            status_on=row["status_on"], timeline=steps,
        )  # fmt: skip
    restricted = row["status"] == Status.withdrawn.value
    missing = (
        json.loads(row["missing_details"])
        if isinstance(row["missing_details"], str)
        else row["missing_details"]
    )
    return ReferralNamedView(
        id=row["id"], reference=row["reference"], agency=row["agency"],
        received_on=row["received_on"], status=row["status"], status_on=row["status_on"],
        restricted=restricted,
        first_name=None if restricted else row["first_name"],
        last_name=None if restricted else row["last_name"],
        date_of_birth=None if restricted else row["date_of_birth"],
        phone=None if restricted else row["phone"],
        gender=row["gender"], local_authority=row["local_authority"],
        relationship=row["relationship"], risk_level=row["risk_level"],
        prior_incidents=row["prior_incidents"],
        police_recorded_prior_incidents=recorded_prior, substance_misuse=row["substance_misuse"],
        mental_health=row["mental_health"], children_in_household=row["children_in_household"],
        consent_obtained_on=row["consent_obtained_on"], consent_method=row["consent_method"],
        notes=None if restricted else row["notes"],
        quality=QualityAssessment(
            score=row["quality_score"],
            missing=[MissingDetail(field=f, why=QUALITY_WHY.get(f, "")) for f in missing],
        ),
        previous_references=previous,
        timeline=entries if entries is not None else [
            TimelineEntry(type=s.type, on=s.on, note=None, recorded_by=None) for s in steps
        ],
    )  # fmt: skip


def _view_name(actor: Principal) -> str:
    return {Role.referrer.value: "status", Role.monitor.value: "pseudonymous"}.get(
        actor.role, "named"
    )


async def list_referrals(
    actor: Principal, filters: ReferralFilters, limit: int, offset: int, secret: str
) -> ReferralPage:
    filters = _scope(actor, filters)
    clauses = _where(filters)
    query = Referral.select(*_COLUMNS)
    count = Referral.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    rows = (
        await query.order_by(Referral.received_on, ascending=False)
        .order_by(Referral.id)
        .limit(limit)
        .offset(offset)
    )
    total = await count
    steps = await _steps([row["id"] for row in rows])
    items = [_view(actor, row, steps[row["id"]], None, [], secret) for row in rows]
    await audit.record_many(
        actor, AuditAction.read, "referral", [row["id"] for row in rows],
        {"view": _view_name(actor)},
    )  # fmt: skip
    return ReferralPage(items=items, total=total, limit=limit, offset=offset)


async def get_referral(actor: Principal, referral_id: UUID, secret: str) -> ReferralView:
    row = await Referral.select(*_COLUMNS).where(Referral.id == referral_id).first()
    scope = _scope(actor, ReferralFilters())
    if row is None or (scope.agency_id is not None and row["agency_id"] != scope.agency_id):
        # Another agency's referral is indistinguishable from one that does not exist.
        raise NotFound("No such referral.")
    steps = (await _steps([referral_id]))[referral_id]
    named = _view_name(actor) == "named"
    entries = await timeline(referral_id) if named else None
    previous = await _previous_references(row) if named else []
    recorded_prior = await _police_recorded_before(row) if named else None
    await audit.record(
        actor, AuditAction.read, "referral", referral_id, {"view": _view_name(actor)}
    )
    return _view(actor, row, steps, entries, previous, secret, recorded_prior)
