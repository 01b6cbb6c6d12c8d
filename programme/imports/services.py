"""Writing a checked import: one transaction, bulk COPY, audited.

Each import checks its file (``programme.imports.rules``), looks up what is
already stored, and writes it in one transaction, so a half-imported file never
happens. A referrals file is checked a part at a time, each clean part written
while the next is checked; the whole file's outcome is still decided on the whole
file, and anything short of writing all of it rolls the transaction back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from outcomes.tables import IncidentExtract, Reoffence
from programme.imports import queries
from programme.imports import rules as import_rules
from programme.imports.rules import (
    AcceptedRow,
    ImportKind,
    IncidentRow,
    Plan,
    ReturnedRow,
    RowChecks,
    check_agencies,
    check_overlaps,
    check_rows,
    extract_date,
    final_status,
    keyed_digest,
    older_than,
    plan_incidents,
    read_referrals,
)
from programme.imports.schemas import DataDictionary, ImportReport, ReturnedRowReport, RowProblem
from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.accounts.services import get_or_create_agency
from programme.platform.audit import services as audit
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.database import engine
from programme.platform.errors import ApplicationError, Conflict, NotFound, QuarterLocked
from programme.platform.locked_quarters.rules import quarters_of
from programme.platform.locked_quarters.services import locked_quarters, require_unlocked
from programme.platform.settings import Settings
from programme.platform.tables import Agency, AuditAction, RecordType
from programme.platform.threads import collector_paused, off_loop
from referrals import rules
from referrals.rules import OPEN, Status
from referrals.tables import Person, Referral, ReferralEvent, ReturnedReferral

logger = logging.getLogger(__name__)

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


async def _drop_already_imported(plan: Plan, found: _Found) -> int:
    references, fingerprints = await off_loop(_references_and_fingerprints, plan)
    stored = await database.fetch(queries.KNOWN_REFERENCES, references)
    known = {r["reference"] for r in stored}
    stored = await database.fetch(queries.KNOWN_RETURN_FINGERPRINTS, fingerprints)
    seen = {r["fingerprint"] for r in stored}
    found.references |= known
    found.fingerprints |= seen
    # Earlier parts' returned rows count as seen: the same returned row twice in a file
    # goes in once, whichever parts the two are in.
    return await off_loop(_drop_known, plan, known, seen | found.returns_in_file)


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


CHECK_PART = 10_000
"""Rows checked at a time. Each part is looked up and, unless it shows an error, written
while the next is checked: the database's work overlaps the checking."""


@dataclass
class _Found:
    """What the database holds for the file's rows, looked up a part at a time: together,
    what one look-up of the whole file would have found."""

    references: set[str] = field(default_factory=set)
    """The file's references already stored."""
    fingerprints: set[str] = field(default_factory=set)
    """The file's returned rows already stored."""
    returns_in_file: set[str] = field(default_factory=set)
    identity: dict[int, str] = field(default_factory=dict)
    open_elsewhere: dict[str, str] = field(default_factory=dict)
    by_person: dict[str, list[AcceptedRow]] = field(default_factory=dict)
    """The accepted rows so far, by who they are: a later row may overlap an earlier one."""


def _overlap_among(part: Plan, found: _Found) -> bool:
    """Whether the part's people have overlapping referrals in the file so far, or one
    open beside it: ``check_overlaps`` on their rows, which are few, not the file's."""
    for row in part.accepted:
        found.by_person.setdefault(found.identity[row.line], []).append(row)
    touched = {found.identity[row.line] for row in part.accepted}
    theirs = Plan(accepted=[row for who in touched for row in found.by_person[who]])
    check_overlaps(theirs, found.identity, found.open_elsewhere)
    return bool(theirs.errors)


