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
    assert poller.long_poll_step() == 1.0  # backing off (1 s after the first failure), checked every second
    poller.tick()  # the schedule resumes but respects the same back-off
    assert len(feed.requests) == asked and poller.failures_in_a_row == 1


def test_a_follower_parses_the_page_it_polls_from_its_position_on(rsps, tmp_path, monkeypatch):
    import common.feeds.follow.page as page_module

    feed = FakeFeed(rsps, size=10, count=4)
    follower = make_follower(make_db(tmp_path), Recorder())
    follower.poll()
    parsed: list[int] = []
    parse_feed = page_module.parse_feed
    monkeypatch.setattr(page_module, "parse_feed", lambda body: parsed.append(body.count(b"<entry>")) or
                        parse_feed(body))
    feed.count = 6
    assert follower.poll() == 2
    # Entries 4 (the position, for the history check), 5 and 6 reach feedparser; 1-3 were handled before.
    assert parsed == [3]
    assert follower.load().position == 6


def test_the_entries_before_the_position_are_left_out_only_when_the_page_holds_the_position():
    from common.feeds.follow.page import parse_page
    from tests.unit.follower_feed import entry_xml, page_xml

    whole = page_xml(FEED_URL, [entry_xml(p) for p in range(1, 7)]).encode()
    assert [e.position for e in parse_page(FEED_URL, whole, handled=4).entries] == [4, 5, 6]
    assert [e.position for e in parse_page(FEED_URL, whole, handled=9).entries] == [1, 2, 3, 4, 5, 6]
    gap = page_xml(FEED_URL, [entry_xml(p) for p in (1, 2, 3, 5, 6)]).encode()
    # The history check must see the page as it is: a gap where the position should be.
    assert [e.position for e in parse_page(FEED_URL, gap, handled=4).entries] == [1, 2, 3, 5, 6]
    trimmed = parse_page(FEED_URL, whole, handled=4)
    assert (trimmed.prev, trimmed.next, trimmed.is_archive) == (parse_page(FEED_URL, whole).prev, None, False)


def test_a_follower_walking_back_to_the_page_that_just_filled_parses_only_its_entry(rsps, tmp_path, monkeypatch):
    import common.feeds.follow.page as page_module

    feed = FakeFeed(rsps, size=5, count=4)
    follower = make_follower(make_db(tmp_path), Recorder())
    follower.poll()
    parsed: list[int] = []
    parse_feed = page_module.parse_feed
    monkeypatch.setattr(page_module, "parse_feed", lambda body: parsed.append(body.count(b"<entry>")) or
                        parse_feed(body))
    feed.count = 7  # page 1 filled up (5), page 2 began (6, 7)
    assert follower.poll() == 3
    # The new current page (6, 7), then page 1 from position 4 on (4, 5): not entries 1-3 again.
    assert parsed == [2, 2]


def answering_at_once(feed: LongPollFeed, etag) -> None:
    """The current page, always 200 at once, never Preference-Applied, with the ETag `etag()` gives."""
    body = feed.page(feed.current)
    feed.overrides[FEED_URL] = lambda request: (
        200, {"Content-Type": "application/atom+xml; charset=utf-8", "ETag": etag()}, body)


def test_a_feed_that_ignores_if_none_match_is_not_long_polled_again_at_once(rsps, tmp_path):
    feed = LongPollFeed(rsps, honours=False, size=3, count=2)
    follower = make_follower(make_db(tmp_path), Recorder())
    poller = Poller(follower, interval=5, wait=20, clock=Clock(), reprobe=60)
    poller._thread = object()
    poller.long_poll_step()  # caught up: the ETag is kept
    answering_at_once(feed, lambda: '"same"')
    poller.long_poll_step()  # a long poll with the kept ETag: the page, at once; "same" is kept
    assert poller.long_poll_step() == 0  # a long poll answered 200 with the very ETag it sent
    assert feed.prefers[-1] == "wait=20" and feed.requests[-1][1] == '"same"'
    assert follower.client.wait_applied is False  # told by that one answer, whatever came before it
    assert poller.long_polling is False
    asked = len(feed.requests)
    assert poller.long_poll_step() > 0 and len(feed.requests) == asked  # no flood: scheduled polls from here


