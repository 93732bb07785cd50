"""The socket `obfleet serve` binds before it starts: what its connections are given."""

from __future__ import annotations

import asyncio
import socket

from obfleet.serving import listen


def test_served_connections_send_without_waiting_for_acks():
    """asyncio turns Nagle off only on sockets that say they are TCP; with Nagle on, an
    answer written as head then body waits for the client's delayed ACK (40 ms a request on a
    kept-alive connection)."""
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]

    async def nodelay_of_an_accepted_connection() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(accepted, 5)
            finally:
                writer.close()

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0
