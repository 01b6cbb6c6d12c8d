"""Referral rules: accepting or returning a submission, the lifecycle, and who sees what."""

from __future__ import annotations

import json
import secrets
from datetime import date
from typing import Any
from uuid import UUID

from asyncpg.exceptions import UniqueViolationError

from outcomes.services import record_victims
from programme.platform.accounts.schemas import Principal
from programme.platform.accounts.services import SELF_REFERRAL_AGENCY, get_or_create_agency
from programme.platform.audit import services as audit
from programme.platform.database import engine
from programme.platform.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    NotPermitted,
)
from programme.platform.settings import Settings
from programme.platform.tables import AuditAction, Role
from referrals import intake
from referrals.people import match_key
from referrals.rules import OPEN, ReturnReason, Status, allowed_next
from referrals.schemas import (
    EventCreate,
    MissingDetail,
    QualityAssessment,
    ReferralAccepted,
    TimelineEntry,
)
from referrals.tables import (
    ParticipantAlert,
    Person,
    Referral,
    ReferralEvent,
    ReturnedReferral,
)


async def submitting_agency(actor: Principal) -> UUID:
    """Referrers refer for their own agency; facilitators record self-referrals."""
    if actor.role == Role.referrer.value and actor.agency_id is not None:
        return actor.agency_id
    if actor.role == Role.facilitator.value:
        agency_id, _ = await get_or_create_agency(SELF_REFERRAL_AGENCY, actor)
        return agency_id
    raise NotPermitted("Only referrers (for their agency) and facilitators may submit referrals.")


async def record_return(
    agency_id: UUID,
    actor: Principal,
    received_on: date,
    reasons: list[ReturnReason],
    source: str = "api",
) -> UUID:
    """Keep the fact of a refused referral, and nothing about the person."""
    rows = await ReturnedReferral.insert(
        ReturnedReferral(
            agency=agency_id,
            submitted_by=actor.id,
            received_on=received_on,
            reasons=json.dumps([reason.value for reason in reasons]),
            source=source,
        )
    ).returning(ReturnedReferral.id)
    returned_id: UUID = rows[0]["id"]
    await audit.record(actor, AuditAction.create, "returned_referral", returned_id)
    return returned_id


async def submit_referral(
    raw: Any, actor: Principal, settings: Settings, today: date
) -> ReferralAccepted:
    """Accept a referral that passes every check, or return it with every reason."""
    if not isinstance(raw, dict):
        raise InvalidInput(errors=[FieldError("invalid", "", "The body must be a JSON object.")])
    agency_id = await submitting_agency(actor)
    checked = intake.check(raw, today=today, commissioned_areas=settings.commissioned_areas)
    if checked.submission is None:
        extra: dict[str, Any] = {}
        if checked.reasons:
            returned_id = await record_return(
                agency_id, actor, checked.received_on or today, checked.reasons
            )
            extra = {"returned_referral_id": str(returned_id), "reasons": checked.reasons}
        raise InvalidInput(
            "The referral was not accepted; see errors.", errors=checked.errors, extra=extra
        )
    async with engine().transaction():
        accepted = await accept(checked.submission, agency_id, actor)
        await audit.record(actor, AuditAction.create, "referral", accepted.id)
    return accepted


async def _new_reference(received_on: date) -> str:
    for _ in range(10):
        reference = f"ITC-{received_on.year}-{secrets.token_hex(3).upper()}"
        if not await Referral.exists().where(Referral.reference == reference):
            return reference
    raise Conflict("Could not generate a unique reference; try again.")


async def open_referral_of(person_ids: list[UUID]) -> str | None:
    if not person_ids:
        return None
    row = (
        await Referral.select(Referral.reference)
        .where(Referral.person.is_in(person_ids) & Referral.status.is_in(list(OPEN)))
        .first()
    )
    return None if row is None else row["reference"]


async def find_person(submission: intake.Submission) -> list[UUID]:
    """People this submission may be: same name and birth date, or same birth date and phone."""
    key = match_key(submission.first_name, submission.last_name, submission.date_of_birth)
    rows = await Person.select(Person.id).where(
        (Person.match_key == key)
        | ((Person.date_of_birth == submission.date_of_birth) & (Person.phone == submission.phone))
    )
    return [row["id"] for row in rows]


async def lock_person_keys(submission: intake.Submission) -> None:
    keys = sorted(
        {
            match_key(submission.first_name, submission.last_name, submission.date_of_birth),
            f"{submission.date_of_birth.isoformat()}|{submission.phone}",
        }
    )
    for key in keys:
        await Person.raw("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))", key)


def _already_open(reference: str) -> Conflict:
    return Conflict(
        f"This person already has an open referral, {reference}.",
        extra={"existing_reference": reference},
    )


