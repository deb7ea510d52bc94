"""The cancellation choreography end to end on real processes (issue 13), on SQLite and on PostgreSQL.

Orders are placed; a random third is cancelled and a random third dispatched (the two thirds overlap, and an
order's cancel and dispatch are sent at the same moment, so they race), while the services — each one a follower —
are killed with SIGKILL at random and restarted. At the end every event is exactly once in its feed, in order per
order, and every order's status agrees with its invoice and shipment records and with what the clients were told.
"""
from __future__ import annotations

import random
import time

import pytest
import requests

from tests.faults.figures import record
from tests.faults.fleet import Killer
from tests.faults.load import OrderLoad
from tests.faults.saga import Actors, Shop, walk_events
from tests.faults.saga_checks import check_saga


def saga_run(tmp_path, databases: dict[str, str] | None, orders: int, kills: int, seed: int) -> dict:
    shop = Shop(tmp_path, databases)
    try:
        shop.start()
        started = time.monotonic()
        killer = Killer(list(shop.services.values()), seed=seed, pause=(1.0, 4.0), limit=kills)
        killer.start()
        load = OrderLoad(shop["order"].url, orders, threads=3, seed=seed, tolerate_errors=True, timeout=10).run(600)
        assert load.unexpected() == [], load.unexpected()
        placed = [document["id"] for _, kind, document in walk_events(shop["order"].url) if kind == "OrderCreated"]
        rng = random.Random(seed)
        cancel, dispatch = rng.sample(placed, len(placed) // 3), rng.sample(placed, len(placed) // 3)
        outcomes = Actors(shop, cancel, dispatch, seed).run()
        assert outcomes.unexpected == [], outcomes.unexpected[:10]
        while killer.total < kills and killer.is_alive():
            time.sleep(0.2)  # the kills go on until they are all done (also while the followers catch up)
        killer.stop()
        assert killer.failures == [], killer.failures
        shop.settle()
        figures = check_saga(shop, outcomes)
        for name, process in shop.services.items():
            health = requests.get(process.url + "/health", timeout=10).json()
            assert health.get("dead_letters", 0) == 0, (name, health)
        return {**figures, "orders_answered_201": len(load.created),
                "database": "postgresql" if databases else "sqlite", "cancel_requests": len(cancel),
                "dispatch_requests": len(dispatch), "both_racing": len(set(cancel) & set(dispatch)),
                "kills": dict(killer.kills), "seconds": round(time.monotonic() - started, 1)}
    except BaseException:
        print(shop.logs())
        raise
    finally:
        shop.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request) -> dict[str, str] | None:
    if request.param == "sqlite":
        return None  # each service's own SQLite file
    postgres = request.getfixturevalue("postgres")
    return {name: postgres.create_database() for name in ("order", "invoicing", "shipping")}


def test_cancels_and_dispatches_racing_through_kills_leave_every_status_agreeing_with_the_records(tmp_path,
                                                                                                 databases):
    figures = saga_run(tmp_path, databases, orders=150, kills=4, seed=13)
    assert sum(figures["kills"].values()) == 4
    record("choreography", **figures)


@pytest.mark.soak
def test_soak_five_hundred_orders_a_third_cancelled_a_third_dispatched_with_kills(tmp_path, databases):
    figures = saga_run(tmp_path, databases, orders=500, kills=12, seed=14)
    assert sum(figures["kills"].values()) == 12
    record("choreography_soak", **figures)
