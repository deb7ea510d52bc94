"""The fault-injection machinery itself: each fault really happens, and each checker really fails on bad data."""
from __future__ import annotations

import json
import time

import pytest
import requests
from lxml import etree

from tests.faults import hostile
from tests.faults.atom import Entry, Page, order_document, paged_feed
from tests.faults.checks import FeedWatcher, check_feed, parse_page, walk_feed
from tests.faults.hostile import HostileFeedServer
from tests.faults.proxy import FaultProxy, positions_in


@pytest.fixture
def feed_server():
    with HostileFeedServer() as server:
        server.set_routes(hostile.good_feed(12, size=5))
        yield server


@pytest.fixture
def proxy(feed_server):
    with FaultProxy(feed_server.url, stall_seconds=5) as p:
        yield p


def test_the_proxy_passes_pages_through_and_records_the_highest_position_it_delivered(proxy, feed_server):
    response = requests.get(proxy.url + "/feed", timeout=5)
    assert response.status_code == 200
    assert positions_in(response.content) == [12, 11]
    assert parse_page("", response.content).links["prev-archive"].startswith(proxy.url)  # later pages too
    assert proxy.max_position_served == 12
    archive = requests.get(proxy.url + "/feed/pages/1", timeout=5)
    assert positions_in(archive.content) == [5, 4, 3, 2, 1]
    assert proxy.counts["pass"] == 2 and proxy.faults_injected == {}


@pytest.mark.parametrize("mode, error", [
    ("reset", requests.ConnectionError),
    ("truncate", requests.exceptions.ChunkedEncodingError),
    ("truncate_chunked", requests.exceptions.ChunkedEncodingError),
])
def test_each_connection_fault_reaches_the_client_as_an_error(proxy, mode, error):
    proxy.set_mode(mode)
    with pytest.raises(error):
        requests.get(proxy.url + "/feed", timeout=5)
    assert proxy.counts[mode] == 1
    assert proxy.max_position_served == 0


@pytest.mark.parametrize("mode", ["500", "502", "503"])
def test_error_statuses_are_answered_as_injected(proxy, mode):
    proxy.set_mode(mode)
    assert requests.get(proxy.url + "/feed", timeout=5).status_code == int(mode)
    assert proxy.faults_injected == {mode: 1}


def test_a_truncated_xml_body_is_well_framed_but_not_well_formed(proxy):
    proxy.set_mode("truncate_xml")
    response = requests.get(proxy.url + "/feed", timeout=5)
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    assert proxy.max_position_served == 0


@pytest.mark.parametrize("mode", ["stall", "stall_body"])
def test_a_stall_outlasts_the_clients_read_timeout(proxy, mode):
    proxy.set_mode(mode)
    started = time.monotonic()
    with pytest.raises((requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)):
        requests.get(proxy.url + "/feed", timeout=(1, 0.5))  # reads the whole body: no stream=True
    assert time.monotonic() - started < 3
    proxy.release_stalls()


def test_refusing_closes_the_listening_socket_and_pass_reopens_it_on_the_same_port(proxy):
    port = proxy.port
    proxy.set_mode("refuse")
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(proxy.url + "/feed", timeout=2)
    assert "refused" in str(caught.value).lower()
    proxy.set_mode("pass")
    assert proxy.port == port
    assert requests.get(proxy.url + "/feed", timeout=5).status_code == 200


def test_a_seeded_mix_injects_the_same_faults_in_the_same_order(feed_server):
    def run(seed):
        with FaultProxy(feed_server.url, stall_seconds=0.2) as p:
            p.mix({"pass": 1, "503": 1, "truncate": 1, "reset": 1}, seed=seed)
            kinds = []
            for _ in range(30):
                before = dict(p.counts)
                try:
                    requests.get(p.url + "/feed", timeout=2)
                except requests.RequestException:
                    pass
                kinds += [k for k in p.counts if p.counts[k] != before.get(k, 0)]
            return kinds
    first = run(7)
    assert first == run(7)
    assert len(set(first)) == 4


def test_the_xxe_page_would_leak_the_local_file_into_a_parser_that_resolves_entities(tmp_path, feed_server):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER-xyz")
    feed_server.set_routes(hostile.xxe_local_file(str(secret)))
    body = requests.get(feed_server.feed_url, timeout=5).content
    unsafe = etree.fromstring(body, etree.XMLParser(resolve_entities=True, no_network=True))
    assert "TOP-SECRET-MARKER-xyz" in etree.tostring(unsafe, encoding="unicode")
    assert b"TOP-SECRET-MARKER-xyz" not in body
    safe = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    assert "TOP-SECRET-MARKER-xyz" not in etree.tostring(safe, encoding="unicode")


