"""Concurrent writers and scaled-out consumers, on SQLite and PostgreSQL, as real processes (issue 4 items 1, 2).

While 8 threads create orders over HTTP, consumers poll on a short interval and are hammered with POST /poll.
Watchers check, as it happens, that the feed never shows a position before an earlier one is visible, that no
consumer's position goes back, and that every snapshot of invoices/shipments covers a gap-free prefix of positions.
"""
from __future__ import annotations

import time

import pytest

from tests.faults.checks import (
    ConsumerWatcher,
    EffectSampler,
    FeedWatcher,
    check_effects,
    check_feed,
    wait_for_effects,
    walk_feed,
)
from tests.faults.figures import record
from tests.faults.fleet import CONSUMERS, Fleet, PollHammer, start_all
from tests.faults.load import OrderLoad

PAGE_SIZE = 20
# The default run: 400 orders (20 pages) from 8 writers against 3 invoicing + 3 shipping instances (items 1 and 2
# at once, about 30 s per database on 2 cores). `make soak` adds the full 2,000 x 8 with 1 + 1.


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


def database_urls(backend: str, request, tmp_path, shared: bool) -> dict[str, str | None]:
    """DATABASE_URL per service: PostgreSQL databases of the throwaway cluster, or SQLite files."""
    if backend == "postgresql":
        postgres = request.getfixturevalue("postgres")
        return {name: postgres.create_database() for name in ("order_service", *CONSUMERS)}
    if shared:  # one SQLite file per consumer service, shared by its instances
        return {"order_service": None, **{name: f"sqlite:///{tmp_path / (name + '.db')}" for name in CONSUMERS}}
    return dict.fromkeys(("order_service", *CONSUMERS))


def run_concurrent_orders(fleet: Fleet, orders: int, threads: int) -> dict:
    """Create orders while every consumer is polled continuously; check everything; return the figures."""
    consumers = fleet.consumers
    feed_watcher = FeedWatcher(fleet.order.url, PAGE_SIZE)
    positions = ConsumerWatcher(lambda: [(c.name, c.url) for c in consumers])
    samplers = [EffectSampler(fleet.of(package)[0].url, resource, interval=0.5)
                for package, resource in CONSUMERS.items()]
    hammer = PollHammer(lambda: [c.url for c in consumers])
    for thread in (feed_watcher, positions, *samplers, hammer):
        thread.start()
    started = time.monotonic()
    load = OrderLoad(fleet.order.url, orders, threads=threads, seed=orders).run(timeout=600)
    for package, resource in CONSUMERS.items():
        wait_for_effects(fleet.of(package)[0].url, resource, orders, timeout=180)
    caught_up = time.monotonic() - started
    for thread in (hammer, feed_watcher, positions, *samplers):
        thread.stop()

    assert load.unexpected() == [] and len(load.created) == orders
    feed = check_feed(fleet.order.url, load.created)
    position_of = {order_id: position for position, order_id in walk_feed(fleet.order.url)}
    effects = {}
    for consumer in consumers:
        resource = CONSUMERS[consumer.package]
        effects[consumer.name] = check_effects(consumer.url, resource, load.created)
    assert feed_watcher.violations == [], feed_watcher.violations[:10]
    assert feed_watcher.reads > 10
    assert positions.violations == [], positions.violations[:10]
    for sampler in samplers:
        assert sampler.out_of_order(position_of) == [], sampler.out_of_order(position_of)[:10]
    assert hammer.failures == [], hammer.failures[:10]
    assert hammer.error_samples == [], hammer.error_samples[:10]  # the feed was healthy all along
    return {
        "orders_created": len(load.created), "writer_threads": threads, "feed_entries": feed.total,
        "lost": len(feed.lost) + sum(len(t.lost) for t in effects.values()),
        "duplicated": len(feed.duplicated) + sum(len(t.duplicated) for t in effects.values()),
        "feed_reads_checked": feed_watcher.reads, "position_samples": positions.samples,
        "effect_snapshots_checked": sum(len(s.snapshots) for s in samplers),
        "polls_hammered": dict(hammer.statuses), "orders_per_second": round(orders / load.duration, 1),
        "seconds_to_catch_up": round(caught_up, 1),
    }


def run_fleet(label: str, backend: str, request, tmp_path, *, instances: int, orders: int, shared: bool) -> None:
    """The order service and `instances` of each consumer under `orders` orders from 8 writers; figures recorded."""
    urls = database_urls(backend, request, tmp_path, shared=shared)
    fleet = Fleet(tmp_path)
    try:
        order_env = {"FEED_PAGE_SIZE": str(PAGE_SIZE), **({"DATABASE_URL": urls["order_service"]}
                                                          if urls["order_service"] else {})}
        fleet.start_order(**order_env)
        processes = [fleet.add_consumer(package, poll_interval=0.05, database_url=urls[package], start=False)
                     for package in CONSUMERS for _ in range(instances)]
        start_all(processes)
        started = time.monotonic()
        figures = run_concurrent_orders(fleet, orders=orders, threads=8)
        record(f"{label}[{backend}]", backend=backend, consumers=len(processes), **figures,
               seconds=round(time.monotonic() - started, 1))
    except BaseException:
        print(fleet.logs())
        raise
    finally:
        fleet.stop()


@pytest.mark.soak
def test_soak_2000_orders_from_8_writers_every_order_once_in_order_and_one_invoice_and_shipment_each(
        backend, request, tmp_path):
    run_fleet("concurrent_writers", backend, request, tmp_path, instances=1, orders=2000, shared=False)


def test_three_invoicing_and_three_shipping_instances_on_one_database_yield_one_invoice_and_shipment_per_order(
        backend, request, tmp_path):
    run_fleet("scale_out", backend, request, tmp_path, instances=3, orders=400, shared=True)
