"""Writing a checked import: one transaction, bulk COPY, audited.

Each import checks its whole file first (``programme.imports.rules``), looks
up what is already stored, and then writes everything in one transaction, so a
half-imported file never happens.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec

from outcomes.tables import Reoffence
from programme.imports import queries
from programme.imports import rules as import_rules
from programme.imports.rules import (
    AcceptedRow,
    ImportKind,
    IncidentRow,
    Plan,
    check_agencies,
    check_overlaps,
    final_status,
    keyed_digest,
    older_than,
    plan_import,
    plan_incidents,
)
from programme.imports.schemas import DataDictionary, ImportReport, ReturnedRowReport, RowProblem
from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.accounts.services import get_or_create_agency
from programme.platform.audit import services as audit
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.database import engine
from programme.platform.errors import Conflict
from programme.platform.locked_quarters.rules import quarters_of
from programme.platform.locked_quarters.services import locked_quarters, require_unlocked
from programme.platform.settings import Settings
from programme.platform.tables import Agency, AuditAction, RecordType
from programme.platform.threads import collector_paused, off_loop
from referrals import rules
from referrals.rules import OPEN, Status
from referrals.tables import Person, Referral, ReferralEvent, ReturnedReferral

# The Python around each look-up below runs in a worker thread (``off_loop``): each
# is a pass over every row of the file, a tenth of a second or more at 200,000
# rows, and on the event loop it would hold every other request for that long.


def _keys_and_phones(rows: list[AcceptedRow]) -> tuple[list[str], list[str]]:
    return list({row.person_key for row in rows}), list({row.submission.phone for row in rows})


def _identities(rows: list[AcceptedRow], found: list[Any]) -> dict[int, str]:
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


async def _existing_people(rows: list[AcceptedRow]) -> dict[int, str]:
    """Who each row's person is: a stored person's id, else the row's match key."""
    keys, phones = await off_loop(_keys_and_phones, rows)
    found = await database.fetch(queries.PEOPLE_BY_KEY_OR_PHONE, keys, phones)
    return await off_loop(_identities, rows, found)


def _references_and_fingerprints(plan: Plan) -> tuple[list[str], list[str]]:
    return [row.reference for row in plan.accepted], [row.fingerprint for row in plan.returned]


def _drop_known(plan: Plan, known: set[str], seen: set[str]) -> int:
    before = len(plan.accepted) + len(plan.returned)
    plan.accepted = [row for row in plan.accepted if row.reference not in known]
    unique_returns = []
    for row in plan.returned:
        if row.fingerprint not in seen:
            seen.add(row.fingerprint)
            unique_returns.append(row)
    plan.returned = unique_returns
    return before - len(plan.accepted) - len(plan.returned)


async def _drop_already_imported(plan: Plan) -> int:
    references, fingerprints = await off_loop(_references_and_fingerprints, plan)
    stored = await database.fetch(queries.KNOWN_REFERENCES, references)
    known = {r["reference"] for r in stored}
    stored = await database.fetch(queries.KNOWN_RETURN_FINGERPRINTS, fingerprints)
    seen = {r["fingerprint"] for r in stored}
    return await off_loop(_drop_known, plan, known, seen)


def _stored_people(identities: set[str]) -> list[UUID]:
    return [UUID(i) for i in identities if len(i) == 36 and "|" not in i]


async def _open_referrals(identities: set[str]) -> dict[str, str]:
    person_ids = await off_loop(_stored_people, identities)
    if not person_ids:
        return {}
    rows = await database.fetch(queries.OPEN_REFERRALS_OF, person_ids, [s.value for s in OPEN])
    return {str(r["person"]): r["reference"] for r in rows}


