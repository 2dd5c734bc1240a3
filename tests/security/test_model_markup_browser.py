"""Model output with markup and script renders as text on the dashboard, in real
Chromium: the answer of the OpenAI-compatible test server goes through the analyzer
and the notifier to the page, and nothing in it runs or becomes an element.

tests/e2e/test_dashboard_browser.py pins the same for a device's label; this is the
model's side of the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect
from redis.asyncio import Redis

from services.common.auth import dashboard_token
from tests.security.pipeline import hostile_incident, pipeline
from tests.support import openai_server as srv
from tests.support.browser import chromium
from tests.support.openai_server import Reply

pytestmark = pytest.mark.browser

DIAGNOSIS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> overheating'
CAUSE = '<a href="javascript:window.__pwned=3">click me</a>'
ACTION = '<iframe srcdoc="<script>parent.__pwned=4</script>"></iframe><b>stop the press</b>'


async def test_model_answer_with_markup_is_shown_as_text_and_runs_nothing(
    base_env: dict[str, str],
    device_secret: str,
    dashboard_secret: str,
    redis: Redis,
    tmp_path: Path,
) -> None:
    answer = {
        "diagnosis": DIAGNOSIS,
        "likely_causes": [CAUSE],
        "actions": [ACTION],
        "urgency": "critical",
        "confidence": 0.9,
    }
    async with (
        srv.openai_server() as model,
        pipeline(base_env, model, tmp_path, notifier=True) as suite,
        chromium() as browser,
    ):
        model.default = Reply(insight=answer)
        page = await browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
        token = dashboard_token(dashboard_secret, "viewer", ttl_s=600)
        await page.goto(f"{suite.dashboard}/?token={token}")
        await expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        await hostile_incident(suite.ingest, device_secret, "press-12")
        row = page.locator(".alert", has=page.locator(".device", has_text="press-12"))
        insight = row.locator(".insight")
        await expect(insight.locator(".source")).to_have_text("model", timeout=20_000)
        await expect(insight.locator(".diagnosis")).to_have_text(DIAGNOSIS)
        await expect(insight.locator(".causes li")).to_have_text([CAUSE])
        await expect(insight.locator(".actions li")).to_have_text([ACTION])
        for tag in ("img", "script", "a", "iframe", "b"):
            assert await insight.locator(tag).count() == 0, tag  # no element was made
        await insight.locator(".causes li").click()  # not a link: nothing to follow
        assert await page.evaluate("window.__pwned") is None  # and nothing ran
        await page.close()
    assert problems == []
