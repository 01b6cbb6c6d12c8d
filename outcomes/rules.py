"""The outcomes domain's decisions: pure, no database, no HTTP.

Victims'/survivors' details themselves are checked where they are first given,
with the referral (``referrals.rules.check_victim``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def may_contact(consent: Mapping[str, Any] | None) -> bool:
    """Partner support may contact a victim/survivor only on consent given and not withdrawn.

    ``consent`` is the latest consent record (``given``, ``withdrawn_on``), or None
    when none was ever recorded: no record is no consent. Feedback is only ever
    recorded with consent to contact in force.
    """
    return bool(consent and consent["given"] and consent["withdrawn_on"] is None)


SUPPORT_WORK = ("recorded the victim", "recorded their consent to contact", "recorded feedback")
"""What makes a victim part of a victim worker's caseload (``supports``)."""


def supports(worked_on: Mapping[str, bool]) -> bool:
    """A victim worker supports a victim/survivor they have done the work of support for.

    There is no separate allocation: a worker takes someone on by doing the work,
    and each step is recorded under their account. They support a victim when
    they recorded the victim (named them themselves), or recorded a consent to
    contact (given, refused or withdrawn: the first contact is asking), or
    recorded feedback. ``worked_on`` says which of these they did
    (``recorded_victim``, ``recorded_consent``, ``recorded_feedback``).

    A victim named by a referrer, whom no worker has yet contacted, is in no
    caseload: finding them is the job of the team's list of new referrals, not
    of one worker's caseload. The caseload decides what a worker's search for
    referrals, ``GET /victims`` and ``GET /victims/alerts`` cover; it is
    computed in SQL by ``outcomes.queries.CASELOAD``, which keeps to this rule.
    """
    return bool(
        worked_on.get("recorded_victim")
        or worked_on.get("recorded_consent")
        or worked_on.get("recorded_feedback")
    )
