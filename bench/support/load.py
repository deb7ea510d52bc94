"""Building big order feeds fast for the benchmarks: notification rows written straight into the table.

The documents are valid order documents (what the order service would have published), so a follower can
handle them; going through the API would take hours at a million orders.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import make_url

START = datetime(2026, 3, 1, tzinfo=UTC)
BATCH = 20_000

_DOCUMENT = json.dumps({
    "id": 0, "created": "", "customer": {"id": 1, "first_name": "Ada", "last_name": "Lovelace",
                                         "email": "ada@example.com"},
    "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
    "billing_address": {"street": "2 Side St", "zip": "54321", "city": "Shelbyville"},
    "lines": [{"item": {"id": 1, "name": "Mechanical keyboard", "price": "89.90"}, "quantity": 2},
              {"item": {"id": 3, "name": "Coffee mug", "price": "12.50"}, "quantity": 1}],
    "total": "192.30"}, ensure_ascii=False)
_HEAD, _REST = _DOCUMENT.split('"id": 0, "created": ""', 1)


def rows(first: int, last: int) -> Iterator[tuple[int, str, str, str]]:
    """(position, event_type, created as naive UTC text, document) for positions first…last."""
    for position in range(first, last + 1):
        created = START + timedelta(milliseconds=position)
        stamp = created.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        rfc3339 = created.isoformat(timespec="microseconds").replace("+00:00", "Z")
        yield position, "OrderCreated", stamp, f'{_HEAD}"id": {position}, "created": "{rfc3339}"{_REST}'


def load_notifications(url: str, count: int, table: str = "notifications") -> None:
    """Append `count` notifications to an empty feed table (executemany on SQLite, COPY on PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(parsed.database) as conn:
            for first in range(1, count + 1, BATCH):
                conn.executemany(f"INSERT INTO {table} (position, event_type, created, document) VALUES (?, ?, ?, ?)",
                                 rows(first, min(count, first + BATCH - 1)))
                conn.commit()  # a transaction per batch: never the write lock for a whole minute
        return
    import psycopg

    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY {table} (position, event_type, created, document) FROM STDIN") as copy:
            for row in rows(1, count):
                copy.write_row(row)
