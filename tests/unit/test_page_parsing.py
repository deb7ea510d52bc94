"""Pages of a backlog parsed in worker processes: the same pages and errors as inline, and no process left behind."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
import responses

from common.feeds.follow import parsing
from common.feeds.follow.errors import FeedError
from common.feeds.follow.page import parse_page
from common.feeds.follow.parsing import PageParser, Parsing
from common.feeds.follow.prescan import prescan
from tests.support import wait_until
from tests.unit.follower_feed import BASE, FEED_URL, FakeFeed, Recorder, entry_xml, make_db, make_follower, page_xml

REPO = Path(__file__).resolve().parents[2]
GOOD = page_xml(FEED_URL, [entry_xml(p) for p in (1, 2, 3)]).encode()
# Well-formed XML the pre-scan lets through, which feedparser's checks refuse.
NOT_ATOM = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def parsed(parser: PageParser, body: bytes, pooled: bool = True) -> Parsing:
    scan = prescan(FEED_URL, body)
    return Parsing(FEED_URL, FEED_URL, scan, parser.submit(FEED_URL, body, '"e"', scan, pooled))


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before open(), or between open() and read()
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def workers() -> list[int]:
    executor = parsing._pool._executor
    return list(executor._processes) if executor is not None else []


def test_a_page_parsed_in_a_worker_is_the_page_parsed_inline():
    parser = PageParser(workers=1)
    try:
        assert parsed(parser, GOOD).page() == parse_page(FEED_URL, GOOD, '"e"')
        assert workers()  # it did go to a process
    finally:
        parser.close()


def test_a_page_a_worker_refuses_raises_the_feed_error_it_raises_inline():
    parser = PageParser(workers=1)
    try:
        with pytest.raises(FeedError) as inline:
            parse_page(FEED_URL, NOT_ATOM)
        with pytest.raises(FeedError) as pooled:
            parsed(parser, NOT_ATOM).page()
        assert str(pooled.value) == str(inline.value) == f"{FEED_URL}: not an Atom 1.0 feed"
    finally:
        parser.close()


def test_a_parser_without_workers_parses_in_the_calling_thread():
    parser = PageParser(workers=0)
    before = workers()
    assert parsed(parser, GOOD).page().last == 3
    assert workers() == before


def test_a_worker_that_died_under_a_page_is_a_feed_error_naming_the_page():
    broken: Future = Future()
    broken.set_exception(BrokenProcessPool("a child process terminated abruptly"))
    with pytest.raises(FeedError, match=f"{FEED_URL}: the process parsing the page ended unexpectedly"):
        Parsing(FEED_URL, FEED_URL, None, broken).page()


def test_after_a_worker_is_killed_the_next_pages_are_parsed_all_the_same():
    parser = PageParser(workers=1)
    try:
        parsed(parser, GOOD).page()
        for pid in workers():
            os.kill(pid, signal.SIGKILL)
        outcomes = []
        for _ in range(3):  # the first may meet the broken pool (a FeedError); then a fresh pool takes them
            try:
                outcomes.append(parsed(parser, GOOD).page().last)
            except FeedError as exc:
                outcomes.append(str(exc))
        assert set(outcomes) <= {3, f"{FEED_URL}: the process parsing the page ended unexpectedly"}
        assert parsed(parser, GOOD).page().last == 3
    finally:
        parser.close()


def test_the_pool_stays_while_another_follower_uses_it_and_goes_with_the_last(rsps):
    gc.collect()  # followers of earlier tests, never stopped, no longer count once collected
    first, second = PageParser(workers=1), PageParser(workers=1)
    parsed(first, GOOD).page()
    parsed(second, GOOD).page()
    pids = workers()
    first.close()
    assert workers() == pids and all(alive(pid) for pid in pids)
    assert parsed(second, GOOD).page().last == 3
    second.close()
    wait_until(lambda: not any(alive(pid) for pid in pids), message="the parsing workers to exit")


def test_a_stopped_follower_leaves_no_parsing_process_behind(rsps, tmp_path):
    gc.collect()
    FakeFeed(rsps, size=3, count=30)  # ten pages: a new consumer walks back through nine
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    assert follower.poll() == 30
    assert handler.positions == list(range(1, 31))
    pids = workers()
    assert pids  # the walk back was parsed in workers
    follower.stop()
    wait_until(lambda: not any(alive(pid) for pid in pids), message="the parsing workers to exit")


def test_a_follower_with_no_parse_workers_reads_a_backlog_in_its_own_process(rsps, tmp_path):
    gc.collect()
    FakeFeed(rsps, size=3, count=30)
    for parser in list(parsing._pool._users):
        parser.close()  # no pool left over from other tests
    follower = make_follower(make_db(tmp_path), parse_workers=0)
    assert follower.poll() == 30
    assert workers() == []


def test_workers_exit_when_their_process_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from common.feeds.follow import parsing
        from common.feeds.follow.prescan import prescan
        body = {GOOD!r}
        if __name__ == "__main__":
            parser = parsing.PageParser(workers=2)
            parsing.Parsing("u", "u", None, parser.submit("u", body, None, prescan("u", body))).page()
            print(*parsing._pool._executor._processes, flush=True)
            time.sleep(120)
    """)
    path = tmp_path / "host.py"
    path.write_text(script)
    host = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in host.stdout.readline().split()]
        assert pids and all(alive(pid) for pid in pids)
        pids += {parent_of(pid) for pid in pids} - {host.pid}  # the fork server
    finally:
        host.kill()  # no shutdown, no atexit: as the OOM killer or kill -9 would
        host.wait()
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout=30,
               message="orphaned workers and the fork server to exit")


