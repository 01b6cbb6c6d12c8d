"""Importing police-recorded domestic-abuse incidents: the reoffending outcome.

Rows are matched to a referred person by referral ``reference`` or by first
name, last name and date of birth. The file is checked whole first: one row
that matches nobody (or more than one person) means nothing is imported,
unless ``skip_invalid``. Importing the same file again adds nothing. Incidents
before a referral are kept as prior history; the analysis counts only those
after the referral date.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date
from typing import Any
from uuid import UUID

from outcomes.schemas import ReoffenceImportReport, RowError
from outcomes.tables import Reoffence
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.database import engine
from programme.platform.tables import AuditAction
from referrals.importer import keyed_digest
from referrals.people import match_key
from referrals.tables import Person, Referral

COLUMNS = frozenset(
    {"reference", "first_name", "last_name", "date_of_birth", "offence_date", "offence_type"}
)


def _rows(content: bytes, errors: list[RowError]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.append(RowError(line=1, field="", message="The file is not UTF-8 text."))
        return []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    names = [name.strip() for name in reader.fieldnames or []]
    errors.extend(
        RowError(line=1, field=name, message="This column is not recognised.")
        for name in names
        if name not in COLUMNS
    )
    if "offence_date" not in names:
        errors.append(RowError(line=1, field="offence_date", message="This column is required."))
    if "reference" not in names and not {"first_name", "last_name", "date_of_birth"} <= set(names):
        errors.append(
            RowError(
                line=1,
                field="reference",
                message=(
                    "Give reference, or first_name, last_name and date_of_birth, to match people."
                ),
            )
        )
    if errors:
        return []
    reader.fieldnames = names
    return [
        (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None})
        for row in reader
        if any((v or "").strip() for v in row.values() if isinstance(v, str))
    ]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


async def _people_by_reference(references: list[str]) -> dict[str, UUID]:
    rows = await Referral.select(Referral.reference, Referral.person).where(
        Referral.reference.is_in(references or [""])
    )
    return {row["reference"]: row["person"] for row in rows}


async def _people_by_key(keys: list[str]) -> dict[str, list[UUID]]:
    rows = await Person.select(Person.id, Person.match_key).where(
        Person.match_key.is_in(keys or [""])
    )
    found: dict[str, list[UUID]] = {}
    for row in rows:
        found.setdefault(row["match_key"], []).append(row["id"])
    return found


async def import_reoffending(
    content: bytes, actor: Principal, fingerprint_key: str, today: date, *, skip_invalid: bool
) -> ReoffenceImportReport:
    errors: list[RowError] = []
    rows = _rows(content, errors)
    parsed: list[dict[str, Any]] = []
    for line, row in rows:
        problems = []
        offence_on = _day(row.get("offence_date", ""))
        if offence_on is None:
            problems.append(
                RowError(line=line, field="offence_date", message="Expected a date as YYYY-MM-DD.")
            )
        elif offence_on > today:
            problems.append(
                RowError(line=line, field="offence_date", message="Cannot be in the future.")
            )
        kind = row.get("offence_type") or None
        if kind and len(kind) > 100:
            problems.append(
                RowError(line=line, field="offence_type", message="At most 100 characters.")
            )
        key = None
        if not row.get("reference"):
            born = _day(row.get("date_of_birth", ""))
            if not (row.get("first_name") and row.get("last_name") and born):
                problems.append(
                    RowError(
                        line=line,
                        field="reference",
                        message="Give the reference, or first name, last name and date of birth.",
                    )
                )
            else:
                key = match_key(row["first_name"], row["last_name"], born)
        errors.extend(problems)
        parsed.append(
            {
                "line": line,
                "row": row,
                "on": offence_on,
                "type": kind,
                "key": key,
                "bad": bool(problems),
            }
        )
    by_reference = await _people_by_reference(
        [p["row"]["reference"] for p in parsed if p["row"].get("reference")]
    )
    by_key = await _people_by_key([p["key"] for p in parsed if p["key"]])
    for item in parsed:
        if item["bad"]:
            continue
        reference = item["row"].get("reference")
        if reference:
            item["person"] = by_reference.get(reference)
            if item["person"] is None:
                errors.append(
                    RowError(
                        line=item["line"],
                        field="reference",
                        message="Unmatched: no referral has this reference.",
                    )
                )
        else:
            candidates = by_key.get(item["key"], [])
            if len(candidates) != 1:
                errors.append(
                    RowError(
                        line=item["line"],
                        field="first_name",
                        message=(
                            "Unmatched: no referred person has this name and date of birth."
                            if not candidates
                            else f"Ambiguous: {len(candidates)} people match."
                        ),
                    )
                )
            item["person"] = candidates[0] if len(candidates) == 1 else None
        item["bad"] = item["person"] is None
    bad_lines = {e.line for e in errors}
    if errors and not skip_invalid:
        return ReoffenceImportReport(
            imported=0, already_present=0, refused=len(bad_lines), after_referral=0, errors=errors
        )
    good = [item for item in parsed if item["line"] not in bad_lines]
    seen: Counter[tuple[Any, ...]] = Counter()
    for item in good:
        identity = (item["person"], item["on"], item["type"] or "")
        seen[identity] += 1
        item["fingerprint"] = keyed_digest(
            fingerprint_key, f"incident|{identity[0]}|{identity[1]}|{identity[2]}|{seen[identity]}"
        )
    stored = await Reoffence.select(Reoffence.fingerprint).where(
        Reoffence.fingerprint.is_in([i["fingerprint"] for i in good] or [""])
    )
    known = {row["fingerprint"] for row in stored}
    new = [item for item in good if item["fingerprint"] not in known]
    async with engine().transaction():
        if new:
            await Reoffence.insert(
                *[
                    Reoffence(
                        person=i["person"],
                        offence_date=i["on"],
                        offence_type=i["type"],
                        fingerprint=i["fingerprint"],
                        imported_by=actor.id,
                    )
                    for i in new
                ]
            )
        await audit.record(actor, AuditAction.create, "reoffence_import", None, {"rows": len(new)})
    after = await _after_referral(new)
    return ReoffenceImportReport(
        imported=len(new),
        already_present=len(good) - len(new),
        refused=len(bad_lines),
        after_referral=after,
        errors=errors,
    )


async def _after_referral(items: list[dict[str, Any]]) -> int:
    if not items:
        return 0
    rows = await Referral.select(Referral.person, Referral.received_on).where(
        Referral.person.is_in(list({i["person"] for i in items}))
    )
    first_referral: dict[UUID, date] = {}
    for row in rows:
        current = first_referral.get(row["person"])
        first_referral[row["person"]] = (
            min(current, row["received_on"]) if current else row["received_on"]
        )
    return sum(1 for i in items if i["on"] > first_referral[i["person"]])
