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
import difflib
import hashlib
import hmac
import io
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from programme.imports.schemas import ColumnDefinition, DataDictionary, ImportReport, RowProblem
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.validation import DATE, FUTURE
from referrals import rules
from referrals.rules import (
    EARLIEST_BIRTH,
    ENDED,
    MAX_COUNT,
    MAX_NAME,
    PHONE_INVALID,
    YES_NO,
    FieldKind,
    FieldSpec,
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


MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""The largest file an import takes, over the API or from the web page."""

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
MAX_AGENCY = 200
AGENCY_SPEC = FieldSpec(
    AGENCY,
    FieldKind.text,
    True,
    "The referring agency, as the tracker names it.",
    max_length=MAX_AGENCY,
    example="South Yorkshire Police",
)
MILESTONES: dict[str, Status] = {
    "contacted_on": Status.contacted,
    "engaged_on": Status.engaged,
    "started_on": Status.started,
    "completed_on": Status.completed,
    "disengaged_on": Status.disengaged,
    "withdrawn_on": Status.withdrawn,
    "closed_on": Status.closed,
}
IMPORTED_FIELDS = tuple(
    spec.name for spec in rules.SUBMISSION_SPECS if spec.kind is not FieldKind.people
)
"""The submission's fields a CSV cell can hold (victims are a list: the API only)."""
COLUMNS = frozenset({*IMPORTED_FIELDS, AGENCY, *MILESTONES})
REQUIRED_COLUMNS = (AGENCY, "received_on")
"""Without these columns a referrals file is refused."""


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
    problems: list[RowProblem] = field(default_factory=list)
    """What in the row failed intake: field and rule, never the value."""


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

    def extend(self, later: Plan) -> None:
        """Add the plan of the file's next rows: the whole file's plan, part by part."""
        self.accepted += later.accepted
        self.returned += later.returned
        self.errors += later.errors
        self.warnings += later.warnings
        self.error_lines |= later.error_lines


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


def read_referrals(content: bytes) -> tuple[Plan, list[tuple[int, dict[str, str]]]]:
    """The file's rows to check, and a plan holding the lines that could not be read."""
    plan = Plan()
    rows = read_csv(content, COLUMNS, REQUIRED_COLUMNS, plan.errors)
    plan.error_lines.update(problem.line for problem in plan.errors)
    return plan, rows


@dataclass
class RowChecks:
    """What every row of one file is checked against, and the references its earlier
    rows took: checked a part at a time, the file's rows are checked as in one go."""

    today: date
    commissioned_areas: tuple[str, ...]
    fingerprint_key: str
    reference_key: str
    seen_references: dict[str, int] = field(default_factory=dict)


def plan_import(
    content: bytes,
    *,
    today: date,
    commissioned_areas: tuple[str, ...],
    fingerprint_key: str,
    reference_key: str,
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """Check every row of a file; the database is not touched.

    ``progress(done, total)`` is told how far the check has gone, now and then.
    """
    plan, rows = read_referrals(content)
    checks = RowChecks(today, commissioned_areas, fingerprint_key, reference_key)
    check_rows(rows, checks, plan, progress=progress)
    if progress is not None:
        progress(len(rows), len(rows))
    return plan


def check_rows(
    rows: Sequence[tuple[int, dict[str, str]]],
    checks: RowChecks,
    plan: Plan,
    *,
    progress: Callable[[int, int], None] | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> Plan:
    """Check ``rows`` (the file's, in order, from row ``done_before`` of ``total``) into
    ``plan``; the database is not touched."""
    total = len(rows) if total is None else total
    seen_references = checks.seen_references
    today, commissioned_areas = checks.today, checks.commissioned_areas
    for done, (line, row) in enumerate(rows, start=done_before):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
        agency = normal_agency(row.get(AGENCY) or "")
        if not agency:
            plan.error(line, "required", AGENCY, "Name the referring agency.")
        elif len(agency) > MAX_AGENCY:
            plan.error(line, "invalid", AGENCY, f"Expected text of up to {MAX_AGENCY} characters.")
        raw = {k: v for k, v in row.items() if k in rules.SPEC and v.strip()}
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
                    fingerprint=keyed_digest(checks.fingerprint_key, "returned|" + content_key),
                    problems=[
                        RowProblem(line=line, code=p.code, field=p.field, message=p.message)
                        for p in checked.errors
                    ],
                )
            )
            continue
        sub = checked.submission
        person_key = match_key(sub.first_name, sub.last_name, sub.date_of_birth)
        reference = sub.reference or "IMP-" + (
            keyed_digest(checks.reference_key, f"{person_key}|{sub.received_on.isoformat()}")[
                :12
            ].upper()
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


PROGRESS_EVERY = 500
"""Rows checked between two reports of progress."""


def normal_agency(name: str) -> str:
    """An agency's name with its spaces tidied: how a file's name is compared with the known."""
    return " ".join(name.split())


def check_agencies(plan: Plan, known: Collection[str], *, create: bool) -> list[str]:
    """The names in the file that are not known agencies: errors naming the closest known
    ones, or, when the import is told to ``create`` them, the agencies to add.

    A misspelt agency ("South Yorks Police") silently made into a new one splits an
    agency's referrals in two and every per-agency figure with them; so a name not
    yet known is a mistake until the person importing says it is new. Names are
    compared as people read them: case and spacing aside.
    """
    by_folded = {normal_agency(name).casefold(): name for name in known}
    unknown: dict[str, list[int]] = defaultdict(list)
    named = [(r.agency, r.line) for r in plan.accepted] + [
        (r.agency, r.line) for r in plan.returned
    ]
    for agency, line in named:
        if agency.casefold() not in by_folded:
            unknown[agency].append(line)
    if create:
        return sorted(unknown, key=str.casefold)
    for name, lines in unknown.items():
        close = difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.6)
        if close:
            hint = "Closest known: " + "; ".join(by_folded[c] for c in close) + "."
        else:
            hint = "No known agency is close."
        for line in lines:
            plan.error(
                line,
                "unknown_agency",
                AGENCY,
                f"No agency is called {name!r}. {hint} Correct the name, or import with "
                "create_agencies to add it as a new agency.",
            )
    return []


def outcome(report: ImportReport) -> tuple[object, ...]:
    """What a report says the import does: a confirmed import must do what its check said."""
    return (
        report.imported,
        report.returned,
        report.already_present,
        report.refused,
        sorted(report.agencies_created),
        sorted({e.line for e in report.errors}),
        sorted(r.line for r in report.returned_rows),
    )


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


MAX_OFFENCE_TYPE = 100
INCIDENT_SPECS = (
    FieldSpec("reference", FieldKind.text, False, "The referral's reference: the person is "
              "matched by it. Leave blank to match by name and date of birth instead.",
              max_length=40, example="SYP-2024-0001"),
    FieldSpec("first_name", FieldKind.text, False, "The person's first name (matched with "
              "last_name and date_of_birth when there is no reference).", max_length=MAX_NAME,
              example="Alex"),
    FieldSpec("last_name", FieldKind.text, False, "The person's last name.",
              max_length=MAX_NAME, example="Example"),
    FieldSpec("date_of_birth", FieldKind.date, False, "The person's date of birth.",
              earliest=EARLIEST_BIRTH, example="1985-03-27"),
    FieldSpec("offence_date", FieldKind.date, True, "The day of the police-recorded incident.",
              earliest=EARLIEST_BIRTH, example="2024-09-14"),
    FieldSpec("offence_type", FieldKind.text, False, "The kind of incident, as the police "
              "record it.", max_length=MAX_OFFENCE_TYPE, example="domestic assault"),
)  # fmt: skip
INCIDENT_SPEC = {spec.name: spec for spec in INCIDENT_SPECS}
OFFENCES_FROM = INCIDENT_SPEC["offence_date"].earliest or EARLIEST_BIRTH
INCIDENT_COLUMNS = frozenset(INCIDENT_SPEC)
INCIDENT_REQUIRED_COLUMNS = ("offence_date",)
PERSON_COLUMNS = frozenset({"first_name", "last_name", "date_of_birth"})


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


def plan_incidents(
    content: bytes, *, today: date, progress: Callable[[int, int], None] | None = None
) -> IncidentPlan:
    """Check every row of a police incident file; matching people is the service's job."""
    plan = IncidentPlan()
    rows = read_csv(content, INCIDENT_COLUMNS, INCIDENT_REQUIRED_COLUMNS, plan.errors)
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
    for done, (line, row) in enumerate(rows):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, len(rows))
        errors_before = len(plan.errors)
        offence_on = _day(row.get("offence_date", ""))
        if offence_on is None:
            plan.error(line, "invalid", "offence_date", DATE)
        elif offence_on > today:
            plan.error(line, "future_date", "offence_date", FUTURE)
        elif offence_on < OFFENCES_FROM:
            plan.error(line, "too_early", "offence_date", too_early(OFFENCES_FROM))
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


