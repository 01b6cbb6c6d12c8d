"""Writing a checked import: one transaction, bulk COPY, audited."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from programme.platform.accounts.schemas import Principal
from programme.platform.accounts.services import get_or_create_agency
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.database import engine
from programme.platform.settings import Settings
from programme.platform.tables import Agency, AuditAction
from referrals import intake
from referrals.importer import AcceptedRow, Plan, check_overlaps, final_status, plan_import
from referrals.rules import OPEN, Status
from referrals.schemas import ImportReport
from referrals.tables import Person, Referral, ReturnedReferral


async def _existing_people(rows: list[AcceptedRow]) -> dict[int, str]:
    """Who each row's person is: a stored person's id, else the row's match key."""
    keys = list({row.person_key for row in rows})
    phones = list({row.submission.phone for row in rows})
    found = await Person.raw(
        "SELECT id, match_key, date_of_birth, phone FROM person"
        " WHERE match_key = ANY({}) OR phone = ANY({})",
        keys,
        phones,
    )
    by_key = {p["match_key"]: str(p["id"]) for p in found}
    by_phone = {(p["date_of_birth"], p["phone"]): str(p["id"]) for p in found}
    identity = {}
    for row in rows:
        sub = row.submission
        identity[row.line] = (
            by_key.get(row.person_key)
            or by_phone.get((sub.date_of_birth, sub.phone))
            or row.person_key
        )
    return identity


async def _drop_already_imported(plan: Plan) -> int:
    references = [row.reference for row in plan.accepted]
    stored = await Referral.raw(
        "SELECT reference FROM referral WHERE reference = ANY({})", references
    )
    known = {r["reference"] for r in stored}
    fingerprints = [row.fingerprint for row in plan.returned]
    stored = await ReturnedReferral.raw(
        "SELECT fingerprint FROM returned_referral WHERE fingerprint = ANY({})", fingerprints
    )
    seen = {r["fingerprint"] for r in stored}
    before = len(plan.accepted) + len(plan.returned)
    plan.accepted = [row for row in plan.accepted if row.reference not in known]
    unique_returns = []
    for row in plan.returned:
        if row.fingerprint not in seen:
            seen.add(row.fingerprint)
            unique_returns.append(row)
    plan.returned = unique_returns
    return before - len(plan.accepted) - len(plan.returned)


async def _open_referrals(identities: set[str]) -> dict[str, str]:
    person_ids = [UUID(i) for i in identities if len(i) == 36 and "|" not in i]
    if not person_ids:
        return {}
    rows = await Referral.raw(
        "SELECT person, reference FROM referral WHERE person = ANY({}) AND status = ANY({})",
        person_ids,
        [s.value for s in OPEN],
    )
    return {str(r["person"]): r["reference"] for r in rows}


async def import_referrals(
    content: bytes, actor: Principal, settings: Settings, today: date, *, skip_invalid: bool
) -> ImportReport:
    """Check the whole file, then write all of it (or, with ``skip_invalid``, its good rows)."""
    plan = plan_import(
        content,
        today=today,
        commissioned_areas=settings.commissioned_areas,
        fingerprint_key=purpose_key(settings, KeyPurpose.import_fingerprint),
        reference_key=purpose_key(settings, KeyPurpose.generated_reference),
    )
    already = await _drop_already_imported(plan)
    identity = await _existing_people(plan.accepted)
    check_overlaps(plan, identity, await _open_referrals(set(identity.values())))
    refused = len(plan.error_lines)
    if plan.errors and not skip_invalid:
        return _report(plan, 0, 0, already, refused, [])
    plan.accepted = [r for r in plan.accepted if r.line not in plan.error_lines]
    plan.returned = [r for r in plan.returned if r.line not in plan.error_lines]
    async with engine().transaction() as transaction:
        created = await _write(transaction.connection, plan, identity, actor)
    return _report(plan, len(plan.accepted), len(plan.returned), already, refused, created)


def _report(
    plan: Plan, imported: int, returned: int, already: int, refused: int, created: list[str]
) -> ImportReport:
    return ImportReport(
        imported=imported,
        returned=returned,
        already_present=already,
        refused=refused,
        agencies_created=created,
        warnings=plan.warnings,
        errors=plan.errors,
    )


