"""An order-creating load generator: threads posting JSON orders, recording every 201."""
from __future__ import annotations

import collections
import itertools
import random
import threading
import time

import requests


def valid_order(customers: list[int], items: list[int], rng: random.Random, tag: str = "") -> dict:
    """A valid order body for POST /api/orders."""
    address = {"street": f"{rng.randint(1, 999)} Load Street {tag}".strip(), "zip": f"{rng.randint(10000, 99999)}",
               "city": "Faultville"}
    lines = [{"item_id": rng.choice(items), "quantity": rng.randint(1, 5)} for _ in range(rng.randint(1, 3))]
    return {"customer_id": rng.choice(customers), "shipping_address": address, "billing_address": dict(address),
            "lines": lines}


class OrderLoad:
    """``threads`` threads posting ``total`` orders to ``order_url`` (shared quota), each with its own Session.

    ``created`` holds the id of every order answered 201. Connection errors and timeouts are counted, not
    raised, when ``tolerate_errors`` (the order service is being killed); any other status is recorded in
    ``statuses`` and reported by :meth:`unexpected`.
    """

    def __init__(self, order_url: str, total: int, threads: int = 8, seed: int = 0, tolerate_errors: bool = False,
                 timeout: float = 30.0, pause: float = 0.0):
        self.order_url = order_url.rstrip("/")
        self.total = total
        self.threads = threads
        self.seed = seed
        self.tolerate_errors = tolerate_errors
        self.timeout = timeout
        self.pause = pause
        self.created: list[int] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._quota = itertools.count()
        self._reserved = 0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._stop = threading.Event()
        self.started_at = self.finished_at = 0.0
        catalogue = requests.get(self.order_url + "/api/customers", timeout=10).json()
        self.customers = [c["id"] for c in catalogue]
        self.items = [i["id"] for i in requests.get(self.order_url + "/api/items", timeout=10).json()]

    def start(self) -> OrderLoad:
        self.started_at = time.monotonic()
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), name=f"order-load-{n}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def join(self, timeout: float = 600.0) -> OrderLoad:
        deadline = time.monotonic() + timeout
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._workers):
            self._stop.set()
            raise AssertionError(f"order load did not finish within {timeout}s ({len(self.created)} created)")
        self.finished_at = time.monotonic()
        return self

    def run(self, timeout: float = 600.0) -> OrderLoad:
        return self.start().join(timeout)

    def stop(self) -> None:
        self._stop.set()

    @property
    def done(self) -> bool:
        return bool(self._workers) and not any(t.is_alive() for t in self._workers)

    @property
    def duration(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    def unexpected(self) -> list[str]:
        """Answers other than 201 and errors that are not tolerated (first ten)."""
        return self.failures[:10]

    def _run(self, worker: int) -> None:
        rng = random.Random(self.seed * 1000 + worker)
        session = requests.Session()
        while not self._stop.is_set():
            with self._lock:  # a failed attempt gives its place back: `total` is the number of 201s wanted
                if self._reserved >= self.total:
                    return
                self._reserved += 1
                n = next(self._quota)
            body = valid_order(self.customers, self.items, rng, tag=f"#{n}")
            try:
                response = session.post(self.order_url + "/api/orders", json=body, timeout=self.timeout)
            except requests.RequestException as exc:
                with self._lock:
                    if self.tolerate_errors:
                        self._reserved -= 1
                    self.errors[type(exc).__name__] += 1
                    if not self.tolerate_errors:
                        self.failures.append(f"order {n}: {exc!r}")
                session.close()
                session = requests.Session()
                time.sleep(0.05)
                continue
            with self._lock:
                self.statuses[response.status_code] += 1
                if response.status_code == 201:
                    self.created.append(response.json()["id"])
                else:
                    self.failures.append(f"order {n}: HTTP {response.status_code} {response.text[:200]}")
            if self.pause:
                time.sleep(self.pause)
