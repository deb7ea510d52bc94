"""When the panel and /health say a failing feed is tried again (common/service/outage.py `next_try`)."""
from __future__ import annotations

import pytest

from common.service.outage import next_try

SCHEDULED = {"interval": 5, "running": True, "long_poll_wait": 0}
LONG_POLLING = {"interval": 5, "running": True, "long_poll_wait": 20}


@pytest.mark.parametrize("status, backing_off, said", [
    (SCHEDULED, 2.0, "next try in 5 s"),  # the back-off ends before the next scheduled poll
    (SCHEDULED, 32.0, "next try in 32 s"),
    (LONG_POLLING, 2.0, "next try in 2 s"),  # the long-poll thread goes as soon as the back-off ends
    (LONG_POLLING, 0.2, "next try in 1 s"),
    ({**LONG_POLLING, "running": False}, 0.0, "next try in 5 s"),  # no thread of its own (not served)
    ({**LONG_POLLING, "long_polling": False}, 2.0, "next try in 5 s"),  # the feed ignores Prefer: the schedule
])
def test_the_next_try_is_when_the_poller_will_really_try(status, backing_off, said):
    assert next_try({**status, "backing_off_for": backing_off}) == said


def test_with_scheduled_polls_off_it_says_how_to_try():
    assert next_try({"interval": 0, "running": False}) == "scheduled polls are off: press Poll now to try again"


@pytest.mark.parametrize("technical, words, answered", [
    ("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /feed (Caused by "
     "NewConnectionError('<urllib3.connection.HTTPConnection object>: Failed to establish a new connection: "
     "[Errno 111] Connection refused'))", "connection refused", False),
    ("http://o.test/feed: the page declares a DTD or entities, which is refused (XXE / entity expansion)",
     "a page declares a DTD, which is refused", True),
    ("http://o.test/feed: an element with more than 64 attributes, which is refused", "a page is too large", True),
])
def test_a_page_the_follower_refuses_is_not_told_as_a_refused_connection(technical, words, answered):
    from common.service.outage import short_cause

    assert short_cause(technical) == (words, answered)
