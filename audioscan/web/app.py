"""``audioscan serve``: a local page for the listen - judge - retrain loop.

A Starlette app over the Python API.  It keeps the store's vectors loaded
(:class:`~audioscan.api.searcher.Searcher`), so a search costs milliseconds.

Safety: it listens on 127.0.0.1 unless told otherwise, and then every request needs
the access token printed at start-up (``?token=`` once, then a cookie).  Every
request that changes anything is a POST carrying the page's CSRF token in a header,
which a page of another site cannot send.  Media are served only by indexed media id
and a bounded time range, never by a path from the request.
"""

from __future__ import annotations

import hmac
import io
import secrets
import tempfile
import threading
import zipfile
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from audioscan.api import Library
from audioscan.errors import UserError
from audioscan.query.export import write_moments
from audioscan.query.formats import Moment
from audioscan.web.media import MAX_SPAN_SECONDS, moment_wav, spectrogram_png

CSRF_HEADER = "x-audioscan-csrf"
TOKEN_COOKIE = "audioscan_token"
_EXPORTS = {"raven": ("raven", "selections.txt"), "audacity": ("audacity", "labels.txt"), "csv": ("csv", "moments.csv")}


class Web:
    """The app's state: the library, its loaded searcher, the tokens, a build in progress."""

    def __init__(self, library: Library, access_token: str | None = None) -> None:
        self.library = library
        self.searcher = library.searcher()
        self.csrf = secrets.token_urlsafe(24)
        self.access_token = access_token
        self.build_state: dict = {"running": False}
        self._build_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def allowed(self, request: Request) -> bool:
        if self.access_token is None:
            return True
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        return hmac.compare_digest(given, self.access_token)

    def check_post(self, request: Request) -> None:
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), self.csrf):
            raise PermissionError("missing or wrong CSRF token")

    def media(self, media_id: int, start: float, end: float):
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


