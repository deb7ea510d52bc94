"""A rewound order feed (issue 10, finding 1) against a real order service and a real invoicing process, on SQLite
and on PostgreSQL: the order service's database recreated, or restored from a backup, while invoicing is ahead.
Invoicing halts (POST /poll 409, /health 503 "halted" with the reason, the status panel says what to do) and
applies nothing until `invoicing-service reset-position` (run while it keeps running); then every new order is
invoiced or, when its id was invoiced before with other content, dead-lettered with that reason."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import psycopg
import pytest
import requests

from tests.support import ServiceProcess

ADDRESS = {"street": "1 Main Street", "zip": "12345", "city": "Springfield"}


def place(order: ServiceProcess, count: int, quantity: int) -> None:
    for _ in range(count):
        response = requests.post(order.url + "/api/orders", timeout=10, json={
            "customer_id": 1, "shipping_address": ADDRESS, "billing_address": ADDRESS,
            "lines": [{"item_id": 1, "quantity": quantity}]})
        assert response.status_code == 201, response.text


def invoices(consumer: ServiceProcess) -> dict[int, int]:
    """order id → quantity of its first line."""
    return {i["order_id"]: i["lines"][0]["quantity"]
            for i in requests.get(consumer.url + "/api/invoices", timeout=10).json()}


class OrderDatabase:
    """The order service's database, which a test recreates or restores from a backup."""

    def __init__(self, kind: str, workdir, postgres=None):
        self.kind, self.workdir, self.postgres = kind, workdir, postgres
        if kind == "postgresql":
            self.name = f"orders_{os.getpid()}_{id(self)}"
            self.url = postgres.create_database(self.name)
        else:
            self.url = f"sqlite:///{workdir / 'orders.db'}"

    def _admin(self, *statements: str) -> None:
        with psycopg.connect(f"host=127.0.0.1 port={self.postgres.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def backup(self) -> None:
        if self.kind == "postgresql":
            self._admin(f'CREATE DATABASE "{self.name}_backup" TEMPLATE "{self.name}"')
        else:
            # SQLite's backup API, not a copy of orders.db: committed pages may still be in orders.db-wal (a process
            # that exits without closing its last connection leaves them there), and a copy of the main file alone
            # is an older database (it failed in CI: the "backup" held none of the 10 orders).
            with closing(sqlite3.connect(self.workdir / "orders.db")) as source, \
                    closing(sqlite3.connect(self.workdir / "orders.backup")) as target:
                source.backup(target)

    def restore(self) -> None:
        if self.kind == "postgresql":
            self._admin(f'DROP DATABASE "{self.name}"', f'CREATE DATABASE "{self.name}" TEMPLATE "{self.name}_backup"')
        else:
            for suffix in ("-wal", "-shm"):
                (self.workdir / f"orders.db{suffix}").unlink(missing_ok=True)
            shutil.copy(self.workdir / "orders.backup", self.workdir / "orders.db")

    def recreate(self) -> None:
        if self.kind == "postgresql":
            self._admin(f'DROP DATABASE "{self.name}"', f'CREATE DATABASE "{self.name}"')
        else:
            for suffix in ("", "-wal", "-shm"):
                (self.workdir / f"orders.db{suffix}").unlink(missing_ok=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def system(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    database = OrderDatabase(request.param, tmp_path, postgres)
    consumer_db = postgres.create_database() if postgres else f"sqlite:///{tmp_path / 'invoicing.db'}"
    order = ServiceProcess("order_service", tmp_path / "order",
                           env={"DATABASE_URL": database.url, "FEED_PAGE_SIZE": "5"})
    with order:
        consumer = ServiceProcess("invoicing_service", tmp_path / "invoicing", env={
            "DATABASE_URL": consumer_db, "ORDER_FEED_URL": order.url + "/feed", "POLL_INTERVAL": "0"})
        with consumer:
            yield order, consumer, database


def assert_halted(order: ServiceProcess, consumer: ServiceProcess, before: dict[int, int], reason: str) -> None:
    response = requests.post(consumer.url + "/poll", timeout=60)
    assert response.status_code == 409 and "halted" in response.json()["error"]
    health = requests.get(consumer.url + "/health", timeout=5)
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "halted" and body["feeds"]["orders"]["state"] == "halted"
    assert reason in body["feeds"]["orders"]["reason"] and body["problems"]
    page = requests.get(consumer.url + "/", timeout=5).text
    assert "Halted" in page and "reset-position" in page
    assert invoices(consumer) == before  # nothing applied


def reset_position(consumer: ServiceProcess, feed_url: str, to: int) -> str:
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "invoicing-service"), "reset-position",
                           "--feed", feed_url, "--to", str(to)], env=consumer.env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def poll_until_settled(consumer: ServiceProcess, position: int) -> None:
    """Poll until the position is reached: an entry that fails is retried on the next polls, then dead-lettered."""
    for _ in range(30):
        response = requests.post(consumer.url + "/poll", timeout=60)
        assert response.status_code == 200, response.text
        if response.json()["position"] == position:
            return
    raise AssertionError(f"position {position} not reached: {response.json()}")


def test_a_recreated_order_database_halts_invoicing_until_reset(system):
    order, consumer, database = system
    place(order, 12, quantity=2)
    assert requests.post(consumer.url + "/poll", timeout=60).json()["processed"] == 12
    before = invoices(consumer)
    order.stop()
    database.recreate()
    order.start()
    place(order, 3, quantity=7)  # orders 1–3 again: someone else's
    assert_halted(order, consumer, before, "ends at position 3")
    out = reset_position(consumer, order.url + "/feed", 0)
    assert "from 12 to 0" in out and "was halted" in out
    poll_until_settled(consumer, 3)
    assert requests.get(consumer.url + "/health", timeout=5).status_code == 200
    assert invoices(consumer) == before  # the old invoices stay, never overwritten
    letters = requests.get(consumer.url + "/api/dead-letters", timeout=5).json()
    assert sorted(d["position"] for d in letters) == [1, 2, 3]
    assert all("already handled" in d["reason"] for d in letters)


def test_an_order_database_restored_from_a_backup_halts_invoicing_until_reset(system):
    order, consumer, database = system
    place(order, 10, quantity=2)
    order.stop()
    database.backup()
    order.start()
    place(order, 4, quantity=2)
    assert requests.post(consumer.url + "/poll", timeout=60).json()["processed"] == 14
    before = invoices(consumer)
    order.stop()
    database.restore()
    order.start()
    place(order, 6, quantity=5)  # orders 11–16 of the restored database
    assert_halted(order, consumer, before, "different entry at position 14")
    reset_position(consumer, order.url + "/feed", 10)
    poll_until_settled(consumer, 16)
    after = invoices(consumer)
    assert {k: v for k, v in after.items() if k <= 14} == before and after[15] == after[16] == 5
    letters = requests.get(consumer.url + "/api/dead-letters", timeout=5).json()
    assert sorted(d["position"] for d in letters) == [11, 12, 13, 14]
