"""Writing a checked import: one transaction, bulk COPY, audited.

Each import checks its whole file first (``programme.imports.rules``), looks
up what is already stored, and then writes everything in one transaction, so a
half-imported file never happens.
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
from dataclasses import dataclass
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
    check_agencies,
    check_overlaps,
    extract_date,
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


WRITE_SLICE = 20_000
"""Referrals built and written at a time: the next slice is built while this one's COPY
runs (the database's work, on another core), rather than all built and then all written."""


def _records(
    rows: list[AcceptedRow],
    identity: dict[int, str],
    agency_ids: dict[str, UUID],
    actor: Principal,
    now: datetime,
    person_ids: dict[str, UUID],
) -> tuple[list[_Copy], list[UUID]]:
    """One slice's rows to write (its new people, referrals and their steps) and the
    referrals to audit, built off the event loop: 100,000 referrals take seconds of CPU.
    ``person_ids`` carries who is already written from slice to slice."""
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
                person = rules.person_values(sub)
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


def _returned_records(plan: Plan, agency_ids: dict[str, UUID], actor: Principal, now: datetime):
    return _Copy(
        ReturnedReferral._meta.tablename,
        _RETURNED_COLUMNS,
        [
            (
                uuid.uuid4(), agency_ids[r.agency], actor.id, r.received_on,
                json.dumps([reason.value for reason in r.reasons]), "import", r.fingerprint, now,
            )
            for r in plan.returned
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
    returned = await off_loop(_returned_records, plan, agency_ids, actor, now)
    await database.copy_records(connection, returned.table, returned.columns, returned.rows)
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
