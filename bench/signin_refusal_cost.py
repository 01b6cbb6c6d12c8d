"""What one refused sign-in costs the event loop: at the door, and through the framework.

    python bench/signin_refusal_cost.py                   # about 10 seconds
    python bench/signin_refusal_cost.py --requests 5000 --rounds 5 --json out.json

In process, no server and no database: each request is one call of the ASGI
app on this process's event loop, so the time measured is the event loop's
work for that request and nothing else (no network, no client). Three kinds,
in alternating rounds:

- **door**: ``POST /auth/login`` from an address over its pace, answered 429 by
  ``platform.sign_in_door`` before routing, its body never read;
- **framework**: ``POST /auth/login`` refused from memory for its username
  (rule 2, as a guesser in ``bench/signin_flood.py`` is): routing, the body read
  and validated, the exception mapped to a 429; no query either;
- **floor**: ``GET`` of a path no route serves (a 404 in the one error shape),
  the cheapest full pass through the framework, for the ratio.

Every call goes through the access log and the security headers, as served.
Reported: median microseconds per request per kind, and door / framework and
each / floor. The refusals need no database: the memory and the pace are set
up directly (a throwaway data directory holds the generated keys).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ATTACKER = "203.0.113.9"
GUESSER = "203.0.113.10"
BODY = json.dumps({"username": "bench-owner", "password": "a wrong guess"}).encode()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.rounds <= 20:
        parser.error("--requests must be 1 to 100000 and --rounds 1 to 20")
    return args


def scope(method: str, path: str, address: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": (address, 40_000),
        "server": ("127.0.0.1", 8000),
    }


async def one(app: Any, request: dict[str, Any]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Any) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(request), receive, send)
    return status


async def measure(app: Any, request: dict[str, Any], expected: int, count: int) -> float:
    """Median seconds per request over ``count`` calls, each timed on its own."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status = await one(app, request)
        times.append(time.perf_counter() - started)
        if status != expected:
            raise SystemExit(f"expected {expected}, got {status} for {request['path']}")
    return statistics.median(times)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from programme.app import create_app
    from programme.platform.accounts.services import AddressPace
    from programme.platform.settings import get_settings

    app = create_app(get_settings())
    logging.getLogger("programme.access").setLevel(logging.INFO)
    # The access log written as served, to a file: the cost of a line is part of each request.
    logging.getLogger("programme.access").handlers[:] = [logging.FileHandler(os.devnull)]
    state: Any = app.state
    far = datetime.now(UTC) + timedelta(days=1)
    state.refusals._until[(GUESSER, "bench-owner")] = far  # rule 2, as a guesser is refused
    state.sign_in_pace = AddressPace(state.sign_in_pace._pace)
    state.sign_in_pace._full_at[ATTACKER] = far  # far over its pace
    kinds = {
        "door": (scope("POST", "/auth/login", ATTACKER), 429),
        "framework": (scope("POST", "/auth/login", GUESSER), 429),
        "floor": (scope("GET", "/no-such-path", GUESSER), 404),
    }
    for request, expected in kinds.values():  # warm up
        await measure(app, request, expected, 200)
    medians: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind, (request, expected) in kinds.items():
            medians[kind].append(await measure(app, request, expected, args.requests))
    us = {kind: statistics.median(values) * 1e6 for kind, values in medians.items()}
    return {
        "requests_per_kind_per_round": args.requests,
        "rounds": args.rounds,
        "median_us": us,
        "rounds_us": {k: [v * 1e6 for v in values] for k, values in medians.items()},
        "door_over_framework": us["door"] / us["framework"],
        "door_over_floor": us["door"] / us["floor"],
        "framework_over_floor": us["framework"] / us["floor"],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["INSPIRE_DATA_DIR"] = data_dir
        os.environ.pop("DATABASE_URL", None)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        figures = asyncio.run(run(args))
    for kind, value in figures["median_us"].items():
        rounds = [round(v, 1) for v in figures["rounds_us"][kind]]
        print(f"{kind:10s} {value:8.1f} us  rounds {rounds}")
    print(
        f"door / framework {figures['door_over_framework']:.2f}x; "
        f"door / floor {figures['door_over_floor']:.2f}x; "
        f"framework / floor {figures['framework_over_floor']:.2f}x"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
