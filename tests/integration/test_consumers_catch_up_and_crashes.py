"""Consumers as real processes: a 50-page backlog, two instances on one SQLite file, SIGKILL and restart."""
from __future__ import annotations

import random
import threading
import time

import pytest
import requests

from tests.integration.test_flow_orders_to_invoices_and_shipments import place_orders
from tests.support import ServiceProcess, wait_until


@pytest.fixture
def order(tmp_path):
    with ServiceProcess("order_service", tmp_path / "order", env={"FEED_PAGE_SIZE": "10"}) as service:
        yield service


def consumer(package: str, tmp_path, order, name: str, interval: str = "0", database: str | None = None):
    env = {"ORDER_FEED_URL": f"{order.url}/feed", "POLL_INTERVAL": interval}
    if database:
        env["DATABASE_URL"] = database
    return ServiceProcess(package, tmp_path / name, env=env, name=name)


def health(service) -> dict:
    return requests.get(f"{service.url}/health", timeout=10).json()


def test_a_500_order_backlog_over_50_pages_is_caught_up_in_one_poll(order, tmp_path):
    place_orders(order.url, 500, threads=6)
    feed = requests.get(f"{order.url}/feed", timeout=5).text
    assert f"{order.url}/feed/pages/50" in feed  # /feed is page 51 (empty), 50 archives behind it
    with consumer("invoicing_service", tmp_path, order, "inv") as invoicing, \
            consumer("shipping_service", tmp_path, order, "ship") as shipping:
        for service, plural in ((invoicing, "invoices"), (shipping, "shipments")):
            assert requests.post(f"{service.url}/poll", timeout=120).json()["processed"] == 500
            assert requests.post(f"{service.url}/poll", timeout=30).json()["processed"] == 0
            records = requests.get(f"{service.url}/api/{plural}", timeout=30).json()
            assert [r["order_id"] for r in records] == list(range(1, 501))
            assert health(service)["position"] == 500 and health(service)["handled"] == 500


def test_two_instances_on_one_sqlite_file_never_handle_an_entry_twice(order, tmp_path):
    database = f"sqlite:///{tmp_path / 'shared' / 'invoicing.db'}"
    (tmp_path / "shared").mkdir()
    a = consumer("invoicing_service", tmp_path, order, "inv-a", interval="0.05", database=database)
    b = consumer("invoicing_service", tmp_path, order, "inv-b", interval="0.05", database=database)
    with a, b:
        stop = threading.Event()

        def hammer(service):
            while not stop.is_set():
                requests.post(f"{service.url}/poll", timeout=60)

        hammers = [threading.Thread(target=hammer, args=(s,)) for s in (a, b, a, b)]
        for t in hammers:
            t.start()
        try:
            placed = place_orders(order.url, 150, threads=4)
        finally:
            time.sleep(0.5)
            stop.set()
            for t in hammers:
                t.join()
        wait_until(lambda: health(a)["position"] == 150, timeout=30, message="both instances to catch up")
        invoices = requests.get(f"{b.url}/api/invoices", timeout=10).json()
        assert sorted(i["order_id"] for i in invoices) == sorted(o["id"] for o in placed)
        # `handled` grows in the same transaction as each effect: an entry handled twice would show here.
        assert health(a)["handled"] == health(b)["handled"] == 150
        assert health(a)["dead_letters"] == 0


def test_a_consumer_killed_with_sigkill_and_restarted_loses_and_duplicates_nothing(order, tmp_path):
    rng = random.Random(7)
    shipping = consumer("shipping_service", tmp_path, order, "ship", interval="0.02")
    placed: list[dict] = []
    creator = threading.Thread(target=lambda: placed.extend(place_orders(order.url, 250, threads=3)))
    with shipping:
        creator.start()
        kills = 0
        while creator.is_alive() or kills < 5:
            time.sleep(rng.uniform(0.05, 0.4))
            shipping.kill()
            kills += 1
            shipping.start()
        creator.join()
        wait_until(lambda: health(shipping)["position"] == 250, timeout=60, message="catching up after the kills")
        shipments = requests.get(f"{shipping.url}/api/shipments", timeout=10).json()
        assert sorted(s["order_id"] for s in shipments) == sorted(o["id"] for o in placed)
        assert health(shipping)["handled"] == 250
    assert kills >= 5
