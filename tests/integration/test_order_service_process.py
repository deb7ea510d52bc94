"""The order service run as a real process on a free port, the way users run it."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from lxml import etree

from order_service.seed import CUSTOMERS, ITEMS
from tests.support import ServiceProcess
from tests.unit.test_feed_http import order_body
from tests.unit.test_feed_rfc4287 import assert_valid_atom

A = "{http://www.w3.org/2005/Atom}"
POSITION = "{tag:atomshop.example,2026:ns/feed}position"


@pytest.fixture
def service(tmp_path):
    with ServiceProcess("order_service", tmp_path, env={"FEED_PAGE_SIZE": "5"}) as service:
        yield service


def walk_feed(url):
    """All entries from the current page back through prev-archive links: [(position, document)]."""
    entries, page = [], url
    while page:
        response = requests.get(page, timeout=10)
        assert response.status_code == 200
        assert_valid_atom(response.content)
        root = etree.fromstring(response.content)
        for entry in root.findall(A + "entry"):
            entries.append((int(entry.findtext(POSITION)), json.loads(entry.findtext(A + "content"))))
        page = next((link.get("href") for link in root.findall(A + "link") if link.get("rel") == "prev-archive"), None)
    return entries


def test_orders_placed_concurrently_appear_in_the_feed_once_each_in_gap_free_positions(service):
    def place(_):
        response = requests.post(service.url + "/api/orders", json=order_body(), timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(place, range(23)))
    entries = walk_feed(service.url + "/feed")
    assert sorted(p for p, _ in entries) == list(range(1, 24))
    assert sorted(d["id"] for _, d in entries) == sorted(ids)
    document = dict(entries)[1]
    assert requests.get(f"{service.url}/api/orders/{document['id']}", timeout=10).json() == document


def test_conditional_get_answers_304_over_real_http(service):
    requests.post(service.url + "/api/orders", json=order_body(), timeout=10)
    first = requests.get(service.url + "/feed", timeout=10)
    again = requests.get(service.url + "/feed", headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""


def test_a_restart_keeps_the_orders_and_does_not_seed_twice(service):
    customers = requests.get(service.url + "/api/customers", timeout=10).json()
    order_id = requests.post(service.url + "/api/orders", json=order_body(), timeout=10).json()["id"]
    service.restart()
    assert requests.get(service.url + "/api/customers", timeout=10).json() == customers
    assert requests.get(f"{service.url}/api/orders/{order_id}", timeout=10).status_code == 200
    assert requests.get(service.url + "/health", timeout=10).json()["feed_position"] == 1


def test_two_instances_starting_at_once_on_one_database_seed_the_demo_data_once(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    one = ServiceProcess("order_service", tmp_path / "one", env=env)
    two = ServiceProcess("order_service", tmp_path / "two", env=env)
    one.start(wait=False)
    two.start(wait=False)
    try:
        one.wait_healthy()
        two.wait_healthy()
        assert len(requests.get(one.url + "/api/customers", timeout=10).json()) == len(CUSTOMERS)
        assert len(requests.get(two.url + "/api/items", timeout=10).json()) == len(ITEMS)
    finally:
        one.stop()
        two.stop()
