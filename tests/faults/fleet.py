"""Process-level helpers: a fleet of real service processes, random SIGKILLs and restarts, /poll hammering."""
from __future__ import annotations

import collections
import random
import threading
import time
from pathlib import Path

import requests

from tests.support import ServiceProcess, stop_all

CONSUMERS = {"invoicing_service": "invoices", "shipping_service": "shipments"}


class Fleet:
    """An order service plus any number of invoicing/shipping instances, all real processes on free ports."""

    def __init__(self, workdir: Path, order_env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.order_env = order_env or {}
        self.order: ServiceProcess | None = None
        self.consumers: list[ServiceProcess] = []

    def start_order(self, **env: str) -> ServiceProcess:
        self.order = ServiceProcess("order_service", self.workdir / "order", env={**self.order_env, **env})
        return self.order.start()

    def add_consumer(self, package: str, feed_url: str | None = None, poll_interval: float = 0.2,
                     database_url: str | None = None, workdir: Path | None = None, start: bool = True,
                     **env: str) -> ServiceProcess:
        """Start one instance; instances sharing ``database_url`` (or ``workdir``) share their position."""
        environment = {"ORDER_FEED_URL": feed_url or self.order.url + "/feed", "POLL_INTERVAL": str(poll_interval),
                       **env}
        if database_url:
            environment["DATABASE_URL"] = database_url
        index = len(self.consumers)
        process = ServiceProcess(package, workdir or self.workdir / f"{package}-{index}", env=environment,
                                 name=f"{package}-{index}")
        self.consumers.append(process)
        return process.start() if start else process

    def of(self, package: str) -> list[ServiceProcess]:
        return [c for c in self.consumers if c.package == package]

    def stop(self) -> None:
        stop_all([*self.consumers, self.order])

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-2000:]}" for p in [self.order, *self.consumers] if p)


class Killer(threading.Thread):
    """SIGKILLs a random process of ``targets`` at random moments and restarts it, until stopped or ``limit``."""

    def __init__(self, targets: list[ServiceProcess], seed: int = 0, pause: tuple[float, float] = (0.2, 1.0),
                 limit: int | None = None, down: tuple[float, float] = (0.0, 0.3)):
        super().__init__(name="killer", daemon=True)
        self.targets = targets
        self.rng = random.Random(seed)
        self.pause = pause
        self.down = down
        self.limit = limit
        self.kills: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    @property
    def total(self) -> int:
        return sum(self.kills.values())

    def stop(self) -> Killer:
        self._stop_event.set()
        self.join(120)
        return self

    def run(self) -> None:
        while not self._stop_event.is_set() and (self.limit is None or self.total < self.limit):
            if self._stop_event.wait(self.rng.uniform(*self.pause)):
                return
            victim = self.rng.choice(self.targets)
            victim.kill()
            self.kills[victim.package] += 1
            time.sleep(self.rng.uniform(*self.down))
            try:
                victim.start()
            except AssertionError as exc:
                self.failures.append(f"{victim.name} did not come back: {exc}")
                return


class PollHammer(threading.Thread):
    """Posts /poll to the given consumers back to back; any answer but 200/202/502/503 is a failure (202: a pass
    was still running after the contract's bounded wait)."""

    def __init__(self, urls_fn, tolerate_connection_errors: bool = False):
        super().__init__(name="poll-hammer", daemon=True)
        self.urls_fn = urls_fn
        self.tolerate = tolerate_connection_errors
        self.statuses: collections.Counter[int] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.processed = 0
        self.error_samples: list[str] = []  # the first 502/503 answers, to say why
        self._stop_event = threading.Event()

    def stop(self) -> PollHammer:
        self._stop_event.set()
        self.join(120)
        return self

    def run(self) -> None:
        session = requests.Session()
        while not self._stop_event.is_set():
            for url in self.urls_fn():
                try:
                    response = session.post(url + "/poll", timeout=60)
                except requests.RequestException as exc:
                    self.errors[type(exc).__name__] += 1
                    if not self.tolerate:
                        self.failures.append(f"POST {url}/poll: {exc!r}")
                    session = requests.Session()
                    time.sleep(0.05)
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.processed += int(response.json().get("processed", 0))
                elif response.status_code == 202:
                    pass
                elif response.status_code in (502, 503):
                    if len(self.error_samples) < 20:
                        self.error_samples.append(f"{url} {response.status_code} {response.text[:300]}")
                else:
                    self.failures.append(f"POST {url}/poll → {response.status_code} {response.text[:200]}")


def start_all(processes: list[ServiceProcess], timeout: float = 60.0) -> None:
    """Start processes side by side (start-up is mostly imports) and wait until each answers /health."""
    for process in processes:
        process.start(wait=False)
    for process in processes:
        process.wait_healthy(timeout)
