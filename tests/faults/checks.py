"""Checkers: every order in the feed exactly once, positions gap-free and visible in order, one effect per order."""
from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass, field

import requests
from lxml import etree

from tests.faults.atom import ATOM_NS, ATOMSHOP_NS

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class FeedPage:
    url: str
    positions: list[int]
    order_ids: list[int]
    links: dict[str, str]


def parse_page(url: str, body: bytes) -> FeedPage:
    """Positions, order ids (from the entries' JSON content) and links of one Atom page."""
    root = etree.fromstring(body, SAFE_PARSER)
    positions, order_ids = [], []
    for entry in root.iter(f"{{{ATOM_NS}}}entry"):
        positions.append(int(entry.findtext(f"{{{ATOMSHOP_NS}}}position")))
        order_ids.append(int(json.loads(entry.findtext(f"{{{ATOM_NS}}}content"))["id"]))
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{{{ATOM_NS}}}link")}
    return FeedPage(url, positions, order_ids, links)


def fetch_page(session: requests.Session, url: str, timeout: float = 30.0) -> FeedPage:
    response = session.get(url, timeout=timeout)
    assert response.status_code == 200, f"GET {url} → {response.status_code}"
    return parse_page(url, response.content)


def walk_feed(order_url: str, max_pages: int = 100_000) -> list[tuple[int, int]]:
    """(position, order_id) of every entry, walking prev-archive from /feed; each page fetched once."""
    session = requests.Session()
    url, seen, pairs = order_url.rstrip("/") + "/feed", set(), []
    while url:
        assert url not in seen, f"the feed's prev-archive links loop at {url}"
        assert len(seen) < max_pages, "too many feed pages"
        seen.add(url)
        page = fetch_page(session, url)
        pairs.extend(zip(page.positions, page.order_ids, strict=True))
        url = page.links.get("prev-archive")
    return sorted(pairs)


@dataclass
class Tally:
    """What a check found: totals, and the lost and duplicated order ids."""

    total: int = 0
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)


def check_feed(order_url: str, created: list[int]) -> Tally:
    """Every 201 order in the feed exactly once, positions exactly 1..N, no order twice."""
    pairs = walk_feed(order_url)
    positions = [p for p, _ in pairs]
    assert positions == list(range(1, len(pairs) + 1)), (
        f"feed positions are not gap-free 1..{len(pairs)}: first differences "
        f"{[(i + 1, p) for i, p in enumerate(positions) if p != i + 1][:10]}")
    counts = collections.Counter(order_id for _, order_id in pairs)
    tally = Tally(total=len(pairs), lost=sorted(set(created) - set(counts)),
                  duplicated=sorted(o for o, n in counts.items() if n > 1))
    assert not tally.lost, f"{len(tally.lost)} orders answered 201 but missing from the feed: {tally.lost[:20]}"
    assert not tally.duplicated, f"orders twice in the feed: {tally.duplicated[:20]}"
    return tally


def effect_counts(consumer_url: str, resource: str) -> collections.Counter[int]:
    """How many invoices (or shipments) the consumer lists per order id."""
    response = requests.get(f"{consumer_url}/api/{resource}", timeout=60)
    assert response.status_code == 200, f"GET /api/{resource} → {response.status_code}"
    return collections.Counter(int(doc["order_id"]) for doc in response.json())


def check_effects(consumer_url: str, resource: str, order_ids: list[int]) -> Tally:
    """Exactly one invoice/shipment per order in ``order_ids``, and none for any other order."""
    counts = effect_counts(consumer_url, resource)
    tally = Tally(total=sum(counts.values()), lost=sorted(set(order_ids) - set(counts)),
                  duplicated=sorted(o for o, n in counts.items() if n > 1))
    strays = sorted(set(counts) - set(order_ids))
    assert not tally.lost, f"{len(tally.lost)} orders without a {resource[:-1]}: {tally.lost[:20]}"
    assert not tally.duplicated, f"orders with several {resource}: {tally.duplicated[:20]}"
    assert not strays, f"{resource} for orders that are not in the feed: {strays[:20]}"
    return tally


def wait_for_effects(consumer_url: str, resource: str, expected: int, timeout: float = 120.0) -> None:
    """Wait until the consumer lists at least ``expected`` invoices/shipments."""
    deadline = time.monotonic() + timeout
    have = 0
    while time.monotonic() < deadline:
        try:
            have = sum(effect_counts(consumer_url, resource).values())
        except requests.RequestException:
            have = -1
        if have >= expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{consumer_url} has {have} {resource} after {timeout}s, expected {expected}")


