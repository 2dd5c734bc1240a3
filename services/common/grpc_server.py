"""The gRPC edge every service shares: one interceptor turns errors into status codes
and records go-grpc-prometheus metrics; `bind` gives a clear error for a busy port.

Servicers stay thin and raise `VigilError`s; nothing else here knows a service. A client
never sees a stack trace: unexpected exceptions are logged, counted and become INTERNAL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from services.common import metrics
from services.common.embedded_redis import port_in_use
from services.common.errors import (
    ConfigError,
    InvalidArgument,
    VigilError,
    unavailable,
)

log = logging.getLogger(__name__)

# Without this, grpc sets SO_REUSEPORT and a second server silently shares the port.
BASE_OPTIONS: list[tuple[str, Any]] = [("grpc.so_reuseport", 0)]


def status_code(error: VigilError) -> grpc.StatusCode:
    code: grpc.StatusCode = getattr(grpc.StatusCode, error.status, grpc.StatusCode.INTERNAL)
    return code


def _decoder(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """The method's deserializer, with undecodable bytes an INVALID_ARGUMENT: left to
    gRPC they are UNKNOWN (unary) or an unexpected error in the handler (streams)."""

    def decode(data: bytes) -> Any:
        if deserialize is None:
            return data
        try:
            return deserialize(data)
        except DecodeError:
            raise InvalidArgument(
                "message", "not a valid protobuf encoding of the request"
            ) from None

    return decode


class _Call:
    """Bookkeeping of one RPC for metrics."""

    def __init__(self, kind: str, full_method: str) -> None:
        _, service, method = (
            full_method.split("/", 2) if full_method.count("/") == 2 else ("", "?", full_method)
        )
        self.labels = (kind, service, method)
        self.start = time.perf_counter()
        self.code = "OK"
        metrics.GRPC_STARTED.labels(*self.labels).inc()

    def done(self) -> None:
        metrics.GRPC_HANDLED.labels(*self.labels, self.code).inc()
        metrics.GRPC_HANDLING.labels(*self.labels).observe(time.perf_counter() - self.start)


class BoundaryInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Error mapping and metrics for every RPC of a server."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def _fail(self, call: _Call, context: aio.ServicerContext, exc: BaseException) -> None:
        away = unavailable(exc)
        if away is not None:  # Redis is away: the client retries, nothing is broken
            metrics.ERRORS.labels(self.service, call.labels[2]).inc()
            log.warning(
                "dependency unavailable in %s",
                call.labels[2],
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            exc = away
        if isinstance(exc, VigilError):
            code = status_code(exc)
            if exc.retry_after is not None:
                context.set_trailing_metadata((("retry-after", f"{exc.retry_after:.3f}"),))
            call.code = code.name
            await context.abort(code, exc.message)
        metrics.ERRORS.labels(self.service, call.labels[2]).inc()
        log.exception("unexpected error in %s", call.labels[2])
        call.code = "INTERNAL"
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method: str = details.method
        decode = _decoder(handler.request_deserializer)
        # Unary requests are decoded inside the wrapper (bytes in), so that a bad one
        # reaches _fail; streamed ones are decoded as the handler reads them.
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, decode),
                request_deserializer=None,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming("server_stream", method, handler.unary_stream, decode),
                request_deserializer=None,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming("bidi_stream", method, handler.stream_stream, None),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming: no Vigil method uses it

    def _unary(self, method: str, behavior: Any, decode: Callable[[bytes], Any]) -> Any:
        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            call = _Call("unary", method)
            try:
                return await behavior(decode(request), context)
            except aio.AbortError:
                call.code = context.code().name if context.code() else "UNKNOWN"
                raise
            except Exception as exc:  # the boundary: log, count, INTERNAL
                await self._fail(call, context, exc)
            finally:
                call.done()

        return wrapped

    def _streaming(
        self, kind: str, method: str, behavior: Any, decode: Callable[[bytes], Any] | None
    ) -> Any:
        """`decode` is given for a unary request (decoded here); None when requests
        stream in (decoded by gRPC as they are read)."""

        async def counted(
            requests: AsyncIterator[Any], labels: tuple[str, str, str]
        ) -> AsyncIterator[Any]:
            received = metrics.GRPC_MSG_RECEIVED.labels(*labels)
            async for request in requests:
                received.inc()
                yield request

        async def wrapped(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            call = _Call(kind, method)
            sent = metrics.GRPC_MSG_SENT.labels(*call.labels)
            try:
                source = counted(request, call.labels) if decode is None else decode(request)
                async for response in behavior(source, context):
                    sent.inc()
                    yield response
            except aio.AbortError:
                call.code = context.code().name if context.code() else "UNKNOWN"
                raise
            except Exception as exc:  # the boundary: log, count, INTERNAL
                await self._fail(call, context, exc)
            finally:
                call.done()

        return wrapped


def bind(server: aio.Server, host: str, port: int, what: str) -> int:
    """Listen on host:port (0 = any free port); a busy port is one clear ConfigError."""
    if port and port_in_use(host, port):
        raise ConfigError(f"port {host}:{port} ({what}) is already in use")
    try:
        bound: int = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({what}): {exc}") from None
    if bound == 0:
        raise ConfigError(f"cannot listen on {host}:{port} ({what})")
    return bound
