"""deploy/gunicorn.conf.py: background tasks (a consumer's scheduled poller) run once per instance, under gunicorn."""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import textwrap
import time

import pytest
import requests

from tests.servers import GunicornProcess
from tests.support import wait_until

# An app with one background task that records, per process, when it is started and stopped: what the hook
# does with it is the thing under test, so the task itself only has to be observable.
RECORDING_APP = """
import os
from flask import Flask


class Recorder:
    def start(self):
        with open(os.environ["RECORD"], "a") as f:
            f.write(f"start {os.getpid()}\\n")

    def stop(self):
        with open(os.environ["RECORD"], "a") as f:
            f.write(f"stop {os.getpid()}\\n")


def create_app():
    app = Flask(__name__)
    app.extensions["atomshop.background"] = [Recorder()]
    app.add_url_rule("/health", "health", lambda: {"status": "ok", "pid": os.getpid()})
    return app
"""


@pytest.fixture
def recording_app(tmp_path):
    (tmp_path / "app" / "recording_app.py").parent.mkdir()
    (tmp_path / "app" / "recording_app.py").write_text(textwrap.dedent(RECORDING_APP))
    record = tmp_path / "record.txt"
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "app"), os.environ.get("PYTHONPATH", "")]),
           "RECORD": str(record)}
    return env, record


def _events(record) -> list[tuple[str, int]]:
    try:
        return [(kind, int(pid)) for kind, pid in (line.split() for line in record.read_text().splitlines())]
    except FileNotFoundError:
        return []


def test_a_single_worker_starts_the_background_tasks_once_and_stops_them_on_shutdown(recording_app, tmp_path):
    env, record = recording_app
    server = GunicornProcess("recording_app:create_app()", tmp_path / "run", env=env, workers=1, threads=4)
    with server:
        worker_pid = requests.get(server.url + "/health", timeout=5).json()["pid"]
        for _ in range(20):  # many requests, many threads: still the one start of boot time
            requests.get(server.url + "/health", timeout=5)
        assert _events(record) == [("start", worker_pid)]

    assert server.proc.returncode == 0
    assert _events(record) == [("start", worker_pid), ("stop", worker_pid)]


def test_a_worker_that_dies_is_replaced_by_one_that_starts_its_own_background_tasks(recording_app, tmp_path):
    env, record = recording_app
    with GunicornProcess("recording_app:create_app()", tmp_path / "run", env=env, workers=1) as server:
        first = requests.get(server.url + "/health", timeout=5).json()["pid"]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(_events(record)) == 2, 30, message="the replacement worker to start its tasks")
        second = requests.get(server.url + "/health", timeout=5).json()["pid"]

    assert second != first
    assert _events(record)[:2] == [("start", first), ("start", second)]


def test_an_app_with_background_tasks_refuses_to_boot_with_several_workers(recording_app, tmp_path):
    env, record = recording_app
    server = GunicornProcess("recording_app:create_app()", tmp_path / "run", env=env, workers=3)
    server.start(wait=False)
    try:
        server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"gunicorn kept running with 3 workers:\n{server.log()}")

    assert server.proc.returncode != 0
    assert "--workers 1" in server.log()
    assert _events(record) == []


def _built(*packages: str) -> bool:
    try:
        return all(hasattr(importlib.import_module(package + ".app"), "create_app") for package in packages)
    except ImportError:
        return False


needs_consumer = pytest.mark.skipif(not _built("order_service", "invoicing_service"),
                                    reason="order_service / invoicing_service are not built yet")


@needs_consumer
def test_a_consumer_under_gunicorn_polls_the_feed_on_its_schedule_exactly_once(tmp_path):
    interval, window = 0.5, 6.0
    with GunicornProcess("order_service.app:create_app()", tmp_path / "order", workers=1, name="order") as order, \
            GunicornProcess("invoicing_service.app:create_app()", tmp_path / "invoicing", workers=1, threads=4,
                            name="invoicing",
                            # The schedule is under test: no long poll (it would hold one request for the window).
                            env={"ORDER_FEED_URL": order.url + "/feed", "POLL_INTERVAL": str(interval),
                                 "LONG_POLL_WAIT": "0"}) as consumer:
        customer = requests.get(order.url + "/api/customers", timeout=5).json()[0]
        item = requests.get(order.url + "/api/items", timeout=5).json()[0]
        address = {"street": "1 Main St", "zip": "12345", "city": "Springfield"}
        created = requests.post(order.url + "/api/orders", timeout=10, json={
            "customer_id": customer["id"], "shipping_address": address, "billing_address": address,
            "lines": [{"item_id": item["id"], "quantity": 2}]}).json()

        # The scheduler, not a POST /poll, brings the order in.
        wait_until(lambda: requests.get(f"{consumer.url}/api/invoices/{created['id']}", timeout=5).status_code == 200,
                   30, message="the scheduled poller to invoice the order")
        before = len(order.access_lines("/feed"))
        time.sleep(window)
        polls = len(order.access_lines("/feed")) - before

    # One poller makes about window/interval requests; one per worker thread or a second scheduler doubles it.
    assert 1 <= polls <= window / interval + 3, f"{polls} feed requests in {window}s at one per {interval}s"
    assert consumer.log().count("started 1 background task(s)") == 1, consumer.log()
