"""Importing files: the whole-file checks, before anything is written.

Pure functions: no database, no HTTP. Every import reads its CSV with
``read_csv``, so header problems, encodings and line numbers are reported the
same way for every kind of file.

Referrals (historical data and other systems' exports): unless
``skip_invalid`` is asked for, one bad row means nothing is imported, so a
half-imported file never happens. Rows pass the same intake checks as the API:
a readable row that fails them (no consent, out of area, ...) becomes a
returned referral, as it would have at the door; a row that cannot be read (a
bad date, an unknown choice, dates out of order) is an error with its line
number. Importing the same file again adds nothing.

Police-recorded incidents (the reoffending outcome): rows are matched to a
referred person by referral ``reference`` or by first name, last name and date
of birth; the matching itself needs the database and happens in the service.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

from programme.imports.schemas import ImportReport, RowProblem
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.validation import DATE, FUTURE
from referrals import rules
from referrals.rules import (
    EARLIEST_BIRTH,
    ENDED,
    ReturnReason,
    Status,
    in_lifecycle_order,
    match_key,
    milestone_order_problems,
    skipped_milestones,
    too_early,
)


def nothing_imported(report: ImportReport, *, skip_invalid: bool) -> bool:
    """Whether the file's errors kept all of it out: the import failed (422, exit status 1).

    Without ``skip_invalid`` any error keeps the whole file out. With it the good
    rows go in and the bad ones are reported, but a file with errors and no good
    row (one that cannot be read at all, or whose every row is bad) has put
    nothing in: calling that a success would let a script believe its file
    went in. Rows imported before count as good: the file is in.
    """
    if not report.errors:
        return False
    if not skip_invalid:
        return True
    return report.imported + report.returned + report.already_present == 0


MAX_CELL = 131_072
"""Longer cells are refused with their line number."""

# The csv module's own limit (131,072 by default) raises mid-cell, and a reader
# that gave up inside a quoted cell would read the rest of that cell as rows of
# their own. So let it read any cell whole, and refuse the long ones here instead.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def read_csv(
    content: bytes,
    columns: Collection[str],
    required: Collection[str],
    problems: list[RowProblem],
) -> list[tuple[int, dict[str, str]]]:
    """The file's non-blank rows with their line numbers, values stripped.

    Header problems (not UTF-8, a NUL character, empty, unknown, repeated or
    missing columns) go into ``problems`` and no rows come back; a row of the
    wrong width or with a cell over ``MAX_CELL`` characters is a problem on its
    line and is left out.
    """

    def problem(line: int, code: str, name: str, message: str) -> None:
        problems.append(RowProblem(line=line, code=code, field=name, message=message))

    too_long = f"A cell is longer than {MAX_CELL} characters."
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        problem(1, "invalid", "", "The file is not UTF-8 text.")
        return []
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        problem(line, "invalid", "", "The file contains a NUL character, which no cell may hold.")
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error:
        problem(1, "invalid", "", "The first line cannot be read as CSV.")
        return []
    if not header:
        problem(1, "invalid", "", "The file is empty: the first line must name the columns.")
        return []
    if any(len(name) > MAX_CELL for name in header):
        problem(1, "invalid", "", too_long)
        return []
    names = [name.strip() for name in header]
    for name in names:
        if name not in columns:
            problem(1, "unknown_column", name, "This column is not recognised.")
    for name in sorted({n for n in names if names.count(n) > 1}):
        problem(1, "duplicate_column", name, "This column appears more than once.")
    for name in required:
        if name not in names:
            problem(1, "missing_column", name, "This column is required for an import.")
    if problems:
        return []
    rows = []
    while True:
        # A quoted cell may span lines: a row is numbered by the line it starts on.
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error:
            # The reader has lost its place: nothing after this line can be trusted.
            problem(line, "invalid", "", "This line cannot be read as CSV.")
            return []
        if not any(value.strip() for value in values):
            continue
        if any(len(value) > MAX_CELL for value in values):
            problem(line, "invalid", "", too_long)
            continue
        if len(values) != len(names):
            problem(line, "invalid", "", f"Expected {len(names)} values, found {len(values)}.")
            continue
        rows.append((line, {k: v.strip() for k, v in zip(names, values, strict=True)}))
    return rows


def older_than(days: Sequence[date], today: date, backdate_days: int) -> int:
    """How many of the days are further back than the API accepts (``referrals.rules.backdated``).

    The import is not bounded: it is how old records come in. Its report says how
    many rows were older than the bound, so a file meant to hold last month's
    referrals but holding last decade's (a wrong year column) is noticed.
    """
    return sum(
        rules.backdated("received_on", day, today, backdate_days) is not None for day in days
    )


def keyed_digest(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


AGENCY = "agency"
MILESTONES: dict[str, Status] = {
    "contacted_on": Status.contacted,
    "engaged_on": Status.engaged,
    "started_on": Status.started,
    "completed_on": Status.completed,
    "disengaged_on": Status.disengaged,
    "withdrawn_on": Status.withdrawn,
    "closed_on": Status.closed,
}
COLUMNS = frozenset({*rules.SUBMISSION_FIELDS, AGENCY, *MILESTONES})


@dataclass
class AcceptedRow:
    line: int
    agency: str
    submission: rules.Submission
    reference: str
    milestones: list[tuple[Status, date]]
    person_key: str


@dataclass
class ReturnedRow:
    line: int
    agency: str
    received_on: date
    reasons: list[ReturnReason]
    fingerprint: str


@dataclass
class Plan:
    """What the file would do, before any of it is written."""

    accepted: list[AcceptedRow] = field(default_factory=list)
    returned: list[ReturnedRow] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    error_lines: set[int] = field(default_factory=set)

    def error(self, line: int, code: str, name: str, message: str) -> None:
        self.errors.append(RowProblem(line=line, code=code, field=name, message=message))
        self.error_lines.add(line)


def _milestones(line: int, row: dict[str, str], received_on: date, today: date, plan: Plan):
    """The row's milestone dates, checked for order; warns of gaps in the record."""
    dated: list[tuple[Status, date]] = []
    for column, status in MILESTONES.items():
        value = (row.get(column) or "").strip()
        if not value:
            continue
        try:
            on = date.fromisoformat(value)
        except ValueError:
            plan.error(line, "invalid", column, DATE)
            continue
        if on > today:
            plan.error(line, "future_date", column, FUTURE)
        elif on < received_on:
            plan.error(line, "out_of_order", column, "Cannot be before received_on.")
        dated.append((status, on))
    for status, message in milestone_order_problems(dated):
        plan.error(line, "out_of_order", f"{status.value}_on", message)
    for skipped in skipped_milestones(dated):
        plan.warnings.append(
            RowProblem(
                line=line,
                code="missing_milestone",
                field=f"{skipped.value}_on",
                message=f"No {skipped.value} date, though a later milestone is recorded.",
            )
        )
    return in_lifecycle_order(dated)