class ImportKind(StrEnum):
    """The files an admin can import."""

    referrals = "referrals"
    reoffending = "reoffending"


ROW_REFUSED = (
    "The row is an error: nothing in the file is imported (with skip_invalid, the other rows are)."
)


def _format(spec: FieldSpec) -> str:
    if spec.kind is FieldKind.date:
        earliest = f", not before {spec.earliest.isoformat()}" if spec.earliest else ""
        return f"A date as YYYY-MM-DD{earliest}, not in the future."
    if spec.kind is FieldKind.choice:
        return "One of the allowed values (in any case)."
    if spec.kind is FieldKind.yes_no:
        return "yes or no (or one of the allowed values)."
    if spec.kind is FieldKind.whole_number:
        return f"A whole number from 0 to {MAX_COUNT}."
    if spec.kind is FieldKind.phone:
        return PHONE_INVALID.replace("Expected a", "A")
    if spec.name == "reference":
        return rules.REFERENCE_RULE
    return f"Text of up to {spec.max_length} characters."


def _allowed(spec: FieldSpec) -> list[str]:
    if spec.kind is FieldKind.yes_no:
        return list(YES_NO)
    if spec.kind is FieldKind.choice and spec.choices is not None:
        return list(spec.offered or [member.value for member in spec.choices])
    return []


