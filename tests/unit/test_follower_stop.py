"""A stopped follower leaves nothing running behind it: no read-ahead thread, no pass started afterwards."""
from __future__ import annotations

import threading

import pytest
import responses

from common.feeds.follow.errors import Stopped
from common.feeds.follow.pagewalk import PassWalker
from tests.support import wait_until
from tests.unit.follower_feed import BASE, FakeFeed, Recorder, make_db, make_follower, set_bookmark


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def read_ahead_threads(consumer: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"follow-{consumer}_") and t.is_alive()]


def test_a_stopped_follower_leaves_no_read_ahead_thread_behind(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=2)
    db = make_db(tmp_path)
    follower = make_follower(db, Recorder(), consumer="stopping", parse_workers=0)
    assert follower.poll() == 2
    feed.count = 30  # nine pages more: going forward along next-archive, the next group is read ahead
    set_bookmark(db, f"{BASE}/feed/pages/1")
    assert follower.poll() == 28
    assert read_ahead_threads("stopping")
    follower.stop()
    wait_until(lambda: not read_ahead_threads("stopping"), message="the read-ahead thread to end")


def test_a_walk_that_would_read_ahead_after_stop_ends_as_stopped(rsps, tmp_path):
    FakeFeed(rsps, size=3, count=30)
    follower = make_follower(make_db(tmp_path), Recorder(), consumer="stopped", parse_workers=0)
    follower.stop()
    walk = PassWalker(follower.client, follower._ahead, max_pages=10, group_pages=2)
    with pytest.raises(Stopped):
        walk.read_ahead(f"{BASE}/feed/pages/1")
