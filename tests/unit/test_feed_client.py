"""FeedClient's per-request machinery: the environment read once per origin, one watchdog for every deadline."""
from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import responses

from common.feeds.follow import deadline as deadlines
from common.feeds.follow.client import FeedClient
from common.feeds.follow.deadline import Deadline

FEED = "http://feed.test/feed"
BODY = b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>'


def test_a_client_takes_the_proxy_of_its_origin_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = FeedClient(origin=FEED)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED, body=BODY)
        rsps.add(responses.GET, FEED, body=BODY)
        assert client.download(FEED)[0] == BODY
        assert client.session.proxies["http"] == "http://proxy.test:3128"
        assert client.session.trust_env is False  # requests no longer reads the environment per request
        monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.test:3128")
        client.download(FEED)
    assert client.session.proxies["http"] == "http://proxy.test:3128"


def test_an_origin_the_environment_exempts_from_proxies_is_reached_directly(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "feed.test")
    client = FeedClient(origin=FEED)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED, body=BODY)
        client.download(FEED)
    assert "http" not in client.session.proxies


def test_a_client_without_an_origin_leaves_the_environment_to_requests():
    client = FeedClient()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED, body=BODY)
        client.download(FEED)
    assert client.session.trust_env is True


def test_a_deadline_that_passes_cuts_a_blocked_read_short():
    reader, writer = socket.socketpair()
    reader.settimeout(30)  # a watchdog that never fires fails the test instead of hanging it
    with reader, writer, Deadline(0.2) as deadline:
        deadline.watch(SimpleNamespace(sock=reader))
        assert reader.recv(1) == b""  # shut down under the read
    assert deadline.expired


def test_an_ended_deadline_never_cuts_its_socket_later():
    reader, writer = socket.socketpair()
    with reader, writer:
        with Deadline(0.05) as deadline:
            deadline.watch(SimpleNamespace(sock=reader))
        time.sleep(0.2)  # past the deadline's time
        writer.sendall(b"x")
        reader.settimeout(30)
        assert reader.recv(1) == b"x"
        assert not deadline.expired


def test_the_watchdog_forgets_ended_deadlines_so_its_memory_stays_bounded():
    with Deadline(60):  # a live deadline at the top: the ended ones under it are never popped by time
        for _ in range(5000):
            with Deadline(30):
                pass
        assert len(deadlines._watchdog._due) <= 2 * 1024
