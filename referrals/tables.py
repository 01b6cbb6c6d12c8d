"""Tables of referral intake: people, referrals, their dated timeline, returns."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from programme.platform.tables import Account, Agency
from referrals.rules import ConsentMethod, Gender, Relationship, RiskLevel, Status


class Person(Table):
    """Someone referred to the programme; one row however often they are referred.

    Only people whose referral was accepted are kept: a refused referral leaves
    no personal details behind (see ``ReturnedReferral``).
    """

    id = UUID(primary_key=True)
    first_name = Varchar(length=100, secret=True)
    last_name = Varchar(length=100, secret=True)
    date_of_birth = Date(secret=True)
    phone = Varchar(length=20, secret=True, help_text="E.164, e.g. +447700900123.")
    gender = Varchar(length=10, choices=Gender)
    match_key = Varchar(
        length=250,
        index=True,
        secret=True,
        help_text="Normalised last name, first name and date of birth: finds repeat referrals.",
    )
    created_at = Timestamptz(default=TimestamptzNow())


class Referral(Table):
    """An accepted referral of one person by one agency, and where it has got to."""

    id = UUID(primary_key=True)
    reference = Varchar(
        length=40, unique=True, help_text="The referrer's or a generated reference."
    )
    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    agency = ForeignKey(references=Agency, on_delete=OnDelete.restrict, index=True)
    submitted_by = ForeignKey(
        references=Account,
        null=True,
        on_delete=OnDelete.set_null,
        help_text="The account that submitted or imported it.",
    )
    received_on = Date(index=True, help_text="Time origin of the reoffending analysis.")
    status = Varchar(length=12, choices=Status, index=True, help_text="The latest milestone.")
    status_on = Date(help_text="The date of the latest milestone.")
    local_authority = Varchar(length=50)
    relationship = Varchar(length=15, choices=Relationship)
    risk_level = Varchar(length=10, choices=RiskLevel, null=True, default=None)
    prior_incidents = Integer(null=True, default=None, help_text="DA incidents before referral.")
    substance_misuse = Boolean(null=True, default=None)
    mental_health = Boolean(null=True, default=None)
    children_in_household = Boolean(null=True, default=None)
    consent_obtained_on = Date()
    consent_method = Varchar(length=10, choices=ConsentMethod)
    notes = Text(null=True, default=None, secret=True)
    quality_score = Integer(help_text="Share of useful optional details given, in percent.")
    missing_details = JSONB(default=[], help_text="Which useful details the referrer left out.")
    version = Integer(default=1, help_text="Bumped by every change; guards concurrent edits.")
    created_at = Timestamptz(default=TimestamptzNow())


class ReferralEvent(Table):
    """One dated step in a referral's life; the timeline, and what reports count."""

    id = BigSerial(primary_key=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.cascade, index=True)
    type = Varchar(length=12, choices=Status, help_text="The milestone reached.")
    occurred_on = Date(help_text="When it happened (may be before it was recorded).")
    note = Text(null=True, default=None, secret=True)
    recorded_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    recorded_at = Timestamptz(default=TimestamptzNow())
    source = Varchar(
        length=10,
        default="manual",
        help_text="'manual' (a person recorded it), 'register' (derived from attendance), "
        "or 'import'. Only register-derived steps are moved by register corrections.",
    )
    voided_at = Timestamptz(
        null=True,
        default=None,
        help_text="Set when the step was voided as a mistake: it stays, struck through, and "
        "counts nowhere (status, reports, the register).",
    )
    voided_by = ForeignKey(
        references=Account,
        null=True,
        on_delete=OnDelete.set_null,
        help_text="Who voided the step.",
    )
    void_reason = Text(null=True, default=None, secret=True, help_text="Why it was voided.")


class ReferralCorrection(Table):
    """One correction of a referral's details: which fields, their earlier and new values,
    why, who and when. Nothing is overwritten without a row here."""

    id = BigSerial(primary_key=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.cascade, index=True)
    fields = JSONB(default=[], help_text="The names of the fields changed; never values.")
    changes = Text(
        secret=True,
        help_text="Encrypted JSON: each changed field's earlier and new value.",
    )
    reason = Text(secret=True, help_text="Why the record was corrected.")
    corrected_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    corrected_at = Timestamptz(default=TimestamptzNow())


class ParticipantAlert(Table):
    """Something partner support must know about a participant: disengaged, or at risk.

    Integrated support for partners reads these; nothing flows the other way.
    """

    id = UUID(primary_key=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=12, help_text="'disengaged' or 'at_risk'.")
    raised_on = Date(help_text="The date of the event that raised it.")
    detail = JSONB(default={}, help_text="Counts and dates only; never notes.")
    created_at = Timestamptz(default=TimestamptzNow())
    withdrawn_on = Date(
        null=True,
        default=None,
        help_text=(
            "The day the step that raised it was voided as recorded in error. The alert "
            "stays, so partner support can see it was sent and that it no longer stands."
        ),
    )


class ReturnedReferral(Table):
    """A refused referral: who sent it, when, and why, and nothing about the person."""

    id = UUID(primary_key=True)
    agency = ForeignKey(references=Agency, on_delete=OnDelete.restrict, index=True)
    submitted_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    received_on = Date(index=True)
    reasons = JSONB(help_text="Return reason codes, e.g. consent_missing.")
    source = Varchar(length=10, help_text="'api' or 'import'.")
    fingerprint = Varchar(
        length=64,
        null=True,
        default=None,
        unique=True,
        help_text="Keyed hash of an imported row, so re-importing adds nothing.",
    )
    person_fingerprint = Varchar(
        length=64,
        null=True,
        default=None,
        index=True,
        help_text="Keyed hash of the person's folded name and date of birth and the agency "
        "(no personal data): finds the resubmission that replaces this return.",
    )
    replaced = Boolean(
        default=False,
        help_text="A later submission of the same person by the same agency in the same "
        "quarter replaced it: the reports count the person once.",
    )
    created_at = Timestamptz(default=TimestamptzNow())
