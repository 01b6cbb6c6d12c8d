"""Outcomes: victims/survivors and what they say, and police-recorded reoffending.

Victims' contact details and every free-text note are encrypted by the
application before they reach the database (``programme.platform.crypto``); only
victim workers ever see them decrypted.
"""

from __future__ import annotations

from enum import StrEnum

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
    """What a victim/survivor said at one stage; one per stage. A correction replaces it
    and keeps the version it replaced in ``FeedbackVersion``."""

    id = UUID(primary_key=True)
    victim = ForeignKey(references=Victim, on_delete=OnDelete.cascade, index=True)
    stage = Varchar(length=15, choices=Stage)
    collected_on = Date()
    behaviour = Varchar(length=10, choices=Behaviour)
    feels_safer = Varchar(length=10, choices=FeelsSafer)
    note = Text(null=True, default=None, secret=True, help_text="Encrypted.")
    recorded_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    updated_at = Timestamptz(default=TimestamptzNow())


class VictimCorrection(Table):
    """One correction of a victim's/survivor's details, with the earlier values.

    Everything in it that could say who or where a victim is is encrypted, as in
    ``Victim``; only victim workers (admins read-only) ever see it decrypted.
    """

    id = BigSerial(primary_key=True)
    victim = ForeignKey(references=Victim, on_delete=OnDelete.cascade, index=True)
    fields = JSONB(default=[], help_text="The names of the fields changed; never values.")
    changes = Text(secret=True, help_text="Encrypted JSON: each field's earlier and new value.")
    reason = Text(secret=True, help_text="Encrypted: why the record was corrected.")
    corrected_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    corrected_at = Timestamptz(default=TimestamptzNow())


class FeedbackVersion(Table):
    """An earlier version of a stage's feedback, kept when a correction replaced it."""

    id = BigSerial(primary_key=True)
    feedback = ForeignKey(references=Feedback, on_delete=OnDelete.cascade, index=True)
    collected_on = Date()
    behaviour = Varchar(length=10, choices=Behaviour)
    feels_safer = Varchar(length=10, choices=FeelsSafer)
    note = Text(null=True, default=None, secret=True, help_text="Encrypted, as it was.")
    recorded_by = ForeignKey(
        references=Account,
        null=True,
        on_delete=OnDelete.set_null,
        help_text="Who recorded this version.",
    )
    recorded_at = Timestamptz(help_text="When this version was recorded.")
    replaced_by = ForeignKey(
        references=Account,
        null=True,
        on_delete=OnDelete.set_null,
        help_text="Who recorded the correction that replaced it.",
    )
    replaced_at = Timestamptz(default=TimestamptzNow())
    reason = Text(
        null=True, default=None, secret=True, help_text="Encrypted: why it was corrected."
    )


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


class IncidentExtract(Table):
    """One police incident file as imported, and the day its extract was taken.

    The police send what they had recorded on that day: a referred person with no
    incident in the extract was offence-free only up to it, not up to today. The
    reoffending analysis follows people to the latest extract (its data cut-off) so
    the days since are not counted as offence-free.
    """

    id = BigSerial(primary_key=True)
    extracted_on = Date(index=True, help_text="The day the police took the extract.")
    stated = Boolean(
        help_text="True: given with the import; false: the latest offence date in the file."
    )
    incidents = Integer(
        help_text="Incidents of the file matched to a referred person, new or already imported."
    )
    imported_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
