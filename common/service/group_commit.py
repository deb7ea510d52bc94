"""Group commit: the writes that concurrent threads of one process make at the same moment share a transaction.

Each thread hands its item to `GroupCommit.write(item)` and waits. One thread at a time writes: it takes the items
waiting at that moment (its own among them, unless an earlier writer took it already), stores them all in one unit
of work and hands each waiting thread its own result. The lot then shares one BEGIN … COMMIT and one turn of the
database's write lock (SQLite) or of a publisher's advisory lock (PostgreSQL), rather than queueing for them one by
one: under load the lock, not the CPU, bounds how many writes a second a database takes.

Should the shared transaction fail, each item is stored again in a transaction of its own, so an item's failure is
only ever its own. Nothing is returned before its transaction has committed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

from sqlalchemy.orm import Session

from common.feeds.uow import UnitOfWork

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64  # items one transaction takes at most: bounds how long it holds the lock


class _Waiting(Generic[T, R]):
    """One thread's item, and its outcome once the transaction that stored it has ended."""

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Stores items from concurrent threads in shared units of work (see the module's docstring)."""

    def __init__(self, db: UnitOfWork, store: Callable[[Session, Sequence[T]], Sequence[R]],
                 max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.store = store  # stores the items in the session's transaction: a result per item, in their order
        self.max_batch = max_batch
        self._waiting: list[_Waiting[T, R]] = []
        self._waiting_lock = threading.Lock()
        self._writer = threading.Lock()  # held by the one thread writing for the others

    def write(self, item: T) -> R:
        """Store `item` (with whatever else is waiting) and return its result once its transaction committed."""
        mine: _Waiting[T, R] = _Waiting(item)
        with self._waiting_lock:
            self._waiting.append(mine)
        while not mine.done:
            with self._writer:
                if mine.done:  # a writer took it while this thread waited for its turn
                    break
                with self._waiting_lock:
                    batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
                self._write(batch)
        if mine.error is not None:
            raise mine.error
        return cast(R, mine.result)  # done without an error: what the store returned for it

    def _write(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            with self.db.write() as session:
                results = self.store(session, [waiting.item for waiting in batch])
        except Exception as exc:
            if len(batch) > 1:
                for waiting in batch:  # each on its own: the culprit alone gets the error
                    self._write([waiting])
                return
            batch[0].error = exc
            batch[0].done = True
            return
        except BaseException as exc:  # the writing thread is being stopped: tell the others, never leave them
            for waiting in batch:
                waiting.error, waiting.done = exc, True
            raise
        for waiting, result in zip(batch, results, strict=True):
            waiting.result = result
            waiting.done = True