async def accept(
    submission: intake.Submission, agency_id: UUID, actor: Principal
) -> ReferralAccepted:
    """Store an accepted referral, linking it to the person if they were referred before.

    Call inside a transaction: it takes transaction-scoped advisory locks on the
    person's identifying keys, so simultaneous referrals of one person are
    matched one after the other instead of each creating a new person.
    """
    await lock_person_keys(submission)
    person_ids = await find_person(submission)
    existing = await open_referral_of(person_ids)
    if existing is not None:
        raise _already_open(existing)
    if person_ids:
        person_id = person_ids[0]
    else:
        rows = await Person.insert(
            Person(
                first_name=submission.first_name,
                last_name=submission.last_name,
                date_of_birth=submission.date_of_birth,
                phone=submission.phone,
                gender=submission.gender.value,
                match_key=match_key(
                    submission.first_name, submission.last_name, submission.date_of_birth
                ),
            )
        ).returning(Person.id)
        person_id = rows[0]["id"]
    previous = await Referral.count().where(Referral.person == person_id) if person_ids else 0
    reference = submission.reference or await _new_reference(submission.received_on)
    quality = intake.assess_quality(submission)
    try:
        rows = await Referral.insert(
            Referral(
                reference=reference,
                person=person_id,
                agency=agency_id,
                submitted_by=actor.id,
                received_on=submission.received_on,
                status=Status.accepted.value,
                status_on=submission.received_on,
                local_authority=submission.local_authority,
                relationship=submission.relationship.value,
                risk_level=submission.risk_level.value if submission.risk_level else None,
                prior_incidents=submission.prior_incidents,
                substance_misuse=submission.substance_misuse,
                mental_health=submission.mental_health,
                children_in_household=submission.children_in_household,
                consent_obtained_on=submission.consent_obtained_on,
                consent_method=submission.consent_method.value,
                notes=submission.notes,
                quality_score=quality.score,
                missing_details=json.dumps([m.field for m in quality.missing]),
            )
        ).returning(Referral.id)
    except UniqueViolationError as exc:
        if exc.constraint_name == "referral_one_open_per_person":
            raise _already_open(await open_referral_of([person_id]) or "unknown") from None
        raise Conflict(
            "That reference is used by another referral.", extra={"field": "reference"}
        ) from None
    referral_id = rows[0]["id"]
    await record_victims(referral_id, submission.victims, actor)
    await ReferralEvent.insert(
        ReferralEvent(
            referral=referral_id,
            type=Status.accepted.value,
            occurred_on=submission.received_on,
            recorded_by=actor.id,
        )
    )
    return ReferralAccepted(
        id=referral_id,
        reference=reference,
        status=Status.accepted.value,
        received_on=submission.received_on,
        quality=QualityAssessment(
            score=quality.score,
            missing=[MissingDetail(field=m.field, why=m.why) for m in quality.missing],
        ),
        previous_referrals=previous,
        victims_recorded=len(submission.victims),
    )


async def record_event(
    referral_id: UUID, event: EventCreate, actor: Principal, today: date
) -> list[TimelineEntry]:
    """Move a referral on one step, dated when it happened.

    The referral row is locked for the check and the write, so of two
    simultaneous transitions the second sees the first's result.
    """
    if event.on > today:
        raise InvalidInput(errors=[FieldError("future_date", "on", "Cannot be in the future.")])
    async with engine().transaction():
        row = (
            await Referral.select(Referral.status, Referral.status_on)
            .where(Referral.id == referral_id)
            .lock_rows()
            .first()
        )
        if row is None:
            raise NotFound("No such referral.")
        status = Status(row["status"])
        allowed = allowed_next(status)
        if event.type not in allowed:
            raise Conflict(
                f"A referral that is {status.value} cannot move to {event.type.value}.",
                extra={"status": status.value, "allowed": [s.value for s in allowed]},
            )
        if event.on < row["status_on"]:
            raise InvalidInput(
                errors=[
                    FieldError(
                        "before_previous_milestone",
                        "on",
                        f"Cannot be before the previous milestone ({row['status_on']}).",
                    )
                ]
            )
        await ReferralEvent.insert(
            ReferralEvent(
                referral=referral_id,
                type=event.type.value,
                occurred_on=event.on,
                note=event.note,
                recorded_by=actor.id,
            )
        )
        await Referral.update(
            {
                Referral.status: event.type.value,
                Referral.status_on: event.on,
                Referral.version: Referral.version + 1,
            }
        ).where(Referral.id == referral_id)
        if event.type == Status.disengaged:
            await ParticipantAlert.insert(
                ParticipantAlert(referral=referral_id, kind="disengaged", raised_on=event.on)
            )
        await audit.record(
            actor, AuditAction.update, "referral", referral_id, {"event": event.type.value}
        )
    return await timeline(referral_id)


async def timeline(referral_id: UUID) -> list[TimelineEntry]:
    rows = (
        await ReferralEvent.select(
            ReferralEvent.type,
            ReferralEvent.occurred_on,
            ReferralEvent.note,
            ReferralEvent.recorded_by.username.as_alias("recorded_by"),
        )
        .where(ReferralEvent.referral == referral_id)
        .order_by(ReferralEvent.occurred_on)
        .order_by(ReferralEvent.id)
    )
    return [
        TimelineEntry(
            type=row["type"],
            on=row["occurred_on"],
            note=row["note"],
            recorded_by=row["recorded_by"],
        )
        for row in rows
    ]
