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
