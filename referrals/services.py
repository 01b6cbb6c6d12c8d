"""Referral services: accepting or returning a submission, moving it through its
lifecycle, and reading it, each role in its own view, every read audited.

- referrers: their own agency's referrals; status and timeline only.
- facilitators and admins: the named record.
- monitors: a pseudonymous record (no name, date of birth or phone number).
A referral whose consent was withdrawn keeps only what audit and statistics
need in view: its personal details are withheld from everyone.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from asyncpg.exceptions import UniqueViolationError

from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.accounts.services import SELF_REFERRAL_AGENCY, get_or_create_agency
from programme.platform.audit import services as audit
from programme.platform.crypto import KeyPurpose, cipher, purpose_key
from programme.platform.database import engine
from programme.platform.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    NotPermitted,
)
from programme.platform.locked_quarters.services import require_unlocked
from programme.platform.paging import Paging
from programme.platform.quarters import Quarter
from programme.platform.settings import Settings
from programme.platform.tables import AuditAction, RecordType, Role
from programme.platform.validation import one_of
from referrals import queries, rules
from referrals.rules import (
    OPEN,
    QUALITY_WHY,
    ReturnReason,
    Status,
    age_band,
    age_on,
    allowed_next,
    match_key,
    pseudonym,
)
from referrals.schemas import (
    EventCreate,
    FieldChange,
    HistoryEntry,
    MissingDetail,
    QualityAssessment,
    ReferralAccepted,
    ReferralHistory,
    ReferralNamedView,
    ReferralPage,
    ReferralPseudonymousView,
    ReferralSearch,
    ReferralStatusView,
    ReferralView,
    ReturnedReferralView,
    TimelineEntry,
    TimelineStep,
)
from referrals.tables import (
    ParticipantAlert,
    Person,
    Referral,
    ReferralCorrection,
    ReferralEvent,
    ReturnedReferral,
)


@dataclass(frozen=True)
class OutcomesHooks:
    """What the referral services hand to, and read from, the outcomes domain.

    Outcomes (victims, police-recorded incidents) sit above referrals: they
    refer to referrals, never the other way round. The composition root passes
    these in, so this package imports nothing of outcomes.
    """

    record_victims: Callable[[UUID, Sequence[rules.VictimDetails], Principal], Awaitable[object]]
    police_recorded_before: Callable[[UUID, date], Awaitable[int]]
    """Police-recorded incidents of a person dated before a day."""
    supported_referrals: Callable[[UUID], Awaitable[list[UUID]]]
    """The referrals of the victims a victim worker (by account id) supports."""


async def submitting_agency(actor: Principal) -> UUID:
    """Referrers refer for their own agency; facilitators record self-referrals."""
    if actor.role == Role.referrer.value and actor.agency_id is not None:
        return actor.agency_id
    if actor.role == Role.facilitator.value:
        agency_id, _ = await get_or_create_agency(SELF_REFERRAL_AGENCY, actor)
        return agency_id
    raise NotPermitted("Only referrers (for their agency) and facilitators may submit referrals.")


async def replace_earlier_returns(
    person_fingerprint: str | None, agency_id: UUID, received_on: date
) -> None:
    """A submission replaces its agency's earlier returns of the same person in its quarter.

    Call in the submission's transaction. Submissions of one person by one
    agency queue on the fingerprint, so two at once cannot both miss each other.
    """
    if person_fingerprint is None:
        return
    quarter = Quarter.of(received_on)
    await database.fetch(queries.LOCK_PERSON_KEY, "returned:" + person_fingerprint)
    await database.fetch(
        queries.REPLACE_RETURNS, person_fingerprint, agency_id, quarter.first_day, quarter.last_day
    )


async def record_return(
    agency_id: UUID,
    actor: Principal,
    received_on: date,
    reasons: list[ReturnReason],
    source: str = "api",
    person_fingerprint: str | None = None,
) -> UUID:
    """Keep the fact of a refused referral, and nothing about the person.

    ``person_fingerprint`` (``rules.returned_person_fingerprint``) lets a later
    submission of the same person by the same agency replace this return; an
    earlier return it matches is replaced by this one.
    """
    await replace_earlier_returns(person_fingerprint, agency_id, received_on)
    rows = await ReturnedReferral.insert(
        ReturnedReferral(
            agency=agency_id,
            submitted_by=actor.id,
            received_on=received_on,
            reasons=json.dumps([reason.value for reason in reasons]),
            source=source,
            person_fingerprint=person_fingerprint,
        )
    ).returning(ReturnedReferral.id)
    returned_id: UUID = rows[0]["id"]
    await audit.record(actor, AuditAction.create, RecordType.returned_referral, returned_id)
    return returned_id


async def submit_referral(
    raw: Any, actor: Principal, settings: Settings, today: date, outcomes: OutcomesHooks
) -> ReferralAccepted:
    """Accept a referral that passes every check, or return it with every reason."""
    if not isinstance(raw, dict):
        raise InvalidInput(errors=[FieldError("invalid", "", "The body must be a JSON object.")])
    agency_id = await submitting_agency(actor)
    checked = rules.check(raw, today=today, commissioned_areas=settings.commissioned_areas)
    if too_old := rules.backdated(
        "received_on", checked.received_on, today, settings.backdate_days
    ):
        # Not a return: the referral may be sound, it is only in the wrong door.
        raise InvalidInput(
            "The referral was not accepted; see errors.", errors=[*checked.errors, too_old]
        )
    fingerprint_key = purpose_key(settings, KeyPurpose.returned_person)
    if checked.submission is None:
        extra: dict[str, Any] = {}
        if checked.reasons:
            received_on = checked.received_on or today
            fingerprint = rules.returned_person_fingerprint(
                fingerprint_key,
                agency_id,
                raw.get("first_name"),
                raw.get("last_name"),
                raw.get("date_of_birth"),
            )
            async with engine().transaction():
                # A return counts in its quarter's figures like an acceptance does.
                await require_unlocked(
                    [received_on], actor=actor, record_type=RecordType.returned_referral
                )
                returned_id = await record_return(
                    agency_id, actor, received_on, checked.reasons, person_fingerprint=fingerprint
                )
            extra = {"returned_referral_id": str(returned_id), "reasons": checked.reasons}
        raise InvalidInput(
            "The referral was not accepted; see errors.", errors=checked.errors, extra=extra
        )
    submission = checked.submission
    async with engine().transaction():
        await require_unlocked(
            [submission.received_on], actor=actor, record_type=RecordType.referral
        )
        fingerprint = rules.returned_person_fingerprint(
            fingerprint_key,
            agency_id,
            submission.first_name,
            submission.last_name,
            submission.date_of_birth,
        )
        accepted = await accept(submission, agency_id, actor, outcomes, replaces=fingerprint)
    return accepted


def _generated_reference(received_on: date) -> str:
    return f"ITC-{received_on.year}-{secrets.token_hex(3).upper()}"


@dataclass(frozen=True)
class OpenReferral:
    reference: str
    agency_id: UUID


async def open_referral_of(person_ids: list[UUID]) -> OpenReferral | None:
    if not person_ids:
        return None
    row = (
        await Referral.select(Referral.reference, Referral.agency)
        .where(Referral.person.is_in(person_ids) & Referral.status.is_in(list(OPEN)))
        .first()
    )
    return None if row is None else OpenReferral(row["reference"], row["agency"])


async def find_person(submission: rules.Submission) -> list[UUID]:
    """People this submission may be: same name and birth date, or same birth date and phone."""
    key = match_key(submission.first_name, submission.last_name, submission.date_of_birth)
    rows = await Person.select(Person.id).where(
        (Person.match_key == key)
        | ((Person.date_of_birth == submission.date_of_birth) & (Person.phone == submission.phone))
    )
    return [row["id"] for row in rows]


def _person_keys(submission: rules.Submission) -> list[str]:
    """The person's identifying keys, in the order every writer locks them."""
    return sorted(
        {
            match_key(submission.first_name, submission.last_name, submission.date_of_birth),
            f"{submission.date_of_birth.isoformat()}|{submission.phone}",
        }
    )


