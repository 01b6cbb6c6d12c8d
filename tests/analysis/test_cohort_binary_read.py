"""The cohort's binary COPY decoded into columns: the layout checked on every row, the
referral order PostgreSQL's, one whole number per person, the same people told apart."""

from __future__ import annotations

import uuid
from datetime import date

import numpy as np
import pytest

from analysis import cohort_read, queries
from analysis.services import load_cohort
from programme.platform import database
from tests.analysis.test_cohort_read_as_columns import imported  # noqa: F401

pytestmark = pytest.mark.anyio


def halves(ids: list[uuid.UUID]) -> np.ndarray:
    pairs = [[u.int >> 64, u.int & (2**64 - 1)] for u in ids]
    return np.array(pairs, dtype=np.uint64).reshape(len(ids), 2)


def test_the_referral_order_is_the_uuids_byte_order():
    rng = np.random.default_rng(7)
    ids = [uuid.UUID(bytes=rng.bytes(16)) for _ in range(500)]
    # Same first half, different second halves: the second half decides.
    ids += [uuid.UUID(int=(5 << 64) | low) for low in (9, 3, 2**63 + 1, 0)]
    order = cohort_read.referral_order(halves(ids))
    assert order is not None
    assert [ids[i] for i in order] == sorted(ids, key=lambda u: u.bytes)
    assert cohort_read.referral_order(halves(sorted(ids, key=lambda u: u.bytes))) is None


def test_a_person_is_one_number_and_two_people_two_even_with_the_same_first_half():
    a, b, c = (uuid.UUID(int=(1 << 64) | 5), uuid.UUID(int=(1 << 64) | 6), uuid.uuid4())
    codes = cohort_read.person_codes(halves([c, a, b, a, c, b]))
    assert codes.tolist() == [0, 1, 2, 1, 0, 2]
    plain = cohort_read.person_codes(halves([c, a, c]))
    assert plain.tolist() == [0, 1, 0]
    assert cohort_read.person_codes(halves([])).tolist() == []


def test_uuid_text_is_postgresqls():
    u = uuid.uuid4()
    assert cohort_read.uuid_text(halves([u])[0]) == str(u)


def stream_of(rows: np.ndarray) -> bytes:
    return cohort_read.SIGNATURE + bytes(8) + rows.tobytes() + cohort_read.TRAILER


def well_formed(count: int) -> np.ndarray:
    rows = np.zeros(count, dtype=cohort_read.ROW)
    rows["fields"] = len(cohort_read.FIELDS)
    for name, _ in cohort_read.FIELDS:
        rows[f"{name}_length"] = cohort_read.ROW[name].itemsize
    return rows


def test_rows_split_across_chunks_decode_whole(monkeypatch):
    monkeypatch.setattr(cohort_read, "BLOCK_BYTES", 300)
    rows = well_formed(50)
    rows["days_available"] = np.arange(50)
    data = stream_of(rows)
    stream = cohort_read.CohortStream()
    for start in range(0, len(data), 97):  # chunks that end part-way through rows
        stream.feed(data[start : start + 97])
    assert stream.columns()["days_available"].tolist() == list(range(50))


@pytest.mark.parametrize("field", ["person", "prior_incidents", "missing"])
def test_a_null_or_resized_field_is_refused_not_misread(field):
    rows = well_formed(3)
    rows[f"{field}_length"][1] = -1  # a NULL: every field after it would shift
    stream = cohort_read.CohortStream()
    stream.feed(stream_of(rows))
    with pytest.raises(RuntimeError, match=field):
        stream.columns()


def test_a_stream_cut_short_is_refused():
    stream = cohort_read.CohortStream()
    stream.feed(stream_of(well_formed(2))[:-5])
    with pytest.raises(RuntimeError, match="part-way"):
        stream.columns()


async def test_the_same_person_gets_the_same_number_in_the_read(imported):  # noqa: F811
    async with database.connection() as connection:
        # Two referrals closed and made the first referral's person's (one open each).
        await connection.execute(
            "WITH first AS (SELECT id, person, row_number() OVER (ORDER BY reference) AS k "
            "FROM referral) UPDATE referral SET status = 'closed', "
            "person = (SELECT person FROM first WHERE k = 1) "
            "WHERE id IN (SELECT id FROM first WHERE k IN (2, 3))"
        )
        people = await connection.fetch(
            "SELECT person::text FROM referral WHERE received_on < $1 ORDER BY id",
            date(2026, 6, 1),
        )
    frame, _ = await load_cohort(date(2026, 6, 1))
    expected = [row["person"] for row in people]
    assert len(set(expected)) < len(expected)
    codes = frame["person"].tolist()
    assert all(
        (codes[i] == codes[j]) == (expected[i] == expected[j])
        for i in range(len(codes))
        for j in range(len(codes))
    )
    assert frame["person"].dtype == np.int64
    assert set(frame["agency"]) <= {
        row["name"] for row in await database.fetch(queries.AGENCIES_SQL)
    }
