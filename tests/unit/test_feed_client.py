"""FeedClient's per-request machinery: the environment read once per origin."""
from __future__ import annotations

import responses

from common.feeds.follow.client import FeedClient

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