async def lock_person_keys(submission: rules.Submission) -> None:
    await database.fetch(queries.LOCK_PERSON_KEYS, _person_keys(submission))


def already_open(existing: OpenReferral | None, actor: Principal) -> Conflict:
    """The person is already being worked with: say so, and what to do next.

    Whoever may read the open referral (its own agency's referrers, staff) is
    given its reference. A referrer of another agency is not: the reference,
    or even the agency's name, would tell them who else is involved with this
    person (an agency's name can say health, probation or children's services).
    They are sent to the programme team, who see every referral and can add
    what the new referrer knows.
    """
    if existing is not None and _may_read(actor, existing.agency_id):
        message = f"This person already has an open referral, {existing.reference}."
        return Conflict(
            message,
            errors=[FieldError("already_referred", "", message)],
            extra={"existing_reference": existing.reference},
        )
    message = (
        "This person already has an open referral on the programme, made by another agency. "
        "To add what you know, contact the programme's facilitators, who can see it."
    )
    return Conflict(message, errors=[FieldError("already_referred", "", message)])


REFERENCE_TRIES = 10
"""Generated references offered at once; the first not already used is taken."""


async def accept(
    submission: rules.Submission,
    agency_id: UUID,
    actor: Principal,
    outcomes: OutcomesHooks,
    *,
    replaces: str | None = None,
) -> ReferralAccepted:
    """Store an accepted referral, linking it to the person if they were referred before,
    audited; it replaces the agency's earlier returns of the person in its quarter
    (``replaces``: ``rules.returned_person_fingerprint``, as ``replace_earlier_returns``).

    Call inside a transaction. Two statements, whatever the person's history: one
    takes the transaction-scoped advisory locks (the return's key first, as
    ``replace_earlier_returns`` takes it, then the person's identifying keys in
    order, as a correction takes them), so simultaneous referrals of one person are
    matched one after the other instead of each creating a new person; the other
    (``queries.ACCEPT``) does the rest, seeing what the locks waited for.
    """
    keys = _person_keys(submission)
    if replaces is not None:
        keys.insert(0, "returned:" + replaces)
    await database.fetch(queries.LOCK_PERSON_KEYS, keys)
    quality = rules.assess_quality(submission)
    person = rules.person_values(submission)
    details = rules.referral_values(submission, quality)
    quarter = Quarter.of(submission.received_on)
    referral_id = uuid4()
    candidates = [_generated_reference(submission.received_on) for _ in range(REFERENCE_TRIES)]
    try:
        rows = await database.fetch(
            queries.ACCEPT,
            replaces, agency_id, quarter.first_day, quarter.last_day,
            person["match_key"], person["date_of_birth"], person["phone"],
            [status.value for status in OPEN],
            uuid4(), person["first_name"], person["last_name"], person["gender"],
            Status.accepted.value, details["missing_details"],
            referral_id, submission.reference, candidates, actor.id, details["received_on"],
            details["local_authority"], details["relationship"], details["risk_level"],
            details["prior_incidents"], details["substance_misuse"], details["mental_health"],
            details["children_in_household"], details["consent_obtained_on"],
            details["consent_method"], details["notes"], details["quality_score"],
            audit.entries_json(
                [audit.entry(actor, AuditAction.create, RecordType.referral, referral_id)]
            ),
        )  # fmt: skip
    except UniqueViolationError as exc:
        if exc.constraint_name == "referral_one_open_per_person":
            # Only past the locks by a write that took none; the transaction is over.
            raise already_open(None, actor) from None
        message = "That reference is used by another referral."
        raise Conflict(
            message,
            errors=[FieldError("duplicate", "reference", message)],
            extra={"field": "reference"},
        ) from None
    found = rows[0]
    if found["open_reference"] is not None:
        raise already_open(OpenReferral(found["open_reference"], found["open_agency"]), actor)
    if found["referral_id"] is None:
        raise Conflict("Could not generate a unique reference; try again.")
    if submission.victims:
        await outcomes.record_victims(referral_id, submission.victims, actor)
    return ReferralAccepted(
        id=referral_id,
        reference=found["reference"],
        status=Status.accepted.value,
        received_on=submission.received_on,
        quality=QualityAssessment(
            score=quality.score,
            missing=[MissingDetail(field=m.field, why=m.why) for m in quality.missing],
        ),
        previous_referrals=found["previous"],
        victims_recorded=len(submission.victims),
    )


