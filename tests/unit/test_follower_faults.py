"""A broken, slow, huge or hostile feed raises FeedError with its cause and advances nothing."""
from __future__ import annotations

import pytest
import requests
import responses

from common.feeds.follow.client import FeedClient, FeedError
from common.feeds.follow.errors import FollowerHalted
from tests.unit.follower_feed import BASE, FEED_URL, FakeFeed, entry_xml, make_db, make_follower, page_xml

PAGE2 = f"{BASE}/feed/pages/2"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def caught_up_follower(rsps, tmp_path, count=4, **kwargs):
    feed = FakeFeed(rsps, size=3, count=count)
    follower = make_follower(make_db(tmp_path), **kwargs)
    follower.poll()
    return feed, follower


def assert_fails_without_advancing(follower, match: str):
    before = follower.load()
    with pytest.raises(FeedError, match=match):
        follower.poll()
    assert follower.load() == before
    assert follower.last_error  # shown in /health


@pytest.mark.parametrize("body, match", [
    (b"this is not XML at all", "ill-formed|not an Atom"),
    (page_xml(FEED_URL, [entry_xml(5)]).encode()[:-40], "ill-formed"),
    (b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', "not an Atom"),
    ('<?xml version="1.0" encoding="utf-16"?><feed/>'.encode("utf-16"), "not UTF-8"),
])
def test_a_page_that_is_not_a_well_formed_atom_feed_is_refused(rsps, tmp_path, body, match):
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.count = 5
    feed.overrides[FEED_URL] = body
    assert_fails_without_advancing(follower, match)


def test_a_dtd_with_an_external_entity_is_refused_before_parsing(rsps, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.count = 5
    body = page_xml(FEED_URL, [entry_xml(5, content="&xxe;").replace("&amp;xxe;", "&xxe;")], prev=PAGE2)
    body = body.replace("?>\n", f'?>\n<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file://{secret}">]>\n', 1)
    feed.overrides[FEED_URL] = body
    assert_fails_without_advancing(follower, "DTD")


def test_a_billion_laughs_page_is_refused(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path)
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    feed.overrides[FEED_URL] = f'<?xml version="1.0"?><!DOCTYPE feed [{lol}]><feed>&lol9;</feed>'
    assert_fails_without_advancing(follower, "DTD")


@pytest.mark.parametrize("error, match", [
    (requests.exceptions.ConnectTimeout("connect timed out"), "timed out"),
    (requests.exceptions.ReadTimeout("read timed out"), "timed out"),
    (requests.exceptions.ConnectionError("Connection refused"), "cannot connect"),
    (requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused")), "connection refused"),
    (requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read, 90 more expected)"), "cut short"),
])
def test_network_failures_raise_a_feed_error_naming_the_cause(tmp_path, error, match):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED_URL, body=error)
        follower = make_follower(make_db(tmp_path))
        assert_fails_without_advancing(follower, match)
        assert match in follower.last_error


@pytest.mark.parametrize("status", [500, 502, 503, 404])
def test_an_http_error_status_is_a_feed_error(tmp_path, status):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED_URL, status=status, body="oops")
        assert_fails_without_advancing(make_follower(make_db(tmp_path)), f"HTTP {status}")


def test_an_archive_page_without_its_next_archive_link_is_refused(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path, count=4)  # bookmark /feed = page 2
    feed.count = 7  # /feed is page 3 (7); page 2 (4..6) is an archive
    feed.overrides[PAGE2] = page_xml(PAGE2, [entry_xml(p) for p in (4, 5, 6)], prev=f"{BASE}/feed/pages/1",
                                     archive=True)
    assert_fails_without_advancing(follower, "lacks the link.*next-archive")


def test_a_page_without_a_self_link_is_refused(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.count = 5
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(4), entry_xml(5)]).replace(
        f'<link rel="self" href="{FEED_URL}"/>', "")
    assert_fails_without_advancing(follower, "lacks the link.*self")


def test_a_feed_that_now_begins_after_the_position_halts_the_follower(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(p) for p in (9, 10)])
    with pytest.raises(FollowerHalted, match="begins at position 9"):
        follower.poll()
    assert follower.load().position == 4 and follower.load().halted


def test_a_gap_in_positions_is_refused(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(p) for p in (4, 5, 7)], prev=f"{BASE}/feed/pages/1")
    assert_fails_without_advancing(follower, "gap")


