"""The analyzer's settings: defaults, strict parsing, and a key that never prints."""

from __future__ import annotations

import pytest

from services.analyzer.settings import AnalyzerSettings
from services.common.errors import ConfigError


def test_without_an_api_key_the_model_is_off() -> None:
    settings = AnalyzerSettings.from_env({})
    assert not settings.llm.enabled and settings.llm.base_url is None
    assert settings.cache.ttl_s == {1: 3600.0, 2: 1800.0, 3: 300.0}
    assert settings.max_depth == 10_000 and settings.aging_s == 300.0


def test_api_key_never_prints() -> None:
    settings = AnalyzerSettings.from_env(
        {"OPENAI_API_KEY": "sk-very-secret", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    )
    assert settings.llm.enabled and settings.llm.base_url == "http://127.0.0.1:1/v1"
    assert "sk-very-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"VIGIL_ANALYZER_CONCURRENCY": "64"},
            "VIGIL_ANALYZER_CONCURRENCY=64 is above the maximum 32",
        ),
        ({"VIGIL_LLM_DAILY_BUDGET": "-1"}, "VIGIL_LLM_DAILY_BUDGET=-1.0 is below the minimum 0"),
        ({"VIGIL_LLM_RESPONSE_FORMAT": "yaml"}, "VIGIL_LLM_RESPONSE_FORMAT='yaml' must be one of"),
        ({"VIGIL_CACHE_TTL_CRITICAL_SECONDS": "soon"}, "VIGIL_CACHE_TTL_CRITICAL_SECONDS='soon'"),
        ({"VIGIL_QUEUE_MAX_DEPTH": "-5"}, "VIGIL_QUEUE_MAX_DEPTH=-5 is below the minimum 0"),
        (
            {
                "VIGIL_ANALYSIS_MAX_WINDOW_SECONDS": "600",
                "VIGIL_ANALYSIS_DEFAULT_WINDOW_SECONDS": "900",
            },
            "VIGIL_ANALYSIS_DEFAULT_WINDOW_SECONDS=900.0 is above the maximum 600",
        ),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AnalyzerSettings.from_env(environ)
