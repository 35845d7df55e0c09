"""The embedded broker's fixed address (decision 0773): a TCP relay on the broker port that forwards each
client connection to the broker instance named in an *origin file*.

tansu 0.6.0's memory store acknowledges a produce into a topic that does not exist yet and loses it when the
topic is then created (decision 0771). After a broker restart, a producer's in-flight send is retried as soon
as the port answers again — before anyone has re-created the topics. So the launcher never lets a client reach
a broker whose topics are not there: each broker instance listens on a private port; the launcher creates the
topics on it, and only then writes that port into the origin file. Until then the relay still names the dead
instance, so clients see their connection closed and retry, exactly as if the broker were still down.

Run as ``python -m pickwise_common.launcher.broker_gate --listen HOST:PORT --origin-file PATH``; the broker
advertises the relay's address, so every connection (bootstrap and per-node) goes through it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path

CHUNK_BYTES = 256 * 1024


def read_origin(path: Path) -> tuple[str, int] | None:
    """``host:port`` of the broker instance clients may reach now, or None while there is none."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host, int(port)


def write_origin(path: Path, host: str, port: int) -> None:
    """Point the gate at a broker instance (atomically: a reader sees the old or the new origin)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{host}:{port}\n")
    os.replace(tmp, path)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Gate:
    def __init__(self, origin_file: Path) -> None:
        self.origin_file = origin_file

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        origin = read_origin(self.origin_file)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        if origin is not None:
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection(*origin)
        if upstream is None:  # no broker instance is ready: the client sees what it would see of a dead broker
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def serve(listen_host: str, listen_port: int, origin_file: Path) -> None:
    gate = Gate(origin_file)
    server = await asyncio.start_server(gate.handle, listen_host, listen_port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT clients connect to (the broker port)")
    parser.add_argument("--origin-file", required=True, type=Path, help="file holding HOST:PORT of the broker")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(host, int(port), args.origin_file))


if __name__ == "__main__":
    main()