class FeedWatcher(threading.Thread):
    """Reads /feed over and over and records every sign of out-of-order visibility.

    On the current page k (page size ``size``) the visible positions must be exactly (k-1)·size+1 … max: a hole
    means a later position became visible before an earlier one (the plain-sequence bug on PostgreSQL). Across
    reads of the same page, a position below one already seen must never newly appear. When the current page
    moves on, the page it left must now be a full, contiguous archive.
    """

    def __init__(self, order_url: str, size: int, interval: float = 0.0):
        super().__init__(name="feed-watcher", daemon=True)
        self.feed_url = order_url.rstrip("/") + "/feed"
        self.size = size
        self.interval = interval
        self.violations: list[str] = []
        self.reads = 0
        self.errors = 0
        self.max_seen = 0
        self._stop_event = threading.Event()

    def stop(self) -> FeedWatcher:
        self._stop_event.set()
        self.join(30)
        return self

    def run(self) -> None:
        session = requests.Session()
        seen_on_page: dict[int, set[int]] = collections.defaultdict(set)
        current = 0
        while not self._stop_event.is_set():
            try:
                page = fetch_page(session, self.feed_url, timeout=10)
            except (requests.RequestException, AssertionError, etree.XMLSyntaxError):
                self.errors += 1
                time.sleep(0.05)
                continue
            self.reads += 1
            prev = page.links.get("prev-archive")
            k = int(prev.rsplit("/", 1)[1]) + 1 if prev else 1
            self._check_snapshot(k, page.positions, seen_on_page[k])
            if k != current:
                if current and k > current:
                    self._check_archive(session, page, current)
                current = k
            if self.interval:
                time.sleep(self.interval)

    def _check_snapshot(self, k: int, positions: list[int], seen: set[int]) -> None:
        if not positions:
            return
        first, top = (k - 1) * self.size + 1, max(positions)
        self.max_seen = max(self.max_seen, top)
        missing = sorted(set(range(first, top + 1)) - set(positions))
        if missing:
            self.violations.append(f"page {k} shows position {top} while {missing[:5]} are not visible")
        if len(positions) != len(set(positions)):
            self.violations.append(f"page {k} shows a position twice: {sorted(positions)}")
        if seen:
            late = sorted(p for p in set(positions) - seen if p < max(seen))
            if late:
                self.violations.append(f"page {k}: positions {late[:5]} appeared after {max(seen)} was seen")
        seen.update(positions)

    def _check_archive(self, session: requests.Session, page: FeedPage, left: int) -> None:
        url = page.links.get("prev-archive")
        # Walk back from the new current page to the page the watcher left (usually one step).
        for _ in range(3):
            if not url:
                return
            try:
                archive = fetch_page(session, url, timeout=10)
            except (requests.RequestException, AssertionError, etree.XMLSyntaxError):
                self.errors += 1
                return
            number = int(url.rsplit("/", 1)[1])
            expected = list(range((number - 1) * self.size + 1, number * self.size + 1))
            if sorted(archive.positions) != expected:
                self.violations.append(f"archive page {number} holds {sorted(archive.positions)[:5]}… "
                                       f"({len(archive.positions)} entries), not {expected[0]}..{expected[-1]}")
            if number <= left:
                return
            url = archive.links.get("prev-archive")


class ConsumerWatcher(threading.Thread):
    """Samples each consumer's /health position: it must never go backwards (crashes and restarts included)."""

    def __init__(self, urls_fn, interval: float = 0.2):
        super().__init__(name="consumer-watcher", daemon=True)
        self.urls_fn = urls_fn  # callable: the consumer base URLs to sample, by group name
        self.interval = interval
        self.violations: list[str] = []
        self.samples = 0
        self.last: dict[str, int] = {}
        self._stop_event = threading.Event()

    def stop(self) -> ConsumerWatcher:
        self._stop_event.set()
        self.join(30)
        return self

    def run(self) -> None:
        session = requests.Session()
        while not self._stop_event.is_set():
            for group, url in self.urls_fn():
                try:
                    body = session.get(url + "/health", timeout=5).json()
                except (requests.RequestException, ValueError):
                    continue
                position = health_position(body)
                if position is None:
                    continue
                self.samples += 1
                previous = self.last.get(group, 0)
                if position < previous:
                    self.violations.append(f"{group}: position went back from {previous} to {position}")
                self.last[group] = max(previous, position)
            self._stop_event.wait(self.interval)


def health_position(body: dict) -> int | None:
    """The feed position a consumer's /health reports (top level or nested)."""
    for key in ("position", "feed_position", "last_position"):
        value = body.get(key)
        if isinstance(value, int):
            return value
    for value in body.values():
        if isinstance(value, dict):
            found = health_position(value)
            if found is not None:
                return found
    return None


class EffectSampler(threading.Thread):
    """Snapshots a consumer's invoices (or shipments) again and again while it works.

    Each snapshot is one database read, so in-order handling means every snapshot covers exactly the positions
    1…m for some m: an invoice for position n+1 without one for n is an entry handled out of order (or skipped).
    """

    def __init__(self, consumer_url: str, resource: str, interval: float = 0.5):
        super().__init__(name=f"sampler-{resource}", daemon=True)
        self.url = f"{consumer_url}/api/{resource}"
        self.interval = interval
        self.snapshots: list[frozenset[int]] = []
        self._stop_event = threading.Event()

    def stop(self) -> EffectSampler:
        self._stop_event.set()
        self.join(60)
        return self

    def run(self) -> None:
        session = requests.Session()
        while not self._stop_event.wait(self.interval):
            try:
                response = session.get(self.url, timeout=30)
                if response.status_code == 200:
                    self.snapshots.append(frozenset(int(doc["order_id"]) for doc in response.json()))
            except (requests.RequestException, ValueError):
                continue

    def out_of_order(self, position_of: dict[int, int]) -> list[str]:
        """Snapshots whose positions are not 1…m, described."""
        problems = []
        for snapshot in self.snapshots:
            positions = sorted(position_of.get(order_id, -1) for order_id in snapshot)
            if positions != list(range(1, len(positions) + 1)):
                holes = sorted(set(range(1, max(positions, default=0) + 1)) - set(positions))[:5]
                problems.append(f"{len(positions)} handled up to position {positions[-1]}, missing {holes}")
        return problems