def plan_import(
    content: bytes,
    *,
    today: date,
    commissioned_areas: tuple[str, ...],
    fingerprint_key: str,
    reference_key: str,
) -> Plan:
    """Check every row of a file; the database is not touched."""
    plan = Plan()
    seen_references: dict[str, int] = {}
    rows = read_csv(content, COLUMNS, (AGENCY, "received_on"), plan.errors)
    plan.error_lines.update(problem.line for problem in plan.errors)
    for line, row in rows:
        agency = " ".join((row.get(AGENCY) or "").split())
        if not agency:
            plan.error(line, "required", AGENCY, "Name the referring agency.")
        elif len(agency) > 200:
            plan.error(line, "invalid", AGENCY, "Expected text of up to 200 characters.")
        raw = {k: v for k, v in row.items() if k in rules.SUBMISSION_FIELDS and v.strip()}
        if "received_on" not in raw:
            plan.error(
                line, "required", "received_on", "Imported referrals need their received date."
            )
            continue
        checked = rules.check(raw, today=today, commissioned_areas=commissioned_areas)
        received_on = checked.received_on
        if checked.malformed or received_on is None:
            for problem in checked.errors:
                plan.error(line, problem.code, problem.field, problem.message)
            continue
        milestones = _milestones(line, row, received_on, today, plan)
        if checked.submission is None:
            if milestones:
                plan.error(line, "out_of_order", "", "A returned referral cannot have milestones.")
                continue
            content_key = "|".join(f"{k}={row[k].strip()}" for k in sorted(row))
            plan.returned.append(
                ReturnedRow(
                    line=line,
                    agency=agency,
                    received_on=received_on,
                    reasons=checked.reasons,
                    fingerprint=keyed_digest(fingerprint_key, "returned|" + content_key),
                )
            )
            continue
        sub = checked.submission
        person_key = match_key(sub.first_name, sub.last_name, sub.date_of_birth)
        reference = sub.reference or "IMP-" + (
            keyed_digest(reference_key, f"{person_key}|{sub.received_on.isoformat()}")[:12].upper()
        )
        if reference in seen_references:
            plan.error(
                line,
                "duplicate",
                "reference",
                f"Same reference as line {seen_references[reference]}.",
            )
            continue
        seen_references[reference] = line
        plan.accepted.append(
            AcceptedRow(
                line=line,
                agency=agency,
                submission=sub,
                reference=reference,
                milestones=milestones,
                person_key=person_key,
            )
        )
    return plan