def test_a_feed_answering_every_long_poll_at_once_with_a_new_tag_falls_back_to_the_schedule(rsps, tmp_path):
    feed = LongPollFeed(rsps, honours=False, size=3, count=2)
    follower = make_follower(make_db(tmp_path), Recorder())
    poller = Poller(follower, interval=5, wait=20, clock=Clock(), reprobe=60)
    poller._thread = object()
    poller.long_poll_step()
    tags = iter(range(1000))
    answering_at_once(feed, lambda: f'"t{next(tags)}"')
    for _ in range(2):  # nothing new in either answer, and neither held
        assert poller.long_poll_step() == 0
    assert poller.long_polling is False
    asked = len(feed.requests)
    assert poller.long_poll_step() > 0 and len(feed.requests) == asked


def test_a_follower_with_no_validator_to_send_does_not_count_its_plain_gets_as_declined_long_polls(rsps, tmp_path):
    LongPollFeed(rsps, honours=True, size=3, count=2)
    # An entry being retried: no ETag kept, so each pass is a plain GET that handles nothing.
    follower = make_follower(make_db(tmp_path), Recorder(fail_on={2}), max_attempts=100)
    poller = Poller(follower, interval=5, wait=20, clock=Clock())
    poller._thread = object()
    for _ in range(4):
        poller.long_poll_step()
    assert poller.long_polling is None


@pytest.mark.parametrize("status, retry_after, waits", [
    (503, "30", 30.0),  # the feed's word, longer than the first back-off (1 s)
    (429, "30", 30.0),
    (503, "999999", 60.0),  # within the follower's own bound
    (503, "Wed, 01 Jan 2020 00:00:00 GMT", 1.0),  # a date gone by: the usual back-off
    (503, "soon", 1.0),  # malformed: ignored
    (500, "30", 1.0),  # only 429 and 503 carry it (RFC 9110 §10.2.3)
])
def test_a_feed_asking_to_retry_after_some_seconds_is_left_alone_that_long(rsps, tmp_path, status, retry_after,
                                                                          waits):
    feed = LongPollFeed(rsps, honours=False, size=3, count=2)
    feed.overrides[FEED_URL] = lambda request: (status, {"Retry-After": retry_after}, "")
    clock = Clock()
    poller = Poller(make_follower(make_db(tmp_path), Recorder()), interval=5, clock=clock)
    poller.tick()
    assert poller.failures_in_a_row == 1
    assert poller.next_allowed - clock.now == waits
    asked = len(feed.requests)
    clock.now += waits - 0.5
    poller.tick()
    assert len(feed.requests) == asked  # still left alone


def test_a_feed_sending_no_etag_is_polled_once_per_interval_not_by_both_the_thread_and_the_schedule(rsps, tmp_path):
    feed = LongPollFeed(rsps, honours=True, size=3, count=2)
    body = feed.page(feed.current)
    feed.overrides[FEED_URL] = lambda request: (200, {"Content-Type": "application/atom+xml"}, body)  # no ETag
    clock = Clock()
    poller = Poller(make_follower(make_db(tmp_path), Recorder()), interval=5, wait=20, clock=clock)
    poller._thread = object()
    assert poller.long_poll_step() == 0  # the two entries handled: at once again
    for _ in range(3):
        asked = len(feed.requests)
        assert poller.long_poll_step() == 5  # nothing to long poll with: a plain poll, then the interval
        assert len(feed.requests) == asked + 1
        poller.tick()  # the schedule's turn in the same interval
        assert len(feed.requests) == asked + 1
        clock.now += 5
