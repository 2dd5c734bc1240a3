"""The notifier's HTTP side: the dashboard page, /ws, the HTTP API, health endpoints.

Errors are problem+json (RFC 9457) from one middleware; a client never sees a trace.
Every response carries a strict Content-Security-Policy: the page runs only its own
scripts, so even a string that slipped into markup could not run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from services.common import metrics as common_metrics
from services.common.errors import VigilError, unavailable
from services.common.ratelimit import RateLimiter
from services.notifier import metrics
from services.notifier.access import Access
from services.notifier.analysis import AnalyzerClient
from services.notifier.api import Api
from services.notifier.hub import Hub
from services.notifier.settings import NotifierSettings
from services.notifier.ws import WebSocketEndpoint

log = logging.getLogger(__name__)
STATIC = Path(str(resources.files("services.notifier").joinpath("static")))
STATIC_FILES = frozenset(path.name for path in STATIC.iterdir() if path.is_file())
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str) -> web.Response:
    return web.json_response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _answer(request, handler)
    if request.path.startswith("/api/"):
        route = request.match_info.route.name or "unmatched"
        metrics.API_REQUESTS.labels(route, str(response.status)).inc()
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VigilError as exc:
        response = problem(exc.http_status, exc.status.replace("_", " ").lower(), exc.message)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason, exc.text or exc.reason)
    except Exception as exc:  # the boundary: log, count, problem 503 or 500
        common_metrics.ERRORS.labels("notifier", "http").inc()
        away = unavailable(exc)
        if away is not None:  # Redis is away: the client retries, nothing is broken
            log.warning(
                "dependency unavailable",
                extra={"path": request.path, "error": f"{type(exc).__name__}: {exc}"},
            )
            return problem(away.http_status, "unavailable", away.message)
        log.exception("unexpected error", extra={"path": request.path})
        return problem(500, "internal error", "internal error")


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def build(
    settings: NotifierSettings,
    redis: Redis,
    hub: Hub,
    limiter: RateLimiter,
    analyzer: AnalyzerClient,
) -> web.Application:
    access = Access(settings, limiter)
    app = web.Application(middlewares=[problems, access.middleware], client_max_size=64 * 1024)
    app.on_response_prepare.append(_security_headers)
    endpoint = WebSocketEndpoint(settings, hub)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        try:
            await redis.ping()
        except Exception as exc:  # readiness reports, never raises
            return problem(503, "not ready", f"redis: {type(exc).__name__}")
        if not hub.running:
            return problem(503, "not ready", "event reader not running")
        if hub.draining:
            return problem(503, "not ready", "shutting down")
        return web.json_response({"status": "ready"})

    app.router.add_get("/", index)
    app.router.add_get("/ws", endpoint.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def static(request: web.Request) -> web.FileResponse:
        # Not add_static: its FileResponse answers a missing file with a bare 404 of its
        # own, past the problem middleware. The folder is flat: a name, never a path.
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound(text=f"no static file {name[:64]!r}")
        return web.FileResponse(STATIC / name)

    app.router.add_get("/static/{name}", static)
    Api(settings, redis, hub, analyzer).routes(app)
    return app
