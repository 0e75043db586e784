"""Every request passes one gate before any route sees it.

The page runs in the user's own browser, beside every other tab they have open, so
the gate assumes each request may come from a hostile page:

* **Host.** Only the names the server was started for (loopback names, and the
  ``--host`` value) are answered; anything else is DNS rebinding - a foreign site whose
  name now points at 127.0.0.1 - and gets 421 before it can read the page's CSRF token.
* **Access token** (off loopback): compared as bytes in constant time, from ``?token=``
  or the cookie set by the first page load.
* **Changes only on POST**, and every POST must carry the page's CSRF token in a header
  (which a foreign page cannot send without a CORS preflight we never answer) and must
  not come from another site (``Origin`` / ``Sec-Fetch-Site``, where the browser sends them).
* **Size.** A body longer than :data:`MAX_BODY_BYTES` is refused with 413 while it is
  read, whatever ``Content-Length`` says.
* **Headers.** Every response carries a strict Content-Security-Policy (scripts only from
  this server's own files, no inline code, no framing) and ``nosniff``.
"""

from __future__ import annotations

import hmac
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_HEADER = "x-audioscan-csrf"
TOKEN_COOKIE = "audioscan_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# An uploaded clip (a few minutes of audio) fits easily; anything larger is refused.
MAX_BODY_BYTES = 64 << 20
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
     b"media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class BodyTooLarge(Exception):
    """The request's body passed :data:`MAX_BODY_BYTES` while it was read."""


def host_name(value: str) -> str:
    """The name part of a ``Host`` header or URL authority, lower-case (``[::1]:8765`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two texts as UTF-8 bytes (any text a request sends is comparable)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


class Gate:
    """ASGI middleware: the checks of the module docstring, then the app, then the headers."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], *, csrf: Callable[[], str],
                 access_token: str | None = None) -> None:
        self.app, self.hosts, self.csrf, self.access_token = app, hosts, csrf, access_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            status, text = refusal
            await JSONResponse({"error": text}, status_code=status)(scope, receive, send_with_headers)
            return
        await self.app(scope, _bounded(receive), send_with_headers)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, sentence) for a request that must not reach the app, else None."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if host_name(headers.get("host", "")) not in self.hosts:
            return 421, "this server answers only to the address it was started on"
        if self.access_token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token") or _cookie(headers.get("cookie", ""), TOKEN_COOKIE) or ""
            if not _equal(given, self.access_token):
                return 401, "this server needs the access token printed when it started"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return 413, f"the request is larger than {MAX_BODY_BYTES >> 20} MB"
        if scope["method"] in _SAFE_METHODS:
            return None
        if scope["method"] != "POST":
            return 405, "changes are made with POST only"
        origin = headers.get("origin")
        if origin is not None and host_name(urlsplit(origin).netloc) not in self.hosts:
            return 403, "a request from another site may not change anything here"
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return 403, "a request from another site may not change anything here"
        if not _equal(headers.get(CSRF_HEADER, ""), self.csrf()):
            return 403, "missing or wrong CSRF token"
        return None


def _bounded(receive: Receive) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once the body passes :data:`MAX_BODY_BYTES`."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise BodyTooLarge()
        return message

    return bounded


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
