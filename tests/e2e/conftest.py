"""End-to-end fixtures: a real Chromium (see tests/browser.py)."""
from tests.browser import *  # noqa: F401,F403  (chromium, new_page, browser_page)
