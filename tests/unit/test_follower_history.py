"""History is never rewritten (issue 10, finding 1): a follower confirms each pass that the feed still holds the
entry at its position, halts durably when it does not, and resumes only after `reset_position`."""
from __future__ import annotations

import pytest
import responses

from common.feeds.follow.errors import FollowerHalted
from tests.unit.follower_feed import BASE, FEED_URL, FakeFeed, Recorder, effects, entry_xml, make_db, make_follower


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def rewound(feed: FakeFeed, count: int, first_order_id: int = 100) -> None:
    """The publisher's database recreated: the same positions now name other orders (other atom:ids)."""
    feed.count = count
    feed.entry_overrides = {p: entry_xml(p, order_id=first_order_id + p) for p in range(1, count + 1)}


def test_the_tracking_record_keeps_the_id_and_updated_of_the_entry_at_its_position(rsps, tmp_path):
    FakeFeed(rsps, size=3, count=7)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    state = follower.load()
    assert (state.position, state.entry_id, state.entry_updated) == (
        7, "tag:atomshop.example,2026:order/7", "2026-01-01T00:00:00Z")


@pytest.mark.parametrize("count", [4, 9, 30], ids=["shorter", "same-length", "longer"])
def test_a_feed_holding_another_entry_at_the_position_halts_the_follower_durably(rsps, tmp_path, count):
    feed = FakeFeed(rsps, size=3, count=9)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    assert follower.poll() == 9
    rewound(feed, count)
    with pytest.raises(FollowerHalted, match="history was rewritten"):
        follower.poll()
    assert effects(db) == list(range(1, 10))  # nothing of the new feed applied
    assert follower.load().position == 9
    # Durable: another instance (a restart) on the same database sees the halt before reading anything.
    other = make_follower(db, Recorder())
    requests_before = len(feed.requests)
    with pytest.raises(FollowerHalted):
        other.poll()
    assert len(feed.requests) == requests_before
    assert other.stats()["halted"]["reason"].startswith("the feed ")


def test_an_empty_feed_halts_a_follower_that_has_handled_entries(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=4)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    feed.count = 0
    with pytest.raises(FollowerHalted, match="is empty"):
        follower.poll()


def test_a_gone_bookmark_is_read_from_the_feed_url_and_the_check_still_applies(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=5)  # caught up at 5, bookmark /feed/pages/2 once the page fills
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    feed.count = 7
    follower.poll()
    assert follower.load().bookmark == f"{BASE}/feed/pages/3" or follower.load().bookmark == FEED_URL
    rewound(feed, 2)  # restored from a backup taken at 2 orders: page 3 is gone (404)
    with pytest.raises(FollowerHalted, match="ends at position 2"):
        follower.poll()


def test_reset_position_clears_the_halt_and_the_follower_resumes_after_it(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=6)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()
    rewound(feed, 8)
    with pytest.raises(FollowerHalted):
        follower.poll()
    old = follower.reset_position(0)
    assert old.position == 6 and old.halted
    fresh = follower.load()
    assert (fresh.position, fresh.bookmark, fresh.etag, fresh.entry_id, fresh.halted) == (0, None, None, None, None)
    handler.positions.clear()
    assert follower.poll() == 8
    assert handler.positions == list(range(1, 9))  # the new orders 101–108, none skipped
    assert effects(db) == list(range(1, 7)) + list(range(101, 109))


def test_a_record_without_an_entry_id_trusts_the_feed_once_and_records_it(rsps, tmp_path):
    FakeFeed(rsps, size=3, count=5)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    follower.reset_position(5)  # as after an upgrade from a record that kept no entry id
    assert follower.load().entry_id is None
    assert follower.poll() == 0
    assert follower.load().entry_id == "tag:atomshop.example,2026:order/5"


def test_a_change_of_atom_updated_alone_is_a_rewritten_history(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=3)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    feed.entry_overrides = {3: entry_xml(3).replace("<updated>2026-01-01T00:00:00Z", "<updated>2026-02-02T00:00:00Z")}
    with pytest.raises(FollowerHalted, match="different entry at position 3"):
        follower.poll()


def test_a_cached_current_page_older_than_the_position_is_asked_of_the_publisher_not_taken_for_a_rewind(
        rsps, tmp_path):
    from tests.unit.follower_feed import page_xml, set_bookmark
    feed = FakeFeed(rsps, size=3, count=5)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()  # at 5 (another instance, say, read it by a long poll that passed the front door's cache)
    set_bookmark(db, FEED_URL)
    feed.count = 8
    asked = []

    def cached_copy_unless_long_poll(request):
        asked.append((request.headers.get("Prefer"), request.headers.get("If-None-Match")))
        if request.headers.get("Prefer") is None:  # the cache's copy from when the feed held 4 entries
            stale = page_xml(FEED_URL, [entry_xml(4)], prev=f"{BASE}/feed/pages/1")
            return 200, {"Content-Type": "application/atom+xml", "ETag": '"p2-4"'}, stale
        # A long poll goes to the publisher: its current page.
        return 200, {"Content-Type": "application/atom+xml", "ETag": '"p3-8"'}, feed.page(feed.current)

    feed.overrides[FEED_URL] = cached_copy_unless_long_poll
    assert follower.poll() == 3
    assert handler.positions == list(range(1, 9))
    assert asked[:2] == [(None, None), ("wait=1", '"p2-4"')]


def test_a_current_page_ending_before_the_position_that_the_publisher_confirms_halts(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=5)
    follower = make_follower(make_db(tmp_path))
    follower.poll()
    feed.count = 4  # restored from a backup taken at 4 orders: the publisher itself says so (304 to the long poll)
    with pytest.raises(FollowerHalted, match="ends at position 4"):
        follower.poll()
    assert ('http://orders.test/feed', '"p2-4"') in feed.requests