def _settle(plan: Plan, known: list[str], create: bool, found: _Found) -> tuple[list[str], int]:
    """The whole file's checks against what is stored, as one pass over the whole file
    would make them (the same errors, in the same order): the agencies, the rows already
    imported, then overlapping referrals. Returns the new agencies and the rows dropped."""
    new_agencies = check_agencies(plan, known, create=create)
    already = _drop_known(plan, found.references, set(found.fingerprints))
    check_overlaps(plan, found.identity, found.open_elsewhere)
    return new_agencies, already


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
    checks = RowChecks(
        today,
        settings.commissioned_areas,
        fingerprint_key=purpose_key(settings, KeyPurpose.import_fingerprint),
        reference_key=purpose_key(settings, KeyPurpose.generated_reference),
    )
    plan, rows = await off_loop(read_referrals, content)
    known = [row["name"] for row in await Agency.select(Agency.name)]
    found = _Found()
    # A check writes nothing. An import writes each part once it is checked and found
    # clean, in one transaction held by its own task; the first error anywhere rolls
    # it back (the file then goes in as a whole, or not at all, as below).
    writer = None if dry_run else _WriteAsChecked(actor)
    try:
        if writer is not None and plan.errors:
            writer.abandon()
        for start in range(0, len(rows), CHECK_PART):
            part = await off_loop(
                check_rows, rows[start : start + CHECK_PART], checks, Plan(),
                progress=(lambda done, total: progress("checking", done, total))
                if progress else None,
                done_before=start, total=len(rows),
            )  # fmt: skip
            plan.extend(part)
            await off_loop(check_agencies, part, known, create=create_agencies)
            await _drop_already_imported(part, found)
            found.returns_in_file.update(row.fingerprint for row in part.returned)
            identity = await _existing_people(part.accepted)
            found.identity.update(identity)
            found.open_elsewhere.update(
                await _open_referrals(await off_loop(set, identity.values()))
            )
            if writer is not None and writer.writing:
                clean = not part.errors and not await off_loop(_overlap_among, part, found)
                if clean:
                    writer.send(part, identity)
                else:
                    writer.abandon()
        if progress:
            progress("checking", len(rows), len(rows))
        return await _finish(
            plan, found, known, writer, actor, settings, today, skip_invalid,
            override_reason, create_agencies, dry_run, expected, progress,
        )  # fmt: skip
    finally:
        if writer is not None:
            await writer.stop()


