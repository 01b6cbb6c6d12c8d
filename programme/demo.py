"""``inspire demo``: realistic synthetic data across every part of the system.

For a new user to see every report and plot working straight after
``inspire serve``. Seeded and reproducible: the same seed gives the same
people, dates and outcomes (the timeline is fixed, April 2022 to September
2026). It refuses to run on a database holding any referral, returned
referral, person or group, so it can never mix with real records.

Everything goes through the same services the API uses (intake checks,
the importer, the register and its derived milestones, encrypted victim
records), so the demo data obeys every rule real data does.

Referrals, engagement and reoffending come from one stated model (``simulate``,
which the simulation tests use too, with other effects), so every figure of the
reoffending analysis has a known truth behind it:

- Baseline covariates: risk level standard/medium/high (63/24/13%), prior incidents
  0-5, substance misuse (a third). Each is left blank in the record at random (5%,
  20%, 25%), whatever its true value.
- Contact: 70% of accepted referrals are contacted, 2 to 13 days in.
- Selection into engagement: a contacted person would engage with probability
  logistic(0.5 - 0.5 medium - 1.0 high - 0.25 per prior incident - 0.75 substance
  misuse) (``ENGAGEMENT_LOGIT``), on a day drawn evenly from 14 to 84.
- Reoffending: a constant daily hazard of -ln(0.85)/365 (15% a year) for a
  standard-risk person with no prior incident or substance misuse
  (``BASELINE_HAZARD``), times 1.5 medium, 2.5 high, 1.15 per prior incident,
  1.5 substance misuse (``REOFFENDING_HR``).
- The programme: from the day someone engages, their hazard is multiplied by
  ``ENGAGEMENT_HR`` = 0.8, a time-varying effect; nothing before that day.
- Someone who reoffends before the day they would have engaged never engages (their
  referral is closed): this is where the naive comparison's immortal-time bias comes
  from. Who engages also differs at baseline (lower risk), which only adjusting for
  the covariates removes.
- The police extract is taken on the demo's last day (or today, if earlier) and holds
  each person's first incident after referral up to it, and for half of them one
  earlier incident (history, 30 to 700 days before referral).

Attendance, completion and victims' feedback are drawn separately and do not change
reoffending.
"""

from __future__ import annotations

import csv
import io
import math
import random
import secrets
from collections.abc import Collection
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
ENGAGEMENT_HR = 0.8
"""The demo's programme effect: from the day someone engages, their hazard of
reoffending is multiplied by this (a fifth lower)."""
BASELINE_HAZARD = -math.log(0.85) / 365
"""Per day, before engaging, for a standard-risk person with no prior incident and no
substance misuse: 15% of them reoffend within a year. Constant over time."""
REOFFENDING_HR = {"medium": 1.5, "high": 2.5, "prior_incident": 1.15, "substance_misuse": 1.5}
"""Hazard ratios of the baseline covariates (risk level against standard; per prior
incident; substance misuse against none)."""
ENGAGEMENT_LOGIT = {
    "intercept": 0.5,
    "medium": -0.5,
    "high": -1.0,
    "prior_incident": -0.25,
    "substance_misuse": -0.75,
}
"""Selection into engagement: the log-odds that a contacted person would engage."""
CONTACTED = 0.7
"""The share of accepted referrals whose initial contact succeeds (2 to 13 days in)."""
ENGAGES_ON_DAYS = (14, 84)
"""A person who engages does so on a day drawn evenly from these (2 to 12 weeks in):
before the 91-day landmark, so the landmark comparison misclassifies no one."""
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


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass(frozen=True)
class SyntheticData:
    """What the stated model generates: the referral import rows, the police incidents
    of the accepted ones, and the day the police extract was taken (the data cut-off)."""

    referral_rows: list[dict[str, str]]
    incidents: list[tuple[str, date]]
    """(referral reference, offence date): history before the referral and the first
    reoffence after it, up to the extract."""
    extracted_on: date

    def referrals_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.referral_rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.referral_rows)
        return out.getvalue()

    def incidents_csv(self, references: Collection[str] | None = None) -> str:
        """The incidents as a police file (only those of ``references``, if given)."""
        lines = ["reference,offence_date,offence_type"]
        for reference, on in self.incidents:
            if references is None or reference in references:
                lines.append(f"{reference},{on.isoformat()},domestic abuse")
        return "\n".join(lines) + "\n"


def engagement_probability(risk: str, prior: int, substance: bool) -> float:
    """Selection into engagement (for a contacted person): ``ENGAGEMENT_LOGIT``."""
    logit = (
        ENGAGEMENT_LOGIT["intercept"]
        + ENGAGEMENT_LOGIT.get(risk, 0.0)
        + ENGAGEMENT_LOGIT["prior_incident"] * prior
        + ENGAGEMENT_LOGIT["substance_misuse"] * substance
    )
    return _logistic(logit)


