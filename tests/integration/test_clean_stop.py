"""A service stopped by SIGTERM closes its database: on SQLite it leaves one self-contained file, so copying that
file backs the database up whole (committed pages left in `<name>.db-wal` would be missing from such a copy)."""
from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing

import requests

from tests.integration.test_long_poll import HeldRequest, place
from tests.support import ServiceProcess


def test_a_stopped_order_service_leaves_every_order_in_its_sqlite_file_alone(tmp_path):
    database = tmp_path / "orders.db"
    # Twice: without the closing, a held long poll and archive reads left the WAL behind in 3 of 4 stops.
    for round_ in range(2):
        with ServiceProcess("order_service", tmp_path / "order", env={
                "DATABASE_URL": f"sqlite:///{database}", "FEED_PAGE_SIZE": "5"}) as order:
            for _ in range(6):
                place(order.url)
            requests.get(order.url + "/feed/pages/1", timeout=10).raise_for_status()
            etag = requests.get(order.url + "/feed", timeout=10).headers["ETag"]
            held = HeldRequest(order.url + "/feed", etag, wait=20)
            held.join(0.5)
        held.join(10)
        assert not (tmp_path / "orders.db-wal").exists(), f"round {round_}: the WAL was left behind"
        copy = tmp_path / f"copy-{round_}.db"
        shutil.copy(database, copy)
        with closing(sqlite3.connect(copy)) as conn:
            assert conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 6 * (round_ + 1)
