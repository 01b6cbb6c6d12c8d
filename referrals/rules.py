"""The referral lifecycle and the vocabulary of intake, in the domain's words.

``received`` → ``accepted`` or ``returned`` → ``contacted`` → ``engaged`` →
``started`` → ``completed``; at any point after acceptance a referral can end
as ``disengaged``, ``withdrawn`` (consent withdrawn) or ``closed`` (found
inappropriate at assessment).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    accepted = "accepted"
    contacted = "contacted"
    engaged = "engaged"
    started = "started"
    completed = "completed"
    disengaged = "disengaged"
    withdrawn = "withdrawn"
    closed = "closed"


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"
    unknown = "unknown"


class Relationship(StrEnum):
    partner = "partner"
    ex_partner = "ex_partner"
    family_member = "family_member"
    other = "other"


class RiskLevel(StrEnum):
    standard = "standard"
    medium = "medium"
    high = "high"


class ConsentMethod(StrEnum):
    verbal = "verbal"
    written = "written"


class ReturnReason(StrEnum):
    """Why a referral was not accepted; reported per agency to coach referrers."""

    consent_missing = "consent_missing"
    incomplete = "incomplete"
    no_contact_number = "no_contact_number"
    under_16 = "under_16"
    not_domestic_abuse = "not_domestic_abuse"
    on_mandated_programme = "on_mandated_programme"
    out_of_area = "out_of_area"


PROGRESS = (Status.accepted, Status.contacted, Status.engaged, Status.started, Status.completed)
"""The forward milestones, in order."""

EXITS = (Status.disengaged, Status.withdrawn, Status.closed)
"""Ways a referral ends early; possible from any open status."""

OPEN = frozenset({Status.accepted, Status.contacted, Status.engaged, Status.started})
"""Statuses in which the person is still being worked with."""

ENDED = frozenset({Status.completed, *EXITS})

DOMESTIC_RELATIONSHIPS = frozenset(
    {Relationship.partner, Relationship.ex_partner, Relationship.family_member}
)

MINIMUM_AGE = 16


def allowed_next(status: Status) -> list[Status]:
    """The event types that may follow ``status``, in lifecycle order."""
    if status in ENDED:
        return []
    following = PROGRESS[PROGRESS.index(status) + 1]
    return [following, *EXITS]
