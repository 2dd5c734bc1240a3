"""The dashboard page in a real headless Chromium against the real stack (`vigil up`):
readings go in through ingest, the page shows what the notifier streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from services.common import keys
from services.common.redis_client import connect
from tests.support.browser import chromium
from tests.support.clients import device_stream, reading, token_for
from tests.support.stack import vigil_up

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Records every WebSocket the page opens and every frame it sends, before app.js runs.
RECORD_SOCKETS = """
window.__sockets = [];
window.__sent = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) { super(...args); window.__sockets.push(this); }
  send(data) { window.__sent.push(String(data)); return super.send(data); }
};
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with vigil_up(tmp_path_factory.mktemp("stack"), "--no-simulator") as state:
        yield state


@asynccontextmanager
async def dashboard(stack: dict[str, Any], init_script: str = "") -> AsyncIterator[Page]:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
        if init_script:
            await page.add_init_script(init_script)
        await page.goto(stack["dashboard"])
        await expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        yield page
        assert problems == []


async def incident(
    stack: dict[str, Any], device: str, value: float, labels: dict[str, str] | None = None
) -> None:
    """One reading from `device` through ingest, as a device sends it."""
    secret = stack["secrets"]["device"]
    async with device_stream(stack["ingest"], token_for(secret, device)) as dev:
        await dev.hello(device, labels or {"site": "plant-north"})
        await dev.send(1, [reading("temperature", value)])


def alert_row(page: Page, device: str) -> Any:
    return page.locator(".alert", has=page.locator(".device", has_text=device))


@pytest.fixture
async def redis(stack: dict[str, Any]) -> AsyncIterator[Redis]:
    """The stack's own Redis (not the suite's), to check what the page caused."""
    client = connect(stack["redis_url"])
    yield client
    await client.aclose()


async def test_alert_and_insight_appear_live_on_the_page(stack: dict[str, Any]) -> None:
    async with dashboard(stack) as page:
        assert "token=" not in page.url  # the token leaves the address bar
        await incident(stack, "browser-1", 101.0)
        row = alert_row(page, "browser-1")
        await expect(row).to_have_attribute("data-severity", "critical", timeout=15_000)
        await expect(row.locator(".reasons")).to_contain_text("above critical threshold 95")
        await expect(row.locator(".insight .source")).to_have_text("builtin", timeout=15_000)
        await expect(row.locator(".insight .diagnosis")).to_contain_text("temperature")
        await expect(page.locator("#count-open")).not_to_have_text("0")
        card = page.locator(".device-card", has=page.locator(".device-id", has_text="browser-1"))
        await expect(card.locator(".open-alerts")).to_have_text("1 open", timeout=5_000)


async def test_current_alerts_show_on_open_not_only_live_ones(stack: dict[str, Any]) -> None:
    async with dashboard(stack) as first:
        await incident(stack, "before-open", 90.0)
        await expect(alert_row(first, "before-open")).to_have_count(1, timeout=15_000)
    async with dashboard(stack) as page:  # opened after the alert was raised
        row = alert_row(page, "before-open")
        await expect(row).to_have_attribute("data-severity", "warning")
        await expect(row.locator(".insight .source")).to_have_text("builtin", timeout=15_000)


async def test_ack_and_false_alarm_buttons_publish_and_show(
    stack: dict[str, Any], redis: Redis
) -> None:
    async with dashboard(stack) as page:
        await incident(stack, "ack-me", 101.0)
        await incident(stack, "false-me", 101.0)
        acked, false_alarm = alert_row(page, "ack-me"), alert_row(page, "false-me")
        await acked.locator(".note").fill("fan replaced")
        await acked.locator("button.ack").click()
        await expect(acked.locator(".acked-what")).to_have_text(
            "acknowledged by local", timeout=15_000
        )
        await expect(acked.locator(".acked-note")).to_have_text("fan replaced")
        await false_alarm.locator("button.false-alarm").click()
        await expect(false_alarm.locator(".acked-what")).to_have_text(
            "marked a false alarm by local", timeout=15_000
        )
    entries = await redis.xrange(keys.EVENTS)
    acks = [json.loads(f["data"]) for _, f in entries if f["kind"] == "ack"]
    by_device = {a["device_id"]: a for a in acks}
    acked = by_device["ack-me"]
    assert (acked["false_alarm"], acked["note"]) == (False, "fan replaced")
    assert by_device["false-me"]["false_alarm"] is True and by_device["false-me"]["by"] == "local"


async def test_device_label_with_markup_is_text_and_runs_nothing(stack: dict[str, Any]) -> None:
    payload = "<img src=x onerror=window.__pwned=1>"
    async with dashboard(stack) as page:
        await incident(stack, "xss-1", 101.0, {"site": payload})
        row = alert_row(page, "xss-1")
        await expect(row.locator(".label")).to_have_text(f"site={payload}", timeout=15_000)
        card = page.locator(".device-card", has=page.locator(".device-id", has_text="xss-1"))
        await expect(card.locator(".label")).to_have_text(f"site={payload}", timeout=5_000)
        assert await page.locator("img").count() == 0  # no element was made from it
        assert await page.evaluate("window.__pwned") is None  # and nothing ran


async def test_page_reconnects_by_itself_and_resumes_from_its_last_id(
    stack: dict[str, Any],
) -> None:
    async with dashboard(stack, RECORD_SOCKETS) as page:
        await incident(stack, "resume-1", 90.0)
        await expect(alert_row(page, "resume-1")).to_have_count(1, timeout=15_000)
        await page.evaluate("window.__sockets[0].close()")  # the link drops
        await incident(stack, "resume-2", 101.0)  # raised while the page is away
        await expect(alert_row(page, "resume-2")).to_have_count(1, timeout=15_000)
        await expect(page.locator("#connection")).to_have_text("live")
        sent = [json.loads(s) for s in await page.evaluate("window.__sent")]
    subscribes = [s for s in sent if s["type"] == "subscribe"]
    assert len(subscribes) == 2
    # The second subscription resumed from an event id the first one had delivered.
    assert subscribes[1]["last_id"] is not None
    assert subscribes[1]["last_id"] != subscribes[0]["last_id"]
