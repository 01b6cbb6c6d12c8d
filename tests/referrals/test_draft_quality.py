"""The quality panel of the web form and the quality score of an accepted referral agree.

``rules.draft_quality`` reads answers still being written; once they pass every
check, it must name the same missing details as ``rules.assess_quality`` does
for the accepted referral (the referral-quality figures count those).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from referrals import rules
from tests.builders import VICTIM, good_referral

TODAY = date(2026, 11, 27)
AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")


def accepted_quality(raw: dict[str, Any]) -> rules.Quality:
    checked = rules.check(raw, today=TODAY, commissioned_areas=AREAS)
    assert checked.submission is not None, checked.errors
    return rules.assess_quality(checked.submission)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"risk_level": ...},
        {"prior_incidents": ...},
        {"mental_health": ...},
        {"notes": ...},
        {"victims": [VICTIM]},
        {"victims": [{**VICTIM, "consent_to_contact": False, "consent_obtained_on": None}]},
        {"risk_level": ..., "prior_incidents": ..., "substance_misuse": ..., "notes": ...},
    ],
)
def test_the_draft_and_the_accepted_referral_name_the_same_missing_details(overrides):
    raw = good_referral(**overrides)
    if raw.get("victims"):
        raw["victims"] = [
            {k: v for k, v in victim.items() if v is not None} for victim in raw["victims"]
        ]
    assert rules.draft_quality(raw) == accepted_quality(raw)


def test_form_answers_as_text_count_as_given_and_blanks_do_not():
    """The web form's answers are text: "0" incidents and "no" are answers; "" is not one."""
    draft = {
        "risk_level": "standard",
        "prior_incidents": "0",
        "substance_misuse": "no",
        "mental_health": "no",
        "children_in_household": " ",
        "notes": "",
    }
    missing = [m.field for m in rules.draft_quality(draft).missing]
    assert missing == ["complex_needs", "victims", "notes"]
    assert rules.draft_quality(draft).score == 40


def test_an_empty_draft_misses_every_useful_detail_with_its_reason():
    quality = rules.draft_quality({})
    assert [(m.field, m.why) for m in quality.missing] == list(rules.QUALITY_WHY.items())
    assert quality.score == 0
