"""Does serving a feed page cost the same at 100 and at 100,000 orders? (target: ratio <= 1.2x)

Bulk-loads notification rows straight into temporary SQLite databases, then times requests for the current
page, the first archive page and a middle archive page through the Flask test client: steady state (archive
bytes and the current page come from the page cache), cold (cache cleared before every request, so the page
is read and rendered), and a 304 revalidation. Prints medians and the 100k/100 ratio per page type.

Run: .venv/bin/python bench/feed_scale.py
"""
from __future__ import annotations

import gc
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from common.feeds.publish.publisher import PUBLISHER_KEY  # noqa: E402
from order_service import create_app  # noqa: E402
from order_service.models import Notification  # noqa: E402

PAGE_SIZE = 20
HALF_PAGE = PAGE_SIZE // 2  # so the current page holds entries rather than being empty
SIZES = (100, 100_000)
WARM_REPEATS, COLD_REPEATS = 250, 40
TARGET = 1.2


def document(order_id: int) -> dict:
    return {"id": order_id, "created": "2026-03-01T12:00:00.000000Z",
            "customer": {"id": 1, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
            "billing_address": {"street": "2 Side St", "zip": "54321", "city": "Shelbyville"},
            "lines": [{"item": {"id": 1, "name": "Mechanical keyboard", "price": "89.90"}, "quantity": 2},
                      {"item": {"id": 3, "name": "Coffee mug", "price": "12.50"}, "quantity": 1}],
            "total": "192.30"}


def load(app, count: int) -> None:
    """Insert `count` notifications directly, in batches (executemany)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    db = app.extensions["atomshop.db"]
    batch = []
    with db.engine.begin() as conn:
        for position in range(1, count + 1):
            batch.append({"position": position, "event_type": "OrderCreated",
                          "created": start + timedelta(milliseconds=position),
                          "document": json.dumps(document(position))})
            if len(batch) == 10_000 or position == count:
                conn.execute(insert(Notification), batch)
                batch = []


def timed_get(client, path: str, headers=None, status=200) -> int:
    t0 = time.perf_counter_ns()
    response = client.get(path, headers=headers)
    elapsed = time.perf_counter_ns() - t0
    assert response.status_code == status, (path, response.status_code)
    return elapsed


class Setup:
    """One database of `orders` notifications and an app serving it."""

    def __init__(self, orders: int, folder: Path):
        self.app = create_app({"DATABASE_URL": f"sqlite:///{folder / f'bench-{orders}.db'}",
                               "FEED_PAGE_SIZE": PAGE_SIZE})
        load(self.app, orders)
        self.cache = self.app.extensions[PUBLISHER_KEY].cache
        self.client = self.app.test_client()
        current = orders // PAGE_SIZE + 1
        self.paths = {"current": "/feed", "first archive": "/feed/pages/1",
                      "middle archive": f"/feed/pages/{max(1, (current - 1) // 2)}"}
        self.etags = {name: self.client.get(path).headers["ETag"] for name, path in self.paths.items()}

    def request(self, page: str, mode: str) -> int:
        path = self.paths[page]
        if mode == "cold":
            self.cache.clear()
        if mode == "304":
            return timed_get(self.client, path, {"If-None-Match": self.etags[page]}, status=304)
        return timed_get(self.client, path)


def compare(small: Setup, large: Setup) -> dict[tuple[str, str], tuple[float, float]]:
    """Median microseconds per (page, mode) for both setups, requests interleaved so that load from other
    processes on the machine weighs on both sides alike."""
    results = {}
    for page in small.paths:
        for mode, repeats in (("steady", WARM_REPEATS), ("cold", COLD_REPEATS), ("304", WARM_REPEATS)):
            samples: tuple[list[int], list[int]] = ([], [])
            for setup in (small, large):  # warm up
                for _ in range(20):
                    setup.request(page, mode)
            gc.disable()
            try:
                for _ in range(repeats):
                    samples[0].append(small.request(page, mode))
                    samples[1].append(large.request(page, mode))
            finally:
                gc.enable()
            results[(page, mode)] = tuple(statistics.median(s) / 1000 for s in samples)
    return results


def main() -> int:
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = (Setup(n + HALF_PAGE, Path(tmp)) for n in SIZES)
        results = compare(small, large)
        for setup in (small, large):
            setup.app.extensions["atomshop.db"].dispose()
    print(f"feed page cost, median microseconds per request (page size {PAGE_SIZE}; "
          f"{SIZES[0]:,} vs {SIZES[1]:,} orders, each + {HALF_PAGE} on the current page)")
    print(f"{'page':<16}{'mode':<8}{SIZES[0]:>10,}{SIZES[1]:>10,}{'ratio':>8}")
    worst = 0.0
    for (page, mode), (at_small, at_large) in results.items():
        ratio = at_large / at_small
        worst = max(worst, ratio)
        print(f"{page:<16}{mode:<8}{at_small:>10.0f}{at_large:>10.0f}{ratio:>7.2f}x")
    verdict = "OK" if worst <= TARGET else "ABOVE TARGET"
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x): {verdict}; took {time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
