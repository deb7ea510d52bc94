"""The follower reads the paged feed from its durable position: bookmarks, walking back, 304s."""
from __future__ import annotations

import pytest
import responses

from tests.unit.follower_feed import (
    BASE,
    FEED_URL,
    FakeFeed,
    Recorder,
    effects,
    make_db,
    make_follower,
    set_bookmark,
)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_new_consumer_walks_back_to_the_oldest_archive_once_and_handles_everything_in_order(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=10)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    assert follower.poll() == 10
    assert handler.positions == list(range(1, 11))
    assert effects(db) == list(range(1, 11))
    assert [u for u, _ in feed.requests] == [FEED_URL] + [f"{BASE}/feed/pages/{k}" for k in (3, 2, 1)]
    assert follower.load().position == 10


def test_polling_again_with_nothing_new_is_one_conditional_request_answered_304(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=10)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    before = len(feed.requests)
    assert follower.poll() == 0
    assert feed.requests[before:] == [(FEED_URL, '"p4-10"')]


def test_resuming_mid_page_handles_only_the_entries_after_the_position(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=8)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()
    feed.count = 9
    assert follower.poll() == 1
    assert handler.positions == list(range(1, 10))


def test_a_bookmarked_current_page_that_moved_on_is_found_again_by_walking_back(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=4)  # the consumer stops at 4, on the then current page 2
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()
    feed.count = 14  # /feed is now page 5; page 2 holds 5 and 6, pages 3 and 4 follow
    before = len(feed.requests)
    assert follower.poll() == 10
    assert handler.positions == list(range(1, 15))
    urls = [u for u, _ in feed.requests[before:]]
    assert urls == [FEED_URL] + [f"{BASE}/feed/pages/{k}" for k in (4, 3, 2)]
    assert all(urls.count(u) == 1 for u in urls)


def test_a_bookmarked_archive_page_is_read_once_then_next_archive_is_followed(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=4)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    feed.count = 8
    follower.poll()  # walks back to page 2, then reads /feed (page 3): bookmark is /feed again
    feed.count = 20
    before = len(feed.requests)
    assert follower.poll() == 12
    assert [u for u, _ in feed.requests[before:]] == [FEED_URL] + [f"{BASE}/feed/pages/{k}" for k in (6, 5, 4, 3)]
    # Now the bookmark is an archive page holding the position? No: the current page holds 19 and 20.
    assert follower.load().bookmark == FEED_URL


def test_resuming_from_an_archive_bookmark_costs_one_request_per_page(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=12)
    db, handler = make_db(tmp_path), Recorder(fail_on={8})
    follower = make_follower(db, handler, max_attempts=5)
    follower.poll()  # stops before 8: the bookmark is page 3, an archive holding 7
    assert follower.load().position == 7 and follower.load().bookmark == f"{BASE}/feed/pages/3"
    handler.fail_on.clear()
    before = len(feed.requests)
    assert follower.poll() == 5
    assert [u for u, _ in feed.requests[before:]] == [f"{BASE}/feed/pages/3", f"{BASE}/feed/pages/4", FEED_URL]


def test_an_empty_current_page_after_a_full_archive_is_caught_up_with(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=6)  # /feed is page 3, empty, with prev-archive page 2
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    assert follower.poll() == 6
    assert follower.load().bookmark == FEED_URL
    assert follower.poll() == 0
    assert feed.requests[-1] == (FEED_URL, '"p3-6"')
    feed.count = 7
    assert follower.poll() == 1
    assert handler.positions == list(range(1, 8))


def test_an_empty_feed_handles_nothing_and_is_revalidated_next_time(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=0)
    follower = make_follower(make_db(tmp_path))
    assert follower.poll() == 0
    assert follower.poll() == 0
    assert feed.requests[-1] == (FEED_URL, '"p1-0"')
    feed.count = 2
    assert follower.poll() == 2


def test_a_long_backlog_fetches_each_archive_page_exactly_once(rsps, tmp_path):
    feed = FakeFeed(rsps, size=5, count=503)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    assert follower.poll() == 503
    urls = [u for u, _ in feed.requests]
    assert len(urls) == len(set(urls)) == 101
    assert handler.positions == list(range(1, 504))