def reoffending_hazard(risk: str, prior: int, substance: bool) -> float:
    """A person's daily hazard of reoffending before engaging: ``BASELINE_HAZARD`` times
    ``REOFFENDING_HR`` for their risk level, prior incidents and substance misuse."""
    return (
        BASELINE_HAZARD
        * REOFFENDING_HR.get(risk, 1.0)
        * REOFFENDING_HR["prior_incident"] ** prior
        * (REOFFENDING_HR["substance_misuse"] if substance else 1.0)
    )


def simulate(
    rng: random.Random,
    count: int,
    engagement_hr: float = ENGAGEMENT_HR,
    until: date = LAST_DAY,
) -> SyntheticData:
    """``count`` referrals from the model in this module's docstring, seen on ``until``.

    Pure: the same generator state, count, effect and day give the same data.
    """
    rows: list[dict[str, str]] = []
    incidents: list[tuple[str, date]] = []
    span = (LAST_DAY - FIRST_DAY).days - 200

    def seen(day: date) -> str:
        return day.isoformat() if day <= until else ""

    for n in range(count):
        received = FIRST_DAY + timedelta(days=rng.randrange(span))
        consent = rng.random() > 0.12
        risk = rng.choices(("standard", "medium", "high"), (63, 24, 13))[0]
        prior = rng.choice((0, 0, 1, 1, 2, 3, 5))
        substance = rng.random() < 1 / 3
        reference = f"DEMO-{n:05d}"
        row = {
            "agency": rng.choice(AGENCIES),
            "reference": reference,
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
            # Recorded, or left blank at random (whatever the true value).
            "risk_level": risk if rng.random() > 0.05 else "",
            "prior_incidents": str(prior) if rng.random() > 0.2 else "",
            "substance_misuse": ("yes" if substance else "no") if rng.random() > 0.25 else "",
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
        rows.append(row)
        accepted = consent and row["local_authority"] != "Leeds"
        if not accepted or row["on_probation_programme"] == "yes":
            continue  # returned at the door: not in the cohort
        contacted = rng.random() < CONTACTED
        would_engage = rng.random() < engagement_probability(risk, prior, substance)
        engages_on_day = rng.randint(*ENGAGES_ON_DAYS)
        hazard = reoffending_hazard(risk, prior, substance)
        first = rng.expovariate(hazard)
        engaged = contacted and would_engage and first > engages_on_day
        if engaged:
            # From the day of engagement the hazard is multiplied by the programme's effect
            # (memoryless, so the time left is drawn afresh at the new hazard).
            first = engages_on_day + rng.expovariate(hazard * engagement_hr)
        if contacted:
            row["contacted_on"] = seen(received + timedelta(days=rng.randrange(2, 14)))
            if engaged:
                row["engaged_on"] = seen(received + timedelta(days=engages_on_day))
            elif would_engage:
                # Reoffended before engaging: the referral is closed instead.
                row["closed_on"] = seen(received + timedelta(days=engages_on_day))
            else:
                exit_column = rng.choice(("disengaged_on", "closed_on", "withdrawn_on"))
                row[exit_column] = seen(received + timedelta(days=rng.randrange(16, 40)))
        if rng.random() < 0.5:
            history = received - timedelta(days=rng.randrange(30, 700))
            if history <= until:
                incidents.append((reference, history))
        reoffended_on = received + timedelta(days=math.ceil(first))
        if reoffended_on <= until:
            incidents.append((reference, reoffended_on))
    return SyntheticData(rows, incidents, until)


def _referral_rows(rng: random.Random, count: int) -> tuple[str, list[dict[str, str]]]:
    data = simulate(rng, count)
    return data.referrals_csv(), data.referral_rows


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


async def _incidents(data: SyntheticData, actor: Principal, settings: Settings, today: date) -> int:
    """The model's police incidents, as one extract taken on the demo's last day."""
    stored = {r["reference"] for r in await Referral.select(Referral.reference)}
    report = await import_reoffending(
        data.incidents_csv(stored).encode(),
        actor,
        purpose_key(settings, KeyPurpose.import_fingerprint),
        today,
        skip_invalid=False,
        extracted_on=data.extracted_on,
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
    data = simulate(rng, count, ENGAGEMENT_HR, min(today, LAST_DAY))
    imported = await import_referrals(
        data.referrals_csv().encode(),
        actor,
        settings,
        today,
        skip_invalid=True,
        create_agencies=True,
    )
    groups, registers, attendance = await _programme(rng, actor, today)
    victims, feedback = await _victims(rng, actor, today, attendance)
    incidents = await _incidents(data, actor, settings, today)
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
