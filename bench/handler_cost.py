"""CPU time per order of invoicing's batch handler alone (no HTTP, no parsing): the part of a catch-up that runs
in the follower's own process beside the parsing workers (issue 12). Batches of 500, as a catch-up hands them over;
best of 3 runs of 5,000 orders on a fresh SQLite file. No target of its own: bench/catch_up.py has the target.

Usage: python bench/handler_cost.py [ORDERS]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.feeds.follow.client import FeedEntry  # noqa: E402
from common.service.db import Database  # noqa: E402
from invoicing_service.handlers import handle_batch  # noqa: E402
from invoicing_service.models import Base  # noqa: E402
from tests.unit.follower_feed import order_document  # noqa: E402

BATCH = 500


def cost(count: int) -> float:
    """Microseconds of this thread's CPU per order, storing `count` orders in batches of BATCH."""
    entries = [FeedEntry(p, f"tag:atomshop.example,2026:order/{p}", "OrderCreated", json.dumps(order_document(p)),
                         f"http://orders.test/api/orders/{p}") for p in range(1, count + 1)]
    with tempfile.TemporaryDirectory(prefix="atomshop-bench-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'invoicing.db'}", Base)
        db.create_all()
        started = time.thread_time()
        for first in range(0, count, BATCH):
            with db.write() as session:
                handle_batch(session, entries[first:first + BATCH])
        spent = time.thread_time() - started
        db.dispose()
    return spent / count * 1e6


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    best = min(cost(count) for _ in range(3))
    print(f"invoicing batch handler: {best:.0f} µs of CPU per order (best of 3 × {count:,} orders, "
          f"batches of {BATCH})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
