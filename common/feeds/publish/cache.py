"""PageCache: the bounded, thread-safe LRU of rendered feed pages kept in each process."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

PageKey = tuple[str | int, ...]


class PageCache(Generic[V]):
    """A bounded, thread-safe LRU of rendered pages (the first level; the archive table is the second)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._pages: OrderedDict[PageKey, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: PageKey) -> V | None:
        """The page under `key`, now the most recently used; None if it is not (or no longer) here."""
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, key: PageKey, body: V) -> None:
        """Keep `body` under `key`, dropping the least recently used page beyond the capacity."""
        with self._lock:
            self._pages[key] = body
            self._pages.move_to_end(key)
            while len(self._pages) > self.capacity:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        """Forget every page."""
        with self._lock:
            self._pages.clear()