def test_a_page_that_skips_the_position_after_the_followers_is_refused_naming_it(rsps, tmp_path):
    """Caught up at 4, the feed serves 4 and 6: the within-page gap check sees only 6, so 5 must be asked for."""
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(p) for p in (4, 6)], prev=f"{BASE}/feed/pages/1")
    assert_fails_without_advancing(follower, "expected position 5 next, found 6")
    assert follower.handler.positions == [1, 2, 3, 4]


def test_a_page_that_skips_the_position_after_the_previous_pages_last_is_refused_naming_it(rsps, tmp_path):
    """An archive ends at 6, the next page starts at 8: each page is gap-free on its own, yet 7 is missing."""
    feed, follower = caught_up_follower(rsps, tmp_path, count=6)  # pages 1-2 archives, /feed empty
    feed.count = 8
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(8)], prev=PAGE2)
    with pytest.raises(FeedError, match="expected position 7 next, found 8"):
        follower.poll()
    assert follower.load().position == 6
    assert follower.handler.positions == [1, 2, 3, 4, 5, 6]


def test_an_entry_without_a_position_is_refused(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(4), entry_xml(5).replace("<atomshop:position>5"
                                                                                       "</atomshop:position>", "")])
    assert_fails_without_advancing(follower, "no valid atomshop:position")


def test_links_that_loop_stop_the_pass(rsps, tmp_path):
    FakeFeed(rsps, size=3, count=0)
    loop = f"{BASE}/feed/pages/7"
    rsps.add(responses.GET, loop, body=page_xml(loop, [entry_xml(p) for p in (4, 5, 6)], prev=FEED_URL,
                                               next_=FEED_URL, archive=True))
    follower = make_follower(make_db(tmp_path))
    feed_page = page_xml(FEED_URL, [entry_xml(p) for p in (7, 8)], prev=loop)
    rsps.registered()[0].callback = lambda request: (200, {}, feed_page)
    assert_fails_without_advancing(follower, "link loop")


def test_an_oversize_page_is_cut_off_at_the_limit(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=0)
    big = page_xml(FEED_URL, [entry_xml(1, content="x" * 50_000)])
    feed.overrides[FEED_URL] = big
    follower = make_follower(make_db(tmp_path), client=FeedClient(max_bytes=20_000))
    assert_fails_without_advancing(follower, "exceeds the 20000-byte limit")


def test_a_declared_oversize_content_length_is_refused_before_reading(tmp_path):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED_URL, body=b"x" * 30_000, headers={"Content-Length": "30000"},
                 auto_calculate_content_length=False)
        follower = make_follower(make_db(tmp_path), client=FeedClient(max_bytes=20_000))
        assert_fails_without_advancing(follower, "page of 30000 bytes exceeds")


def test_a_link_to_a_local_file_is_never_followed(rsps, tmp_path):
    FakeFeed(rsps, size=3, count=0)
    body = page_xml(FEED_URL, [entry_xml(5)], prev="file:///etc/passwd")
    rsps.registered()[0].callback = lambda request: (200, {}, body)
    assert_fails_without_advancing(make_follower(make_db(tmp_path)), "off the feed's origin")


def test_the_follower_recovers_once_the_feed_is_healthy_again(rsps, tmp_path):
    feed, follower = caught_up_follower(rsps, tmp_path)
    feed.count = 6
    feed.overrides[FEED_URL] = b"<feed"
    with pytest.raises(FeedError):
        follower.poll()
    del feed.overrides[FEED_URL]
    assert follower.poll() == 2
    assert follower.last_error is None and follower.failures == 1


def test_pages_read_ahead_before_a_broken_one_are_handled_then_the_error_is_raised(rsps, tmp_path):
    from sqlalchemy import update

    from tests.unit.follower_feed import MODELS
    feed = FakeFeed(rsps, size=3, count=11)  # pages 1-3 archives, /feed is page 4
    follower = make_follower(make_db(tmp_path))
    follower.load()
    with follower.db.write() as s:  # a consumer at 2, bookmarked on page 1, as if it had been down a while
        s.execute(update(MODELS.Tracking).values(position=2, bookmark=f"{BASE}/feed/pages/1"))
    feed.overrides[f"{BASE}/feed/pages/3"] = b"<feed>broken"
    with pytest.raises(FeedError, match="ill-formed"):
        follower.poll()
    assert follower.load().position == 6 and follower.load().bookmark == PAGE2
    del feed.overrides[f"{BASE}/feed/pages/3"]
    assert follower.poll() == 5
    assert [u for u, _ in feed.requests] == [f"{BASE}/feed/pages/{k}" for k in (1, 2, 3, 2, 3)] + [FEED_URL]
