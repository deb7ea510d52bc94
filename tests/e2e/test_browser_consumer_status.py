"""A consumer's status panel in Chromium when things go wrong: an unreachable feed, then a poison entry."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import requests

from tests.browser import follow, screenshot
from tests.support import ServiceProcess, free_port, wait_until


def test_poll_now_against_an_unreachable_feed_says_why_and_the_panel_keeps_the_error(browser_page, tmp_path,
                                                                                    output_dir):
    dead_port = free_port()  # nothing listens there
    env = {"DATABASE_URL": "", "POLL_INTERVAL": "0", "ORDER_FEED_URL": f"http://127.0.0.1:{dead_port}/feed"}
    with ServiceProcess("invoicing_service", tmp_path / "invoicing", env=env) as invoicing:
        page = browser_page
        page.goto(invoicing.url + "/")
        follow(page, page.get_by_role("button", name="Poll now"))
        alert = page.get_by_role("alert").first
        assert alert.inner_text().startswith("Poll failed")
        assert "feed" in page.locator(".status__last-error").inner_text().lower()
        screenshot(page, output_dir, "invoicing-poll-failed")


def test_an_entry_that_keeps_failing_shows_up_as_a_dead_letter_in_the_panel(browser_page, tmp_path, output_dir):
    order_port = free_port()
    common = {"DATABASE_URL": "", "POLL_INTERVAL": "0", "ORDER_FEED_URL": f"http://127.0.0.1:{order_port}/feed"}
    with ServiceProcess("order_service", tmp_path / "order", env=common, port=order_port) as order, \
            ServiceProcess("shipping_service", tmp_path / "shipping", env=common) as shipping:
        # An entry no handler can use, written straight into the order feed's log (the API would refuse it).
        with sqlite3.connect(tmp_path / "order" / "data" / "order.db") as db:
            db.execute("INSERT INTO notifications (position, event_type, created, document) VALUES (1, ?, ?, ?)",
                       ("OrderCreated", datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "),
                        '{"id": 1, "customer": "<b>not an object</b>"}'))
        assert requests.get(order.url + "/health", timeout=5).json()["feed_position"] == 1
        page = browser_page
        page.goto(shipping.url + "/")

        def dead_lettered():
            follow(page, page.get_by_role("button", name="Poll now"))
            return page.locator(".status__dead-title").count() > 0

        wait_until(dead_lettered, timeout=30, interval=0.1, message="the poison entry to be dead-lettered")
        assert "<b>" not in page.locator(".status").inner_html().replace("&lt;b&gt;", "")
        assert page.get_by_role("link", name="Dead letters").is_visible()
        screenshot(page, output_dir, "shipping-dead-letter")
