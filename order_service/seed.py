"""Demo customers and items, stored once on first start."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, text

from common.service.db import Database
from order_service.models import Customer, Item

# Transaction-scoped advisory lock key on PostgreSQL ("seeddemo"): instances starting at once seed only once.
SEED_LOCK_KEY = 0x7365656464656D6F

CUSTOMERS = [
    ("Ada", "Lovelace", "ada@example.com"),
    ("Alan", "Turing", "alan@example.com"),
    ("Grace", "Hopper", "grace@example.com"),
    ("Edsger", "Dijkstra", "edsger@example.com"),
    ("Barbara", "Liskov", "barbara@example.com"),
]

ITEMS = [
    ("Mechanical keyboard", Decimal("89.90")),
    ("USB-C cable", Decimal("9.99")),
    ("Coffee mug", Decimal("12.50")),
    ("Notebook", Decimal("4.20")),
    ("Noise-cancelling headphones", Decimal("149.00")),
    ("Desk lamp", Decimal("42.00")),
]


def seed_demo_data(db: Database) -> bool:
    """Store the demo customers and items unless some are there already; True if this call stored them."""
    with db.write() as session:  # on SQLite BEGIN IMMEDIATE already makes this the only writer
        if db.is_postgresql:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK_KEY})
        if session.scalar(select(Customer.id).limit(1)) is not None:
            return False
        session.add_all(Customer(first_name=first, last_name=last, email=email) for first, last, email in CUSTOMERS)
        session.add_all(Item(name=n, price=p) for n, p in ITEMS)
        return True
