"""``inspire serve`` with several workers sends small answers at once.

The workers share one socket that uvicorn binds. uvicorn makes it with
protocol 0, and asyncio switches Nagle's algorithm off only on connections
whose socket says TCP, so every accepted connection kept Nagle on and an
answer written as headers, then body, waited for the client's delayed
acknowledgement: 40 ms for ``GET /health`` over a kept-alive connection
(bench/loop_responsiveness.py found it). ``server.listening_socket`` hands the
workers a socket that names its protocol.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn

from programme import server

pytestmark = pytest.mark.anyio


def _config(host: str) -> uvicorn.Config:
    return server._config(server.APP_FACTORY, host, 0, factory=True, workers=2)


async def _accepted_nodelay(listening: socket.socket) -> int:
    """TCP_NODELAY on the server's side of a connection asyncio accepts from ``listening``."""
    found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = writer.get_extra_info("socket")
        found.set_result(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    listener = await asyncio.start_server(accepted, sock=listening)
    try:
        host, port = listening.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(found, timeout=10)
        finally:
            writer.close()
    finally:
        listener.close()
        await listener.wait_closed()


async def test_connections_the_workers_accept_send_small_answers_without_waiting() -> None:
    listening = server.listening_socket(_config("127.0.0.1"))
    assert await _accepted_nodelay(listening) != 0


async def test_the_socket_is_still_the_one_uvicorn_bound_to_the_address_asked_for() -> None:
    listening = server.listening_socket(_config("127.0.0.1"))
    try:
        host, port = listening.getsockname()[:2]
        assert host == "127.0.0.1" and port != 0
        assert listening.family == socket.AF_INET and listening.type == socket.SOCK_STREAM
        assert listening.proto == socket.IPPROTO_TCP
        # uvicorn's options survive: the address can be bound again straight after a stop.
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
    finally:
        listening.close()
