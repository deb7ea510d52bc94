"""Crashes and outages of real processes (issue 4 items 3, 4).

Consumers are SIGKILLed at random moments and restarted while orders stream in; the order service is SIGKILLed
mid-write a few times. Nothing may be lost or duplicated, every order answered 201 is in the feed, the feed stays
gap-free. An order-service outage leaves consumers up and reporting, and they catch up by themselves.
"""
from __future__ import annotations

import random
import time

import pytest
import requests

from tests.faults.checks import ConsumerWatcher, check_effects, check_feed, wait_for_effects, walk_feed
from tests.faults.figures import record
from tests.faults.fleet import CONSUMERS, Fleet, Killer, start_all
from tests.faults.load import OrderLoad


def crash_run(tmp_path, orders: int, consumer_kills: int, order_kills: int, seed: int) -> dict:
    fleet = Fleet(tmp_path)
    rng = random.Random(seed)
    try:
        fleet.start_order(FEED_PAGE_SIZE="20")
        consumers = [fleet.add_consumer(package, poll_interval=0.1, start=False) for package in CONSUMERS]
        start_all(consumers)
        positions = ConsumerWatcher(lambda: [(c.name, c.url) for c in consumers])
        killer = Killer(consumers, seed=seed, pause=(0.3, 1.2), limit=consumer_kills)
        started = time.monotonic()
        # Paced so the orders keep coming for as long as the consumers are being killed.
        load = OrderLoad(fleet.order.url, orders, threads=3, seed=seed, tolerate_errors=True, timeout=10,
                         pause=0.05).start()
        positions.start()
        killer.start()
        order_kill_times = []
        for _ in range(order_kills):
            time.sleep(rng.uniform(1.0, 3.0))
            if load.done:
                break
            fleet.order.kill()  # mid-write: the load threads have requests in flight
            order_kill_times.append(round(time.monotonic() - started, 1))
            time.sleep(rng.uniform(0.1, 0.5))
            fleet.order.start()
        load.join(timeout=900)
        while killer.total < consumer_kills and killer.is_alive():
            time.sleep(0.2)  # the kills go on until they are all done (also while the consumers catch up)
        killer.stop()
        assert killer.failures == [], killer.failures
        assert load.unexpected() == [], load.unexpected()

        pairs = walk_feed(fleet.order.url)
        in_feed = [order_id for _, order_id in pairs]
        for consumer in consumers:
            wait_for_effects(consumer.url, CONSUMERS[consumer.package], len(in_feed), timeout=180)
        positions.stop()
        feed = check_feed(fleet.order.url, load.created)  # every 201 in the feed, once; positions 1..N
        tallies = [check_effects(c.url, CONSUMERS[c.package], in_feed) for c in consumers]
        assert positions.violations == [], positions.violations[:10]
        return {
            "orders_created": len(load.created), "feed_entries": feed.total,
            "orders_with_unknown_outcome_that_exist": feed.total - len(load.created),
            "client_connection_errors": dict(load.errors), "consumer_kills": dict(killer.kills),
            "order_service_kills": len(order_kill_times), "order_kill_seconds": order_kill_times,
            "lost": len(feed.lost) + sum(len(t.lost) for t in tallies),
            "duplicated": len(feed.duplicated) + sum(len(t.duplicated) for t in tallies),
            "position_samples": positions.samples, "seconds": round(time.monotonic() - started, 1),
        }
    except BaseException:
        print(fleet.logs())
        raise
    finally:
        fleet.stop()


def test_consumers_killed_at_random_and_the_order_service_killed_mid_write_lose_and_duplicate_nothing(tmp_path):
    figures = crash_run(tmp_path, orders=300, consumer_kills=8, order_kills=2, seed=11)
    assert figures["consumer_kills"] and sum(figures["consumer_kills"].values()) == 8
    record("crashes", **figures)


@pytest.mark.soak
def test_soak_a_thousand_orders_with_twenty_four_consumer_kills_and_four_order_service_kills(tmp_path):
    figures = crash_run(tmp_path, orders=1000, consumer_kills=24, order_kills=4, seed=12)
    assert sum(figures["consumer_kills"].values()) == 24 and figures["order_service_kills"] == 4
    record("crashes_soak", **figures)


def test_an_order_service_outage_keeps_consumers_up_and_reporting_and_they_catch_up_afterwards(tmp_path):
    fleet = Fleet(tmp_path)
    try:
        fleet.start_order(FEED_PAGE_SIZE="20")
        consumers = [fleet.add_consumer(package, poll_interval=0.1, start=False) for package in CONSUMERS]
        start_all(consumers)
        before = OrderLoad(fleet.order.url, 30, threads=2).run()
        for consumer in consumers:
            wait_for_effects(consumer.url, CONSUMERS[consumer.package], 30, timeout=60)

        fleet.order.stop()
        outage_started = time.monotonic()
        for consumer in consumers:
            response = requests.post(consumer.url + "/poll", timeout=30)
            assert response.status_code in (502, 503) and "error" in response.json()
        time.sleep(2)
        for consumer in consumers:
            health = requests.get(consumer.url + "/health", timeout=10)
            assert health.status_code == 200
            body = health.json()
            assert body["status"] == "ok" and body["last_error"] and body["position"] == 30, body
            assert body["poller"]["failures_in_a_row"] >= 1
        outage = time.monotonic() - outage_started

        fleet.order.start()  # same port, same database
        after = OrderLoad(fleet.order.url, 40, threads=2).run()
        recovered_started = time.monotonic()
        for consumer in consumers:  # by the scheduled poller alone: no POST /poll
            wait_for_effects(consumer.url, CONSUMERS[consumer.package], 70, timeout=90)
        recovered = time.monotonic() - recovered_started
        created = before.created + after.created
        check_feed(fleet.order.url, created)
        for consumer in consumers:
            check_effects(consumer.url, CONSUMERS[consumer.package], created)
            body = requests.get(consumer.url + "/health", timeout=10).json()
            assert body["last_error"] is None and body["position"] == 70, body
        record("outage", orders_created=len(created), outage_seconds=round(outage, 1),
               seconds_to_catch_up_after=round(recovered, 1), lost=0, duplicated=0)
    except BaseException:
        print(fleet.logs())
        raise
    finally:
        fleet.stop()
