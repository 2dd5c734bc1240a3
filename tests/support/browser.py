"""Headless Debian Chromium driven by Playwright. A missing browser is a failure with
a clear message (`make test` installs it), never a skip."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, async_playwright, expect

CHROMIUM = os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium")
# Assertions wait for the page's state, never sleep; on a shared 2-core machine a page
# under a whole stack can take longer than Playwright's 5 s default to get there.
expect.set_options(timeout=20_000)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make test` (installs Debian's chromium) "
            "or set VIGIL_CHROMIUM",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()
