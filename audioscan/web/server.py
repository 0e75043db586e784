"""Serving the page so that slow or idle clients cannot take it down.

uvicorn closes idle keep-alive connections, but a connection that opens and then
sends its request line one byte at a time (or never) is kept for ever, and a thousand
of them exhaust the process's file descriptors: every real request then times out.
:class:`PacedH11Protocol` gives each request :data:`HEADER_SECONDS` to send its
headers, and when more than :data:`MAX_WAITING` connections are waiting for theirs, it
drops the oldest - so the page keeps answering whoever actually asks.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
MAX_WAITING = 128
KEEP_ALIVE_SECONDS = 5
MAX_CONCURRENT = 256


class PacedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers (see the module docstring)."""

    _deadline: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> "OrderedDict[PacedH11Protocol, None]":
        """This server's connections waiting for request headers, oldest first."""
        waiting: OrderedDict[PacedH11Protocol, None] = vars(self.server_state).setdefault(
            "waiting_for_headers", OrderedDict())  # kept on the server's state, which every connection shares
        return waiting

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers arrived: it is served, not timed
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()  # the next request on a kept-alive connection has its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._deadline = self.loop.call_later(HEADER_SECONDS, self._drop)
        self.waiting[self] = None
        while len(self.waiting) > MAX_WAITING:
            oldest = next(iter(self.waiting))
            oldest._drop()

    def _stop_waiting(self) -> None:
        deadline, self._deadline = self._deadline, None
        if deadline is not None:
            deadline.cancel()
        self.waiting.pop(self, None)

    def _drop(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()


def config(app, host: str, *, port: int) -> uvicorn.Config:
    """The server's settings: the paced protocol, bounded concurrency, short keep-alive."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", http=PacedH11Protocol,
                          limit_concurrency=MAX_CONCURRENT, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                          h11_max_incomplete_event_size=16 * 1024, server_header=False)
