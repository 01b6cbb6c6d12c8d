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

import argparse
import os
from typing import Any

import asyncpg
import uvicorn
from litestar import Litestar, get, post
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


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def open_pool(app: Litestar) -> None:
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_DSN"],
        min_size=0,
        max_size=int(os.environ.get("INSPIRE_DB_POOL_SIZE") or 10),
    )


async def close_pool(app: Litestar) -> None:
    await app.state.pool.close()


app = Litestar(route_handlers=[store, health], on_startup=[open_pool], on_shutdown=[close_pool])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
