"""The HTTP baseline: a bare Litestar app that stores a referral body with one INSERT.

No authentication, no checks, no audit: it decodes the same JSON body the
service receives and writes its values as text into a bare table with ONE
asyncpg INSERT, answering 201. Served by uvicorn exactly as ``inspire serve``
serves the real app (same uvicorn defaults, log level and access log off).

    BENCH_DSN=postgresql://... python bench/bare_app.py --port 8123

Reads BENCH_DSN (the database), BENCH_BARE_TABLE (default bench_bare_referral)
and INSPIRE_DB_POOL_SIZE (pool size, default 10 like the service). Listens on
127.0.0.1 only.
"""

from __future__ import annotations

import os
from typing import Any

from harness import bare_app, serve_bare_app
from litestar import post
from litestar.datastructures import State
from litestar.params import JSONBody
from referral_data import API_FIELDS

TABLE = os.environ.get("BENCH_BARE_TABLE", "bench_bare_referral")
INSERT = (
    f'INSERT INTO "{TABLE}" ('
    + ", ".join(f'"{name}"' for name in API_FIELDS)
    + ") VALUES ("
    + ", ".join(f"${n}" for n in range(1, len(API_FIELDS) + 1))
    + ")"
)


@post("/referrals", status_code=201)
async def store(data: JSONBody[dict[str, Any]], state: State) -> dict[str, str]:
    values = [None if data.get(name) is None else str(data[name]) for name in API_FIELDS]
    await state.pool.execute(INSERT, *values)
    return {"status": "stored"}


app = bare_app(store)


def main() -> None:
    serve_bare_app(app, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