async def _agencies(names: set[str], actor: Principal) -> tuple[dict[str, UUID], list[str]]:
    rows = await Agency.select(Agency.id, Agency.name)
    by_name = {row["name"].lower(): row["id"] for row in rows}
    created = []
    for name in sorted(names):
        if name.lower() not in by_name:
            by_name[name.lower()], _ = await get_or_create_agency(name, actor)
            created.append(name)
    return {name: by_name[name.lower()] for name in names}, created


async def _write(
    connection: Any, plan: Plan, identity: dict[int, str], actor: Principal
) -> list[str]:
    now = datetime.now(UTC)
    agency_ids, created = await _agencies(
        {r.agency for r in plan.accepted} | {r.agency for r in plan.returned}, actor
    )
    people: list[tuple[Any, ...]] = []
    person_ids: dict[str, UUID] = {}
    referrals: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    audit: list[tuple[Any, ...]] = []
    for row in sorted(plan.accepted, key=lambda r: r.submission.received_on):
        sub = row.submission
        who = identity[row.line]
        if who not in person_ids:
            if who == row.person_key:
                person_ids[who] = uuid.uuid4()
                people.append(
                    (
                        person_ids[who],
                        sub.first_name,
                        sub.last_name,
                        sub.date_of_birth,
                        sub.phone,
                        sub.gender.value,
                        row.person_key,
                        now,
                    )
                )
            else:
                person_ids[who] = UUID(who)
        referral_id = uuid.uuid4()
        status, status_on = final_status(row.milestones, sub.received_on)
        quality = intake.assess_quality(sub)
        referrals.append(
            (
                referral_id,
                row.reference,
                person_ids[who],
                agency_ids[row.agency],
                actor.id,
                sub.received_on,
                status.value,
                status_on,
                sub.local_authority,
                sub.relationship.value,
                sub.risk_level.value if sub.risk_level else None,
                sub.prior_incidents,
                sub.substance_misuse,
                sub.mental_health,
                sub.children_in_household,
                sub.consent_obtained_on,
                sub.consent_method.value,
                sub.notes,
                quality.score,
                json.dumps([m.field for m in quality.missing]),
                1,
                now,
            )
        )
        for step, on in [(Status.accepted, sub.received_on), *row.milestones]:
            events.append((referral_id, step.value, on, actor.id, now, "import"))
        audit.append(
            (
                now,
                actor.id,
                actor.username,
                actor.role,
                AuditAction.create.value,
                "referral",
                str(referral_id),
                '{"source": "import"}',
            )
        )
    returned = [
        (
            uuid.uuid4(),
            agency_ids[r.agency],
            actor.id,
            r.received_on,
            json.dumps([reason.value for reason in r.reasons]),
            "import",
            r.fingerprint,
            now,
        )
        for r in plan.returned
    ]
    await connection.copy_records_to_table(
        "person",
        records=people,
        columns=[
            "id",
            "first_name",
            "last_name",
            "date_of_birth",
            "phone",
            "gender",
            "match_key",
            "created_at",
        ],
    )
    await connection.copy_records_to_table(
        "referral",
        records=referrals,
        columns=[
            "id",
            "reference",
            "person",
            "agency",
            "submitted_by",
            "received_on",
            "status",
            "status_on",
            "local_authority",
            "relationship",
            "risk_level",
            "prior_incidents",
            "substance_misuse",
            "mental_health",
            "children_in_household",
            "consent_obtained_on",
            "consent_method",
            "notes",
            "quality_score",
            "missing_details",
            "version",
            "created_at",
        ],
    )
    await connection.copy_records_to_table(
        "referral_event",
        records=events,
        columns=["referral", "type", "occurred_on", "recorded_by", "recorded_at", "source"],
    )
    await connection.copy_records_to_table(
        "returned_referral",
        records=returned,
        columns=[
            "id",
            "agency",
            "submitted_by",
            "received_on",
            "reasons",
            "source",
            "fingerprint",
            "created_at",
        ],
    )
    await connection.copy_records_to_table(
        "audit_event",
        records=audit,
        columns=[
            "occurred_at",
            "account_id",
            "username",
            "role",
            "action",
            "record_type",
            "record_id",
            "detail",
        ],
    )
    return created
