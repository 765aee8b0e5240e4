"""Browser tests: Playwright driving Debian's Chromium against a live server.

In CI (CI=true) a missing browser is a failure, never a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("LEB_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Playwright runs an event loop in this thread; the ORM calls the tests
    # make between browser steps are still plain synchronous calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page_for(browser: Any, live_server: Any, settings: Any) -> Iterator[Any]:
    """A fresh browser context per language: `page_for("zh-hans")`."""
    settings.SITE_URL = live_server.url
    contexts = []

    def open_page(language: str, width: int = 390) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            extra_http_headers={"Accept-Language": language},
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
