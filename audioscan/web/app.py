"""``audioscan serve``: a local page for the listen - judge - retrain loop.

A Starlette app over the Python API.  It keeps the store's vectors loaded
(:class:`~audioscan.api.searcher.Searcher`), so a search costs milliseconds.  The
routes live by tab: ``search`` (search, play, spectrogram), ``labels``, ``detectors``
(train, detections, suggestions, rollback), ``exports`` and ``library_tab`` (status and
builds); each handler finds the app's state as ``request.app.state.web``.

Safety: it listens on 127.0.0.1 unless told otherwise, and then every request needs
the access token printed at start-up (``?token=`` once, then a cookie).  Every
request that changes anything is a POST carrying the page's CSRF token in a header,
which a page of another site cannot send.  Media are served only by indexed media id
and a bounded time range, never by a path from the request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from audioscan.api import Library, UserError
from audioscan.api.previews import MAX_SPAN_SECONDS
from audioscan.web import detectors, exports, labels, library_tab, search

CSRF_HEADER = "x-audioscan-csrf"
TOKEN_COOKIE = "audioscan_token"
# The HTTP status of each kind of user error (audioscan.errors.UserError.kind).
_STATUS = {"invalid": 400, "not_found": 404, "busy": 409}


class Web:
    """The app's state: the library, its loaded searcher, the tokens, a build in progress."""

    def __init__(self, library: Library, access_token: str | None = None) -> None:
        self.library = library
        self.searcher = library.searcher()
        self.csrf = secrets.token_urlsafe(24)
        self.access_token = access_token
        self.build_state: dict = {"running": False}
        self.build_lock = threading.Lock()

    def allowed(self, request: Request) -> bool:
        if self.access_token is None:
            return True
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        return hmac.compare_digest(given, self.access_token)

    def check_post(self, request: Request) -> None:
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), self.csrf):
            raise PermissionError("missing or wrong CSRF token")

    def media(self, media_id: int, start: float, end: float) -> Path:
        """The indexed media file and a checked range, or ValueError."""
        snapshot = self.searcher.snapshot
        media = snapshot.media.get(media_id)
        if media is None or media.status != "ok":
            raise LookupError("no such indexed media")
        duration = media.duration or 0.0
        if not (0 <= start < end <= duration + 1.0) or end - start > MAX_SPAN_SECONDS:
            raise ValueError(f"the range must lie inside the file and last at most {MAX_SPAN_SECONDS:g} s")
        return Path(media.path)

    def hits(self, hits, label: str = "") -> list[dict]:
        by_path = {m.path: m.id for m in self.searcher.snapshot.media.values()}
        return [{"media_id": by_path.get(h.path), "path": h.path, "name": Path(h.path).name, "start": round(h.start, 3),
                 "end": round(h.end, 3), "score": round(h.score, 4), "label": label} for h in hits]


async def page(request: Request) -> Response:
    web: Web = request.app.state.web
    html = resources.files("audioscan.web").joinpath("page.html").read_text(encoding="utf-8")
    response = HTMLResponse(html.replace("{{CSRF}}", web.csrf))
    if web.access_token and request.query_params.get("token"):
        response.set_cookie(TOKEN_COOKIE, web.access_token, httponly=True, samesite="strict")
    return response


async def guard(request: Request, call_next) -> Response:
    """The token, the CSRF header on every POST, and every failure as JSON with its status."""
    web: Web = request.app.state.web
    if not web.allowed(request):
        return JSONResponse({"error": "this server needs the access token printed when it started"},
                            status_code=401)
    try:
        if request.method == "POST":
            web.check_post(request)
        return await call_next(request)
    except PermissionError as err:
        return JSONResponse({"error": str(err)}, status_code=403)
    except (ValueError, KeyError) as err:
        return JSONResponse({"error": str(err).strip("'\"")}, status_code=400)
    except LookupError as err:
        return JSONResponse({"error": str(err)}, status_code=404)
    except UserError as err:
        return JSONResponse({"error": str(err)}, status_code=_STATUS.get(err.kind, 400))


def create_app(library: Library, access_token: str | None = None) -> Starlette:
    routes = [Route("/", page), *search.ROUTES, *labels.ROUTES, *detectors.ROUTES, *exports.ROUTES,
              *library_tab.ROUTES]
    app = Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)])
    app.state.web = Web(library, access_token)
    return app
