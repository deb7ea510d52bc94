"""Issue 12's table: feeds at the framework's speed, as ratios against baselines measured in the same run.

Every figure comes from real processes: the order service under gunicorn (deploy/gunicorn.conf.py, 4 workers × 8
threads, as compose runs it) loaded by wrk -t2 -c32, on SQLite and on a throwaway PostgreSQL cluster, next to
bench/support/hello.py under the same gunicorn (Flask's "hello", and a handler doing one INSERT). Runs are
interleaved over ROUNDS rounds and the median kept, so load from other processes weighs on both sides alike.

Rows:
- `/feed` answered 304 (If-None-Match) vs hello                                   target ≥ 0.8×
- a random archive page at 1M orders vs at 1k orders, over HTTP (cost ratio)         target ≤ 1.1×
  (1M notification rows written straight into the table; SAMPLE_PAGES random pages, 4× the in-memory LRU,
  are requested once first, so what is measured is the steady state of pages rendered once: the table read)
- order intake POST /api/orders vs POST /insert (one INSERT)                       target ≥ 0.6×
- catch-up of 10,000 orders by invoicing vs feedparser parsing the same pages      target ≥ 0.8×
  (bench/catch_up.py's measurement: the order service under gunicorn, one worker, as compose runs it)

Usage: python bench/feed_speed.py [--backend sqlite|postgresql|both] [--orders 1000000] [--seconds 3] [--rounds 3]
Exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.hello import create_schema as hello_schema  # noqa: E402
from bench.support.load import load_notifications  # noqa: E402
from bench.support.wrk import header_script, post_script, random_paths_script, wrk  # noqa: E402
from tests.servers import GunicornProcess, PostgresServer  # noqa: E402

PAGE_SIZE = 20
SAMPLE_PAGES = 1024
ORDER = ('{"customer_id": 1, "shipping_address": {"street": "1 Bench Street", "zip": "12345", "city": "Benchtown"}, '
         '"billing_address": {"street": "1 Bench Street", "zip": "12345", "city": "Benchtown"}, '
         '"lines": [{"item_id": 1, "quantity": 2}, {"item_id": 3, "quantity": 1}]}')


@dataclass
class Row:
    what: str
    measured: str
    baseline: str
    ratio: float
    target: str
    met: bool


def gunicorn(app: str, workdir: Path, database_url: str, name: str) -> GunicornProcess:
    # POLL_INTERVAL=0: the order service's own followers (of invoicing and shipping) read only on POST /poll, so
    # nothing runs in the background and it may serve its feed from 4 workers like hello; the feed's code path is
    # the same as under compose's one worker per instance.
    env = {"DATABASE_URL": database_url, "FEED_PAGE_SIZE": str(PAGE_SIZE), "WEB_CONCURRENCY": "4",
           "GUNICORN_THREADS": "8", "POLL_INTERVAL": "0"}
    return GunicornProcess(app, workdir / name, env=env, workers=4, threads=8, name=name)


def create_schema(url: str, workdir: Path) -> None:
    """The order service's tables (its migrations) and demo data, as its first start makes them."""
    import os

    from order_service.app import create_app

    os.environ.setdefault("ATOMSHOP_DATA_DIR", str(workdir / "data"))
    create_app({"DATABASE_URL": url}).extensions["atomshop.db"].dispose()