async def import_referrals(
    content: bytes,
    actor: Principal,
    settings: Settings,
    today: date,
    *,
    skip_invalid: bool,
    override_reason: str | None = None,
    create_agencies: bool = False,
    dry_run: bool = False,
    expected: ImportReport | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Check the whole file, then write all of it (or, with ``skip_invalid``, its good rows).

    Unlike a referral submitted over the API, an imported one may be received
    any time back; the report counts those older than ``INSPIRE_BACKDATE_DAYS``.
    A file with rows dated in a reported (locked) quarter needs ``override_reason``.
    An agency not yet known is an error unless ``create_agencies``.

    ``dry_run`` checks everything and writes nothing: the report says what the
    import would do (``checked_only``). Given the report of such a check,
    ``expected``, the import writes only if it would still do exactly that
    (else ``Conflict``): what a person confirmed is what goes in.
    """
    with collector_paused():
        return await _import_referrals(
            content, actor, settings, today, skip_invalid, override_reason,
            create_agencies, dry_run, expected, progress,
        )  # fmt: skip


Progress = Callable[[str, int, int], None]
"""Told the stage (``checking``, ``writing``) and, while checking, rows done of the total."""


async def _import_referrals(
    content: bytes,
    actor: Principal,
    settings: Settings,
    today: date,
    skip_invalid: bool,
    override_reason: str | None,
    create_agencies: bool,
    dry_run: bool,
    expected: ImportReport | None,
    progress: Progress | None,
) -> ImportReport:
    plan = await off_loop(
        plan_import,
        content,
        today=today,
        commissioned_areas=settings.commissioned_areas,
        fingerprint_key=purpose_key(settings, KeyPurpose.import_fingerprint),
        reference_key=purpose_key(settings, KeyPurpose.generated_reference),
        progress=(lambda done, total: progress("checking", done, total)) if progress else None,
    )
    known = [row["name"] for row in await Agency.select(Agency.name)]
    new_agencies = await off_loop(check_agencies, plan, known, create=create_agencies)
    already = await _drop_already_imported(plan)
    identity = await _existing_people(plan.accepted)
    open_elsewhere = await _open_referrals(await off_loop(set, identity.values()))
    await off_loop(check_overlaps, plan, identity, open_elsewhere)
    refused = len(plan.error_lines)
    if plan.errors and not skip_invalid:
        return _report(plan, 0, 0, already, refused, [], checked_only=dry_run)
    touched, older = await off_loop(_good_rows_and_their_days, plan, today, settings.backdate_days)
    would_create = sorted(
        ({r.agency for r in plan.accepted} | {r.agency for r in plan.returned}) & set(new_agencies),
        key=str.casefold,
    )
    would = _report(
        plan, len(plan.accepted), len(plan.returned), already, refused, would_create, older,
        checked_only=True, locked=await _locked_among(touched),
    )  # fmt: skip
    if dry_run:
        return would
    if expected is not None and import_rules.outcome(would) != import_rules.outcome(expected):
        raise Conflict(
            "The records have changed since the file was checked, so it would not import "
            "what was shown. Check the file again."
        )
    if progress:
        progress("writing", 0, 0)
    async with engine().transaction() as transaction:
        await require_unlocked(
            touched,
            actor=actor,
            override_reason=override_reason,
            record_type=RecordType.referral,
            record_id="import",
        )
        created = await _write(transaction.connection, plan, identity, actor)
    return _report(plan, len(plan.accepted), len(plan.returned), already, refused, created, older)


async def _locked_among(days: list[date]) -> list[str]:
    touched = {quarter.label for quarter in quarters_of(days)}
    return [q.quarter for q in await locked_quarters() if q.quarter in touched]


def _good_rows_and_their_days(
    plan: Plan, today: date, backdate_days: int
) -> tuple[list[date], int]:
    """Drop the refused rows; then the days the rest touch (received, and their
    milestones: each once, for the locked-quarter check) and how many were received
    longer ago than the API's back-dating bound. Passes over the file: off the loop."""
    plan.accepted = [r for r in plan.accepted if r.line not in plan.error_lines]
    plan.returned = [r for r in plan.returned if r.line not in plan.error_lines]
    received = [r.submission.received_on for r in plan.accepted] + [
        r.received_on for r in plan.returned
    ]
    milestones = (on for r in plan.accepted for _, on in r.milestones)
    return sorted({*received, *milestones}), older_than(received, today, backdate_days)


def _report(
    plan: Plan,
    imported: int,
    returned: int,
    already: int,
    refused: int,
    created: list[str],
    older: int = 0,
    *,
    checked_only: bool = False,
    locked: list[str] | None = None,
) -> ImportReport:
    return ImportReport(
        imported=imported,
        returned=returned,
        already_present=already,
        refused=refused,
        agencies_created=created,
        warnings=plan.warnings,
        errors=plan.errors,
        older_than_backdate_limit=older,
        returned_rows=[
            ReturnedRowReport(
                line=r.line, reasons=[reason.value for reason in r.reasons], problems=r.problems
            )
            for r in sorted(plan.returned, key=lambda r: r.line)
        ]
        if returned
        else [],
        checked_only=checked_only,
        locked_quarters=locked or [],
    )


async def _agencies(names: set[str], actor: Principal) -> tuple[dict[str, UUID], list[str]]:
    rows = await Agency.select(Agency.id, Agency.name)
    by_name = {import_rules.normal_agency(row["name"]).casefold(): row["id"] for row in rows}
    created = []
    for name in sorted(names):
        if name.casefold() not in by_name:
            by_name[name.casefold()], _ = await get_or_create_agency(name, actor)
            created.append(name)
    return {name: by_name[name.casefold()] for name in names}, created


_EVENT_COLUMNS = ["referral", "type", "occurred_on", "recorded_by", "recorded_at", "source"]
_RETURNED_COLUMNS = [
    "id", "agency", "submitted_by", "received_on", "reasons", "source", "fingerprint", "created_at",
]  # fmt: skip


@dataclass
class _Copy:
    """Rows for one table's COPY."""

    table: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _as_copy(table: str, dicts: list[dict[str, Any]]) -> _Copy:
    # The columns are the keys of the rows' one declaration (referrals.rules).
    columns = list(dicts[0]) if dicts else []
    return _Copy(table, columns, [tuple(row[c] for c in columns) for row in dicts])


def _records(
    plan: Plan, identity: dict[int, str], agency_ids: dict[str, UUID], actor: Principal
) -> tuple[list[_Copy], list[UUID]]:
    """Every row to write, and the referrals to audit, built off the event loop:
    100,000 referrals take seconds of CPU."""
    now = datetime.now(UTC)
    people: list[dict[str, Any]] = []
    referrals: list[dict[str, Any]] = []
    events: list[tuple[Any, ...]] = []
    audited: list[UUID] = []
    person_ids: dict[str, UUID] = {}
    for row in sorted(plan.accepted, key=lambda r: r.submission.received_on):
        sub = row.submission
        who = identity[row.line]
        if who not in person_ids:
            if who == row.person_key:
                person_ids[who] = uuid.uuid4()
                people.append(
                    {"id": person_ids[who], **rules.person_values(sub), "created_at": now}
                )
            else:
                person_ids[who] = UUID(who)
        referral_id = uuid.uuid4()
        status, status_on = final_status(row.milestones, sub.received_on)
        referrals.append(
            {
                "id": referral_id,
                "reference": row.reference,
                "person": person_ids[who],
                "agency": agency_ids[row.agency],
                "submitted_by": actor.id,
                "status": status.value,
                "status_on": status_on,
                **rules.referral_values(sub, rules.assess_quality(sub)),
                "version": 1,
                "created_at": now,
            }
        )
        for step, on in [(Status.accepted, sub.received_on), *row.milestones]:
            events.append((referral_id, step.value, on, actor.id, now, "import"))
        audited.append(referral_id)
    returned = [
        (
            uuid.uuid4(), agency_ids[r.agency], actor.id, r.received_on,
            json.dumps([reason.value for reason in r.reasons]), "import", r.fingerprint, now,
        )
        for r in plan.returned
    ]  # fmt: skip
    copies = [
        _as_copy(Person._meta.tablename, people),
        _as_copy(Referral._meta.tablename, referrals),
        _Copy(ReferralEvent._meta.tablename, _EVENT_COLUMNS, events),
        _Copy(ReturnedReferral._meta.tablename, _RETURNED_COLUMNS, returned),
    ]
    return copies, audited


async def _write(
    connection: Any, plan: Plan, identity: dict[int, str], actor: Principal
) -> list[str]:
    agency_ids, created = await _agencies(
        {r.agency for r in plan.accepted} | {r.agency for r in plan.returned}, actor
    )
    copies, audited = await off_loop(_records, plan, identity, agency_ids, actor)
    for copy in copies:
        await database.copy_records(connection, copy.table, copy.columns, copy.rows)
    await audit.copy_many(
        connection, actor, AuditAction.create, RecordType.referral, audited, {"source": "import"}
    )
    return created


async def import_reoffending(
    content: bytes,
    actor: Principal,
    fingerprint_key: str,
    today: date,
    *,
    skip_invalid: bool,
    dry_run: bool = False,
    expected: ImportReport | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Police-recorded incidents: every row matched to one referred person, or nothing written.

    Importing the same file again adds nothing. Incidents before a referral are
    kept as prior history; the analysis counts only those after the referral date.
    ``dry_run`` and ``expected`` as for ``import_referrals``.
    """
    plan = await off_loop(
        plan_incidents,
        content,
        today=today,
        progress=(lambda done, total: progress("checking", done, total)) if progress else None,
    )
    errors = plan.errors
    by_reference = {
        row["reference"]: row["person"]
        for row in await database.fetch(
            queries.PEOPLE_BY_REFERENCE, list({r.reference for r in plan.rows if r.reference})
        )
    }
    by_key: dict[str, list[UUID]] = {}
    for row in await database.fetch(
        queries.PEOPLE_BY_MATCH_KEY, list({r.person_key for r in plan.rows if r.person_key})
    ):
        by_key.setdefault(row["match_key"], []).append(row["id"])
    matched: list[tuple[IncidentRow, UUID]] = []
    for item in plan.rows:
        if item.reference is not None:
            person = by_reference.get(item.reference)
            if person is None:
                errors.append(
                    RowProblem(
                        line=item.line,
                        code="unmatched",
                        field="reference",
                        message="Unmatched: no referral has this reference.",
                    )
                )
                continue
        else:
            candidates = by_key.get(item.person_key or "", [])
            if len(candidates) != 1:
                errors.append(
                    RowProblem(
                        line=item.line,
                        code="unmatched" if not candidates else "ambiguous",
                        field="first_name",
                        message=(
                            "Unmatched: no referred person has this name and date of birth."
                            if not candidates
                            else f"Ambiguous: {len(candidates)} people match."
                        ),
                    )
                )
                continue
            person = candidates[0]
        matched.append((item, person))
    bad_lines = {e.line for e in errors}
    if errors and not skip_invalid:
        return ImportReport(
            imported=0,
            already_present=0,
            refused=len(bad_lines),
            warnings=[],
            errors=errors,
            checked_only=dry_run,
        )
    # The n-th identical incident of a person on a day is told apart by its count,
    # so a file listing two same-day incidents imports both, and only once.
    seen: Counter[tuple[Any, ...]] = Counter()
    fingerprinted = []
    for item, person in matched:
        identity = (person, item.offence_on, item.offence_type or "")
        seen[identity] += 1
        fingerprint = keyed_digest(
            fingerprint_key, f"incident|{identity[0]}|{identity[1]}|{identity[2]}|{seen[identity]}"
        )
        fingerprinted.append((item, person, fingerprint))
    known = {
        row["fingerprint"]
        for row in await database.fetch(
            queries.KNOWN_INCIDENT_FINGERPRINTS, [f for _, _, f in fingerprinted]
        )
    }
    new = [entry for entry in fingerprinted if entry[2] not in known]
    first_referral = {
        row["person"]: row["received_on"]
        for row in await database.fetch(
            queries.FIRST_REFERRAL_OF, list({person for _, person, _ in new})
        )
    }
    report = ImportReport(
        imported=len(new),
        already_present=len(fingerprinted) - len(new),
        refused=len(bad_lines),
        warnings=[],
        errors=errors,
        after_referral=sum(
            1 for item, person, _ in new if item.offence_on > first_referral[person]
        ),
        checked_only=True,
    )
    if dry_run:
        return report
    if expected is not None and import_rules.outcome(report) != import_rules.outcome(expected):
        raise Conflict(
            "The records have changed since the file was checked, so it would not import "
            "what was shown. Check the file again."
        )
    if progress:
        progress("writing", 0, 0)
    now = datetime.now(UTC)
    async with engine().transaction() as transaction:
        # COPY, not INSERT: one parameter per value would pass PostgreSQL's limit.
        await database.copy_records(
            transaction.connection,
            Reoffence._meta.tablename,
            ["id", "person", "offence_date", "offence_type", "fingerprint", "imported_by",
             "created_at"],
            [
                (uuid.uuid4(), who, item.offence_on, item.offence_type, fingerprint, actor.id, now)
                for item, who, fingerprint in new
            ],
        )  # fmt: skip
        await audit.record(
            actor, AuditAction.create, RecordType.reoffence_import, None, {"rows": len(new)}
        )
    return msgspec.structs.replace(report, checked_only=False)


async def dictionary(kind: ImportKind, settings: Settings) -> DataDictionary:
    """The columns a file of ``kind`` may have, from the specs its import checks by."""
    if kind is ImportKind.reoffending:
        return import_rules.incident_dictionary()
    known = [row["name"] for row in await Agency.select(Agency.name)]
    return import_rules.referral_dictionary(settings.commissioned_areas, known)
