"""The dashboard page in a real headless Chromium against the real stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import expect

from tests.support.browser import chromium
from tests.support.clients import device_stream, reading, token_for
from tests.support.stack import vigil_up

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with vigil_up(tmp_path_factory.mktemp("stack"), "--no-simulator") as state:
        yield state


async def test_alert_and_insight_appear_live_on_the_page(stack: dict[str, Any]) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(stack["dashboard"])
        await expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        assert "token=" not in page.url  # the token leaves the address bar

        secret = stack["secrets"]["device"]
        async with device_stream(stack["ingest"], token_for(secret, "browser-1")) as dev:
            await dev.hello("browser-1")
            await dev.send(1, [reading("temperature", 101.0)])

        row = page.locator(".alert", has=page.locator(".device", has_text="browser-1"))
        await expect(row).to_have_attribute("data-severity", "critical", timeout=15_000)
        await expect(row.locator(".reasons")).to_contain_text("above critical threshold 95")
        await expect(row.locator(".insight .source")).to_have_text("builtin", timeout=15_000)
        await expect(row.locator(".insight .diagnosis")).to_contain_text("temperature")
