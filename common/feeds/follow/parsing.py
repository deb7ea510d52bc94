"""Feed pages parsed in worker processes, beside the handlers: feedparser is pure Python, so in a thread of the
follower's process it would hold the GIL the handlers need.

One pool per process, shared by its followers: made on the first page a follower hands it, shut down when the last
follower that used it stops (and at exit). At most PARSE_WORKERS processes, each parsing one page at a time; the
callers keep only a few pages in flight (pagewalk.py), so memory stays bounded. Workers are forked by
multiprocessing's fork server, a fresh single-threaded process that imported this library once, so a worker starts
in milliseconds and is never a fork of a service process whose other threads may hold locks. A worker ignores
Ctrl-C (its parent decides) and exits when its parent is gone, so a killed service leaves none behind (nor the fork
server, which ends with the last of them).

Errors keep their meaning: a page feedparser refuses raises the same FeedError from `Parsing.page()` as it would
inline; a worker that died, or a pool shut down under a pass, is a FeedError too.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import weakref
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext

from common.feeds.follow.errors import FeedError
from common.feeds.follow.page import Page, parse_page
from common.feeds.follow.prescan import Scan

PARSE_WORKERS = min(2, os.cpu_count() or 1)


@dataclass
class Parsing:
    """A page being parsed (or parsed already, or that could not be had: `error`)."""

    url: str  # as requested
    final_url: str = ""  # after redirects
    scan: Scan | None = None
    future: Future[Page] | None = None
    error: FeedError | None = None

    def page(self) -> Page:
        """The parsed page; FeedError when it could not be fetched or parsed."""
        if self.error is not None:
            raise self.error
        assert self.future is not None
        try:
            return self.future.result()
        except BrokenProcessPool:
            _pool.discard_broken()
            raise FeedError(f"{self.final_url}: the process parsing the page ended unexpectedly") from None
        except CancelledError:
            raise FeedError(f"{self.final_url}: not parsed, the process is stopping") from None

    def cancel(self) -> None:
        """Not needed after all: parsed, if at all, for nobody."""
        if self.future is not None:
            self.future.cancel()


class PageParser:
    """Where one follower's pages are parsed: the process's shared pool, or the calling thread (`workers=0`)."""

    def __init__(self, workers: int = PARSE_WORKERS) -> None:
        self.workers = workers
        self.closed = False

    def submit(self, url: str, body: bytes, etag: str | None, scan: Scan, pooled: bool = True,
               handled: int = 0) -> Future[Page]:
        """Parse a pre-scanned page (see parse_page for `handled`): in a worker when `pooled` (more pages follow
        it), else here and now."""
        if pooled and self.workers > 0 and not self.closed:
            pool = _pool.get(self)
            if pool is not None:
                try:
                    return pool.submit(parse_page, url, body, etag, scan, handled)
                except (BrokenProcessPool, RuntimeError, OSError):  # broken, shut down meanwhile, or no fork
                    _pool.discard_broken()
        done: Future[Page] = Future()
        try:
            done.set_result(parse_page(url, body, etag, scan, handled))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def close(self) -> None:
        """This follower is done: the pool shuts down if no other follower of the process uses it."""
        self.closed = True
        _pool.release(self)


class _SharedPool:
    """The process's pool of parsing workers and the parsers using it (weakly: a dropped follower counts no more)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._pid = 0
        self._users: weakref.WeakSet[PageParser] = weakref.WeakSet()
        # A pipe whose writing end only this process holds: its workers see it close when the process is gone.
        self._alive: tuple[Connection, Connection] | None = None

    def get(self, user: PageParser) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():  # none yet, or one of the parent's
                if self._pid != os.getpid():
                    self._users, self._alive = weakref.WeakSet(), None
                try:
                    self._alive = self._alive or multiprocessing.Pipe(duplex=False)
                    self._executor = ProcessPoolExecutor(user.workers, mp_context=_context(),
                                                         initializer=_worker_started, initargs=(self._alive[0],))
                except (OSError, ValueError, NotImplementedError):  # no processes here: parse in the caller
                    return None
                self._pid = os.getpid()
            self._users.add(user)
            return self._executor

    def release(self, user: PageParser) -> None:
        with self._lock:
            self._users.discard(user)
            if self._users or self._executor is None or self._pid != os.getpid():
                return
            executor, self._executor = self._executor, None
        executor.shutdown(wait=False, cancel_futures=True)

    def discard_broken(self) -> None:
        """A worker died: the next page gets a fresh pool (pages already given to the one in use, should another
        thread have replaced the broken one meanwhile, are still parsed)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)


_pool = _SharedPool()


def _context() -> BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Imported once by the fork server, so every worker forked from it starts with the parser loaded (no effect
    # when the process's fork server is already running: its workers then import the parser themselves).
    context.set_forkserver_preload([parse_page.__module__])
    return context


def _worker_started(parent_alive: Connection) -> None:
    """In a worker: leave Ctrl-C to the parent, and exit once the parent is gone (killed: no shutdown came).

    Not by watching the parent pid: a worker's parent is the fork server, which lives on as long as any worker
    holds its own pipe open."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_when_orphaned() -> None:
        wait([parent_alive])  # readable at end of file: every writing end closed, the parent is gone
        os._exit(0)

    threading.Thread(target=exit_when_orphaned, name="exit-when-orphaned", daemon=True).start()
