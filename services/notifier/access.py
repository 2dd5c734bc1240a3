"""Who may call the HTTP API, and how often: the dashboard token and per-token buckets.

Every /api/ request needs `Authorization: Bearer <dashboard token>`; the viewer name it
carries is kept on the request (acks record who acknowledged). Each token has its own
token bucket in Redis (services.common.ratelimit), so the limit holds across replicas;
starting a deep analysis also takes from a second, much smaller bucket, atomically with
the first. A refusal is ResourceExhausted with the wait, which the problem middleware
turns into 429 with Retry-After. Must never log or store a token itself (buckets are
keyed by a digest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.common import auth
from services.common.errors import ResourceExhausted
from services.common.ratelimit import Limit, RateLimiter
from services.notifier import metrics
from services.notifier.settings import NotifierSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VIEWER: web.RequestKey[str] = web.RequestKey("viewer", str)
#: Routes that also take from the deep-analysis bucket.
ANALYSIS_ROUTES = frozenset({"start_analysis"})


class Access:
    def __init__(self, settings: NotifierSettings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter

    def buckets(self, token: str, route: str) -> list[tuple[Limit, float]]:
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        costs = [
            (
                Limit(
                    f"notifier:api:{digest}",
                    self.settings.api_rate_per_minute,
                    60.0,
                    self.settings.api_burst,
                ),
                1.0,
            )
        ]
        if route in ANALYSIS_ROUTES:
            costs.append(
                (
                    Limit(
                        f"notifier:analysis:{digest}",
                        self.settings.analysis_rate_per_hour,
                        3600.0,
                        self.settings.analysis_burst,
                    ),
                    1.0,
                )
            )
        return costs

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        token = auth.bearer(request.headers.get("Authorization"))
        request[VIEWER] = auth.verify_dashboard(self.settings.dashboard_secret.reveal(), token)
        route = request.match_info.route.name or "unknown"
        costs = self.buckets(token, route)
        wait = await self.limiter.try_acquire(costs)
        if wait:
            bucket = "analysis" if route in ANALYSIS_ROUTES else "api"
            metrics.RATE_LIMITED.labels(bucket).inc()
            raise ResourceExhausted(
                "rate limit for this dashboard token reached; retry later", retry_after=wait
            )
        return await handler(request)
