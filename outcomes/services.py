"""Victims/survivors, their consent and feedback: visible to victim workers only.

A perpetrator must never learn what a victim said. Nothing here is reachable
from a route any other role may call (admins excepted, and audited), and
nothing flows from here back into the referral or programme records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

from outcomes import queries, schemas
from outcomes.rules import may_contact, supports
from outcomes.tables import (
    ContactConsent,
    Feedback,
    FeedbackVersion,
    Reoffence,
    Victim,
    VictimCorrection,
)
from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.crypto import cipher
from programme.platform.database import engine
from programme.platform.errors import Conflict, FieldError, InvalidInput, NotFound, NotPermitted
from programme.platform.locked_quarters.services import require_unlocked
from programme.platform.paging import Page, Paging
from programme.platform.tables import AuditAction, RecordType, Role
from programme.platform.validation import UNKNOWN_FIELD
from referrals.rules import (
    VictimDetails,
    affected_days,
    check_victim,
    day_problem,
    reason_problems,
)
from referrals.tables import ParticipantAlert, Referral


async def record_victims(
    referral_id: UUID, victims: Sequence[VictimDetails], actor: Principal
) -> list[UUID]:
    """Store victims' details encrypted, each with its consent-to-contact record."""
    if not victims:
        # Nothing to encrypt: a referral naming no victim must not depend on the encryption key.
        return []
    crypt = cipher()
    ids = []
    for victim in victims:
        rows = await Victim.insert(
            Victim(
                referral=referral_id,
                first_name=crypt.encrypt(victim.first_name),
                last_name=crypt.encrypt(victim.last_name),
                phone=crypt.encrypt(victim.phone),
                relationship=victim.relationship,
                recorded_by=actor.id,
            )
        ).returning(Victim.id)
        victim_id = rows[0]["id"]
        if victim.consent_obtained_on is not None:
            await ContactConsent.insert(
                ContactConsent(
                    victim=victim_id,
                    given=victim.consent_to_contact,
                    obtained_on=victim.consent_obtained_on,
                    recorded_by=actor.id,
                )
            )
        await audit.record(actor, AuditAction.create, RecordType.victim, victim_id)
        ids.append(victim_id)
    return ids


