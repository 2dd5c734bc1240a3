from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.common.settings import CommonSettings, Env, Secret
from services.ingest.settings import IngestSettings


def test_secret_never_prints() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert secret.reveal() == "hunter2"


def test_settings_repr_hides_secrets() -> None:
    settings = IngestSettings.from_env(
        {"VIGIL_DEVICE_SECRET": "ab" * 32, "REDIS_URL": "redis://:pw@host:6379/0"}
    )
    assert "ab" * 32 not in repr(settings)
    assert ":pw@" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VIGIL_GRPC_PORT": "http"}, "VIGIL_GRPC_PORT='http' is not an integer"),
        ({"VIGIL_GRPC_PORT": "70000"}, "VIGIL_GRPC_PORT=70000 is above the maximum 65535"),
        ({"VIGIL_LOG_FORMAT": "xml"}, "VIGIL_LOG_FORMAT='xml' must be one of text, json"),
        ({"VIGIL_SHUTDOWN_GRACE_SECONDS": "nan"}, "is not a finite number"),
    ],
)
def test_bad_value_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="VIGIL_") as failure:
        CommonSettings.from_env(environ, "x", grpc_port=1, metrics_port=2)
    assert message in failure.value.message


def test_required_secret_must_be_set_and_long_enough() -> None:
    with pytest.raises(ConfigError, match="VIGIL_DEVICE_SECRET is not set"):
        IngestSettings.from_env({})
    with pytest.raises(ConfigError, match="VIGIL_DEVICE_SECRET is too short"):
        IngestSettings.from_env({"VIGIL_DEVICE_SECRET": "abcd"})
    with pytest.raises(ConfigError, match="VIGIL_DEVICE_SECRET is not valid hex"):
        IngestSettings.from_env({"VIGIL_DEVICE_SECRET": "zz" * 32})


def test_env_parses_lists_and_flags() -> None:
    env = Env({"A": " x, y ,,z ", "B": "yes", "C": "off", "D": "maybe"})
    assert env.items("A", ()) == ("x", "y", "z")
    assert env.flag("B", False) is True and env.flag("C", True) is False
    with pytest.raises(ConfigError, match="D='maybe' is not a boolean"):
        env.flag("D", False)