def create_app(library: Library, access_token: str | None = None) -> Starlette:
    web = Web(library, access_token)

    async def page(request: Request) -> Response:
        html = resources.files("audioscan.web").joinpath("page.html").read_text(encoding="utf-8")
        response = HTMLResponse(html.replace("{{CSRF}}", web.csrf))
        if web.access_token and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, web.access_token, httponly=True, samesite="strict")
        return response

    async def library_view(request: Request) -> Response:
        status = await run_in_threadpool(web.library.status)
        labels = await run_in_threadpool(web.library.labels.list)
        return JSONResponse({"status": status, "labels": sorted({item.label for item in labels}),
                             "detectors": await run_in_threadpool(web.library.detectors), "build": web.build_state})

    async def search(request: Request) -> Response:
        form = await request.form()
        k = int(form.get("k") or 12)
        if form.get("media_id"):
            found = await run_in_threadpool(web.searcher.search_window, int(form["media_id"]), float(form["at"]), k)
            return JSONResponse({"hits": web.hits(found)})
        upload = form.get("clip")
        if upload is None or not hasattr(upload, "read"):
            return JSONResponse({"error": "upload a clip, or give media_id and at"}, status_code=400)
        data = await upload.read()
        suffix = Path(upload.filename or "clip.wav").suffix[:8] or ".wav"
        with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
            handle.write(data)
            handle.flush()
            start = float(form.get("start") or 0)
            end = float(form["end"]) if form.get("end") else None
            found = await run_in_threadpool(web.searcher.search_clip, Path(handle.name), k, start, end)
        return JSONResponse({"hits": web.hits(found)})

    async def audio(request: Request) -> Response:
        media_id, start, end = _range(request)
        body = await run_in_threadpool(moment_wav, web.media(media_id, start, end), start, end)
        return _ranged(request, body, "audio/wav")

    async def spectrogram(request: Request) -> Response:
        media_id, start, end = _range(request)
        body = await run_in_threadpool(spectrogram_png, web.media(media_id, start, end), start, end)
        return Response(body, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def labels(request: Request) -> Response:
        if request.method == "GET":
            items = await run_in_threadpool(web.library.labels.list, request.query_params.get("label"))
            return JSONResponse({"labels": [item.as_json() for item in items]})
        body = await request.json()
        media = web.searcher.snapshot.media[int(body["media_id"])]
        await run_in_threadpool(web.library.labels.add, media.path, float(body["start"]), float(body["end"]),
                                str(body["label"]), not bool(body["positive"]), "web")
        items = await run_in_threadpool(web.library.labels.list, str(body["label"]))
        made = [i for i in items if i.media.id == media.id and i.start == float(body["start"])
                and i.end == float(body["end"])]
        return JSONResponse({"id": made[-1].id if made else None})

    async def remove_label(request: Request) -> Response:
        await run_in_threadpool(web.library.labels.remove, [int(request.path_params["label_id"])])
        return JSONResponse({"removed": True})

    async def train(request: Request) -> Response:
        body = await request.json()
        detector = await run_in_threadpool(web.library.train, str(body["name"]), body.get("label") or None)
        return JSONResponse(detector.summary())

    async def detections(request: Request) -> Response:
        params = request.query_params
        detector = await run_in_threadpool(web.library.detector, params["name"],
                                           int(params["version"]) if params.get("version") else None)
        found = await run_in_threadpool(detector.rescore, float(params.get("threshold", 0.0)))
        page_size, number = int(params.get("per_page", 20)), int(params.get("page", 1))
        chosen = found[(number - 1) * page_size: number * page_size]
        return JSONResponse({"total": len(found), "page": number, "hits": web.hits(chosen, detector.classifier.label),
                             "version": detector.version})

    async def suggestions(request: Request) -> Response:
        detector = await run_in_threadpool(web.library.detector, request.query_params["name"])
        found = await run_in_threadpool(detector.suggest, int(request.query_params.get("n", 10)))
        return JSONResponse({"hits": web.hits(found, detector.classifier.label)})

    async def rollback(request: Request) -> Response:
        body = await request.json()
        detector = await run_in_threadpool(web.library.rollback, str(body["name"]), int(body["version"]))
        return JSONResponse({"version": detector.version})

    async def export(request: Request) -> Response:
        body = await request.json()
        kind = str(body["kind"])
        moments = [Moment(str(web.searcher.snapshot.media[int(m["media_id"])].path), float(m["start"]),
                          float(m["end"]), m.get("score"), str(m.get("label") or "")) for m in body["moments"]]
        if kind == "clips":
            data = await run_in_threadpool(_clips_zip, web.library, moments, body.get("length"))
            return Response(data, media_type="application/zip",
                            headers={"Content-Disposition": 'attachment; filename="clips.zip"'})
        fmt, name = _EXPORTS[kind]
        if fmt == "audacity" and len({m.path for m in moments}) > 1:
            with tempfile.TemporaryDirectory() as folder:
                written = write_moments(moments, fmt, out_dir=Path(folder))
                data = _zip({path.name: path.read_bytes() for path in written})
            return Response(data, media_type="application/zip",
                            headers={"Content-Disposition": 'attachment; filename="label-tracks.zip"'})
        text = write_moments(moments, fmt)
        return Response(text, media_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def build(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(web.build_state)
        body = await request.json()
        folder = Path(str(body["folder"])).expanduser()
        if not folder.is_dir():
            return JSONResponse({"error": f"{folder} is not a folder"}, status_code=400)
        if not web._build_lock.acquire(blocking=False):
            return JSONResponse({"error": "a build started from this page is running; wait for it"}, status_code=409)
        web.build_state = {"running": True, "folder": str(folder), "files": 0, "windows": 0, "error": None}

        def progress(files: int, windows: int) -> None:
            web.build_state.update(files=files, windows=windows)

        def run() -> None:
            try:
                report = web.library.build(folder, progress=progress)
                web.build_state.update(report=report.as_json())
            except UserError as err:
                web.build_state.update(error=str(err))
            finally:
                web.build_state["running"] = False
                web._build_lock.release()

        threading.Thread(target=run, daemon=True, name="web-build").start()
        return JSONResponse(web.build_state, status_code=202)

    routes = [
        Route("/", page), Route("/api/library", library_view), Route("/api/search", search, methods=["POST"]),
        Route("/media/{media_id:int}/audio", audio), Route("/media/{media_id:int}/spectrogram.png", spectrogram),
        Route("/api/labels", labels, methods=["GET", "POST"]),
        Route("/api/labels/{label_id:int}/delete", remove_label, methods=["POST"]),
        Route("/api/train", train, methods=["POST"]), Route("/api/detections", detections),
        Route("/api/suggestions", suggestions), Route("/api/rollback", rollback, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]), Route("/api/build", build, methods=["GET", "POST"]),
    ]
    async def guard(request: Request, call_next):
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
            return JSONResponse({"error": str(err)}, status_code=409 if "being written" in str(err) else 400)

    app = Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)])
    app.state.web = web
    return app


def _range(request: Request) -> tuple[int, float, float]:
    params = request.query_params
    return int(request.path_params["media_id"]), float(params["start"]), float(params["end"])


def _ranged(request: Request, body: bytes, media_type: str) -> Response:
    """``body``, or the byte range the browser asked for (so seeking in the player works)."""
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "max-age=3600"}
    wanted = request.headers.get("range", "")
    if wanted.startswith("bytes="):
        first, _, last = wanted[6:].split(",")[0].partition("-")
        start = int(first) if first else max(0, len(body) - int(last))
        stop = min(len(body) - 1, int(last)) if first and last else len(body) - 1
        if start >= len(body) or start > stop:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
        headers["Content-Range"] = f"bytes {start}-{stop}/{len(body)}"
        return Response(body[start: stop + 1], status_code=206, media_type=media_type, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _clips_zip(library: Library, moments: list[Moment], length: float | None) -> bytes:
    """The moments cut as clips (the CLI's own code), with their manifest, in one zip."""
    with tempfile.TemporaryDirectory() as folder:
        report = library.export_clips(moments, Path(folder), length=float(length) if length else None)
        files = {path.name: path.read_bytes() for path in [*report.written, report.manifest]}
    return _zip(files)

