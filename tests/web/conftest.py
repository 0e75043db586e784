"""A real server on a free loopback port, over a private copy of the labelled world."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from audioscan.api import Library
from audioscan.web.app import create_app
from audioscan.web.server import config

_CONNECT = socket.socket.connect  # taken before the no-network guard replaces it
_CREATE = socket.create_connection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self._server = uvicorn.Server(config(app, "127.0.0.1", port=self.port))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "Server":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def loopback(monkeypatch):
    """Let tests talk to their own server on 127.0.0.1, and still to nothing else."""
    def check(address) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"a test tried to reach {host}")

    def connect(self, address, *args, **kwargs):
        check(address)
        return _CONNECT(self, address, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        check(address)
        return _CREATE(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def server(world, loopback):
    """The world's store served on a free loopback port."""
    with Server(create_app(Library(world / "store"))) as running:
        yield running
