"""What do metrics cost a feed? Feed page throughput with metrics on vs off, in one run (target: on >= 0.95x off).

Two order services under gunicorn with the repo's config (2 workers, 4 threads, multiprocess metrics), one built
with metrics (the default) and one with `create_app({'METRICS': False})`, each on its own SQLite database holding
the same 30 orders. wrk loads each in turn for a couple of seconds, alternating which goes first, on the current page
(200), the current page revalidated (304) and an archive page, PAIRS times each. The machine is shared, so load
drifts: each on/off pair is measured back to back and the figure is the median of the pairs' ratios.

Run: .venv/bin/python bench/metrics_cost.py   (needs wrk)
"""
from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import GunicornProcess  # noqa: E402

TARGET = 0.95
PAIRS = 8
SECONDS = 2
ORDER = {"customer_id": 1, "shipping_address": {"street": "1 Main", "zip": "1", "city": "X"},
         "billing_address": {"street": "1 Main", "zip": "1", "city": "X"}, "lines": [{"item_id": 1, "quantity": 1}]}


IN_PROCESS_REPEATS = 2000
KINDS = [("current 200", "/feed", False), ("current 304", "/feed", True), ("archive 200", "/feed/pages/1", False)]


def wrk(url: str, header: str | None = None) -> float:
    """Requests per second wrk measures on url (2 threads, 8 connections)."""
    cmd = ["wrk", "-t2", "-c8", f"-d{SECONDS}s", url] + (["-H", header] if header else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} error responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> int:
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)")
        return 1
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="atomshop-bench-metrics-"))
    servers = {
        "on": GunicornProcess("order_service.app:create_app()", folder / "on", workers=2, threads=4, name="on",
                              env={"FEED_PAGE_SIZE": "20", "PROMETHEUS_MULTIPROC_DIR": str(folder / "on-metrics")}),
        "off": GunicornProcess("order_service.app:create_app({'METRICS': False})", folder / "off", workers=2,
                               threads=4, name="off", env={"FEED_PAGE_SIZE": "20",
                                                           "PROMETHEUS_MULTIPROC_DIR": str(folder / "off-metrics")}),
    }
    ratios: list[float] = []
    try:
        for name, server in servers.items():
            (folder / f"{name}-metrics").mkdir(parents=True)
            server.start()
            for _ in range(30):
                requests.post(server.url + "/api/orders", json=ORDER, timeout=10).raise_for_status()
        assert requests.get(servers["on"].url + "/metrics", timeout=10).status_code == 200
        assert requests.get(servers["off"].url + "/metrics", timeout=10).status_code == 404
        print(f"feed requests per second, metrics on vs off ({PAIRS} back-to-back pairs of {SECONDS}s per kind)")
        print(f"{'kind':<16}{'off':>10}{'on':>10}{'median ratio':>14}")
        for kind, path, revalidate in KINDS:
            pairs = []
            for i in range(PAIRS):
                measured = {}
                for name in (("off", "on") if i % 2 else ("on", "off")):
                    url = servers[name].url
                    header = revalidate and f"If-None-Match: {requests.get(url + path, timeout=10).headers['ETag']}"
                    measured[name] = wrk(url + path, header or None)
                pairs.append(measured)
                ratios.append(measured["on"] / measured["off"])
            print(f"{kind:<16}{statistics.median(p['off'] for p in pairs):>10.0f}"
                  f"{statistics.median(p['on'] for p in pairs):>10.0f}"
                  f"{statistics.median(p['on'] / p['off'] for p in pairs):>13.2f}x")
        in_process = per_request_cost(folder)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    ratio = statistics.median(ratios)
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    off, on = in_process["off"], in_process["on"]
    print(f"in-process cost of a 304 on the current page, median of {IN_PROCESS_REPEATS} requests: "
          f"{off:.0f} µs off, {on:.0f} µs on (+{on - off:.0f} µs)")
    print(f"throughput with metrics on / off, median of {len(ratios)} pairs: {ratio:.3f}x "
          f"(target >= {TARGET}x): {verdict}; took {time.monotonic() - began:.0f}s")
    return 0 if ratio >= TARGET else 1


def per_request_cost(folder: Path) -> dict[str, float]:
    """Median µs per request through the Flask test client, on and off interleaved (no network, no server)."""
    from order_service.app import create_app

    clients = {}
    for name, metrics in (("on", True), ("off", False)):
        app = create_app({"DATABASE_URL": f"sqlite:///{folder / f'in-process-{name}.db'}", "METRICS": metrics})
        clients[name] = app.test_client()
        clients[name].post("/api/orders", json=ORDER)
    etags = {name: client.get("/feed").headers["ETag"] for name, client in clients.items()}
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(IN_PROCESS_REPEATS):
        for name, client in clients.items():
            started = time.perf_counter()
            response = client.get("/feed", headers={"If-None-Match": etags[name]})
            times[name].append((time.perf_counter() - started) * 1e6)
            assert response.status_code == 304, response.status_code
    return {name: statistics.median(values) for name, values in times.items()}


if __name__ == "__main__":
    sys.exit(main())
