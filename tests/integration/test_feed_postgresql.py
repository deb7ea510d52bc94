"""The order feed on a real PostgreSQL: positions assigned under a lock, visible in order, gap-free."""
from __future__ import annotations

import threading

from sqlalchemy import select

from order_service import create_app
from order_service.models import Notification
from tests.unit.test_feed_http import order_body, parse, walk
from tests.unit.test_feed_rfc4287 import assert_valid_atom


def test_concurrent_orders_on_postgresql_become_visible_in_position_order(postgres):
    app = create_app({"TESTING": True, "DATABASE_URL": postgres.create_database(), "FEED_PAGE_SIZE": 7})
    db = app.extensions["atomshop.db"]
    writers_done = threading.Event()
    problems: list[str] = []

    def write(count):
        client = app.test_client()
        for _ in range(count):
            response = client.post("/api/orders", json=order_body())
            if response.status_code != 201:
                problems.append(f"POST answered {response.status_code}: {response.get_data(as_text=True)}")

    def read():
        # A reader must never see position n while some position below n is still missing.
        while not writers_done.is_set():
            with db.read() as session:
                positions = list(session.scalars(select(Notification.position).order_by(Notification.position)))
            if positions != list(range(1, len(positions) + 1)):
                problems.append(f"gap visible: {positions}")
                return

    writers = [threading.Thread(target=write, args=(12,)) for _ in range(6)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    writers_done.set()
    reader.join()
    assert not problems, problems[:3]

    client = app.test_client()
    pages = walk(client)
    entries = [entry for _, response in pages for entry in parse(response.data)[1]]
    assert sorted(e["position"] for e in entries) == list(range(1, 73))
    for _, response in pages:
        assert_valid_atom(response.data)
    with db.read() as session:
        times = list(session.scalars(select(Notification.created).order_by(Notification.position)))
    assert times == sorted(times)
    db.dispose()
