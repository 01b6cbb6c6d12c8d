"""The cohort read as one COPY stream gives the analysis the very figures the row-by-row
read gave: the same columns, the same values, the same results to the last bit."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from analysis import queries
from analysis.rules import AnalysisRequest
from analysis.services import _analyse, before_after, follow_up, load_cohort
from programme.platform import database
from tests.analysis.test_reoffending_analysis import cohort_files
from tests.builders import inspire

pytestmark = pytest.mark.anyio

AS_OF = date(2026, 6, 1)


@pytest.fixture
async def imported(tmp_path, clean_database):
    referral_file, incident_file, _ = cohort_files(tmp_path)
    lines = referral_file.read_text().splitlines()
    header = lines[0].split(",")
    risk, prior = header.index("risk_level"), header.index("prior_incidents")
    rows = []
    for number, line in enumerate(lines[1:]):
        cells = line.split(",")
        if number % 4 == 1:  # some details not recorded
            cells[risk] = ""
        if number % 5 == 2:
            cells[prior] = ""
        rows.append(",".join(cells))
    referral_file.write_text("\n".join([lines[0], *rows]) + "\n")
    result = inspire("import", "referrals", str(referral_file), "--create-agencies")
    assert result.returncode == 0, result.stderr
    result = inspire("import", "reoffending", str(incident_file))
    assert result.returncode == 0, result.stderr


async def rows_read_one_by_one() -> tuple[pd.DataFrame, int]:
    """The read as it was before: asyncpg records, then a frame from Python tuples."""
    async with database.connection() as connection:
        statement = await connection.prepare(queries.COHORT_SQL)
        records = await statement.fetch(AS_OF)
        excluded = await connection.fetchval(queries.NO_FOLLOW_UP_YET, AS_OF)
        columns = [attribute.name for attribute in statement.get_attributes()]
    frame = pd.DataFrame.from_records([tuple(r) for r in records], columns=columns)
    return frame, int(excluded)


def same(a: pd.Series, b: pd.Series) -> bool:
    left = [None if pd.isna(v) else (str(v) if not isinstance(v, (bool, np.bool_)) else v)
            for v in a]  # fmt: skip
    right = [None if pd.isna(v) else (str(v) if not isinstance(v, (bool, np.bool_)) else v)
             for v in b]  # fmt: skip
    return left == right


async def test_the_columns_read_are_the_rows_read(imported):
    old, old_excluded = await rows_read_one_by_one()
    new, excluded = await load_cohort(AS_OF)
    assert excluded == old_excluded
    assert len(new) == len(old) == 60
    assert new["risk_level"].isna().sum() == 15 and new["prior_incidents"].isna().sum() == 12
    before, after = follow_up(old, 182), follow_up(new, 182)
    # The person is read as a whole number per person: the same people, told apart alike.
    np.testing.assert_array_equal(
        pd.factorize(before["person"].astype(str))[0], pd.factorize(after["person"])[0]
    )
    for column in (
        "gender", "risk_level", "prior_incidents", "substance_misuse",
        "mental_health", "children_in_household", "local_authority", "agency",
        "days_available",
    ):  # fmt: skip
        assert same(before[column], after[column]), column
    for column in ("duration", "event", "days_to_engaged", "days_to_completed", "age_at_referral"):
        np.testing.assert_array_equal(before[column].to_numpy(), after[column].to_numpy())
    assert after["age_at_referral"].dtype == before["age_at_referral"].dtype


@pytest.mark.parametrize(
    "request_",
    [
        AnalysisRequest(horizon_days=182, group_by="engaged",
                        covariates=("age_at_referral", "risk_level", "prior_incidents")),
        AnalysisRequest(horizon_days=182, group_by="risk_level", covariates=("gender",)),
        AnalysisRequest(horizon_days=300, group_by="agency"),
    ],
)  # fmt: skip
async def test_every_figure_is_the_same_to_the_last_bit(imported, request_):
    old, old_excluded = await rows_read_one_by_one()
    new, excluded = await load_cohort(AS_OF)
    crude = await before_after(request_.horizon_days, AS_OF)
    request_ = (
        AnalysisRequest(**{**request_.__dict__, "landmark_days": 60})
        if (request_.group_by == "engaged")
        else request_
    )
    assert _analyse(new, excluded, crude, request_, AS_OF) == _analyse(
        old, old_excluded, crude, request_, AS_OF
    )
