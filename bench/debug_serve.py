"""The service in one process, with a watch on its event loop: what held it, and where.

    python bench/debug_serve.py --port 8000 --stall-ms 20 [--asyncio-debug]

For finding what blocks the event loop (``loop_responsiveness.py --debug-loop-ms``
starts it instead of ``inspire serve``). A task on the loop notes the time
every 5 ms; a thread of its own checks, and when the loop has not noted it for
``--stall-ms`` it writes the loop thread's stack at that moment to stderr, once
per ``--stall-ms`` for as long as the stall lasts::

    STALL 41 ms in programme/imports/services.py:120 _report | ...innermost frames

A stack ending in the selector (``select``/``epoll``) means the loop itself was
idle but could not get the GIL from worker threads. ``--asyncio-debug`` also
turns on asyncio's debug mode with ``slow_callback_duration`` at the same
threshold (``Executing <Task ...> took 0.123 seconds``); it slows everything
down, so figures measured with either are not the service's own. The database
must exist and be migrated (the benchmark does that); serves on 127.0.0.1
only, like ``inspire serve`` (uvicorn's defaults, access log off).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import time
import traceback
from pathlib import Path

import uvicorn
from harness import HOST, ROOT

HEARTBEAT = 0.005
STALL_MARK = "STALL"


def _where(frame: traceback.FrameSummary) -> str:
    path = Path(frame.filename)
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        parts = path.parts
        shown = (
            "/".join(parts[parts.index("site-packages") + 1 :])
            if "site-packages" in parts
            else path.name
        )
    return f"{shown}:{frame.lineno} {frame.name}"


IDLE = frozenset({"wait", "sleep", "select", "poll", "_worker", "get", "accept", "watch"})
"""Innermost functions of a thread that is waiting, not working."""


def _busy_threads(frames: dict[int, object], loop_thread: int) -> str:
    """The other threads that were working (not waiting): their innermost frames."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    busy = []
    for ident, frame in frames.items():
        if ident in (loop_thread, threading.get_ident()):
            continue
        stack = traceback.extract_stack(frame)  # type: ignore[arg-type]
        if not stack or stack[-1].name in IDLE:
            continue
        ours = [f for f in stack if str(ROOT) in f.filename and "site-packages" not in f.filename]
        where = _where(ours[-1]) if ours else "-"
        busy.append(
            f"{names.get(ident, ident)}: {where} <- "
            + " | ".join(_where(f) for f in reversed(stack[-3:]))
        )
    return " ;; ".join(busy) or "no other thread working"


class StallWatch:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.beat = time.perf_counter()
        self.loop_thread = threading.get_ident()

    async def heartbeat(self) -> None:
        while True:
            self.beat = time.perf_counter()
            await asyncio.sleep(HEARTBEAT)

    def watch(self) -> None:
        next_report = 0.0
        while True:
            time.sleep(HEARTBEAT)
            now = time.perf_counter()
            held = now - self.beat
            if held < self.threshold or now < next_report:
                continue
            frames = sys._current_frames()
            frame = frames.get(self.loop_thread)
            if frame is None:
                return
            busy = _busy_threads(frames, self.loop_thread)
            stack = traceback.extract_stack(frame)
            ours = [
                f for f in stack if str(ROOT) in f.filename and "site-packages" not in f.filename
            ]
            innermost = " | ".join(_where(f) for f in reversed(stack[-6:]))
            project = _where(ours[-1]) if ours else "-"
            print(
                f"{STALL_MARK} {1000 * held:.0f} ms in {project} | {innermost} || {busy}",
                file=sys.stderr,
                flush=True,
            )
            next_report = now + self.threshold


def watch_collections(threshold: float) -> None:
    """Write each garbage collection that took ``threshold`` or longer (the GIL held)."""
    import gc

    started: dict[int, float] = {}

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[info["generation"]] = time.perf_counter()
            return
        took = time.perf_counter() - started.pop(info["generation"], time.perf_counter())
        if took >= threshold:
            print(
                f"{STALL_MARK} {1000 * took:.0f} ms in gc generation-{info['generation']}"
                f" | collected {info['collected']} || {threading.current_thread().name}",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(timed)


async def serve(port: int, stall_ms: float, asyncio_debug: bool) -> None:
    from programme.server import served_app

    loop = asyncio.get_running_loop()
    if asyncio_debug:
        loop.set_debug(True)
        loop.slow_callback_duration = stall_ms / 1000
    watch_collections(stall_ms / 1000)
    watch = StallWatch(stall_ms / 1000)
    beating = asyncio.create_task(watch.heartbeat())
    threading.Thread(target=watch.watch, name="stall-watch", daemon=True).start()
    config = uvicorn.Config(
        served_app(), host=HOST, port=port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        beating.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stall-ms", type=float, default=20.0)
    parser.add_argument("--asyncio-debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(serve(args.port, args.stall_ms, args.asyncio_debug))


if __name__ == "__main__":
    main()
