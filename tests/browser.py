"""Browser fixtures: Debian's Chromium driven by Playwright for Python, and screenshots for people to look at.

Use from a conftest.py with `from tests.browser import *  # noqa: F401,F403` (tests/e2e/conftest.py does).
`playwright install` cannot download here; Playwright drives the system /usr/bin/chromium instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support import require_binary

__all__ = ["chromium", "new_page", "browser_page", "screenshot", "follow", "PHONE", "LAPTOP"]

CHROMIUM = "/usr/bin/chromium"
# Quiet, offline, reproducible: no sandbox (containers), no GPU, no phoning home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}  # a common phone, in CSS pixels
NAVIGATION_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session (fails under CI=true when /usr/bin/chromium is missing)."""
    executable = require_binary(CHROMIUM, "chromium", "chromium-browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(chromium):
    """Factory: `new_page(java_script_enabled=False, viewport=PHONE)` → a Page in a fresh context (own cookies).

    Every page records uncaught JavaScript errors and console errors in `page.js_errors`; the test fails at
    teardown if any page had one, so a broken script never passes unnoticed.
    """
    contexts, pages = [], []

    def make(**context_options):
        options = {"viewport": LAPTOP, "locale": "en-GB", "timezone_id": "UTC", **context_options}
        context = chromium.new_context(**options)
        context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(f"uncaught: {exc}"))
        page.on("console", lambda msg: _is_script_error(msg) and page.js_errors.append(f"console: {msg.text}"))
        pages.append(page)
        return page

    yield make
    errors = [error for page in pages for error in page.js_errors]
    for context in contexts:
        context.close()
    assert not errors, "JavaScript errors in the browser:\n" + "\n".join(errors)


def _is_script_error(message) -> bool:
    # A 4xx page (a form shown again with errors answers 422) is logged as "Failed to load resource": not a bug.
    return message.type == "error" and not message.text.startswith("Failed to load resource")


@pytest.fixture
def browser_page(new_page):
    """A laptop-size page with JavaScript on."""
    return new_page()


def screenshot(page, output_dir: str | os.PathLike, name: str, full_page: bool = True) -> Path:
    """Save a PNG of the page as <output_dir>/<name>.png (for a person to look at) and return its path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "page"
    path = Path(output_dir) / f"{safe}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def follow(page, locator) -> None:
    """Click a link or submit button and wait for the page it leads to (click alone does not wait)."""
    with page.expect_navigation():
        locator.click()
