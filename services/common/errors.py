"""The one exception tree of Vigil.

Every error a client can cause or see is a `VigilError` child; the gRPC interceptor and
the HTTP middleware turn it into a status code at one boundary each. Messages are safe
to show a client: they never carry a stack trace, a secret or internal state. Both
boundaries ask `unavailable` about any other exception, so a Redis that is away reaches
clients as UNAVAILABLE / 503 (retry), never as an internal error.
"""

from __future__ import annotations

from redis import exceptions as redis_exceptions


class VigilError(Exception):
    """Base of every error Vigil reports to a client.

    `status` is the gRPC status name; `http_status` the HTTP equivalent.
    """

    status = "INTERNAL"
    http_status = 500
    #: Seconds after which trying again makes sense, when the error says (`RetryLater`);
    #: the boundaries send it as `retry-after`.
    retry_after: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VigilError):
    """A request field is malformed; `field` names it (e.g. `batch.readings[3].value`)."""

    status = "INVALID_ARGUMENT"
    http_status = 400

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class Unauthenticated(VigilError):
    """The caller's credentials are missing, malformed, wrong or expired."""

    status = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(VigilError):
    """Valid credentials that do not allow this (a device token used for another id)."""

    status = "PERMISSION_DENIED"
    http_status = 403


class NotFound(VigilError):
    """The named thing (ticket, alert) does not exist."""

    status = "NOT_FOUND"
    http_status = 404


class FailedPrecondition(VigilError):
    """The request is well-formed but out of order (a batch before Hello)."""

    status = "FAILED_PRECONDITION"
    http_status = 409


class RetryLater(VigilError):
    """The same request may succeed later; `retry_after` (seconds), when given, says
    when trying again makes sense."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResourceExhausted(RetryLater):
    """A limit was hit."""

    status = "RESOURCE_EXHAUSTED"
    http_status = 429


class Unavailable(RetryLater):
    """A dependency (Redis, the detector) cannot be reached now, or this replica is
    shutting down; retrying may work."""

    status = "UNAVAILABLE"
    http_status = 503


class Unimplemented(VigilError):
    """The method exists in the contract but this build does not serve it yet."""

    status = "UNIMPLEMENTED"
    http_status = 501


class ConfigError(VigilError):
    """Bad configuration: an environment variable or a file, named in the message."""

    status = "INVALID_ARGUMENT"
    http_status = 400


# Redis failures a client can do nothing about but retry: the connection is lost or
# refused (a restart), Redis is loading its data, out of memory (noeviction), or a
# replica that cannot take writes. Any other Redis error is a bug: INTERNAL.
_REDIS_AWAY = (
    redis_exceptions.ConnectionError,
    redis_exceptions.TimeoutError,
    redis_exceptions.OutOfMemoryError,
    redis_exceptions.ReadOnlyError,
)


def unavailable(exc: BaseException) -> Unavailable | None:
    """The client-facing error for an exception that is not a VigilError but says a
    dependency is away (Redis down, restarting or full): UNAVAILABLE, so clients retry
    with backoff instead of seeing INTERNAL. None for anything else (a bug)."""
    if isinstance(exc, _REDIS_AWAY):
        return Unavailable("storage is unavailable; retry with backoff")
    return None
