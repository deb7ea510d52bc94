"""The follower's long poll (`Prefer: wait`) against feeds that hold it, ignore it, or fail (responses)."""
from __future__ import annotations

import pytest
import requests
import responses

from common.feeds.follow.poller import Poller
from tests.unit.follower_feed import (
    FEED_URL,
    FakeFeed,
    Recorder,
    make_db,
    make_follower,
)


class LongPollFeed(FakeFeed):
    """FakeFeed that records Prefer and, when `honours`, says it held the request (Preference-Applied)."""

    def __init__(self, rsps, honours: bool, **kwargs):
        self.honours = honours
        self.prefers: list[str | None] = []
        super().__init__(rsps, **kwargs)

    def _serve(self, request):
        self.prefers.append(request.headers.get("Prefer"))
        status, headers, body = super()._serve(request)
        if self.honours and request.headers.get("Prefer"):
            headers = {**headers, "Preference-Applied": "wait=20"}
        return status, headers, body


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_feed_that_holds_long_polls_is_long_polled_and_the_schedule_stands_aside(rsps, tmp_path):
    feed = LongPollFeed(rsps, honours=True, size=3, count=5)
    follower = make_follower(make_db(tmp_path), Recorder())
    poller = Poller(follower, interval=5, wait=20)
    poller._thread = object()  # as if started: only the steps are driven here
    assert poller.long_poll_step() == 0  # a new consumer catches up first: no validator yet, so no Prefer
    assert feed.prefers[-1] is None
    assert poller.long_poll_step() == 0
    assert feed.prefers[-1] == "wait=20" and feed.requests[-1][1] is not None
    assert poller.long_polling is True
    asked = len(feed.requests)
    poller.tick()
    assert len(feed.requests) == asked  # no scheduled poll while the long poll does the job


def test_a_feed_that_ignores_prefer_is_polled_on_schedule_and_asked_again_later(rsps, tmp_path):
    feed = LongPollFeed(rsps, honours=False, size=3, count=5)
    follower = make_follower(make_db(tmp_path), Recorder())
    clock = Clock()
    poller = Poller(follower, interval=5, wait=20, clock=clock, reprobe=60)
    poller._thread = object()
    poller.long_poll_step()
    assert poller.long_poll_step() == 0
    assert feed.prefers[-1] == "wait=20"
    assert poller.long_polling is False
    asked = len(feed.requests)
    assert poller.long_poll_step() > 0  # declined: no long poll for a while
    assert len(feed.requests) == asked
    poller.tick()  # the scheduled poll reads the feed
    assert len(feed.requests) == asked + 1 and feed.prefers[-1] is None
    feed.count += 1
    poller.tick()
    assert follower.stats()["position"] == 6
    clock.now += 61
    feed.honours = True  # upgraded meanwhile: asked again after `reprobe`
    poller.long_poll_step()
    assert feed.prefers[-1] == "wait=20" and poller.long_polling is True


def test_a_failing_long_poll_backs_off_and_shares_the_back_off_with_the_schedule(rsps, tmp_path):
    feed = LongPollFeed(rsps, honours=True, size=3, count=2)
    follower = make_follower(make_db(tmp_path), Recorder())
    clock = Clock()
    poller = Poller(follower, interval=5, wait=20, clock=clock)
    poller._thread = object()
    poller.long_poll_step()
    poller.long_poll_step()
    assert poller.long_polling is True
    def refuse(request):
        raise requests.ConnectionError("refused")

    feed.overrides[FEED_URL] = refuse
    assert poller.long_poll_step() == 0
    assert poller.long_polling is None and poller.failures_in_a_row == 1
    asked = len(feed.requests)
    assert poller.long_poll_step() == 1.0  # backing off (10 s), checked every second
    poller.tick()  # the schedule resumes but respects the same back-off
    assert len(feed.requests) == asked and poller.failures_in_a_row == 1
