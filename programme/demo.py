"""``inspire demo``: realistic synthetic data across every part of the system.

For a new user to see every report and plot working straight after
``inspire serve``. Seeded and reproducible: the same seed gives the same
people, dates and outcomes (the timeline is fixed, April 2022 to September
2026). It refuses to run on a database holding any referral, returned
referral, person or group, so it can never mix with real records.

Everything goes through the same services the API uses (intake checks,
the importer, the register and its derived milestones, encrypted victim
records), so the demo data obeys every rule real data does.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from outcomes import services as outcomes
from outcomes.schemas import FeedbackCreate
from outcomes.tables import Behaviour, FeelsSafer, Stage
from programme.delivery import services as delivery
from programme.delivery.rules import Mark
from programme.delivery.schemas import (
    AttendanceMark,
    ExitReviewCreate,
    GroupCreate,
    MemberAdd,
    SessionCreate,
)
from programme.delivery.tables import Group
from programme.imports.services import import_referrals, import_reoffending
from programme.platform.accounts import services as accounts
from programme.platform.accounts.schemas import AccountCreate, Principal
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.errors import Conflict
from programme.platform.settings import Settings
from programme.platform.tables import Account, Role
from referrals.rules import VictimDetails
from referrals.tables import Person, Referral, ReturnedReferral

FIRST_DAY = date(2022, 4, 1)
LAST_DAY = date(2026, 9, 30)
AGENCIES = (
    "South Yorkshire Police",
    "Rotherham Children's Social Care",
    "Rotherham Early Help",
    "Sheffield Children's Services",
    "Doncaster Adult Social Care",
    "Barnsley Health Visiting",
    "National Probation Service",
)
AREAS = ("Rotherham", "Rotherham", "Sheffield", "Doncaster", "Barnsley")
FIRST_NAMES = (
    "Adam",
    "Ben",
    "Callum",
    "Dean",
    "Ellis",
    "Frankie",
    "Gavin",
    "Harry",
    "Jade",
    "Kyle",
    "Liam",
    "Mason",
    "Nathan",
    "Owen",
    "Paige",
    "Reece",
    "Sam",
    "Tyler",
)
LAST_NAMES = (
    "Atkinson",
    "Barker",
    "Cooper",
    "Dixon",
    "Ellis",
    "Fletcher",
    "Gibson",
    "Hughes",
    "Jackson",
    "Kirk",
    "Lowe",
    "Marsh",
    "Naylor",
    "Parkin",
    "Robinson",
    "Senior",
)
DEMO_ROLES = (Role.admin, Role.referrer, Role.facilitator, Role.victim_worker, Role.monitor)


@dataclass(frozen=True)
class DemoSummary:
    passwords: dict[str, str]
    referrals: int
    returned: int
    groups: int
    registers: int
    victims: int
    feedback: int
    incidents: int


async def has_records() -> bool:
    for table in (Referral, ReturnedReferral, Person, Group):
        if await table.exists():
            return True
    return False


def _spelt(n: int) -> str:
    return "".join("abcdefghij"[int(d)] for d in str(n))


def _referral_rows(rng: random.Random, count: int) -> tuple[str, list[dict[str, str]]]:
    rows = []
    span = (LAST_DAY - FIRST_DAY).days - 200
    for n in range(count):
        received = FIRST_DAY + timedelta(days=rng.randrange(span))
        consent = rng.random() > 0.12
        row = {
            "agency": rng.choice(AGENCIES),
            "reference": f"DEMO-{n:05d}",
            "received_on": received.isoformat(),
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES) + _spelt(n),
            "date_of_birth": date(
                1960 + rng.randrange(45), rng.randrange(1, 13), rng.randrange(1, 29)
            ).isoformat(),
            "gender": "male" if rng.random() < 0.85 else "female",
            "phone": f"07911 {100000 + n:06d}",
            "local_authority": rng.choice(AREAS) if rng.random() > 0.03 else "Leeds",
            "relationship": rng.choice(("partner", "partner", "ex_partner", "family_member")),
            "risk_level": rng.choices(("standard", "medium", "high", ""), (60, 23, 12, 5))[0],
            "prior_incidents": str(rng.choice((0, 0, 1, 1, 2, 3, 5))) if rng.random() > 0.2 else "",
            "substance_misuse": rng.choice(("yes", "no", "no", "")),
            "mental_health": rng.choice(("yes", "no", "")),
            "children_in_household": rng.choice(("yes", "no")),
            "on_probation_programme": "yes" if rng.random() < 0.02 else "no",
            "consent_given": "yes" if consent else "no",
            "consent_obtained_on": received.isoformat(),
            "consent_method": "verbal",
            "notes": "Demo referral" if rng.random() > 0.4 else "",
            "contacted_on": "",
            "engaged_on": "",
            "disengaged_on": "",
            "closed_on": "",
            "withdrawn_on": "",
        }
        acceptable = consent and row["local_authority"] != "Leeds"
        if acceptable and row["on_probation_programme"] == "no" and rng.random() < 0.7:
            row["contacted_on"] = (received + timedelta(days=rng.randrange(2, 15))).isoformat()
            if rng.random() < 0.55:
                row["engaged_on"] = (received + timedelta(days=rng.randrange(16, 40))).isoformat()
            else:
                exit_column = rng.choice(("disengaged_on", "closed_on", "withdrawn_on"))
                row[exit_column] = (received + timedelta(days=rng.randrange(16, 40))).isoformat()
        rows.append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue(), rows


async def _accounts(actor: Principal) -> dict[str, str]:
    passwords = {}
    for role in DEMO_ROLES:
        username = f"demo-{role.value.replace('_', '-')}"
        password = secrets.token_urlsafe(12)
        agency = "South Yorkshire Police" if role == Role.referrer else None
        try:
            await accounts.create_account(
                AccountCreate(username=username, password=password, role=role, agency=agency),
                actor,
            )
        except Conflict:
            continue  # kept from an earlier run, with its own password
        passwords[username] = password
    return passwords


async def _programme(rng: random.Random, actor: Principal, today: date) -> tuple[int, int, dict]:
    """Groups every two months; engaged people join in turn; registers drive the milestones."""
    engaged = (
        await Referral.select(Referral.id, Referral.status_on)
        .where(Referral.status == "engaged")
        .order_by(Referral.status_on)
    )
    groups = registers = 0
    attendance_rate: dict = {}
    queue = list(engaged)
    starts_on = FIRST_DAY + timedelta(days=60)
    while queue and starts_on < LAST_DAY - timedelta(days=30):
        ready = [r for r in queue if r["status_on"] <= starts_on][:12]
        if ready:
            group = await delivery.create_group(
                GroupCreate(
                    name=f"Demo group {groups + 1}",
                    starts_on=starts_on,
                    facilitators=["demo-facilitator"],
                    capacity=12,
                ),
                actor,
            )
            groups += 1
            for person in ready:
                queue.remove(person)
                await delivery.add_member(
                    group.id, MemberAdd(person["id"], starts_on), actor, today
                )
                attendance_rate[person["id"]] = rng.choice((0.95, 0.9, 0.85, 0.6, 0.3))
            for number in range(1, 25):
                held_on = starts_on + timedelta(weeks=number - 1)
                if held_on > min(today, LAST_DAY):
                    break
                session = await delivery.add_session(
                    group.id, SessionCreate(number, held_on), actor
                )
                marks = []
                for person in ready:
                    rate = attendance_rate[person["id"]]
                    if number > 8 and rate < 0.5:
                        rate = 0.05  # drifting away
                    roll = rng.random()
                    status = (
                        Mark.attended
                        if roll < rate
                        else Mark.late
                        if roll < rate + 0.03
                        else Mark.excused
                        if roll < rate + 0.08
                        else Mark.absent
                    )
                    marks.append(AttendanceMark(person["id"], status))
                await delivery.save_register(session.id, marks, actor, today)
                registers += 1
            review_on = starts_on + timedelta(weeks=24)
            if review_on <= min(today, LAST_DAY):
                for person in ready:
                    if attendance_rate[person["id"]] >= 0.85:
                        await delivery.record_exit_review(
                            ExitReviewCreate(person["id"], review_on), actor, today
                        )
        starts_on += timedelta(days=61)
    return groups, registers, attendance_rate


async def _victims(
    rng: random.Random, actor: Principal, today: date, attendance: dict
) -> tuple[int, int]:
    referrals = await Referral.select(Referral.id, Referral.received_on, Referral.status)
    victims = feedback = 0
    for referral in referrals:
        if rng.random() > 0.45:
            continue
        details = VictimDetails(
            first_name=rng.choice(("Amy", "Beth", "Chloe", "Dawn", "Emma", "Gemma")),
            last_name=None,
            phone=f"+447911{200000 + victims:06d}",
            relationship="partner",
            consent_to_contact=rng.random() > 0.2,
            consent_obtained_on=referral["received_on"],
        )
        (victim_id,) = await outcomes.record_victims(referral["id"], [details], actor)
        victims += 1
        if not details.consent_to_contact:
            continue
        engaged_well = attendance.get(referral["id"], 0) >= 0.85
        for stage, offset in ((Stage.intake, 10), (Stage.midpoint, 100), (Stage.exit, 190)):
            collected = referral["received_on"] + timedelta(days=offset)
            if collected > min(today, LAST_DAY) or rng.random() < 0.3:
                break
            if stage != Stage.intake and referral["id"] not in attendance:
                break
            good = 0.9 if engaged_well else 0.45
            behaviour = (
                rng.choice((Behaviour.stopped, Behaviour.reduced))
                if rng.random() < good
                else rng.choice((Behaviour.same, Behaviour.worse))
            )
            await outcomes.record_feedback(
                victim_id,
                FeedbackCreate(
                    stage=stage,
                    collected_on=collected,
                    behaviour=behaviour,
                    feels_safer=FeelsSafer.yes
                    if behaviour in (Behaviour.stopped, Behaviour.reduced)
                    else rng.choice((FeelsSafer.no, FeelsSafer.unsure)),
                ),
                actor,
                today,
            )
            feedback += 1
    return victims, feedback


async def _incidents(
    rng: random.Random, actor: Principal, settings: Settings, today: date, attendance: dict
) -> int:
    referrals = await Referral.select(Referral.id, Referral.reference, Referral.received_on)
    lines = ["reference,offence_date,offence_type"]
    for referral in referrals:
        if rng.random() < 0.5:
            before = referral["received_on"] - timedelta(days=rng.randrange(30, 700))
            lines.append(f"{referral['reference']},{before.isoformat()},domestic abuse")
        risk = 0.18 if attendance.get(referral["id"], 0) >= 0.85 else 0.35
        if rng.random() < risk:
            after = referral["received_on"] + timedelta(days=rng.randrange(5, 400))
            if after <= min(today, LAST_DAY):
                lines.append(f"{referral['reference']},{after.isoformat()},domestic abuse")
    report = await import_reoffending(
        ("\n".join(lines) + "\n").encode(),
        actor,
        purpose_key(settings, KeyPurpose.import_fingerprint),
        today,
        skip_invalid=False,
    )
    return report.imported


async def fill(settings: Settings, today: date, seed: int = 2021, count: int = 900) -> DemoSummary:
    if await has_records():
        raise Conflict(
            "The database already holds referrals or people: the demo never "
            "mixes with real records. Use a fresh INSPIRE_DATA_DIR."
        )
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by design
    actor = Principal(id=None, username="demo", role=Role.admin.value)
    passwords = await _accounts(actor)
    facilitator = (
        await Account.select(Account.id).where(Account.username == "demo-facilitator").first()
    )
    assert facilitator is not None
    content, _ = _referral_rows(rng, count)
    imported = await import_referrals(
        content.encode(), actor, settings, today, skip_invalid=True, create_agencies=True
    )
    groups, registers, attendance = await _programme(rng, actor, today)
    victims, feedback = await _victims(rng, actor, today, attendance)
    incidents = await _incidents(rng, actor, settings, today, attendance)
    return DemoSummary(
        passwords,
        imported.imported,
        imported.returned,
        groups,
        registers,
        victims,
        feedback,
        incidents,
    )
