"""Credentials: device tokens and dashboard tokens.

A device token is hex(HMAC-SHA256(device secret, device id)): a device maker can mint it
with any HMAC library, and ingest checks it against the id the device's Hello claims.

A dashboard token is `<name>.<expiry>.<signature>`: a viewer name, a Unix expiry
(0 = never) and hex(HMAC-SHA256(dashboard secret, "dashboard|<name>|<expiry>")).
Comparisons are constant-time; nothing here logs a key or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from services.common.errors import PermissionDenied, Unauthenticated

_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXPIRY = re.compile(r"[0-9]{1,20}")


def _sign(key_hex: str, message: str) -> str:
    return hmac.new(bytes.fromhex(key_hex), message.encode(), hashlib.sha256).hexdigest()


def device_token(device_secret_hex: str, device_id: str) -> str:
    """The token that authorises `device_id`."""
    return _sign(device_secret_hex, device_id)


def bearer(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` header, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("missing authorization metadata (Bearer token)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()


def check_device_token_format(token: str) -> str:
    """Reject what cannot be a device token before the device has said who it is."""
    if not _HEX64.fullmatch(token):
        raise Unauthenticated("device token must be 64 lowercase hex characters")
    return token


def verify_device(device_secret_hex: str, token: str, device_id: str) -> None:
    """Raise PermissionDenied unless `token` authorises `device_id`."""
    if not hmac.compare_digest(device_token(device_secret_hex, device_id), token):
        raise PermissionDenied(f"token does not authorise device {device_id!r}")


def dashboard_token(dashboard_secret_hex: str, name: str = "dashboard", ttl_s: int = 0) -> str:
    """Mint a dashboard token for viewer `name`, valid for `ttl_s` seconds (0 = forever)."""
    if not _NAME.fullmatch(name):
        raise ValueError("dashboard name must match [A-Za-z0-9_-]{1,64}")
    expiry = 0 if ttl_s <= 0 else int(time.time()) + ttl_s
    return f"{name}.{expiry}.{_sign(dashboard_secret_hex, f'dashboard|{name}|{expiry}')}"


def verify_dashboard(dashboard_secret_hex: str, token: str, now: float | None = None) -> str:
    """The viewer name a valid dashboard token carries; Unauthenticated otherwise."""
    parts = token.split(".")
    # Checked for shape first: compare_digest refuses non-ASCII text (a TypeError, not a
    # refusal), and str.isdigit would pass digits int() cannot read.
    if (
        len(parts) != 3
        or not _NAME.fullmatch(parts[0])
        or not _EXPIRY.fullmatch(parts[1])
        or not _HEX64.fullmatch(parts[2])
    ):
        raise Unauthenticated("malformed dashboard token")
    name, expiry, signature = parts
    expected = _sign(dashboard_secret_hex, f"dashboard|{name}|{expiry}")
    if not hmac.compare_digest(expected, signature):
        raise Unauthenticated("invalid dashboard token")
    if int(expiry) and int(expiry) < (time.time() if now is None else now):
        raise Unauthenticated("dashboard token expired")
    return name
