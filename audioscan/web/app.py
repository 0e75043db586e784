"""``audioscan serve``: a local page for the listen - judge - retrain loop.

A Starlette app over the Python API.  The process keeps the store's vectors loaded with
each set's snapshot (``Library.load``, ``Library.search``), so a search costs milliseconds.  The
routes live by tab: ``search`` (search, play, spectrogram), ``labels``, ``detectors``
(train, detections, suggestions, rollback), ``exports`` and ``library_tab`` (status and
builds); each handler finds the app's state as ``request.app.state.web`` and checks
what it reads with ``inputs``.

Safety (see ``gate``): only the host names it was started for are answered, every
change is a POST from this page carrying its CSRF token, off loopback every request
needs the access token printed at start-up, bodies and decoded clips are bounded, and a
strict Content-Security-Policy lets no script run but the page's own file.  Media are
served only by indexed media id and a bounded time range, never by a path from the request.
"""

from __future__ import annotations

import secrets
import socket
import threading
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from audioscan.api import Library, Results, UserError
from audioscan.api.moments import MomentFilter
from audioscan.api.faults import machine_fault
from audioscan.api.previews import MAX_SPAN_SECONDS
from audioscan.web import detectors, exports, labels, library_tab, search
from audioscan.web.gate import LOOPBACK_NAMES, TOKEN_COOKIE, BodyTooLarge, Gate, host_name
from audioscan.web.inputs import BadInput, NotIndexed

# The HTTP status of each kind of user error (audioscan.errors.UserError.kind).
_STATUS = {"invalid": 400, "not_found": 404, "busy": 409, "too_large": 413, "fault": 500, "storage_full": 507}
_ASSETS = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}


class Web:
    """The app's state: the library, the tokens, a build in progress.

    Searches are the library's own (:meth:`Library.search`: several sets combined, as ``search -m A
    -m B`` does); the process keeps each set's vectors with its snapshot between searches, so a
    search costs milliseconds, and a set added or removed by a build is seen at the next request."""

    def __init__(self, library: Library, access_token: str | None = None) -> None:
        self.library = library
        self.csrf = secrets.token_urlsafe(24)
        self.access_token = access_token
        self.build_state: dict = {"running": False}
        self.build_lock = threading.Lock()

    def search(self, query: Path | tuple[str, float], *, k: int, sets: str | None, start: float = 0.0,
               per_file: int | None = None, end: float | None = None, where: MomentFilter | None = None,
               from_channel: int | None = None) -> Results:
        """Search the sets named (comma-separated), or every set of the store, combined; ``where`` limits
        the moments searched; ``from_channel`` is the channel of a stored query's file (a split set's)."""
        names = [name.strip() for name in (sets or "").split(",") if name.strip()]
        names = names or [info.name for info in self.library.sets()]
        return self.library.search(query, k=k, per_file=per_file, model=names or None, start=start, end=end,
                                   where=where, from_channel=from_channel)

    def media(self, media_id: int, start: float, *, end: float) -> Path:
        """The indexed media file and a checked range, or NotIndexed / BadInput."""
        media = self.library.media().get(media_id)
        if media is None or media.status != "ok":
            raise NotIndexed("no such indexed media")
        duration = media.duration or 0.0
        if not (0 <= start < end <= duration + 1.0) or end - start > MAX_SPAN_SECONDS:
            raise BadInput(f"the range must lie inside the file and last at most {MAX_SPAN_SECONDS:g} s")
        return Path(media.path)

    def media_path(self, media_id: int) -> str:
        media = self.library.media().get(media_id)
        if media is None:
            raise NotIndexed(f"no indexed media with id {media_id}")
        return media.path

    def hits(self, hits, label: str = "") -> list[dict]:
        by_path = {m.path: m.id for m in self.library.media().values()}
        return [{**h.as_json(), "media_id": by_path.get(h.path), "name": Path(h.path).name, "label": label}
                for h in hits]


def allowed_hosts(host: str) -> frozenset[str]:
    """The names a browser may use to reach a server listening on ``host``: loopback names,
    the host itself, and - listening on every address - this machine's names and addresses."""
    names = set(LOOPBACK_NAMES) | {host_name(host if ":" not in host else f"[{host}]")}
    if host in ("0.0.0.0", "::", ""):
        machine = {socket.gethostname(), socket.getfqdn()}
        for name in list(machine):
            try:
                machine |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
            except OSError:
                continue
        names |= {name.lower() for name in machine}
    return frozenset(names)


async def page(request: Request) -> Response:
    web: Web = request.app.state.web
    html = resources.files("audioscan.web").joinpath("page.html").read_text(encoding="utf-8")
    response = HTMLResponse(html.replace("{{CSRF}}", web.csrf), headers={"Cache-Control": "no-store"})
    if web.access_token and request.query_params.get("token"):
        response.set_cookie(TOKEN_COOKIE, web.access_token, httponly=True, samesite="strict")
    return response


async def asset(request: Request) -> Response:
    name = request.url.path.lstrip("/")
    text = resources.files("audioscan.web").joinpath(name).read_text(encoding="utf-8")
    return Response(text, media_type=_ASSETS[name], headers={"Cache-Control": "no-cache"})


async def _bad_input(request: Request, err: Exception) -> Response:
    return JSONResponse({"error": str(err)}, status_code=400)


async def _not_found(request: Request, err: Exception) -> Response:
    return JSONResponse({"error": str(err)}, status_code=404)


async def _too_large(request: Request, err: Exception) -> Response:
    return JSONResponse({"error": "the request is too large"}, status_code=413)


async def _user_error(request: Request, err: Exception) -> Response:
    """Starlette hands the handler of UserError only UserErrors; its kind picks the status."""
    return JSONResponse({"error": str(err)}, status_code=_STATUS.get(getattr(err, "kind", ""), 400))


async def _any_error(request: Request, err: Exception) -> Response:
    """A fault of the machine is its sentence (``api.faults``); anything else is a bug, answered as
    JSON without its trace (which goes to the server's log)."""
    found = machine_fault(err)
    if found is None:
        return JSONResponse({"error": "the server failed on this request; its log has the details"},
                            status_code=500)
    return await _user_error(request, found)


def create_app(library: Library, access_token: str | None = None,
               *, hosts: frozenset[str] = LOOPBACK_NAMES) -> Starlette:
    """The page's app over ``library``; ``hosts`` are the names it answers to (see :func:`allowed_hosts`)."""
    web = Web(library, access_token)
    routes = [Route("/", page), *(Route(f"/{name}", asset) for name in _ASSETS), *search.ROUTES, *labels.ROUTES,
              *detectors.ROUTES, *exports.ROUTES, *library_tab.ROUTES]
    handlers = {BadInput: _bad_input, NotIndexed: _not_found,
                BodyTooLarge: _too_large, UserError: _user_error, Exception: _any_error}
    app = Starlette(routes=routes, exception_handlers=handlers,
                    middleware=[Middleware(Gate, hosts=hosts, csrf=lambda: web.csrf, access_token=access_token)])
    app.state.web = web
    return app
