"""The cancellation choreography on real processes: a shop of three services following each other, customers
cancelling and the warehouse dispatching at once, and the checks that every feed, record and status agree."""
from __future__ import annotations

import collections
import json
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from lxml import etree

from tests.faults.atom import ATOM_NS, ATOMSHOP_NS
from tests.faults.checks import SAFE_PARSER
from tests.support import ServiceProcess, wait_until

PACKAGES = {"order": "order_service", "invoicing": "invoicing_service", "shipping": "shipping_service"}


class Shop:
    """The three services as real processes on free ports, each following the feeds it needs."""

    def __init__(self, workdir: Path, databases: dict[str, str] | None = None, poll_interval: float = 0.2,
                 page_size: int = 20):
        env = {"POLL_INTERVAL": str(poll_interval), "FEED_PAGE_SIZE": str(page_size)}
        self.services = {name: ServiceProcess(package, Path(workdir) / name, name=name,
                                              env={**env, **({"DATABASE_URL": databases[name]} if databases else {})})
                         for name, package in PACKAGES.items()}
        feeds = {f"{name.upper()}_FEED_URL": process.url + "/feed" for name, process in self.services.items()}
        for process in self.services.values():
            process.env.update(feeds)

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def start(self) -> Shop:
        for process in self.services.values():
            process.start(wait=False)
        for process in self.services.values():
            process.wait_healthy(60)
        return self

    def stop(self) -> None:
        for process in self.services.values():
            try:
                process.stop()
            except Exception:  # noqa: BLE001 - best effort at the end of a test
                process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in self.services.values())

    def settle(self, timeout: float = 180.0) -> None:
        """Wait until every follower has handled its feed to the end, twice in a row (nothing left in flight)."""
        previous = None

        def caught_up():
            nonlocal previous
            try:
                health = {name: requests.get(p.url + "/health", timeout=5).json() for name, p in self.services.items()}
            except (requests.RequestException, ValueError):
                return False
            heads = {name: h["feed_position"] for name, h in health.items()}
            positions = {"invoicing": health["invoicing"]["position"], "shipping": health["shipping"]["position"],
                         "order<invoicing": health["order"]["feeds"]["invoicing"]["position"],
                         "order<shipping": health["order"]["feeds"]["shipping"]["position"]}
            done = (positions["invoicing"] == positions["shipping"] == heads["order"]
                    and positions["order<invoicing"] == heads["invoicing"]
                    and positions["order<shipping"] == heads["shipping"])
            snapshot = (heads, positions)
            settled, previous = done and snapshot == previous, snapshot
            return settled
        wait_until(caught_up, timeout, interval=0.5, message="every follower to reach the end of its feed")


def walk_events(service_url: str) -> list[tuple[int, str, dict]]:
    """(position, event type, document) of every entry of a service's feed, walking prev-archive from /feed.

    The killer may still be at work: a request that meets a service being killed is retried until it is back."""
    url, seen, events = service_url.rstrip("/") + "/feed", set(), []
    deadline = time.monotonic() + 120
    while url:
        assert url not in seen, f"the feed's prev-archive links loop at {url}"
        seen.add(url)
        response = _retrying("GET", url, deadline, retry_on=(502, 503))
        assert response.status_code == 200, f"GET {url} → {response.status_code}"
        root = etree.fromstring(response.content, SAFE_PARSER)
        for entry in root.iter(f"{{{ATOM_NS}}}entry"):
            events.append((int(entry.findtext(f"{{{ATOMSHOP_NS}}}position")),
                           entry.find(f"{{{ATOM_NS}}}category").get("term"),
                           json.loads(entry.findtext(f"{{{ATOM_NS}}}content"))))
        url = next((link.get("href") for link in root.findall(f"{{{ATOM_NS}}}link")
                    if link.get("rel") == "prev-archive"), None)
    events.sort()
    assert [p for p, _, _ in events] == list(range(1, len(events) + 1)), "feed positions are not gap-free 1..N"
    return events


def _retrying(method: str, url: str, deadline: float, retry_on: tuple[int, ...] = ()) -> requests.Response:
    """The request, repeated while the service is down (killed) or answers a status in `retry_on`."""
    while True:
        try:
            response = requests.request(method, url, timeout=10)
            if response.status_code not in retry_on:
                return response
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} {url}: no answer but {retry_on} or errors until the deadline")
        time.sleep(0.1)


@dataclass
class Outcomes:
    """What the customers and the warehouse were told: order id → final status code of their request."""

    cancels: dict[int, int] = field(default_factory=dict)
    dispatches: dict[int, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)


class Actors:
    """Threads that cancel (order service) and dispatch (shipping) the chosen orders, an order's two actions
    next to each other in the queue so that they race; each request retried through kills until it is answered."""

    def __init__(self, shop: Shop, cancel: list[int], dispatch: list[int], seed: int, threads: int = 6,
                 timeout: float = 240.0):
        rng = random.Random(seed)
        both = collections.defaultdict(list)
        for order_id in cancel:
            both[order_id].append("cancel")
        for order_id in dispatch:
            both[order_id].append("dispatch")
        self.queue: queue.Queue = queue.Queue()
        for order_id in rng.sample(sorted(both), len(both)):
            for action in rng.sample(both[order_id], len(both[order_id])):
                self.queue.put((action, order_id))
        self.shop, self.outcomes, self.deadline = shop, Outcomes(), time.monotonic() + timeout
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def run(self) -> Outcomes:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join()
        return self.outcomes

    def _work(self) -> None:
        while True:
            try:
                action, order_id = self.queue.get_nowait()
            except queue.Empty:
                return
            try:
                if action == "cancel":
                    url = f"{self.shop['order'].url}/api/orders/{order_id}/cancel"
                    code = _retrying("POST", url, self.deadline, retry_on=(500, 502, 503)).status_code
                    self.outcomes.cancels[order_id] = code
                    if code not in (202, 409):
                        self.outcomes.unexpected.append(f"cancel {order_id} → {code}")
                else:  # 404 until shipping has handled the order's OrderCreated
                    url = f"{self.shop['shipping'].url}/api/shipments/{order_id}/dispatch"
                    code = _retrying("POST", url, self.deadline, retry_on=(404, 500, 502, 503)).status_code
                    self.outcomes.dispatches[order_id] = code
                    if code not in (200, 409):
                        self.outcomes.unexpected.append(f"dispatch {order_id} → {code}")
            except AssertionError as exc:
                self.outcomes.unexpected.append(str(exc))
