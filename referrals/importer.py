"""Bulk import of referrals from CSV: historical data and other systems' exports.

The whole file is checked before anything is written. Unless ``skip_invalid``
is asked for, one bad row means nothing is imported, so a half-imported file
never happens. Rows pass the same intake checks as the API: a readable row that
fails them (no consent, out of area, ...) becomes a returned referral, as it
would have at the door; a row that cannot be read (a bad date, an unknown
choice, dates out of order) is an error with its line number. Importing the
same file again adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from referrals import intake
from referrals.people import match_key
from referrals.rules import EXITS, PROGRESS, ReturnReason, Status
from referrals.schemas import RowProblem

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
COLUMNS = frozenset({*intake.SUBMISSION_FIELDS, AGENCY, *MILESTONES})


@dataclass
class AcceptedRow:
    line: int
    agency: str
    submission: intake.Submission
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


def keyed_digest(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def read_rows(content: bytes, plan: Plan) -> list[tuple[int, dict[str, str]]]:
    """The file's rows with their line numbers; header problems go into ``plan``."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        plan.error(1, "invalid", "", "The file is not UTF-8 text.")
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        plan.error(1, "invalid", "", "The file is empty: the first line must name the columns.")
        return []
    names = [name.strip() for name in header]
    for name in names:
        if name not in COLUMNS:
            plan.error(1, "unknown_column", name, "This column is not recognised.")
    for name in {n for n in names if names.count(n) > 1}:
        plan.error(1, "duplicate_column", name, "This column appears more than once.")
    for required in (AGENCY, "received_on"):
        if required not in names:
            plan.error(1, "missing_column", required, "This column is required for an import.")
    if plan.errors:
        return []
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(names):
            plan.error(line, "invalid", "", f"Expected {len(names)} values, found {len(values)}.")
            continue
        rows.append((line, dict(zip(names, values, strict=True))))
    return rows


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
            plan.error(line, "invalid", column, "Expected a date as YYYY-MM-DD.")
            continue
        if on > today:
            plan.error(line, "invalid", column, "Cannot be in the future.")
        elif on < received_on:
            plan.error(line, "out_of_order", column, "Cannot be before received_on.")
        dated.append((status, on))
    progress = [(s, on) for s, on in dated if s in PROGRESS]
    exits = [(s, on) for s, on in dated if s in EXITS]
    for (before, before_on), (after, after_on) in itertools.pairwise(progress):
        if after_on < before_on:
            plan.error(
                line, "out_of_order", f"{after.value}_on", f"Cannot be before {before.value}_on."
            )
    if len(exits) > 1:
        plan.error(
            line,
            "out_of_order",
            exits[1][0].value + "_on",
            "A referral ends only once: give one of disengaged, withdrawn, closed.",
        )
    if exits and any(s == Status.completed for s, _ in progress):
        plan.error(
            line,
            "out_of_order",
            exits[0][0].value + "_on",
            "A completed referral cannot also have ended early.",
        )
    if exits and progress and exits[0][1] < progress[-1][1]:
        plan.error(
            line,
            "out_of_order",
            exits[0][0].value + "_on",
            f"Cannot be before {progress[-1][0].value}_on.",
        )
    reached = {s for s, _ in progress}
    if reached:
        furthest = max(PROGRESS.index(s) for s in reached)
        for skipped in PROGRESS[1:furthest]:
            if skipped not in reached:
                plan.warnings.append(
                    RowProblem(
                        line=line,
                        code="missing_milestone",
                        field=f"{skipped.value}_on",
                        message=f"No {skipped.value} date, though a later milestone is recorded.",
                    )
                )
    return sorted(dated, key=lambda item: (item[1], _ORDER[item[0]]))


_ORDER = {status: index for index, status in enumerate((*PROGRESS, *EXITS))}


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
    for line, row in read_rows(content, plan):
        agency = " ".join((row.get(AGENCY) or "").split())
        if not agency or len(agency) > 200:
            plan.error(
                line, "incomplete", AGENCY, "Name the referring agency (up to 200 characters)."
            )
        raw = {k: v for k, v in row.items() if k in intake.SUBMISSION_FIELDS and v.strip()}
        if "received_on" not in raw:
            plan.error(
                line, "incomplete", "received_on", "Imported referrals need their received date."
            )
            continue
        checked = intake.check(raw, today=today, commissioned_areas=commissioned_areas)
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
        for earlier, later in itertools.pairwise(rows):
            ended = [
                on for status, on in earlier.milestones if status in (Status.completed, *EXITS)
            ]
            if not ended or ended[0] > later.submission.received_on:
                plan.error(
                    later.line,
                    "conflict",
                    "received_on",
                    f"Line {earlier.line} is still open for this person on that date.",
                )


def final_status(milestones: list[tuple[Status, date]], received_on: date) -> tuple[Status, date]:
    """The status a row's last milestone leaves it in, and its date."""
    return milestones[-1] if milestones else (Status.accepted, received_on)