def test_entries_are_handled_by_position_not_by_document_order(rsps, tmp_path):
    feed = FakeFeed(rsps, size=10, count=0)
    from tests.unit.follower_feed import entry_xml, page_xml
    shuffled = [entry_xml(p) for p in (3, 1, 4, 2)]
    feed.overrides[FEED_URL] = page_xml(FEED_URL, shuffled)
    db, handler = make_db(tmp_path), Recorder()
    assert make_follower(db, handler).poll() == 4
    assert handler.positions == [1, 2, 3, 4]


def test_a_different_namespace_prefix_for_the_position_is_understood(rsps, tmp_path):
    feed = FakeFeed(rsps, size=10, count=0)
    from tests.unit.follower_feed import entry_xml, page_xml
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(p, prefix="x") for p in (1, 2)], prefix="x")
    assert make_follower(make_db(tmp_path)).poll() == 2


PAGE2 = f"{BASE}/feed/pages/2"


def page2_redirected_once(feed: FakeFeed, db, bookmark: str) -> list[str]:
    """Bookmark `bookmark` (no ETag) and have page 2 answered, the first time, by a redirect to /feed (as the
    publisher does while it is being filled), as itself afterwards; returns the URLs page 2 was asked for."""
    set_bookmark(db, bookmark)
    served = []

    def once_redirected(request):
        served.append(request.url)
        if len(served) == 1:  # by the time /feed answers, page 2 is full and /feed is a later page
            return 302, {"Location": FEED_URL}, ""
        return 200, {}, feed.page(2)

    feed.overrides[PAGE2] = once_redirected
    return served


def test_a_page_redirected_to_feed_that_fills_meanwhile_is_walked_back_to_not_taken_for_a_loop(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=4)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()  # at 4, on page 2
    served = page2_redirected_once(feed, db, bookmark=PAGE2)  # bookmarked by page 2's own URL
    feed.count = 8
    assert follower.poll() == 4
    assert handler.positions == list(range(1, 9))
    assert served == [PAGE2, PAGE2]


@pytest.mark.parametrize("count", [6, 8], ids=["now-empty", "now-begins-after"])
def test_walking_forward_to_a_page_that_filled_while_redirected_reads_it_again_instead_of_halting(
        rsps, tmp_path, count):
    feed = FakeFeed(rsps, size=3, count=5)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()  # at 5, on page 2
    # A bookmark before the position's page: the walk goes on along next-archive to page 2, still being filled.
    served = page2_redirected_once(feed, db, bookmark=f"{BASE}/feed/pages/1")
    feed.count = count
    assert follower.poll() == count - 5
    assert handler.positions == list(range(1, count + 1))
    assert served == [PAGE2, PAGE2]


def test_an_instance_overtaken_by_another_never_stores_a_bookmark_behind_the_position(rsps, tmp_path):
    FakeFeed(rsps, size=3, count=9)
    db = make_db(tmp_path)
    slow, fast = make_follower(db, Recorder()), make_follower(db, Recorder())
    load = slow.load

    def load_then_overtaken():
        state = load()
        fast.poll()  # the other instance handles everything while this one walks back to page 1
        return state

    slow.load = load_then_overtaken
    stored = []
    advance = slow.tracking.advance

    def recording_advance(session, old, new, *args):
        moved = advance(session, old, new, *args)
        stored.append((new.position, new.bookmark))
        return moved

    slow.tracking.advance = recording_advance
    assert slow.poll() == 0
    assert fast.load().position == 9 and effects(db) == list(range(1, 10))
    # Each bookmark stored names the page holding the position, or the current page: never an archive before it,
    # from which the next pass would walk forward through pages that may be filling.
    behind = [(p, b) for p, b in stored
              if b != FEED_URL and not (int(b.rsplit("/", 1)[1]) - 1) * 3 < p <= int(b.rsplit("/", 1)[1]) * 3]
    assert behind == []
