"""The register's HTTP baseline: a bare Litestar app that saves a register with one executemany.

No authentication, no checks, no audit, no milestones: one PUT route that
decodes the same 12-item JSON list the service receives (into the same kind of
msgspec struct) and upserts it with ONE asyncpg ``executemany`` into a bare copy
of the ``attendance`` table, answering 200 with the marks it stored. Served by
uvicorn exactly as ``inspire serve`` serves the real app (uvicorn's defaults,
log level warning, access log off).

    BENCH_DSN=postgresql://... python bench/register_bare_app.py --port 8124

Reads BENCH_DSN (the database), BENCH_REGISTER_TABLE (default
bench_register_attendance; ``register_bench.py`` creates and drops it),
BENCH_MARKED_BY (an account id written as ``marked_by``, optional) and
INSPIRE_DB_POOL_SIZE (pool size, default 10 like the service). Listens on
127.0.0.1 only.
"""

from __future__ import annotations

import os
from enum import StrEnum
from uuid import UUID

import msgspec
from harness import bare_app, serve_bare_app
from litestar import put
from litestar.datastructures import State
from litestar.params import JSONBody

DEFAULT_TABLE = "bench_register_attendance"


def upsert_sql(table: str) -> str:
    """The one statement both baselines run per register line (via executemany).

    Like the service, saving an identical mark again changes nothing (the
    ``WHERE`` skips the update); a different mark replaces the old one.
    """
    return (
        f'INSERT INTO "{table}" (id, session, referral, status, marked_by, marked_at)'
        " VALUES (gen_random_uuid(), $1, $2, $3, $4, now())"
        " ON CONFLICT (session, referral) DO UPDATE"
        " SET status = EXCLUDED.status, marked_by = EXCLUDED.marked_by,"
        " marked_at = EXCLUDED.marked_at"
        f' WHERE "{table}".status IS DISTINCT FROM EXCLUDED.status'
    )


class Mark(StrEnum):
    attended = "attended"
    late = "late"
    absent = "absent"
    excused = "excused"


class AttendanceMark(msgspec.Struct, forbid_unknown_fields=True):
    referral_id: UUID
    status: Mark


UPSERT = upsert_sql(os.environ.get("BENCH_REGISTER_TABLE") or DEFAULT_TABLE)
MARKED_BY = UUID(os.environ["BENCH_MARKED_BY"]) if os.environ.get("BENCH_MARKED_BY") else None


@put("/sessions/{session_id:uuid}/attendance")
async def save_register(
    session_id: UUID, data: JSONBody[list[AttendanceMark]], state: State
) -> list[AttendanceMark]:
    rows = [(session_id, mark.referral_id, mark.status.value, MARKED_BY) for mark in data]
    await state.pool.executemany(UPSERT, rows)
    return data


app = bare_app(save_register)


def main() -> None:
    serve_bare_app(app, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