async def record_event(
    referral_id: UUID, event: EventCreate, actor: Principal, today: date, backdate_days: int
) -> list[TimelineEntry]:
    """Move a referral on one step, dated when it happened.

    The referral row is locked for the check and the write, so of two
    simultaneous transitions the second sees the first's result.
    """
    problem = rules.day_problem("on", event.on, today) or rules.backdated(
        "on", event.on, today, backdate_days
    )
    if problem:
        raise InvalidInput(errors=[problem])
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
            message = f"A referral that is {status.value} cannot move to {event.type.value}."
            if allowed:
                message += " " + one_of(s.value for s in allowed)
            raise Conflict(
                message,
                errors=[FieldError("not_allowed_now", "type", message)],
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
        await require_unlocked(
            [event.on],
            actor=actor,
            override_reason=event.override_reason,
            record_type=RecordType.referral,
            record_id=referral_id,
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
            actor, AuditAction.update, RecordType.referral, referral_id, {"event": event.type.value}
        )
    return await timeline(referral_id)


async def timeline(referral_id: UUID) -> list[TimelineEntry]:
    rows = (
        await ReferralEvent.select(
            ReferralEvent.id,
            ReferralEvent.type,
            ReferralEvent.occurred_on,
            ReferralEvent.note,
            ReferralEvent.recorded_by.username.as_alias("recorded_by"),
            ReferralEvent.voided_at,
            ReferralEvent.voided_by.username.as_alias("voided_by"),
            ReferralEvent.void_reason,
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
            id=row["id"],
            voided=row["voided_at"] is not None,
            voided_at=row["voided_at"],
            voided_by=row["voided_by"],
            void_reason=row["void_reason"],
        )
        for row in rows
    ]


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


def _status_view(actor: Principal) -> bool:
    """Referrers, and victim workers finding the referrals of the victims they support, see
    a referral's status and timeline only: never the referred person's details."""
    return actor.role in (Role.referrer.value, Role.victim_worker.value)


def _may_read(actor: Principal, agency_id: UUID) -> bool:
    """Referrers read only their own agency's referrals; every other role that reads them, all."""
    return actor.role != Role.referrer.value or actor.agency_id == agency_id


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
        .where(ReferralEvent.referral.is_in(referral_ids) & ReferralEvent.voided_at.is_null())
        .order_by(ReferralEvent.occurred_on)
        .order_by(ReferralEvent.id)
    )
    for row in rows:
        steps[row["referral"]].append(TimelineStep(type=row["type"], on=row["occurred_on"]))
    return steps


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
    if _status_view(actor):
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
    if _status_view(actor):
        return "status"
    return "pseudonymous" if actor.role == Role.monitor.value else "named"


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
        actor, AuditAction.read, RecordType.referral, [row["id"] for row in rows],
        {"view": _view_name(actor)},
    )  # fmt: skip
    return ReferralPage(items=items, total=total, limit=limit, offset=offset)


