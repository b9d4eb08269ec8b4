"""The Starlette app of `ablate serve`: GET-only routes over a read-only store.

Every JSON view carries the store's change stamp as its ETag: a poll whose If-None-Match matches
is answered 304 at the cost of one stamp query, and a changed store is read once per view (the
body is cached with its stamp). With a token, every request must carry it: `?token=` once (then
a cookie), or an `Authorization: Bearer` / `X-Ablate-Token` header; anything else gets 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import logging
import secrets
import threading
import time
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ablate.errors import AblateError, ReportError
from ablate.serve import data
from ablate.serve.jsonable import clean
from ablate.serve.downloads import MEDIA, compare_download, report_download

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

log = logging.getLogger("ablate.serve")
COOKIE = "ablate_token"
ASSETS = resources.files("ablate.serve") / "assets"
# Plotly's parallel coordinates draw with regl, which compiles its draw calls with new Function():
# hence 'unsafe-eval'. Every fetch, script, style, font and image must come from this server.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'none'")
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]"]


def plotly_js() -> Path:
    """plotly.min.js of the installed plotly package (served from here: no CDN)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise AblateError(f"the installed plotly package has no {path}; reinstall plotly (pip install plotly)")
    return path


class TokenGate:
    """ASGI middleware: 401 unless the request carries the token (query once, then cookie, or header)."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    def _ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope, receive, send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        header = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-ablate-token")
        query = request.query_params.get("token")
        if self._ok(query):
            # the token leaves the address bar (and history) for a cookie only this site sends
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            await response(scope, receive, send)
        elif self._ok(header) or self._ok(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
        else:
            await PlainTextResponse("401: this dashboard needs its token: open the URL `ablate serve` printed "
                                    "(with ?token=...), or send the header Authorization: Bearer TOKEN\n",
                                    status_code=401)(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: the content security policy (nothing from elsewhere) on every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def send_with(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, send_with if scope["type"] == "http" else send)


class LoopbackHosts:
    """ASGI middleware: 400 unless the Host header names this machine by a loopback name, so a web
    page elsewhere cannot reach a loopback dashboard by re-pointing its own name (DNS rebinding).
    (Starlette's TrustedHostMiddleware cuts an IPv6 host such as [::1]:8080 at its first colon.)"""

    def __init__(self, app, allowed: list[str]) -> None:
        self.app, self.allowed = app, set(allowed)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host[:host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":")[0]
            if name not in self.allowed:
                await PlainTextResponse(f"400: this dashboard answers {', '.join(sorted(self.allowed))} only\n",
                                        status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Entry:
    """A view's JSON as of a stamp, and how long it took to build."""

    def __init__(self, stamp: str, body: bytes, took: float) -> None:
        self.stamp, self.body, self.took, self.done = stamp, body, took, time.monotonic()


class Views:
    """JSON views, cached with the stamp they were read at, built in the background.

    A poll whose If-None-Match is still current costs one stamp query (304). No request waits
    long for a build: a view whose stamp moved on is answered at once with the last one built,
    while a background thread builds the new one; a view never built is waited for up to
    `wait_s` and otherwise answered with None (the page says it is being built). At most one build
    per view runs; after a build that took T seconds the next starts no sooner than T seconds
    later (a watched store of 20,000 trials costs its drivers at most half a core). Each finished
    build is counted in the ETag, so the next poll gets it."""

    def __init__(self, store: Store, *, wait_s: float = 0.5) -> None:
        self.store = store
        self.wait_s = wait_s
        self.cache: dict[tuple, Entry] = {}
        self.building: dict[tuple, threading.Event] = {}
        self.generation = 0                 # counts finished builds: part of the ETag
        self.lock = threading.Lock()

    def etag(self, stamp: str) -> str:
        return f'"{stamp}.{self.generation}"'

    def body(self, key: tuple, stamp: str, make) -> bytes | None:
        """`make()`'s JSON as of `stamp` if cached; else the last one built (a new build starts),
        or, for a view never built, the build if it ends within `wait_s`, else None."""
        with self.lock:
            hit = self.cache.get(key)
            if (hit is None or hit.stamp != stamp) and key not in self.building:
                self.building[key] = threading.Event()
                wait = 0.0 if hit is None else max(0.0, hit.took - (time.monotonic() - hit.done))
                threading.Thread(target=self.build, args=(key, stamp, make), kwargs={"wait": wait},
                                 daemon=True, name=f"ablate-serve-{key[0]}").start()
            done = self.building.get(key)
        if hit is not None:
            return hit.body
        if done is not None:
            done.wait(self.wait_s)
        with self.lock:
            hit = self.cache.get(key)
        return hit.body if hit is not None else None

    def build(self, key: tuple, stamp: str, make, *, wait: float = 0.0) -> bytes:
        """Build `make()`'s JSON (after `wait` seconds) and cache it as of `stamp`. A failed build
        keeps the last good one; with none, its error is what the view shows."""
        time.sleep(wait)
        t0 = time.monotonic()
        try:
            body = json.dumps(clean(make()), separators=(",", ":")).encode()
        except Exception as exc:   # noqa: BLE001 -- shown on the page; the server goes on serving
            if not isinstance(exc, AblateError):
                log.exception("ablate serve: building %s failed", key)
            what = str(exc) if isinstance(exc, AblateError) else f"{type(exc).__name__}: {exc}"
            body = json.dumps({"error": f"could not build this view: {what}"}).encode()
            with self.lock:
                if key in self.cache:
                    body = self.cache[key].body
        with self.lock:
            if len(self.cache) > 64:
                self.cache.clear()
            self.cache[key] = Entry(stamp, body, time.monotonic() - t0)
            self.generation += 1
            self.building.pop(key).set()
        return body

    def respond(self, request: Request, make) -> Response:
        """`make(stamp)` -> JSON bytes, unless the client's ETag is current (304); AblateError is a
        404 with its message, anything else a 500 with its type (the server goes on serving)."""
        stamp = self.store.stamp()
        etag = self.etag(stamp)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        try:
            body = make(stamp)
        except AblateError as exc:
            return error_json(exc, 404)
        except Exception as exc:   # noqa: BLE001 -- the page shows it; the server goes on serving
            log.exception("ablate serve: a view failed")
            return error_json(f"the server could not build this view: {type(exc).__name__}: {exc}", 500)
        return Response(body, media_type="application/json", headers=headers)


def error_json(exc: Exception | str, status: int) -> Response:
    return Response(json.dumps({"error": str(exc)}), status_code=status, media_type="application/json")


def _names(request: Request) -> list[str]:
    names = [request.query_params.get("a", ""), request.query_params.get("b", "")]
    if not all(names):
        raise ReportError("compare needs two experiments: ?a=NAME&b=NAME")
    return names


def build_app(store: Store, *, token: str | None = None, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard over `store` (a ReadOnlyStore). `allowed_hosts`: Host headers accepted (the
    loopback names by default, so a web page cannot reach this server by DNS rebinding)."""
    views = Views(store)
    js = plotly_js()

    def page(request: Request) -> Response:
        html = (ASSETS / "page.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8")

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(js, media_type="text/javascript")
        if name not in ("app.js", "app.css"):
            return PlainTextResponse("404: no such asset\n", status_code=404)
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response((ASSETS / name).read_bytes(), media_type=media)

    def overview(request: Request) -> Response:
        return views.respond(request, lambda stamp: json.dumps(clean(data.overview(store)),
                                                               separators=(",", ":")).encode())

    def experiment(request: Request) -> Response:
        name = request.path_params["name"]

        def make(stamp: str) -> bytes:
            head = json.dumps(clean(data.experiment_head(store, name)), separators=(",", ":")).encode()
            results = views.body(("results", name), data.results_stamp(store, name),
                                 lambda: data.experiment_results(store, name))
            return head[:-1] + b',"results":' + (results or b"null") + b"}"

        return views.respond(request, make)

    def compare(request: Request) -> Response:
        try:
            names = _names(request)
        except AblateError as exc:
            return error_json(exc, 400)
        return views.respond(request, lambda stamp: views.body(("compare", *names), stamp,
                                                               lambda: data.compare_view(store, names))
                             or b'{"building":true}')

    def log(request: Request) -> Response:
        try:
            text = data.trial_log(store, request.path_params["name"], request.path_params["trial_id"])
        except AblateError as exc:
            return PlainTextResponse(f"404: {exc}\n", status_code=404)
        return PlainTextResponse(text)

    def download(request: Request) -> Response:
        fmt = request.path_params["fmt"]
        try:
            if request.path_params["name"] == "_compare":
                filename, body = compare_download(store, _names(request), fmt)
            else:
                filename, body = report_download(store, request.path_params["name"], fmt)
        except AblateError as exc:
            return PlainTextResponse(f"404: {exc}\n", status_code=404)
        media = MEDIA.get(Path(filename).suffix, "application/octet-stream")
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    routes = [Route("/", page), Route("/assets/{name}", asset), Route("/api/overview", overview),
              Route("/api/experiment/{name:path}", experiment), Route("/api/compare", compare),
              Route("/log/{name}/{trial_id}", log), Route("/download/{name}/{fmt}", download)]

    # outermost first: every answer (a 401 too) gets the headers; the host check precedes the token's
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(LoopbackHosts, allowed=allowed_hosts))
    middleware.append(Middleware(TokenGate, token=token))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.views = views
    return app
