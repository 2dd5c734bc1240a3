"""`Notifier.Subscribe`: the event stream for machines, same semantics as /ws."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from grpc import aio
from vigil.v1 import notifier_pb2, notifier_pb2_grpc

from services.common import auth
from services.common.errors import InvalidArgument, ResourceExhausted
from services.common.events import SEVERITY_BY_NAME, Event
from services.notifier import metrics
from services.notifier.hub import Filter, Hub, Reset, TooSlow
from services.notifier.protocol import NAME, last_id
from services.notifier.settings import NotifierSettings


def event_message(entry_id: str, event: Event) -> notifier_pb2.Event:
    return notifier_pb2.Event(
        id=entry_id,
        kind=str(event.get("kind", "")),
        device_id=str(event.get("device_id") or ""),
        severity=SEVERITY_BY_NAME.get(str(event.get("severity")), 0),  # type: ignore[arg-type]
        json=json.dumps(event, separators=(",", ":"), ensure_ascii=False),
    )


def request_filter(request: notifier_pb2.SubscribeRequest) -> Filter:
    for field in ("device_ids", "kinds"):
        for item in getattr(request, field):
            if not NAME.fullmatch(item):
                raise InvalidArgument(field, "items must match [A-Za-z0-9_.:-]{1,128}")
    return Filter(
        devices=frozenset(request.device_ids),
        min_severity=int(request.min_severity),
        kinds=frozenset(request.kinds),
    )


class NotifierServicer(notifier_pb2_grpc.NotifierServicer):
    def __init__(self, settings: NotifierSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub

    async def Subscribe(
        self, request: notifier_pb2.SubscribeRequest, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[notifier_pb2.Event]:
        metadata = dict(context.invocation_metadata() or ())
        auth.verify_dashboard(
            self.settings.dashboard_secret.reveal(), auth.bearer(metadata.get("authorization"))
        )
        filt = request_filter(request)
        since = last_id(request.last_id)
        sub = self.hub.register(filt, self.settings.client_queue)
        metrics.GRPC_SUBSCRIBERS.inc()
        try:
            try:
                async for entry_id, event in self.hub.events(sub, since):
                    metrics.DELIVERED.labels("grpc").inc()
                    yield event_message(entry_id, event)
            except Reset:
                yield notifier_pb2.Event(kind="reset")
                async for entry_id, event in self.hub.events(sub, None):
                    metrics.DELIVERED.labels("grpc").inc()
                    yield event_message(entry_id, event)
        except TooSlow:
            raise ResourceExhausted("subscriber too slow; resubscribe with last_id") from None
        finally:
            self.hub.unregister(sub)
            metrics.GRPC_SUBSCRIBERS.dec()
