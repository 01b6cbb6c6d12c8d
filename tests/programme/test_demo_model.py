"""The demo's stated model (``programme.demo.simulate``) does what its docstring says."""

from __future__ import annotations

import random
from datetime import date

from programme.demo import ENGAGES_ON_DAYS, simulate

UNTIL = date(2025, 6, 30)


def test_the_same_seed_and_effect_give_the_same_data():
    first = simulate(random.Random(3), 300, 0.6, UNTIL)
    assert first == simulate(random.Random(3), 300, 0.6, UNTIL)
    assert first.incidents != simulate(random.Random(3), 300, 1.0, UNTIL).incidents
    assert first.extracted_on == UNTIL


def test_nobody_engages_after_reoffending_and_nothing_is_seen_after_the_extract():
    data = simulate(random.Random(4), 2000, 1.0, UNTIL)
    after: dict[str, date] = {}
    for row in data.referral_rows:
        received = date.fromisoformat(row["received_on"])
        for reference, on in data.incidents:
            if reference == row["reference"] and on > received:
                after[reference] = on
    engaged = 0
    for row in data.referral_rows:
        received = date.fromisoformat(row["received_on"])
        milestones = ("contacted_on", "engaged_on", "disengaged_on", "closed_on", "withdrawn_on")
        assert all(date.fromisoformat(row[k]) <= UNTIL for k in milestones if row[k])
        if row["engaged_on"]:
            engaged += 1
            on = date.fromisoformat(row["engaged_on"])
            assert ENGAGES_ON_DAYS[0] <= (on - received).days <= ENGAGES_ON_DAYS[1]
            reoffended = after.get(row["reference"])
            assert reoffended is None or reoffended > on
    assert engaged > 200
    assert all(on <= UNTIL for _, on in data.incidents)
    accepted = {
        r["reference"]
        for r in data.referral_rows
        if r["consent_given"] == "yes"
        and r["local_authority"] != "Leeds"
        and r["on_probation_programme"] == "no"
    }
    assert {reference for reference, _ in data.incidents} <= accepted