def check_overlaps(plan: Plan, identity: dict[int, str], open_elsewhere: dict[str, str]) -> None:
    """A person can have only one open referral at a time, in the file or beside it.

    ``identity`` maps each accepted row's line to who the person is (an existing
    person's id, or the row's match key for someone new); ``open_elsewhere``
    maps identities to the reference of an open referral already stored.
    """
    by_person: dict[str, list[AcceptedRow]] = defaultdict(list)
    for row in plan.accepted:
        by_person[identity[row.line]].append(row)
    for key, rows in by_person.items():
        rows.sort(key=lambda r: r.submission.received_on)
        if key in open_elsewhere:
            for row in rows:
                plan.error(
                    row.line,
                    "conflict",
                    "reference",
                    f"This person already has an open referral, {open_elsewhere[key]}.",
                )
            continue
        # Every earlier referral, not only the one before: an open one from January
        # still blocks May after a referral that began and ended in between.
        earlier: list[tuple[AcceptedRow, date | None]] = []
        for row in rows:
            received = row.submission.received_on
            blocking = next((e for e, ended in earlier if ended is None or ended > received), None)
            if blocking is not None:
                plan.error(
                    row.line,
                    "conflict",
                    "received_on",
                    f"Line {blocking.line} is still open for this person on that date.",
                )
            ended = [on for status, on in row.milestones if status in ENDED]
            earlier.append((row, ended[0] if ended else None))


def final_status(milestones: list[tuple[Status, date]], received_on: date) -> tuple[Status, date]:
    """The status a row's last milestone leaves it in, and its date."""
    return milestones[-1] if milestones else (Status.accepted, received_on)


INCIDENT_COLUMNS = frozenset(
    {"reference", "first_name", "last_name", "date_of_birth", "offence_date", "offence_type"}
)
PERSON_COLUMNS = frozenset({"first_name", "last_name", "date_of_birth"})
MAX_OFFENCE_TYPE = 100


@dataclass
class IncidentRow:
    line: int
    offence_on: date
    offence_type: str | None
    reference: str | None
    """How the row names the person: by referral reference, or else by ``person_key``."""
    person_key: str | None


@dataclass
class IncidentPlan:
    rows: list[IncidentRow] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)

    def error(self, line: int, code: str, name: str, message: str) -> None:
        self.errors.append(RowProblem(line=line, code=code, field=name, message=message))


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def plan_incidents(content: bytes, *, today: date) -> IncidentPlan:
    """Check every row of a police incident file; matching people is the service's job."""
    plan = IncidentPlan()
    rows = read_csv(content, INCIDENT_COLUMNS, ("offence_date",), plan.errors)
    if plan.errors:
        return plan
    named_by = set(rows[0][1]) if rows else set()
    if rows and "reference" not in named_by and not named_by >= PERSON_COLUMNS:
        plan.error(
            1,
            "missing_column",
            "reference",
            "Give reference, or first_name, last_name and date_of_birth, to match people.",
        )
        return plan
    for line, row in rows:
        errors_before = len(plan.errors)
        offence_on = _day(row.get("offence_date", ""))
        if offence_on is None:
            plan.error(line, "invalid", "offence_date", DATE)
        elif offence_on > today:
            plan.error(line, "future_date", "offence_date", FUTURE)
        elif offence_on < EARLIEST_BIRTH:
            plan.error(line, "too_early", "offence_date", too_early(EARLIEST_BIRTH))
        kind = row.get("offence_type") or None
        if kind and len(kind) > MAX_OFFENCE_TYPE:
            plan.error(
                line,
                "invalid",
                "offence_type",
                f"Expected text of up to {MAX_OFFENCE_TYPE} characters.",
            )
        reference = row.get("reference") or None
        key = None
        if reference is None:
            born = _day(row.get("date_of_birth", ""))
            if row.get("date_of_birth") and born is None:
                plan.error(line, "invalid", "date_of_birth", DATE)
            elif not (row.get("first_name") and row.get("last_name") and born):
                plan.error(
                    line,
                    "required",
                    "reference",
                    "Give the reference, or first name, last name and date of birth.",
                )
            else:
                key = match_key(row["first_name"], row["last_name"], born)
        if len(plan.errors) == errors_before and offence_on is not None:
            plan.rows.append(IncidentRow(line, offence_on, kind, reference, key))
    return plan


def extract_date(
    offence_dates: Collection[date], extracted_on: date | None, today: date
) -> tuple[date | None, bool]:
    """The day the police took the extract, and whether it was stated; or a 422 on
    ``extracted_on``.

    Unstated, it is the latest offence date in the file: the most the file shows the
    police had recorded. That may be earlier than the real extract (days with no
    incident at the end), which only shortens the follow-up: it never counts
    unseen days as offence-free. A file with no incident and no stated date says
    nothing about when it was taken (None). A stated date cannot be in the future,
    nor before an incident the extract holds.
    """
    latest = max(offence_dates, default=None)
    if extracted_on is None:
        return latest, False
    problems = []
    if extracted_on > today:
        problems.append(FieldError("invalid", "extracted_on", FUTURE))
    if latest is not None and extracted_on < latest:
        problems.append(
            FieldError(
                "invalid",
                "extracted_on",
                f"The file holds an incident on {latest.isoformat()}, after this date: "
                f"an extract cannot hold incidents from after it was taken.",
            )
        )
    if problems:
        raise InvalidInput(errors=problems)
    return extracted_on, True
