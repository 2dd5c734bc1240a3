from __future__ import annotations

import hashlib
import hmac

import pytest

from services.common import auth
from services.common.errors import PermissionDenied, Unauthenticated

KEY = "11" * 32


def test_device_token_is_hmac_sha256_of_the_id() -> None:
    expected = hmac.new(bytes.fromhex(KEY), b"press-7", hashlib.sha256).hexdigest()
    assert auth.device_token(KEY, "press-7") == expected
    auth.verify_device(KEY, expected, "press-7")
    with pytest.raises(PermissionDenied):
        auth.verify_device(KEY, expected, "press-8")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   "])
def test_bearer_requires_the_scheme_and_a_token(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        auth.bearer(header)


def test_dashboard_token_round_trip_and_tamper() -> None:
    token = auth.dashboard_token(KEY, "ops")
    assert auth.verify_dashboard(KEY, token) == "ops"
    _name, expiry, signature = token.split(".")
    with pytest.raises(Unauthenticated, match="invalid"):
        auth.verify_dashboard(KEY, f"root.{expiry}.{signature}")
    with pytest.raises(Unauthenticated, match="invalid"):
        auth.verify_dashboard("22" * 32, token)
    with pytest.raises(Unauthenticated, match="malformed"):
        auth.verify_dashboard(KEY, "garbage")


def test_dashboard_token_expires() -> None:
    token = auth.dashboard_token(KEY, "ops", ttl_s=60)
    expiry = int(token.split(".")[1])
    assert auth.verify_dashboard(KEY, token, now=expiry - 1) == "ops"
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify_dashboard(KEY, token, now=expiry + 1)