def test_a_page_fetched_ahead_is_used_only_where_the_full_parse_agrees(rsps, tmp_path, monkeypatch):
    from common.feeds.follow import pagewalk

    feed = FakeFeed(rsps, size=3, count=11)  # pages 1-3 archives, /feed is page 4
    page3, page2, page1 = (f"{BASE}/feed/pages/{k}" for k in (3, 2, 1))

    def misread(url, body, **kwargs):  # the pre-scan of page 3 names page 1 where its XML (feedparser) says 2
        scan = prescan(url, body, **kwargs)
        if url == page3:
            scan.links["prev-archive"] = page1
        return scan

    monkeypatch.setattr(pagewalk, "prescan", misread)
    db, handler = make_db(tmp_path), Recorder()
    assert make_follower(db, handler).poll() == 11
    assert handler.positions == list(range(1, 12))
    urls = [u for u, _ in feed.requests]
    assert urls[:3] == [FEED_URL, page3, page1]  # the guess was fetched…
    assert urls.count(page2) == 1 and urls.count(page1) == 2  # …and not used: page 2 came next, then page 1 again


def test_a_follower_that_keeps_up_never_hands_a_page_to_the_pool(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=2)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()
    for count in range(3, 11):  # one entry at a time, across page boundaries
        feed.count = count
        assert follower.poll() == 1
    assert handler.positions == list(range(1, 11))
    assert follower.parser not in parsing._pool._users


def test_a_consumer_resuming_from_an_old_bookmark_reads_the_pages_ahead_in_workers(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=5)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    follower.poll()
    feed.count = 40  # it was down a while: 35 new entries on 12 pages after its bookmark
    assert follower.poll() == 35
    assert handler.positions == list(range(1, 41))
    assert follower.parser in parsing._pool._users


def test_the_pre_scan_guesses_the_first_position_from_the_entries_xml_alone():
    body = page_xml(FEED_URL, [entry_xml(p, prefix="as") for p in (7, 8, 9)], prefix="as")
    body = body.replace("<title>Orders</title>", "<title>Orders</title><!-- <as:position>1</as:position> -->")
    scan = prescan(FEED_URL, body.encode())
    assert scan.first == 7
    assert scan.holds(8) and not scan.holds(6) and not scan.holds(0)
    assert prescan(FEED_URL, page_xml(FEED_URL, []).encode()).first is None