def median_rates(runs: dict[str, tuple[str, str]], seconds: float, rounds: int) -> dict[str, float]:
    """Median requests/s of each (url, lua) run, interleaved; a run with errors or unexpected statuses counts 0.

    Each run goes once unmeasured first, so the first round does not also pay for every gunicorn worker opening
    its database connections and filling its page cache. Each run's rounds are printed: on a shared machine the
    spread between rounds is often wider than a target's margin."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for url, lua in runs.values():
        wrk(url, lua, 1)
    for _ in range(rounds):
        for name, (url, lua) in runs.items():
            result = wrk(url, lua, seconds)
            if result.errors:
                print(f"  {name}: {result.errors} errors or non-2xx/3xx answers from {url}: counted as 0 req/s")
            rates[name].append(0.0 if result.errors else result.requests_per_second)
    for name, values in rates.items():  # the spread, next to the medians the table keeps
        print(f"  {name}: {', '.join(f'{value:,.0f}' for value in values)} req/s")
    return {name: statistics.median(values) for name, values in rates.items()}


def warm_archives(url: str, numbers: list[int]) -> float:
    """Request each archive page once (rendered, stored); seconds per page."""
    start = time.perf_counter()
    with requests.Session() as http:
        for number in numbers:
            response = http.get(f"{url}/feed/pages/{number}", timeout=60)
            assert response.status_code == 200, (number, response.status_code)
    return (time.perf_counter() - start) / len(numbers)


def backend_rows(backend: str, tmp: Path, hello_rate: float | None, args) -> tuple[list[Row], float]:
    """The 304, archive and intake rows on one backend."""
    postgres = PostgresServer().start() if backend == "postgresql" else None

    def database(name: str) -> str:
        return postgres.create_database(name) if postgres else f"sqlite:///{tmp / backend / name}.db"

    try:
        (tmp / backend).mkdir(parents=True, exist_ok=True)
        small_url, large_url = database("orders_1k"), database("orders_1m")
        started = time.perf_counter()
        for url, count in ((small_url, 1_000), (large_url, args.orders)):  # before the servers: no lock waits
            create_schema(url, tmp / backend)
            load_notifications(url, count)
        print(f"  {backend}: {args.orders:,} notifications written in {time.perf_counter() - started:.1f}s",
              flush=True)
        hello_url = database("hello")
        hello_schema(hello_url)
        hello = gunicorn("bench.support.hello:create_app()", tmp / backend, hello_url, "hello").start()
        small = gunicorn("order_service.app:create_app()", tmp / backend, small_url, "order-1k").start()
        large = gunicorn("order_service.app:create_app()", tmp / backend, large_url, "order-1m").start()
        try:
            etag = requests.get(f"{small.url}/feed", timeout=10).headers["ETag"]
            full_pages = args.orders // PAGE_SIZE
            sample = random.Random(12).sample(range(1, full_pages), min(SAMPLE_PAGES, full_pages - 1))
            small_pages = list(range(1, 1_000 // PAGE_SIZE))
            first_render = warm_archives(large.url, sample)
            warm_archives(small.url, small_pages)
            print(f"  {backend}: {len(sample)} archive pages at {args.orders:,} requested once: "
                  f"{first_render * 1000:.1f} ms each", flush=True)
            rates = median_rates({
                "hello": (hello.url + "/", ""),
                "304": (small.url + "/feed", header_script({"If-None-Match": etag.replace('"', '\\"')})),
                "archive 1k": (small.url, random_paths_script([f"/feed/pages/{n}" for n in small_pages])),
                "archive 1M": (large.url, random_paths_script([f"/feed/pages/{n}" for n in sample])),
                "insert": (hello.url + "/insert", post_script(ORDER)),
                # On the big feed: the small one's current page must stay the one the 304s validate.
                "intake": (large.url + "/api/orders", post_script(ORDER)),
            }, args.seconds, args.rounds)
        finally:
            for server in (hello, small, large):
                server.stop()
    finally:
        if postgres:
            postgres.stop()
    name = "SQLite" if backend == "sqlite" else "PostgreSQL"
    rates = {name: rate or float("nan") for name, rate in rates.items()}  # a failed run: the ratio reads nan, missed
    hello_rate = rates["hello"]
    rows = [
        Row(f"/feed answered 304, {name}", f"{rates['304']:,.0f} req/s", f"hello {hello_rate:,.0f} req/s",
            rates["304"] / hello_rate, "≥ 0.8×", rates["304"] / hello_rate >= 0.8),
        Row(f"random archive at {args.orders // 1000:,}k vs 1k orders, {name}",
            f"{rates['archive 1M']:,.0f} req/s", f"1k: {rates['archive 1k']:,.0f} req/s",
            rates["archive 1k"] / rates["archive 1M"], "≤ 1.1× dearer",
            rates["archive 1k"] / rates["archive 1M"] <= 1.1),
        Row(f"order intake POST /api/orders, {name}", f"{rates['intake']:,.0f}/s",
            f"one INSERT {rates['insert']:,.0f}/s",
            rates["intake"] / rates["insert"], "≥ 0.6×", rates["intake"] / rates["insert"] >= 0.6),
    ]
    return rows, hello_rate


def catch_up_row(tmp: Path) -> Row:
    """bench/catch_up.py's figures, one round."""
    import catch_up

    rates = catch_up.measure(10_000, tmp, rounds=1)
    ratio = rates["invoicing catch-up"] / rates["feedparser"]
    return Row("catch-up of 10,000 orders", f"{rates['invoicing catch-up']:,.0f}/s",
               f"feedparser {rates['feedparser']:,.0f}/s", ratio, "≥ 0.8×", ratio >= 0.8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-catch-up", action="store_true")
    args = parser.parse_args()
    began = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="atomshop-speed-") as tmp:
        tmp = Path(tmp)
        for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
            got, _ = backend_rows(backend, tmp, None, args)
            rows.extend(got)
        if not args.no_catch_up:
            rows.append(catch_up_row(tmp / "catch-up"))
    print("\n| what | measured | baseline in the same run | ratio | target | met |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.what} | {row.measured} | {row.baseline} | {row.ratio:.2f}× | {row.target} | "
              f"{'yes' if row.met else 'MISSED'} |")
    missed = [row.what for row in rows if not row.met]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} targets met in {time.monotonic() - began:.0f}s"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
