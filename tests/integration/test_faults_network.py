"""Network faults between a consumer and the order feed, injected by a loopback proxy (issue 4 item 5).

The consumer must never advance its position on a failed or partial page — its /health position never exceeds
the highest position the proxy delivered in a complete page — and must converge once the network is healthy.
"""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.faults.checks import check_effects, check_feed, health_position, wait_for_effects
from tests.faults.figures import record
from tests.faults.fleet import Fleet, PollHammer
from tests.faults.load import OrderLoad
from tests.faults.proxy import FAULT_KINDS, FaultProxy

READ_TIMEOUT = 10.0  # the follower's read timeout (common.feeds.follow.client.FeedClient)


def position(consumer) -> int:
    return health_position(requests.get(consumer.url + "/health", timeout=10).json())


@pytest.fixture
def fleet(tmp_path):
    fleet = Fleet(tmp_path)
    fleet.start_order(FEED_PAGE_SIZE="10")
    yield fleet
    fleet.stop()


def test_each_network_fault_fails_the_poll_and_advances_nothing(fleet):
    load = OrderLoad(fleet.order.url, 35, threads=2).run()
    with FaultProxy(fleet.order.url, stall_seconds=READ_TIMEOUT + 20) as proxy:
        consumer = fleet.add_consumer("invoicing_service", feed_url=proxy.url + "/feed", poll_interval=0)
        seconds = {}
        for kind in ("refuse", *FAULT_KINDS):
            proxy.set_mode(kind)
            started = time.monotonic()
            response = requests.post(consumer.url + "/poll", timeout=READ_TIMEOUT * 4)
            seconds[kind] = round(time.monotonic() - started, 2)
            proxy.release_stalls()
            assert response.status_code in (502, 503), (kind, response.status_code, response.text)
            assert seconds[kind] < READ_TIMEOUT + 5, (kind, seconds[kind])
            state = requests.get(consumer.url + "/health", timeout=10)
            assert state.status_code == 200 and state.json()["last_error"], (kind, state.text)
            assert health_position(state.json()) == 0, f"{kind}: the consumer advanced on a failed page"
            assert proxy.max_position_served == 0
        proxy.set_mode("pass")
        assert requests.post(consumer.url + "/poll", timeout=30).json()["processed"] == 35
        assert position(consumer) == 35 == proxy.max_position_served
        check_feed(fleet.order.url, load.created)
        check_effects(consumer.url, "invoices", load.created)
        record("network_fault_kinds", faults_injected=proxy.faults_injected, poll_seconds=seconds,
               orders_created=len(load.created), lost=0, duplicated=0)


def test_random_network_faults_never_advance_past_what_was_delivered_and_converge_when_healthy(fleet):
    with FaultProxy(fleet.order.url, stall_seconds=2) as proxy:
        # Stalls are kept short here (2 s, under the read timeout) so the mix stays fast; the test above proves
        # a stall past the read timeout.
        proxy.mix({"pass": 5, "reset": 1, "truncate": 1, "truncate_chunked": 1, "truncate_xml": 1, "500": 1,
                   "502": 1, "503": 1, "stall": 0.3}, seed=4)
        consumers = [fleet.add_consumer(package, feed_url=proxy.url + "/feed", poll_interval=0.05)
                     for package in ("invoicing_service", "shipping_service")]
        violations, samples = [], [0]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                for consumer in consumers:
                    served = proxy.max_position_served  # read first: it only grows
                    try:
                        seen = position(consumer)
                    except requests.RequestException:
                        continue
                    samples[0] += 1
                    if seen > served:
                        violations.append(f"{consumer.name} at {seen}, but only {served} was delivered")
                stop.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        hammer = PollHammer(lambda: [c.url for c in consumers])
        hammer.start()
        load = OrderLoad(fleet.order.url, 300, threads=4, pause=0.02).run()
        time.sleep(3)
        hammer.stop()
        proxy.set_mode("pass")
        for consumer, resource in zip(consumers, ("invoices", "shipments"), strict=True):
            wait_for_effects(consumer.url, resource, len(load.created), timeout=120)
        stop.set()
        watcher.join(10)
        assert violations == [], violations[:10]
        assert hammer.failures == [], hammer.failures[:10]
        assert sum(proxy.faults_injected.values()) >= 20, proxy.counts
        feed = check_feed(fleet.order.url, load.created)
        tallies = [check_effects(c.url, r, load.created)
                   for c, r in zip(consumers, ("invoices", "shipments"), strict=True)]
        for consumer in consumers:
            assert position(consumer) == len(load.created)
        record("network_faults_random", orders_created=len(load.created), faults_injected=proxy.faults_injected,
               passed_through=proxy.counts["pass"], position_samples=samples[0],
               polls_answered=dict(hammer.statuses), lost=len(feed.lost) + sum(len(t.lost) for t in tallies),
               duplicated=len(feed.duplicated) + sum(len(t.duplicated) for t in tallies))