def _definition(
    spec: FieldSpec,
    *,
    required: bool | None = None,
    required_column: bool = False,
    if_missing: str = "",
    if_unreadable: str = ROW_REFUSED,
    allowed: Sequence[str] | None = None,
    format_: str | None = None,
) -> ColumnDefinition:
    must = spec.required if required is None else required
    return ColumnDefinition(
        name=spec.name,
        type=spec.kind.value,
        format=format_ or _format(spec),
        required=must,
        required_column=required_column,
        allowed_values=list(allowed) if allowed is not None else _allowed(spec),
        max_length=spec.max_length,
        earliest=spec.earliest.isoformat() if spec.earliest else None,
        if_missing=if_missing or ("" if must else "The row is imported without it."),
        if_unreadable=if_unreadable,
        returned_when=spec.returned_when,
        meaning=spec.meaning,
        example=spec.example,
    )


def referral_dictionary(
    commissioned_areas: Sequence[str], known_agencies: Sequence[str]
) -> DataDictionary:
    """The referrals file's columns, made from the specs ``plan_import`` and intake read."""
    columns = [
        _definition(
            AGENCY_SPEC,
            required_column=True,
            if_missing=ROW_REFUSED,
            if_unreadable="A name that is not a known agency is an error naming the closest "
            "known ones, unless the import is told to create agencies (create_agencies).",
            allowed=sorted(known_agencies, key=str.casefold),
        )
    ]
    for name in IMPORTED_FIELDS:
        spec = rules.SPEC[name]
        if name == "received_on":
            columns.append(
                _definition(spec, required=True, required_column=True, if_missing=ROW_REFUSED)
            )
            continue
        returned = f"The referral is recorded as returned ({spec.reason.value})."
        columns.append(
            _definition(
                spec,
                if_missing=returned if spec.required else "",
                if_unreadable=returned if spec.kind is FieldKind.phone else ROW_REFUSED,
                allowed=list(commissioned_areas) if name == "local_authority" else None,
                format_="One of the allowed values (in any case)."
                if name == "local_authority"
                else None,
            )
        )
    for column, status in MILESTONES.items():
        columns.append(
            _definition(
                FieldSpec(
                    column,
                    FieldKind.date,
                    False,
                    f"The day the referral became {status.value}.",
                ),
                format_="A date as YYYY-MM-DD, not before received_on, not in the future.",
                if_missing="Left blank: not reached (a gap before a later milestone is a warning).",
            )
        )
    return DataDictionary(
        kind=ImportKind.referrals.value,
        columns=columns,
        notes=[
            "The first line names the columns, in any order; a column not listed here, or "
            "one given twice, refuses the file.",
            f"UTF-8 text; no cell longer than {MAX_CELL} characters.",
            "A row that breaks a rule (required and missing, or unreadable, as each column "
            "says) is an error: nothing is imported unless skip_invalid, which imports the "
            "other rows.",
            "A readable referral that fails an intake check is recorded as returned, with "
            "its reasons, as it would have been at the door.",
            "Milestones go in order: contacted, engaged, started, completed; disengaged, "
            "withdrawn or closed end a referral. A returned referral has none.",
            "A person has one open referral at a time, in the file and beside what is stored.",
            "Importing the same file again adds nothing.",
        ],
    )


def incident_dictionary() -> DataDictionary:
    """The police incidents file's columns, made from the specs ``plan_incidents`` reads."""
    matched_by = (
        "Give reference, or first_name, last_name and date_of_birth: a row naming nobody "
        "is an error."
    )
    columns = [
        _definition(
            spec,
            required_column=spec.name in INCIDENT_REQUIRED_COLUMNS,
            if_missing=ROW_REFUSED if spec.required else matched_by if spec.name in
            {"reference", *PERSON_COLUMNS} else "",
        )
        for spec in INCIDENT_SPECS
    ]  # fmt: skip
    return DataDictionary(
        kind=ImportKind.reoffending.value,
        columns=columns,
        notes=[
            "The first line names the columns, in any order; a column not listed here, or "
            "one given twice, refuses the file. It needs reference, or all of first_name, "
            "last_name and date_of_birth.",
            f"UTF-8 text; no cell longer than {MAX_CELL} characters.",
            "Every row must match one referred person, by reference or by name and date of "
            "birth; a row that matches nobody, or more than one person, is an error.",
            "Nothing is imported while any row has an error, unless skip_invalid.",
            "Incidents before a referral are kept as prior history; importing the same file "
            "again adds nothing.",
        ],
    )


def template_csv(dictionary: DataDictionary) -> str:
    """A file to fill in: the first line naming every column, in the dictionary's order."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([c.name for c in dictionary.columns])
    return out.getvalue()
