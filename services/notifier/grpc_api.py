"""`Notifier.Subscribe`: the event stream for machines, same semantics as /ws.

Filters, resume from `last_id`, `reset` with the current alerts, and a bounded
mailbox per subscriber. A subscriber that stops reading fills its HTTP/2 window and
then its mailbox; the hub stops feeding it at once (it costs no one else anything)
and the stream ends with RESOURCE_EXHAUSTED as soon as gRPC takes the next message.
Must never let one subscriber slow another.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from grpc import aio
from vigil.v1 import notifier_pb2, notifier_pb2_grpc

from services.common import auth
from services.common.errors import InvalidArgument, ResourceExhausted
from services.notifier import metrics
from services.notifier.entry import Entry
from services.notifier.filters import Filter
from services.notifier.hub import Hub, Snapshot
from services.notifier.mailbox import TooSlow
from services.notifier.protocol import NAME, label_selector, last_id
from services.notifier.settings import NotifierSettings


def event_message(entry: Entry) -> notifier_pb2.Event:
    return notifier_pb2.Event(
        id=entry.id,
        kind=entry.kind,
        device_id=entry.device,
        severity=entry.severity,  # type: ignore[arg-type]
        json=entry.data,
    )


def reset_message(snapshot: Snapshot) -> notifier_pb2.Event:
    return notifier_pb2.Event(
        id=snapshot.position,
        kind="reset",
        json=json.dumps({"alerts": snapshot.alerts}, separators=(",", ":"), ensure_ascii=False),
    )


def request_filter(request: notifier_pb2.SubscribeRequest) -> Filter:
    for field in ("device_ids", "kinds"):
        for item in getattr(request, field):
            if not NAME.fullmatch(item):
                raise InvalidArgument(field, "items must match [A-Za-z0-9_.:-]{1,128}")
    return Filter(
        devices=frozenset(request.device_ids),
        labels=label_selector(dict(request.labels)),
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
            async for delivery in self.hub.deliveries(sub, since):
                if isinstance(delivery, Snapshot):
                    yield reset_message(delivery)
                    continue
                for entry in delivery:
                    yield event_message(entry)
                metrics.GRPC_DELIVERED.inc(len(delivery))
        except TooSlow:
            raise ResourceExhausted("subscriber too slow; subscribe again with last_id") from None
        finally:
            self.hub.unregister(sub)
            metrics.GRPC_SUBSCRIBERS.dec()