@dataclass(frozen=True)
class CaseloadReferral:
    """A referral as a caseload lists it: who, when received, and where it has got to.
    A withdrawn referral's names are withheld, as in every named view."""

    id: UUID
    reference: str
    first_name: str | None
    last_name: str | None
    received_on: date
    status: str
    status_on: date
    restricted: bool


@dataclass(frozen=True)
class CaseloadPage:
    """One page of a caseload section: its lines, how many the section holds in all, and
    which page this is of how many (at least one, if empty)."""

    lines: list[CaseloadReferral]
    total: int
    page: int
    pages: int


async def caseload_page(
    actor: Principal,
    statuses: Sequence[Status],
    waited_since: str,
    page: int,
    page_size: int,
) -> CaseloadPage:
    """Page ``page`` of the referrals at ``statuses`` ordered by how long they have waited
    (since the day ``waited_since``: received, or reached the status; longest first, ties
    by id), ``page_size`` a page, read and audited as ``list_referrals`` reads them
    (only the lines shown), without the whole record and timeline a caseload line never
    shows. A page past the last is the last: a link kept from yesterday, when the section
    held more, still shows its end, not an empty page."""
    scope = _scope(actor, ReferralFilters()).agency_id
    values = [status.value for status in statuses]
    async with database.connection() as connection:
        total = int(await connection.fetchval(queries.CASELOAD_SECTION_TOTAL, values, scope))
        pages = max(1, -(-total // page_size))
        page = min(max(page, 1), pages)
        rows = await connection.fetch(
            queries.caseload_page(len(values), waited_since),
            values, page_size, (page - 1) * page_size, scope,
        )  # fmt: skip
    lines = []
    for row in rows:
        restricted = row["status"] == Status.withdrawn.value
        lines.append(
            CaseloadReferral(
                id=row["id"],
                reference=row["reference"],
                first_name=None if restricted else row["first_name"],
                last_name=None if restricted else row["last_name"],
                received_on=row["received_on"],
                status=row["status"],
                status_on=row["status_on"],
                restricted=restricted,
            )
        )
    await audit.record_many(
        actor, AuditAction.read, RecordType.referral, [line.id for line in lines],
        {"view": _view_name(actor)},
    )  # fmt: skip
    return CaseloadPage(lines, total, page, pages)


async def caseload_section(
    actor: Principal, status: Status, limit: int, waited_since: str = "received_on"
) -> tuple[list[CaseloadReferral], int]:
    """The ``limit`` referrals at ``status`` that have waited longest and how many there
    are in all: the first page of ``caseload_page`` for one status."""
    first = await caseload_page(actor, (status,), waited_since, 1, limit)
    return first.lines, first.total


async def get_referral(
    actor: Principal, referral_id: UUID, secret: str, outcomes: OutcomesHooks
) -> ReferralView:
    row = await Referral.select(*_COLUMNS).where(Referral.id == referral_id).first()
    _scope(actor, ReferralFilters())  # a referrer without an agency may read nothing
    if row is None or not _may_read(actor, row["agency_id"]):
        # Another agency's referral is indistinguishable from one that does not exist.
        raise NotFound("No such referral.")
    steps = (await _steps([referral_id]))[referral_id]
    named = _view_name(actor) == "named"
    entries = await timeline(referral_id) if named else None
    previous = await _previous_references(row) if named else []
    recorded_prior = (
        await outcomes.police_recorded_before(row["person_id"], row["received_on"])
        if named
        else None
    )
    await audit.record(
        actor, AuditAction.read, RecordType.referral, referral_id, {"view": _view_name(actor)}
    )
    return _view(actor, row, steps, entries, previous, secret, recorded_prior)


# Corrections: details put right and mistaken steps voided, the earlier values kept.

_PERSON_FIELDS = ("first_name", "last_name", "date_of_birth", "phone", "gender")


async def _lock_referral(referral_id: UUID) -> None:
    """The referral row, locked for the rest of the transaction: every change to a
    referral's details or lifecycle takes it first, so they queue one after another."""
    if not await Referral.select(Referral.id).where(Referral.id == referral_id).lock_rows():
        raise NotFound("No such referral.")


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


async def _same_person_elsewhere(
    submission: rules.Submission, person_id: UUID, actor: Principal
) -> None:
    """Run intake's same-person check on corrected identity details.

    Another person with an open referral is the 409 of a new submission; another
    person without one is refused too, since a correction does not merge two
    people's records (that would move their history between people).
    """
    await lock_person_keys(submission)
    others = [p for p in await find_person(submission) if p != person_id]
    if not others:
        return
    existing = await open_referral_of(others)
    if existing is not None:
        raise already_open(existing, actor)
    message = (
        "The corrected details match another person already on record; a correction does "
        "not merge two people's records."
    )
    raise Conflict(message, errors=[FieldError("same_person", "", message)])


async def correct_referral(
    referral_id: UUID, raw: Any, actor: Principal, settings: Settings, today: date
) -> None:
    """Correct an accepted referral's details, keeping the earlier values and the reason.

    The intake rules run on the corrected record (``rules.check_correction``); a
    new name, date of birth or phone runs the same-person check again, under the
    same advisory locks as intake. A correction that changes nothing writes
    nothing. A referral whose consent was withdrawn is not corrected: nothing
    more is recorded about that person.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(errors=[FieldError("invalid", "", "The body must be a JSON object.")])
    async with engine().transaction():
        await _lock_referral(referral_id)
        stored = await Referral.select(*_COLUMNS).where(Referral.id == referral_id).first()
        assert stored is not None
        if stored["status"] == Status.withdrawn.value:
            message = "Consent was withdrawn: nothing more is recorded about this person."
            raise Conflict(message, errors=[FieldError("withdrawn", "", message)])
        checked = rules.check_correction(
            stored, raw, today=today, commissioned_areas=settings.commissioned_areas
        )
        if checked.errors:
            raise InvalidInput(errors=checked.errors)
        sub = checked.submission
        assert sub is not None
        if not checked.changed:
            return
        # Only the day it was received moves a published count (the acceptance step
        # moves with it); the other details are not in the quarterly figures.
        if "received_on" in checked.changed:
            await require_unlocked(
                rules.affected_days(stored["received_on"], sub.received_on),
                actor=actor,
                override_reason=raw.get("override_reason"),
                record_type=RecordType.referral,
                record_id=referral_id,
            )
        if "received_on" in checked.changed:
            later = await ReferralEvent.select(ReferralEvent.occurred_on).where(
                (ReferralEvent.referral == referral_id)
                & (ReferralEvent.type != Status.accepted.value)
                & ReferralEvent.voided_at.is_null()
            )
            next_on = min((e["occurred_on"] for e in later), default=None)
            if problem := rules.received_on_problem(sub.received_on, next_on):
                raise InvalidInput(errors=[problem])
        if rules.identity_changed(checked.changed):
            await _same_person_elsewhere(sub, stored["person_id"], actor)
        if set(_PERSON_FIELDS) & set(checked.changed):
            values = rules.person_values(sub)
            await Person.update({getattr(Person, k): v for k, v in values.items()}).where(
                Person.id == stored["person_id"]
            )
        referral_changes: dict[Any, Any] = {
            getattr(Referral, name): new
            for name, (_, new) in checked.changed.items()
            if name not in _PERSON_FIELDS
        }
        if "received_on" in checked.changed:
            await ReferralEvent.update({ReferralEvent.occurred_on: sub.received_on}).where(
                (ReferralEvent.referral == referral_id)
                & (ReferralEvent.type == Status.accepted.value)
                & ReferralEvent.voided_at.is_null()
            )
            if stored["status"] == Status.accepted.value:
                referral_changes[Referral.status_on] = sub.received_on
        await Referral.update({**referral_changes, Referral.version: Referral.version + 1}).where(
            Referral.id == referral_id
        )
        changes = {
            name: {"old": _json_value(old), "new": _json_value(new)}
            for name, (old, new) in checked.changed.items()
        }
        await ReferralCorrection.insert(
            ReferralCorrection(
                referral=referral_id,
                fields=json.dumps(sorted(changes)),
                changes=cipher().encrypt(json.dumps(changes)),
                reason=str(raw["reason"]).strip(),
                corrected_by=actor.id,
            )
        )
        await audit.record(
            actor,
            AuditAction.update,
            RecordType.referral,
            referral_id,
            {"correction": sorted(changes)},
        )


async def _steps_of(referral_id: UUID) -> list[rules.Step]:
    rows = await ReferralEvent.select(
        ReferralEvent.id,
        ReferralEvent.type,
        ReferralEvent.occurred_on,
        ReferralEvent.source,
        ReferralEvent.voided_at,
    ).where(ReferralEvent.referral == referral_id)
    return [
        rules.Step(
            id=r["id"],
            type=Status(r["type"]),
            on=r["occurred_on"],
            source=r["source"],
            voided=r["voided_at"] is not None,
        )
        for r in rows
    ]


async def void_event(
    referral_id: UUID,
    event_id: int,
    reason: str,
    override_reason: str | None,
    actor: Principal,
    today: date,
) -> list[TimelineEntry]:
    """Void a mistaken lifecycle step: it stays, marked voided, and counts for nothing.

    What may be voided is ``rules.void_problem``'s decision; the referral's status
    and its date then follow from the latest step still counting
    (``rules.standing``), so ``allowed_next`` follows from the remaining steps.
    Voiding an ending re-opens the referral, which is refused while the person
    has another open referral (one open referral per person). Voiding a disengagement
    withdraws the alert it raised for partner support on ``today``: the victim's worker
    was told the perpetrator stopped taking part, and must see that this no longer stands.
    """
    if problems := rules.reason_problems({"reason": reason, "override_reason": override_reason}):
        raise InvalidInput(errors=problems)
    async with engine().transaction():
        await _lock_referral(referral_id)
        row = (
            await Referral.select(Referral.status, Referral.person)
            .where(Referral.id == referral_id)
            .first()
        )
        assert row is not None
        steps = await _steps_of(referral_id)
        step = next((s for s in steps if s.id == event_id), None)
        if step is None:
            raise NotFound("No such step in this referral's timeline.")
        if problem := rules.void_problem(steps, step):
            raise Conflict(problem.message, errors=[problem])
        await require_unlocked(
            rules.affected_days(step.on),
            actor=actor,
            override_reason=override_reason,
            record_type=RecordType.referral,
            record_id=referral_id,
        )
        remaining = [s for s in steps if s.id != event_id]
        latest = rules.standing(remaining)
        assert latest is not None  # the acceptance is never voided
        if latest.type in OPEN and Status(row["status"]) not in OPEN:
            others = await Referral.select(Referral.id).where(
                (Referral.person == row["person"]) & (Referral.id != referral_id)
            )
            existing = await open_referral_of([row["person"]]) if others else None
            if existing is not None:
                raise already_open(existing, actor)
        now = datetime.now(UTC)
        await ReferralEvent.update(
            {
                ReferralEvent.voided_at: now,
                ReferralEvent.voided_by: actor.id,
                ReferralEvent.void_reason: reason.strip(),
            }
        ).where(ReferralEvent.id == event_id)
        if step.type == Status.disengaged:
            # Partner support was told; it must now be told that it no longer stands.
            await database.fetch(queries.WITHDRAW_DISENGAGED_ALERT, referral_id, step.on, today)
        try:
            await Referral.update(
                {
                    Referral.status: latest.type.value,
                    Referral.status_on: latest.on,
                    Referral.version: Referral.version + 1,
                }
            ).where(Referral.id == referral_id)
        except UniqueViolationError:
            raise already_open(None, actor) from None
        await audit.record(
            actor,
            AuditAction.update,
            RecordType.referral,
            referral_id,
            {"void_event": event_id, "event": step.type.value},
        )
    return await timeline(referral_id)


def _decrypted_changes(token: str, restricted: bool) -> list[FieldChange]:
    changes = json.loads(cipher().decrypt(token) or "{}")
    return [
        FieldChange(
            field=name,
            old=None if restricted else value["old"],
            new=None if restricted else value["new"],
        )
        for name, value in sorted(changes.items())
    ]


async def referral_history(referral_id: UUID, actor: Principal) -> ReferralHistory:
    """Every correction of a referral's details and every voided step, oldest first.

    Read by the roles that read the named record; audited. While consent is
    withdrawn the values are withheld, as they are from the record itself.
    """
    row = await Referral.select(Referral.status).where(Referral.id == referral_id).first()
    if row is None:
        raise NotFound("No such referral.")
    restricted = row["status"] == Status.withdrawn.value
    corrections = (
        await ReferralCorrection.select(
            ReferralCorrection.changes,
            ReferralCorrection.reason,
            ReferralCorrection.corrected_at,
            ReferralCorrection.corrected_by.username.as_alias("by"),
        )
        .where(ReferralCorrection.referral == referral_id)
        .order_by(ReferralCorrection.id)
    )
    voided = await ReferralEvent.select(
        ReferralEvent.id,
        ReferralEvent.type,
        ReferralEvent.occurred_on,
        ReferralEvent.voided_at,
        ReferralEvent.void_reason,
        ReferralEvent.voided_by.username.as_alias("by"),
    ).where((ReferralEvent.referral == referral_id) & ReferralEvent.voided_at.is_not_null())
    entries = [
        HistoryEntry(
            kind="correction",
            at=c["corrected_at"],
            by=c["by"],
            reason=c["reason"],
            changes=_decrypted_changes(c["changes"], restricted),
        )
        for c in corrections
    ] + [
        HistoryEntry(
            kind="void",
            at=v["voided_at"],
            by=v["by"],
            reason=v["void_reason"],
            changes=[],
            event_id=v["id"],
            event_type=v["type"],
            event_on=v["occurred_on"],
        )
        for v in voided
    ]
    entries.sort(key=lambda e: e.at)
    await audit.record(
        actor, AuditAction.read, RecordType.referral, referral_id, {"view": "history"}
    )
    return ReferralHistory(referral_id=referral_id, restricted=restricted, entries=entries)


async def search_referrals(
    actor: Principal,
    body: ReferralSearch,
    paging: Paging,
    secret: str,
    outcomes: OutcomesHooks,
) -> ReferralPage:
    """Find referrals by reference, name or date of birth, in the caller's view.

    Who may search by what, and among which referrals:

    - facilitators and admins: any term, every referral; the named view.
    - victim workers: any term, among the referrals of the victims they support
      (``outcomes.rules.supports``); the status view, as the referred person's
      details are not theirs to see. A name they search by is one the victim gave them.
    - referrers: by reference only, within their own agency; the status view. A
      name or date of birth from a referrer is refused (403, not 422: the same body
      is fine from a facilitator, so it is the role, not the input, that is wrong).
      Allowed, it would answer "is this person known to the programme?" for
      anyone a referrer can name, which the status view never tells them.
    - monitors: no search (the route refuses them): a reference would tie a
      pseudonym to a case.

    A withdrawn referral (its personal details withheld) is never found by name
    or date of birth, only by reference. Every search is audited, naming the
    fields searched by (never their values), and every referral it returns is
    audited as read, like a list of referrals.
    """
    search, problems = rules.search_terms(body.reference, body.name, body.date_of_birth)
    if search is None:
        raise InvalidInput(errors=problems)
    agency_id = None
    among = None
    if actor.role == Role.referrer.value:
        if search.identifying:
            raise NotPermitted(
                "Referrers find referrals by reference only: a name or date of birth "
                "is for programme staff."
            )
        agency_id = _scope(actor, ReferralFilters()).agency_id
    elif actor.role == Role.victim_worker.value:
        assert actor.id is not None
        among = await outcomes.supported_referrals(actor.id)
    elif actor.role not in (Role.facilitator.value, Role.admin.value):
        raise NotPermitted()
    terms = (
        search.reference,
        search.date_of_birth,
        list(search.name_words) if search.name_letters is not None else None,
        search.name_letters,
        Status.withdrawn.value,
        agency_id,
        among,
    )
    found = await database.fetch(queries.SEARCH, *terms, paging.limit, paging.offset)
    total = found[0]["total"] if found else 0
    if not found and paging.offset:  # past the last page: count them all the same
        total = (await database.fetch(queries.SEARCH_COUNT, *terms))[0]["total"]
    ids = [row["id"] for row in found]
    rows = {row["id"]: row for row in await Referral.select(*_COLUMNS).where(
        Referral.id.is_in(ids))} if ids else {}  # fmt: skip
    steps = await _steps(ids)
    items = [_view(actor, rows[i], steps[i], None, [], secret) for i in ids]
    await audit.record(
        actor, AuditAction.read, RecordType.referral, None,
        {"search": search.fields, "found": total},
    )  # fmt: skip
    await audit.record_many(
        actor, AuditAction.read, RecordType.referral, ids,
        {"view": _view_name(actor), "search": search.fields},
    )  # fmt: skip
    return paging.page(items, total)


async def get_returned_referral(actor: Principal, returned_id: UUID) -> ReturnedReferralView:
    """A refused referral: its own agency's referrers and admins may open it.

    It holds nothing about the person (nothing was kept), but which agency refers
    whom, and how often wrongly, is still the agency's business: another agency's
    referrer gets the same 404 as for one that does not exist, as with referrals.
    """
    row = (
        await ReturnedReferral.select(
            ReturnedReferral.id,
            ReturnedReferral.agency,
            ReturnedReferral.agency.name.as_alias("agency_name"),
            ReturnedReferral.received_on,
            ReturnedReferral.reasons,
            ReturnedReferral.source,
            ReturnedReferral.submitted_by.username.as_alias("submitted_by"),
        )
        .where(ReturnedReferral.id == returned_id)
        .first()
    )
    if actor.role not in (Role.referrer.value, Role.admin.value):
        raise NotPermitted()
    _scope(actor, ReferralFilters())  # a referrer without an agency may read nothing
    if row is None or not _may_read(actor, row["agency"]):
        raise NotFound("No such returned referral.")
    await audit.record(actor, AuditAction.read, RecordType.returned_referral, returned_id)
    reasons = row["reasons"]
    return ReturnedReferralView(
        id=row["id"],
        agency=row["agency_name"],
        received_on=row["received_on"],
        reasons=json.loads(reasons) if isinstance(reasons, str) else list(reasons),
        source=row["source"],
        submitted_by=row["submitted_by"],
    )