async def _finish(
    plan: Plan,
    found: _Found,
    known: list[str],
    writer: _WriteAsChecked | None,
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
    """The whole file's outcome, decided on the whole file; then written (or, if the
    file's parts are written already, kept)."""
    new_agencies, already = await off_loop(_settle, plan, known, create_agencies, found)
    identity = found.identity
    refused = len(plan.error_lines)
    if writer is not None and (
        plan.errors or not writer.wrote_all(len(plan.accepted), len(plan.returned))
    ):
        await writer.roll_back()
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
        if writer is not None:
            await writer.roll_back()
        raise Conflict(
            "The records have changed since the file was checked, so it would not import "
            "what was shown. Check the file again."
        )
    if progress:
        progress("writing", 0, 0)
    if writer is not None and writer.writing:
        created = await writer.commit(plan, identity, touched, override_reason)
    else:
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


WRITE_SLICE = 20_000
"""Referrals built and written at a time when a file goes in whole after its check (with
``skip_invalid``, once it showed errors): the next slice is built while this one's COPY
runs (the database's work, on another core), rather than all built and then all written."""


def _records(
    rows: list[AcceptedRow],
    identity: dict[int, str],
    agency_ids: dict[str, UUID],
    actor: Principal,
    now: datetime,
    person_ids: dict[str, UUID],
    made_by: dict[str, AcceptedRow] | None = None,
) -> tuple[list[_Copy], list[UUID]]:
    """One slice's rows to write (its new people, referrals and their steps) and the
    referrals to audit, built off the event loop: 100,000 referrals take seconds of CPU.
    ``person_ids`` carries who is already written from slice to slice; ``made_by``, if
    given, is told which row each new person was written from."""
    people: list[tuple[Any, ...]] = []
    referrals: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    audited: list[UUID] = []
    # The columns are the keys of the rows' one declaration (referrals.rules), built once.
    person_columns: list[str] = []
    referral_columns: list[str] = []
    for row in rows:
        sub = row.submission
        who = identity[row.line]
        if who not in person_ids:
            if who == row.person_key:
                person_ids[who] = uuid.uuid4()
                if made_by is not None:
                    made_by[who] = row
                person = rules.person_values(sub, key=row.person_key)
                person_columns = person_columns or ["id", *person, "created_at"]
                people.append((person_ids[who], *person.values(), now))
            else:
                person_ids[who] = UUID(who)
        referral_id = uuid.uuid4()
        status, status_on = final_status(row.milestones, sub.received_on)
        details = rules.referral_values(sub, rules.assess_quality(sub))
        referral_columns = referral_columns or [
            "id", "reference", "person", "agency", "submitted_by", "status", "status_on",
            *details, "version", "created_at",
        ]  # fmt: skip
        referrals.append(
            (
                referral_id, row.reference, person_ids[who], agency_ids[row.agency], actor.id,
                status.value, status_on, *details.values(), 1, now,
            )
        )  # fmt: skip
        for step, on in [(Status.accepted, sub.received_on), *row.milestones]:
            events.append((referral_id, step.value, on, actor.id, now, "import"))
        audited.append(referral_id)
    copies = [
        _Copy(Person._meta.tablename, person_columns, people),
        _Copy(Referral._meta.tablename, referral_columns, referrals),
        _Copy(ReferralEvent._meta.tablename, _EVENT_COLUMNS, events),
    ]
    return copies, audited


def _returned_records(
    rows: list[ReturnedRow], agency_ids: dict[str, UUID], actor: Principal, now: datetime
) -> _Copy:
    return _Copy(
        ReturnedReferral._meta.tablename,
        _RETURNED_COLUMNS,
        [
            (
                uuid.uuid4(), agency_ids[r.agency], actor.id, r.received_on,
                json.dumps([reason.value for reason in r.reasons]), "import", r.fingerprint, now,
            )
            for r in rows
        ],
    )  # fmt: skip


def _slices(plan: Plan) -> list[list[AcceptedRow]]:
    """The accepted rows oldest first (people are written by their first referral), in
    slices of ``WRITE_SLICE``."""
    rows = sorted(plan.accepted, key=lambda r: r.submission.received_on)
    return [rows[i : i + WRITE_SLICE] for i in range(0, len(rows), WRITE_SLICE)]


async def _write(
    connection: Any, plan: Plan, identity: dict[int, str], actor: Principal
) -> list[str]:
    agency_ids, created = await _agencies(
        {r.agency for r in plan.accepted} | {r.agency for r in plan.returned}, actor
    )
    now = datetime.now(UTC)
    person_ids: dict[str, UUID] = {}
    slices = await off_loop(_slices, plan)
    audited: list[UUID] = []

    def build(index: int) -> asyncio.Task[tuple[list[_Copy], list[UUID]]]:
        return asyncio.ensure_future(
            off_loop(_records, slices[index], identity, agency_ids, actor, now, person_ids)
        )

    # A slice's people, referrals and steps are written before the next slice's, so
    # every referral's person and every step's referral is already there (foreign keys).
    building = build(0) if slices else None
    try:
        for index in range(len(slices)):
            assert building is not None
            copies, ids = await building
            building = build(index + 1) if index + 1 < len(slices) else None
            for copy in copies:
                if copy.rows:
                    await database.copy_records(connection, copy.table, copy.columns, copy.rows)
            audited.extend(ids)
    finally:
        if building is not None:  # a COPY failed: let the slice being built finish
            await asyncio.gather(building, return_exceptions=True)
    returned = await off_loop(_returned_records, plan.returned, agency_ids, actor, now)
    await database.copy_records(connection, returned.table, returned.columns, returned.rows)
    await audit.copy_many(
        connection, actor, AuditAction.create, RecordType.referral, audited, {"source": "import"}
    )
    return created


class _RolledBack(Exception):
    """Ends the writing task's transaction without keeping anything."""


@dataclass
class _Commit:
    plan: Plan
    identity: dict[int, str]
    touched: list[date]
    override_reason: str | None


def _part_records(
    accepted: list[AcceptedRow],
    returned: list[ReturnedRow],
    identity: dict[int, str],
    agency_ids: dict[str, UUID],
    actor: Principal,
    now: datetime,
    person_ids: dict[str, UUID],
    made_by: dict[str, AcceptedRow],
) -> tuple[list[_Copy], list[UUID]]:
    """A checked part's rows to write: its referrals oldest first, as ``_write`` would."""
    oldest_first = sorted(accepted, key=lambda r: r.submission.received_on)
    copies, audited = _records(oldest_first, identity, agency_ids, actor, now, person_ids, made_by)
    return [*copies, _returned_records(returned, agency_ids, actor, now)], audited


def _people_from_their_first_referral(
    plan: Plan,
    identity: dict[int, str],
    person_ids: dict[str, UUID],
    made_by: dict[str, AcceptedRow],
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The new people written from a referral in an earlier part than their oldest one,
    with the details their oldest gives: what ``_write`` (oldest first) would have stored."""
    oldest: dict[str, AcceptedRow] = {}
    for row in sorted(plan.accepted, key=lambda r: r.submission.received_on):
        who = identity[row.line]
        if who in made_by and who not in oldest:
            oldest[who] = row
    columns: list[str] = []
    corrected = []
    for who, row in oldest.items():
        if row is made_by[who]:
            continue
        details = rules.person_values(row.submission, key=who)
        if details != rules.person_values(made_by[who].submission, key=who):
            columns = list(details)
            corrected.append((person_ids[who], *details.values()))
    return columns, corrected


class _WriteAsChecked:
    """An import's one transaction, in a task of its own, writing each part of the file
    as soon as it is checked and found clean, while the next part is checked.

    Nothing it writes is seen by anyone else (or by the file's own look-ups, which run
    outside it) before ``commit``; ``abandon`` or ``roll_back`` undoes all of it.
    """

    def __init__(self, actor: Principal) -> None:
        self._actor = actor
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[list[str]] | None = None
        self._abandoned = False
        self._accepted = self._returned = 0
        self._spellings: dict[str, str] = {}
        self._now = datetime.now(UTC)
        self._person_ids: dict[str, UUID] = {}
        self._made_by: dict[str, AcceptedRow] = {}
        self._agency_ids: dict[str, UUID] = {}
        self._created: list[str] = []

    @property
    def writing(self) -> bool:
        return not self._abandoned

    def send(self, part: Plan, identity: dict[int, str]) -> None:
        """Write the part's accepted (and returned) rows, after those sent before."""
        if self._task is not None and self._task.done():
            self._task.result()  # the writing failed: its error is the import's
        names = {r.agency for r in part.accepted} | {r.agency for r in part.returned}
        for name in sorted(names):
            # Two spellings of a new agency ("SYP", "Syp"): ``_write`` creates the one
            # that sorts first in the whole file; a later part may name one sorting
            # before what is written already, so that file goes in whole, at the end.
            first = self._spellings.setdefault(name.casefold(), name)
            if name < first:
                self.abandon()
                return
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        self._queue.put_nowait((part.accepted, part.returned, identity))
        self._accepted += len(part.accepted)
        self._returned += len(part.returned)

    def wrote_all(self, accepted: int, returned: int) -> bool:
        return self.writing and (self._accepted, self._returned) == (accepted, returned)

    def abandon(self) -> None:
        """Write no more, and undo what was written (unless ``commit`` was asked first)."""
        if not self._abandoned and self._task is not None:
            self._queue.put_nowait(None)
        self._abandoned = True

    async def roll_back(self) -> None:
        self.abandon()
        await self.stop()

    async def commit(
        self,
        plan: Plan,
        identity: dict[int, str],
        touched: list[date],
        override_reason: str | None,
    ) -> list[str]:
        """Keep what was written (``plan``'s rows, all of them): the agencies created."""
        if self._task is None:  # a file with nothing to write
            self._task = asyncio.ensure_future(self._run())
        self._queue.put_nowait(_Commit(plan, identity, touched, override_reason))
        return await self._task

    async def stop(self) -> None:
        """Wait for the task to end, rolled back unless committed (so on any error too).

        Told to roll back, not cancelled: a COPY cut off half-way could leave the
        connection in doubt; the parts already sent are few (one or two behind)."""
        if self._task is None:
            return
        self.abandon()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> list[str]:
        async with engine().transaction() as transaction:
            connection = transaction.connection
            while (item := await self._queue.get()) is not None and not isinstance(item, _Commit):
                await self._write_part(connection, *item)
            if item is None:
                raise _RolledBack
            await require_unlocked(
                item.touched,
                actor=self._actor,
                override_reason=item.override_reason,
                record_type=RecordType.referral,
                record_id="import",
            )
            await self._correct_people(connection, item.plan, item.identity)
        return sorted(self._created)

    async def _write_part(
        self,
        connection: Any,
        accepted: list[AcceptedRow],
        returned: list[ReturnedRow],
        identity: dict[int, str],
    ) -> None:
        names = {r.agency for r in accepted} | {r.agency for r in returned}
        if unknown := names - self._agency_ids.keys():
            agency_ids, created = await _agencies(unknown, self._actor)
            self._agency_ids.update(agency_ids)
            self._created += created
        copies, audited = await off_loop(
            _part_records, accepted, returned, identity, self._agency_ids, self._actor,
            self._now, self._person_ids, self._made_by,
        )  # fmt: skip
        # People, then referrals, then steps: every foreign key is met as it is written.
        for copy in copies:
            if copy.rows:
                await database.copy_records(connection, copy.table, copy.columns, copy.rows)
        await audit.copy_many(
            connection, self._actor, AuditAction.create, RecordType.referral, audited,
            {"source": "import"},
        )  # fmt: skip

    async def _correct_people(self, connection: Any, plan: Plan, identity: dict[int, str]) -> None:
        columns, corrected = await off_loop(
            _people_from_their_first_referral, plan, identity, self._person_ids, self._made_by
        )
        if corrected:
            await connection.executemany(queries.person_details(columns), corrected)


async def import_reoffending(
    content: bytes,
    actor: Principal,
    fingerprint_key: str,
    today: date,
    *,
    skip_invalid: bool,
    extracted_on: date | None = None,
    dry_run: bool = False,
    expected: ImportReport | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Police-recorded incidents: every row matched to one referred person, or nothing written.

    Importing the same file again adds nothing. Incidents before a referral are
    kept as prior history; the analysis counts only those after the referral date.
    The day the extract was taken (``extracted_on``, by default the latest offence
    date in the file: ``rules.extract_date``) is recorded with the incidents: the
    reoffending analysis follows people no further than the latest extract.
    ``dry_run`` and ``expected`` as for ``import_referrals``.
    """
    plan = await off_loop(
        plan_incidents,
        content,
        today=today,
        progress=(lambda done, total: progress("checking", done, total)) if progress else None,
    )
    extract, stated = extract_date([r.offence_on for r in plan.rows], extracted_on, today)
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
            extracted_on=extract,
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
        extracted_on=extract,
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
        if extract is not None:
            await IncidentExtract.insert(
                IncidentExtract(
                    extracted_on=extract,
                    stated=stated,
                    incidents=len(fingerprinted),
                    imported_by=actor.id,
                )
            )
        await audit.record(
            actor,
            AuditAction.create,
            RecordType.reoffence_import,
            None,
            {"rows": len(new), "extracted_on": None if extract is None else extract.isoformat()},
        )
    return msgspec.structs.replace(report, checked_only=False)


async def dictionary(kind: ImportKind, settings: Settings) -> DataDictionary:
    """The columns a file of ``kind`` may have, from the specs its import checks by."""
    if kind is ImportKind.reoffending:
        return import_rules.incident_dictionary()
    known = [row["name"] for row in await Agency.select(Agency.name)]
    return import_rules.referral_dictionary(settings.commissioned_areas, known)


# Imports in the browser: the file is checked, shown, and only imported when the person
# confirms. What they confirm must be what they saw, so the uploaded bytes are kept
# here (in the data directory, readable by the service alone) under a random token
# with their SHA-256, and the confirmed import re-runs the same all-or-nothing import
# on those bytes, refusing to write if it would now do anything else (``expected``).
# Each job's state is a small JSON file beside them, so every ``--workers`` process
# can show a job's progress, whichever process runs it.

JOB_HOURS = 2
"""An unconfirmed upload, and a finished job's result, are kept this long."""
STALLED_MINUTES = 30
"""A job whose state has not moved for this long has stopped (its process ended)."""
PROGRESS_ABOVE_ROWS = 2000
"""Files with more lines than this are checked and imported in the background, with progress."""


class JobStage(StrEnum):
    checking = "checking"
    checked = "checked"
    importing = "importing"
    imported = "imported"
    failed = "failed"


class ImportJob(msgspec.Struct, kw_only=True):
    """One uploaded file on its way in: what it is, how far it has gone, what it did."""

    token: str
    kind: ImportKind
    account: str
    sha256: str
    created_at: datetime
    updated_at: datetime
    lines: int
    skip_invalid: bool
    create_agencies: bool
    stage: JobStage = JobStage.checking
    done: int = 0
    total: int = 0
    check: ImportReport | None = None
    result: ImportReport | None = None
    problem: str = ""
    """Why the last step did not go ahead, in words (no personal data)."""

    @property
    def running(self) -> bool:
        return self.stage in (JobStage.checking, JobStage.importing)

    @property
    def background(self) -> bool:
        return self.lines > PROGRESS_ABOVE_ROWS


def _jobs_dir(settings: Settings) -> Path:
    folder = settings.data_dir / "imports-pending"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _token_ok(token: str) -> bool:
    return len(token) == 43 and all(c.isalnum() or c in "-_" for c in token)


def _save(folder: Path, job: ImportJob) -> None:
    job.updated_at = datetime.now(UTC)
    part = folder / f"{job.token}.json.part"
    part.write_bytes(msgspec.json.encode(job))
    part.chmod(0o600)
    part.replace(folder / f"{job.token}.json")


def _read(folder: Path, token: str) -> ImportJob | None:
    try:
        return msgspec.json.decode((folder / f"{token}.json").read_bytes(), type=ImportJob)
    except (FileNotFoundError, msgspec.DecodeError):
        return None


def _sweep(folder: Path, now: datetime) -> None:
    """Forget uploads and results older than ``JOB_HOURS``: the files hold people's details."""
    for path in folder.iterdir():
        age = now.timestamp() - path.stat().st_mtime
        if age > JOB_HOURS * 3600:
            path.unlink(missing_ok=True)


def _store_upload(
    folder: Path, content: bytes, kind: ImportKind, actor: Principal, options: dict[str, bool]
) -> ImportJob:
    now = datetime.now(UTC)
    _sweep(folder, now)
    token = secrets.token_urlsafe(32)
    path = folder / f"{token}.csv"
    path.touch(mode=0o600)
    path.write_bytes(content)
    job = ImportJob(
        token=token,
        kind=kind,
        account=str(actor.id),
        sha256=hashlib.sha256(content).hexdigest(),
        created_at=now,
        updated_at=now,
        lines=content.count(b"\n"),
        skip_invalid=options["skip_invalid"],
        create_agencies=options["create_agencies"],
    )
    _save(folder, job)
    return job


async def upload(
    content: bytes,
    kind: ImportKind,
    actor: Principal,
    settings: Settings,
    *,
    skip_invalid: bool,
    create_agencies: bool,
) -> ImportJob:
    """Keep an uploaded file, unchecked, for ``check`` and then ``confirm``."""
    options = {"skip_invalid": skip_invalid, "create_agencies": create_agencies}
    return await off_loop(_store_upload, _jobs_dir(settings), content, kind, actor, options)


async def job(token: str, actor: Principal, settings: Settings) -> ImportJob:
    """The job, to the account that uploaded it only; any other (or a lapsed one) is not found."""
    found = await off_loop(_read, _jobs_dir(settings), token) if _token_ok(token) else None
    now = datetime.now(UTC)
    if found is None or found.account != str(actor.id):
        raise NotFound("No such upload: it may have expired. Upload the file again.")
    if (now - found.created_at).total_seconds() > JOB_HOURS * 3600:
        raise NotFound("No such upload: it may have expired. Upload the file again.")
    if found.running and (now - found.updated_at).total_seconds() > STALLED_MINUTES * 60:
        found.stage = JobStage.failed
        found.problem = (
            "The work stopped before it finished (the service was restarted). Imports are "
            "all or nothing and adding a file again adds nothing twice: upload it again."
        )
    return found


def _content(folder: Path, found: ImportJob, suffix: str = ".csv") -> bytes:
    content = (folder / f"{found.token}{suffix}").read_bytes()
    if hashlib.sha256(content).hexdigest() != found.sha256:
        raise Conflict("The kept file is not the one uploaded. Upload it again.")
    return content


def _progress(folder: Path, found: ImportJob) -> Progress:
    """Saves the job's progress now and then (every save is a file write)."""
    last = [0.0]

    def tell(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == "checking" and now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        found.done, found.total = done, total
        _save(folder, found)

    return tell


async def _run(
    found: ImportJob,
    content: bytes,
    actor: Principal,
    settings: Settings,
    today: date,
    *,
    dry_run: bool,
    override_reason: str | None,
    progress: Progress,
) -> ImportReport:
    if found.kind is ImportKind.referrals:
        return await import_referrals(
            content, actor, settings, today,
            skip_invalid=found.skip_invalid, create_agencies=found.create_agencies,
            override_reason=override_reason, dry_run=dry_run,
            expected=None if dry_run else found.check, progress=progress,
        )  # fmt: skip
    return await import_reoffending(
        content, actor, purpose_key(settings, KeyPurpose.import_fingerprint), today,
        skip_invalid=found.skip_invalid, dry_run=dry_run,
        expected=None if dry_run else found.check, progress=progress,
    )  # fmt: skip


async def check(found: ImportJob, actor: Principal, settings: Settings, today: date) -> None:
    """Check the kept file as the import would, writing nothing; the job keeps the report."""
    folder = _jobs_dir(settings)
    try:
        content = await off_loop(_content, folder, found)
        found.check = await _run(
            found, content, actor, settings, today,
            dry_run=True, override_reason=None, progress=_progress(folder, found),
        )  # fmt: skip
        found.stage = JobStage.checked
    except ApplicationError as error:
        found.stage, found.problem = JobStage.failed, error.message
    except Exception as unexpected:
        _log_unexpected("checking", found, unexpected)
        found.stage, found.problem = JobStage.failed, "The check could not be finished."
    await off_loop(_save, folder, found)


def _log_unexpected(doing: str, found: ImportJob, exc: Exception) -> None:
    """The kind of error and where, never its message: it may quote a cell of the file."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        "unexpected %s %s an uploaded %s file\n%s",
        type(exc).__name__, doing, found.kind.value, frames,
    )  # fmt: skip


def _claim(folder: Path, found: ImportJob) -> bool:
    """Only one confirmation of a file runs: the first to rename it has it."""
    try:
        (folder / f"{found.token}.csv").rename(folder / f"{found.token}.importing")
    except FileNotFoundError:
        return False
    return True


def confirmable(found: ImportJob) -> bool:
    """Whether the check found something to import and nothing that keeps the file out."""
    report = found.check
    if found.stage is not JobStage.checked or report is None:
        return False
    if import_rules.nothing_imported(report, skip_invalid=found.skip_invalid):
        return False
    return report.imported + report.returned > 0


async def start_import(found: ImportJob, settings: Settings) -> None:
    """Claim a checked job for importing, or refuse (already confirmed, nothing to import)."""
    if not confirmable(found):
        raise Conflict("This file has nothing to import, or is already being imported.")
    folder = _jobs_dir(settings)
    if not await off_loop(_claim, folder, found):
        raise Conflict("This file is already being imported.")
    found.stage, found.done, found.total, found.problem = JobStage.importing, 0, 0, ""
    await off_loop(_save, folder, found)


async def confirm(
    found: ImportJob,
    actor: Principal,
    settings: Settings,
    today: date,
    override_reason: str | None,
) -> None:
    """Import the claimed file: the same all-or-nothing import, and only what was checked."""
    folder = _jobs_dir(settings)
    claimed = folder / f"{found.token}.importing"
    try:
        content = await off_loop(_content, folder, found, ".importing")
        found.result = await _run(
            found, content, actor, settings, today,
            dry_run=False, override_reason=override_reason, progress=_progress(folder, found),
        )  # fmt: skip
        found.stage = JobStage.imported
        claimed.unlink(missing_ok=True)
    except ApplicationError as error:
        # Nothing was written (one transaction): the file may be confirmed again.
        claimed.rename(folder / f"{found.token}.csv")
        found.stage, found.problem = JobStage.checked, error.message
        if isinstance(error, QuarterLocked):
            found.problem += " Give the reason below to import it anyway."
    except Exception as unexpected:
        _log_unexpected("importing", found, unexpected)
        claimed.unlink(missing_ok=True)
        found.stage = JobStage.failed
        found.problem = "The import could not be finished; nothing was written. Upload it again."
    await off_loop(_save, folder, found)


async def discard(found: ImportJob, settings: Settings) -> None:
    """Forget an upload the person does not want imported."""
    if found.stage is JobStage.importing:
        raise Conflict("This file is being imported.")
    folder = _jobs_dir(settings)
    for suffix in (".csv", ".json"):
        (folder / f"{found.token}{suffix}").unlink(missing_ok=True)