def test_the_billion_laughs_page_declares_a_gigabyte_expansion(feed_server):
    feed_server.set_routes(hostile.billion_laughs())
    body = requests.get(feed_server.feed_url, timeout=5).content
    assert len(body) < 5000 and b"&lol9;" in body and body.count(b"&lol8;") == 10


@pytest.mark.parametrize("declare_length", [True, False])
def test_the_huge_page_is_generated_while_sent_and_stops_when_the_client_hangs_up(feed_server, declare_length):
    size = 50 * 1024 * 1024
    feed_server.set_routes(hostile.huge_page(size, declare_length))
    with requests.get(feed_server.feed_url, timeout=10, stream=True) as response:
        assert (response.headers.get("Content-Length") == str(size)) is declare_length
        received = 0
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
            if received >= 2 * 1024 * 1024:
                break
    time.sleep(0.5)
    assert feed_server.bytes_sent["/feed"] < size
    with requests.get(feed_server.feed_url, timeout=10, stream=True) as response:
        total = sum(len(c) for c in response.iter_content(1 << 20))
    assert total == size


def test_walking_a_feed_whose_links_loop_is_detected(feed_server):
    feed_server.set_routes(hostile.link_loop("cycle"))
    with pytest.raises(AssertionError, match="loop"):
        walk_feed(feed_server.url)


def test_the_feed_checker_fails_on_a_lost_or_duplicated_order(feed_server):
    feed_server.set_routes(hostile.good_feed(12, size=5))
    assert check_feed(feed_server.url, list(range(1, 13))).total == 12
    with pytest.raises(AssertionError, match="missing from the feed"):
        check_feed(feed_server.url, list(range(1, 14)))
    entries = [Entry(p, p) for p in range(1, 12)] + [Entry(12, 3)]
    feed_server.set_routes(paged_feed(entries, 5))
    with pytest.raises(AssertionError, match="twice"):
        check_feed(feed_server.url, list(range(1, 12)))
    feed_server.set_routes(paged_feed([Entry(p, p) for p in (1, 2, 4)], 5))
    with pytest.raises(AssertionError, match="gap-free"):
        check_feed(feed_server.url, [1, 2, 4])


def test_the_feed_watcher_catches_a_position_visible_before_an_earlier_one(feed_server):
    feed_server.set_routes(paged_feed([Entry(p, p) for p in range(1, 7)], 5))
    watcher = FeedWatcher(feed_server.url, size=5, interval=0.02)
    watcher.start()
    time.sleep(0.2)
    assert watcher.violations == [] and watcher.reads > 0
    # 9 committed and visible while 8 is not yet: the plain-sequence race.
    feed_server.set_routes(paged_feed([Entry(p, p) for p in (*range(1, 8), 9)], 5))
    time.sleep(0.2)
    feed_server.set_routes(paged_feed([Entry(p, p) for p in range(1, 10)], 5))
    time.sleep(0.2)
    watcher.stop()
    assert any("not visible" in v for v in watcher.violations)
    assert any("appeared after" in v for v in watcher.violations)


def test_the_feed_watcher_checks_the_page_it_left_is_a_full_archive(feed_server):
    feed_server.set_routes(paged_feed([Entry(p, p) for p in range(1, 4)], 5))
    watcher = FeedWatcher(feed_server.url, size=5, interval=0.02)
    watcher.start()
    time.sleep(0.2)
    routes = paged_feed([Entry(p, p) for p in range(1, 7)], 5)
    routes["/feed/pages/1"].entries.pop(2)  # position 3 missing from the archive
    feed_server.set_routes(routes)
    time.sleep(0.2)
    watcher.stop()
    assert any("archive page 1" in v for v in watcher.violations)


def test_built_pages_parse_as_the_wire_format_says(feed_server):
    page = parse_page("x", Page("/feed", [Entry(3, 7)], prev_archive="/feed/pages/1").xml("http://h").encode())
    assert page.positions == [3] and page.order_ids == [7]
    assert page.links == {"self": "http://h/feed", "prev-archive": "http://h/feed/pages/1", "current": "http://h/feed"}
    assert json.loads(json.dumps(order_document(7)))["total"] == "42.00"