async def _latest_consents(victim_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    if not victim_ids:
        return {}
    rows = await database.fetch(queries.LATEST_CONSENTS, victim_ids)
    return {row["victim"]: row for row in rows}


async def list_victims(referral_id: UUID, actor: Principal) -> list[schemas.Victim]:
    if not await Referral.exists().where(Referral.id == referral_id):
        raise NotFound("No such referral.")
    rows = await Victim.select().where(Victim.referral == referral_id).order_by(Victim.created_at)
    consents = await _latest_consents([row["id"] for row in rows])
    await audit.record_many(actor, AuditAction.read, RecordType.victim, [row["id"] for row in rows])
    return [_victim(row, consents.get(row["id"])) for row in rows]


def _victim(row: dict[str, Any], consent: dict[str, Any] | None) -> schemas.Victim:
    crypt = cipher()
    return schemas.Victim(
        id=row["id"],
        referral_id=row["referral"],
        first_name=crypt.decrypt(row["first_name"]) or "",
        last_name=crypt.decrypt(row["last_name"]),
        phone=crypt.decrypt(row["phone"]),
        relationship=row["relationship"],
        consent=None
        if consent is None
        else schemas.ConsentRecord(
            given=consent["given"],
            obtained_on=consent["obtained_on"],
            withdrawn_on=consent["withdrawn_on"],
        ),
        may_contact=may_contact(consent),
    )


async def add_victim(referral_id: UUID, raw: Any, actor: Principal, today: date) -> schemas.Victim:
    victim, problems = check_victim(raw, "", today=today)
    if problems:
        raise InvalidInput(
            errors=[FieldError(p.code, p.field.removeprefix("."), p.message) for p in problems]
        )
    assert victim is not None
    if not await Referral.exists().where(Referral.id == referral_id):
        raise NotFound("No such referral.")
    async with engine().transaction():
        (victim_id,) = await record_victims(referral_id, [victim], actor)
    return await get_victim(victim_id, actor, audited=False)


async def get_victim(victim_id: UUID, actor: Principal, *, audited: bool = True) -> schemas.Victim:
    row = await Victim.select().where(Victim.id == victim_id).first()
    if row is None:
        raise NotFound("No such victim record.")
    if audited:
        await audit.record(actor, AuditAction.read, RecordType.victim, victim_id)
    return _victim(row, (await _latest_consents([victim_id])).get(victim_id))


async def change_consent(
    victim_id: UUID, change: schemas.ConsentChange, actor: Principal, today: date
) -> schemas.Victim:
    """Give, refuse or withdraw consent to contact; each change is its own dated record."""
    if problem := day_problem("on", change.on, today):
        raise InvalidInput(errors=[problem])
    if not await Victim.exists().where(Victim.id == victim_id):
        raise NotFound("No such victim record.")
    async with engine().transaction():
        current = (await _latest_consents([victim_id])).get(victim_id)
        if change.withdraw:
            if not may_contact(current):
                raise Conflict("There is no consent to contact to withdraw.")
            assert current is not None
            await ContactConsent.insert(
                ContactConsent(
                    victim=victim_id,
                    given=True,
                    obtained_on=current["obtained_on"],
                    withdrawn_on=change.on,
                    recorded_by=actor.id,
                )
            )
        else:
            await ContactConsent.insert(
                ContactConsent(
                    victim=victim_id,
                    given=change.given,
                    obtained_on=change.on,
                    recorded_by=actor.id,
                )
            )
        await audit.record(
            actor, AuditAction.update, RecordType.victim, victim_id, {"consent": True}
        )
    return await get_victim(victim_id, actor, audited=False)


def _feedback_changed(earlier: dict[str, Any], data: schemas.FeedbackCreate) -> bool:
    return (
        earlier["collected_on"],
        earlier["behaviour"],
        earlier["feels_safer"],
        cipher().decrypt(earlier["note"]),
    ) != (data.collected_on, data.behaviour.value, data.feels_safer.value, data.note)


async def record_feedback(
    victim_id: UUID, data: schemas.FeedbackCreate, actor: Principal, today: date
) -> schemas.Feedback:
    """One feedback per stage; recording a stage again is a correction that replaces it.

    The version replaced is kept (``FeedbackVersion``, its note still encrypted),
    with who replaced it, when and, if given, why; the same feedback sent again
    keeps nothing new. Reports count only the current version.
    """
    problems = []
    if problem := day_problem("collected_on", data.collected_on, today):
        problems.append(problem)
    victim = await Victim.select(Victim.id).where(Victim.id == victim_id).first()
    if victim is None:
        raise NotFound("No such victim record.")
    consent = (await _latest_consents([victim_id])).get(victim_id)
    if not may_contact(consent):
        raise Conflict("No feedback without consent to contact (none recorded, or withdrawn).")
    if problems:
        raise InvalidInput(errors=problems)
    crypt = cipher()
    note = crypt.encrypt(data.note)
    async with engine().transaction():
        # One feedback write per victim at a time, so the version a correction
        # replaces is the one it read (two corrections of a stage keep both).
        await Victim.select(Victim.id).where(Victim.id == victim_id).lock_rows()
        earlier = (
            await Feedback.select()
            .where((Feedback.victim == victim_id) & (Feedback.stage == data.stage.value))
            .first()
        )
        # A correction moves the stage's answer from its old day to this one: both count.
        await require_unlocked(
            affected_days(data.collected_on, earlier["collected_on"] if earlier else None),
            actor=actor,
            override_reason=data.override_reason,
            record_type=RecordType.victim_feedback,
            record_id=victim_id,
        )
        if earlier is not None and _feedback_changed(earlier, data):
            await FeedbackVersion.insert(
                FeedbackVersion(
                    feedback=earlier["id"],
                    collected_on=earlier["collected_on"],
                    behaviour=earlier["behaviour"],
                    feels_safer=earlier["feels_safer"],
                    note=earlier["note"],
                    recorded_by=earlier["recorded_by"],
                    recorded_at=earlier["updated_at"],
                    replaced_by=actor.id,
                    reason=crypt.encrypt(data.reason),
                )
            )
        rows = await database.fetch(
            queries.RECORD_FEEDBACK,
            victim_id,
            data.stage.value,
            data.collected_on,
            data.behaviour.value,
            data.feels_safer.value,
            note,
            actor.id,
        )
        action = AuditAction.create if rows[0]["inserted"] else AuditAction.update
        await audit.record(
            actor, action, RecordType.victim_feedback, victim_id, {"stage": data.stage.value}
        )
    recorded = await list_feedback(victim_id, actor, audited=False)
    return next(f for f in recorded if f.stage == data.stage.value)


async def list_feedback(
    victim_id: UUID, actor: Principal, *, audited: bool = True
) -> list[schemas.Feedback]:
    if not await Victim.exists().where(Victim.id == victim_id):
        raise NotFound("No such victim record.")
    rows = (
        await Feedback.select(
            Feedback.id,
            Feedback.stage,
            Feedback.collected_on,
            Feedback.behaviour,
            Feedback.feels_safer,
            Feedback.note,
            Feedback.recorded_by.username.as_alias("recorded_by"),
        )
        .where(Feedback.victim == victim_id)
        .order_by(Feedback.collected_on)
    )
    if audited:
        await audit.record(actor, AuditAction.read, RecordType.victim_feedback, victim_id)
    crypt = cipher()
    versions = (
        await FeedbackVersion.select(
            FeedbackVersion.feedback,
            FeedbackVersion.collected_on,
            FeedbackVersion.behaviour,
            FeedbackVersion.feels_safer,
            FeedbackVersion.note,
            FeedbackVersion.recorded_by.username.as_alias("recorded_by"),
            FeedbackVersion.recorded_at,
            FeedbackVersion.replaced_by.username.as_alias("replaced_by"),
            FeedbackVersion.replaced_at,
            FeedbackVersion.reason,
        )
        .where(FeedbackVersion.feedback.is_in([r["id"] for r in rows] or [None]))
        .order_by(FeedbackVersion.id, ascending=False)
    )
    earlier: dict[UUID, list[schemas.FeedbackVersion]] = {}
    for v in versions:
        earlier.setdefault(v["feedback"], []).append(
            schemas.FeedbackVersion(
                collected_on=v["collected_on"],
                behaviour=v["behaviour"],
                feels_safer=v["feels_safer"],
                note=crypt.decrypt(v["note"]),
                recorded_by=v["recorded_by"],
                recorded_at=v["recorded_at"],
                replaced_by=v["replaced_by"],
                replaced_at=v["replaced_at"],
                reason=crypt.decrypt(v["reason"]),
            )
        )
    return [
        schemas.Feedback(
            victim_id=victim_id,
            stage=r["stage"],
            collected_on=r["collected_on"],
            behaviour=r["behaviour"],
            feels_safer=r["feels_safer"],
            note=crypt.decrypt(r["note"]),
            recorded_by=r["recorded_by"],
            earlier=earlier.get(r["id"], []),
        )
        for r in rows
    ]


async def perpetrator_progress(victim_id: UUID, actor: Principal) -> schemas.PerpetratorProgress:
    """The linked referral's status and disengagement/at-risk alerts: integrated support."""
    victim = await Victim.select(Victim.referral).where(Victim.id == victim_id).first()
    if victim is None:
        raise NotFound("No such victim record.")
    referral = (
        await Referral.select(Referral.id, Referral.reference, Referral.status, Referral.status_on)
        .where(Referral.id == victim["referral"])
        .first()
    )
    assert referral is not None
    alerts = (
        await ParticipantAlert.select(
            ParticipantAlert.kind, ParticipantAlert.raised_on, ParticipantAlert.withdrawn_on
        )
        .where(ParticipantAlert.referral == referral["id"])
        .order_by(ParticipantAlert.raised_on)
        .order_by(ParticipantAlert.created_at)
    )
    await audit.record(
        actor, AuditAction.read, RecordType.referral, referral["id"], {"view": "support"}
    )
    return schemas.PerpetratorProgress(
        referral_id=referral["id"],
        reference=referral["reference"],
        status=referral["status"],
        status_on=referral["status_on"],
        alerts=[schemas.Alert(**a) for a in alerts],
    )


async def police_recorded_before(person_id: UUID, before: date) -> int:
    """Police-recorded incidents of a person dated before a day: prior history."""
    return await Reoffence.count().where(
        (Reoffence.person == person_id) & (Reoffence.offence_date < before)
    )


VICTIM_CORRECTABLE = ("first_name", "last_name", "phone", "relationship")
"""A victim's details a correction may change; consent to contact has its own records."""


def _victim_details(row: dict[str, Any]) -> dict[str, Any]:
    crypt = cipher()
    return {
        "first_name": crypt.decrypt(row["first_name"]),
        "last_name": crypt.decrypt(row["last_name"]),
        "phone": crypt.decrypt(row["phone"]),
        "relationship": row["relationship"],
    }


async def correct_victim(
    victim_id: UUID, raw: Any, actor: Principal, today: date
) -> schemas.Victim:
    """Correct a victim's/survivor's contact details, keeping the earlier values.

    The details are checked as when first given (``referrals.rules.check_victim``),
    every problem at once. The earlier and new values and the reason are stored
    encrypted, like the details themselves. A correction that changes nothing
    writes nothing.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(errors=[FieldError("invalid", "", "The body must be a JSON object.")])
    problems = reason_problems(raw)
    for name in raw:
        if name in VICTIM_CORRECTABLE or name == "reason":
            continue
        if name in ("consent_to_contact", "consent_obtained_on"):
            problems.append(
                FieldError(
                    "not_correctable",
                    str(name),
                    "Consent to contact has its own dated records: POST /victims/{id}/consent.",
                )
            )
        else:
            problems.append(FieldError("unknown_field", str(name), UNKNOWN_FIELD))
    given = {name: raw[name] for name in VICTIM_CORRECTABLE if name in raw}
    if not given and not problems:
        problems.append(FieldError("required", "", "Give at least one field to correct."))
    async with engine().transaction():
        row = await Victim.select().where(Victim.id == victim_id).lock_rows().first()
        if row is None:
            raise NotFound("No such victim record.")
        before = _victim_details(row)
        checked, found = check_victim(
            {**before, **given, "consent_to_contact": False}, "", today=today
        )
        problems.extend(FieldError(p.code, p.field.removeprefix("."), p.message) for p in found)
        if problems:
            raise InvalidInput(errors=problems)
        assert checked is not None
        after = {name: getattr(checked, name) for name in VICTIM_CORRECTABLE}
        changes = {
            name: {"old": before[name], "new": after[name]}
            for name in VICTIM_CORRECTABLE
            if before[name] != after[name]
        }
        if not changes:
            return await get_victim(victim_id, actor, audited=False)
        # No published figure counts victims' contact details, so no reported quarter is touched.
        crypt = cipher()
        await Victim.update(
            {
                Victim.first_name: crypt.encrypt(after["first_name"]),
                Victim.last_name: crypt.encrypt(after["last_name"]),
                Victim.phone: crypt.encrypt(after["phone"]),
                Victim.relationship: after["relationship"],
            }
        ).where(Victim.id == victim_id)
        await VictimCorrection.insert(
            VictimCorrection(
                victim=victim_id,
                fields=json.dumps(sorted(changes)),
                changes=crypt.encrypt(json.dumps(changes)),
                reason=crypt.encrypt(str(raw["reason"]).strip()),
                corrected_by=actor.id,
            )
        )
        await audit.record(
            actor, AuditAction.update, RecordType.victim, victim_id, {"correction": sorted(changes)}
        )
    return await get_victim(victim_id, actor, audited=False)


async def victim_history(victim_id: UUID, actor: Principal) -> schemas.VictimHistory:
    """Every correction of a victim's details, oldest first; victim workers and admins
    (read-only) only, and every read audited."""
    if not await Victim.exists().where(Victim.id == victim_id):
        raise NotFound("No such victim record.")
    rows = (
        await VictimCorrection.select(
            VictimCorrection.changes,
            VictimCorrection.reason,
            VictimCorrection.corrected_at,
            VictimCorrection.corrected_by.username.as_alias("by"),
        )
        .where(VictimCorrection.victim == victim_id)
        .order_by(VictimCorrection.id)
    )
    await audit.record(actor, AuditAction.read, RecordType.victim, victim_id, {"view": "history"})
    crypt = cipher()
    entries = []
    for r in rows:
        changes = json.loads(crypt.decrypt(r["changes"]) or "{}")
        entries.append(
            schemas.VictimHistoryEntry(
                at=r["corrected_at"],
                by=r["by"],
                reason=crypt.decrypt(r["reason"]),
                changes=[
                    schemas.FieldChange(field=name, old=value["old"], new=value["new"])
                    for name, value in sorted(changes.items())
                ],
            )
        )
    return schemas.VictimHistory(victim_id=victim_id, entries=entries)


async def caseload(actor: Principal) -> dict[UUID, UUID]:
    """The victims a victim worker supports, each with its referral; every victim for admins."""
    if actor.role == Role.admin.value:
        worker = None
    elif actor.role == Role.victim_worker.value and actor.id is not None:
        worker = actor.id
    else:
        raise NotPermitted()
    rows = await database.fetch(queries.CASELOAD, worker)
    return {row["id"]: row["referral"] for row in rows if worker is None or supports(row)}


async def supported_referrals(worker_id: UUID) -> list[UUID]:
    """The referrals of the victims a victim worker supports (their search covers these)."""
    rows = await database.fetch(queries.CASELOAD, worker_id)
    return sorted({row["referral"] for row in rows if supports(row)})


async def list_cases(actor: Principal, paging: Paging) -> Page[schemas.Case]:
    """A victim worker's caseload, newest first: consent to contact and the perpetrator's
    latest alert for each. Admins read every victim's (audited). Each victim shown is
    audited as read."""
    victims = await caseload(actor)
    rows = await database.fetch(queries.CASES, list(victims), paging.limit, paging.offset)
    consents = await _latest_consents([row["id"] for row in rows])
    await audit.record_many(
        actor,
        AuditAction.read,
        RecordType.victim,
        [row["id"] for row in rows],
        {"view": "caseload"},
    )
    cases = [
        schemas.Case(
            victim=_victim(dict(row), consents.get(row["id"])),
            reference=row["reference"],
            status=row["status"],
            status_on=row["status_on"],
            latest_alert=None
            if row["alert_kind"] is None
            else schemas.Alert(
                kind=row["alert_kind"],
                raised_on=row["alert_raised_on"],
                withdrawn_on=row["alert_withdrawn_on"],
            ),
        )
        for row in rows
    ]
    return paging.page(cases, len(victims))


async def list_case_alerts(actor: Principal, paging: Paging) -> Page[schemas.CaseAlert]:
    """Every alert on the perpetrators of a worker's caseload as one list, newest first,
    instead of victim by victim. Each referral whose alerts are shown is audited as read
    (the support view), as ``perpetrator_progress`` does."""
    victims = await caseload(actor)
    by_referral: dict[UUID, list[UUID]] = {}
    for victim_id, referral_id in victims.items():
        by_referral.setdefault(referral_id, []).append(victim_id)
    referrals = list(by_referral)
    rows = await database.fetch(queries.CASE_ALERTS, referrals, paging.limit, paging.offset)
    total = (await database.fetch(queries.CASE_ALERTS_COUNT, referrals))[0]["total"]
    shown = list(dict.fromkeys(row["referral"] for row in rows))
    await audit.record_many(
        actor, AuditAction.read, RecordType.referral, shown, {"view": "support"}
    )
    alerts = [
        schemas.CaseAlert(
            kind=row["kind"],
            raised_on=row["raised_on"],
            referral_id=row["referral"],
            reference=row["reference"],
            victim_ids=sorted(by_referral[row["referral"]]),
            withdrawn_on=row["withdrawn_on"],
        )
        for row in rows
    ]
    return paging.page(alerts, total)
