"""Outcomes: victims/survivors and what they say, and police-recorded reoffending.

Victims' contact details and every free-text note are encrypted by the
application before they reach the database (``programme.platform.crypto``); only
victim workers ever see them decrypted.
"""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import UUID, Boolean, Date, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from programme.platform.tables import Account
from referrals.tables import Person, Referral


class Stage(StrEnum):
    """The IMPACT toolkit's time points for victim feedback."""

    intake = "intake"
    midpoint = "midpoint"
    exit = "exit"
    follow_up_6m = "follow_up_6m"


class Behaviour(StrEnum):
    """Abusive behaviour since the last contact, as the victim/survivor reports it."""

    stopped = "stopped"
    reduced = "reduced"
    same = "same"
    worse = "worse"


class FeelsSafer(StrEnum):
    yes = "yes"
    no = "no"
    unsure = "unsure"


class Victim(Table):
    """A victim/survivor linked to a referral. Visible to victim workers only."""

    id = UUID(primary_key=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.restrict, index=True)
    first_name = Text(secret=True, help_text="Encrypted.")
    last_name = Text(null=True, default=None, secret=True, help_text="Encrypted.")
    phone = Text(null=True, default=None, secret=True, help_text="Encrypted, E.164 inside.")
    relationship = Varchar(length=15, help_text="To the referred person.")
    recorded_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())


class ContactConsent(Table):
    """A victim's consent to be contacted: its own dated record, withdrawable."""

    id = UUID(primary_key=True)
    victim = ForeignKey(references=Victim, on_delete=OnDelete.cascade, index=True)
    given = Boolean(help_text="True: consent given; false: refused.")
    obtained_on = Date()
    withdrawn_on = Date(null=True, default=None)
    recorded_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())


class Feedback(Table):
    """What a victim/survivor said at one stage; one per stage, corrections replace it."""

    id = UUID(primary_key=True)
    victim = ForeignKey(references=Victim, on_delete=OnDelete.cascade, index=True)
    stage = Varchar(length=15, choices=Stage)
    collected_on = Date()
    behaviour = Varchar(length=10, choices=Behaviour)
    feels_safer = Varchar(length=10, choices=FeelsSafer)
    note = Text(null=True, default=None, secret=True, help_text="Encrypted.")
    recorded_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz(default=TimestamptzNow())


class Reoffence(Table):
    """A police-recorded domestic-abuse incident by a referred person.

    Incidents before a referral are prior history; the reoffending analysis
    counts only those after the referral date.
    """

    id = UUID(primary_key=True)
    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    offence_date = Date(index=True)
    offence_type = Varchar(length=100, null=True, default=None)
    fingerprint = Varchar(
        length=64, unique=True, help_text="Keyed hash of the source row: re-imports add nothing."
    )
    imported_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
