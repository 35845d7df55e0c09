"""The launcher waits for Redis to answer PING, not for its port: a Redis replaying a large append-only file
accepts connections and answers -LOADING (``make run`` failed on that once)."""

import socket
import threading

import pytest

from pickwise_common.launcher.infra import redis_ready
from pickwise_common.launcher.processes import free_port

pytestmark = pytest.mark.unit


def serve_one_reply(reply: bytes) -> tuple[int, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize(("reply", "ready"), [
    (b"+PONG\r\n", True),
    (b"-LOADING Redis is loading the dataset in memory\r\n", False),
    (b"-NOAUTH Authentication required.\r\n", False),
])
def test_ready_only_when_redis_answers_pong(reply: bytes, ready: bool) -> None:
    port, thread = serve_one_reply(reply)
    assert redis_ready("127.0.0.1", port) is ready
    thread.join(5)


def test_nothing_listening_is_not_ready() -> None:
    assert redis_ready("127.0.0.1", free_port()) is False
