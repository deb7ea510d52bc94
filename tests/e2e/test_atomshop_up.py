"""`atomshop up`: the whole system from one command, and Ctrl-C stops all of it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import free_port, wait_until

ORDER = {"customer_id": 1, "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
         "billing_address": {"street": "2 Elm Rd", "zip": "54321", "city": "Shelbyville"},
         "lines": [{"item_id": 1, "quantity": 2}]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it only waits to be reaped.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_atomshop_up_runs_the_three_services_an_order_flows_through_and_ctrl_c_stops_them_all(tmp_path):
    ports = {name: free_port() for name in ("order", "invoicing", "shipping")}
    feeds = ("ORDER_FEED_URL", "INVOICING_FEED_URL", "SHIPPING_FEED_URL")
    env = {k: v for k, v in os.environ.items() if k not in (*feeds, "DATABASE_URL")}
    env.update(ATOMSHOP_DATA_DIR=str(tmp_path / "data"), POLL_INTERVAL="0.5")
    cmd = [sys.executable, "-m", "common.service.launcher", "up"] + \
        [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    up = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

        def all_healthy():
            try:
                return all(requests.get(u + "/health", timeout=1).ok for u in urls.values())
            except requests.RequestException:
                return False
        wait_until(all_healthy, 60, message="the three services to be healthy")
        children = _children(up.pid)
        assert len(children) == 3

        created = requests.post(urls["order"] + "/api/orders", json=ORDER, timeout=5)
        assert created.status_code == 201
        order_id = created.json()["id"]
        for name, kind in (("invoicing", "invoices"), ("shipping", "shipments")):
            url = f"{urls[name]}/api/{kind}/{order_id}"
            wait_until(lambda url=url: requests.get(url, timeout=2).ok, 20,
                       message=f"the {kind[:-1]} of order {order_id}")
        # The status flows back: the order service follows the invoicing and shipping feeds on the ports it was given.
        status_url = f"{urls['order']}/api/orders/{order_id}/status"
        wait_until(lambda: all(requests.get(status_url, timeout=2).json()[part] for part in ("invoice", "shipment")),
                   20, message=f"the status of order {order_id} to come back from invoicing and shipping")
        # Each service's pages link to the other two on the ports this run gave them.
        page = requests.get(urls["invoicing"] + "/", timeout=5).text
        assert urls["order"] + "/" in page and urls["shipping"] + "/" in page
        assert (tmp_path / "data" / "order.db").exists() and (tmp_path / "data" / "invoicing.db").exists()

        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output, _ = up.communicate(timeout=30)
        assert up.returncode == 0, output
        assert all(url + "/" in output for url in urls.values()), output  # the URLs were printed
        assert not [pid for pid in children if _alive(pid)], "a service outlived atomshop up"
        assert "all services stopped" in output
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_a_killed_service_is_reported_by_its_signal_and_started_again_while_the_others_keep_running(tmp_path):
    ports = {name: free_port() for name in ("order", "invoicing", "shipping")}
    env = {k: v for k, v in os.environ.items() if k not in ("ORDER_FEED_URL", "DATABASE_URL")}
    env.update(ATOMSHOP_DATA_DIR=str(tmp_path / "data"), POLL_INTERVAL="0.5")
    cmd = [sys.executable, "-m", "common.service.launcher", "up"] + \
        [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    log_path = tmp_path / "up.log"
    with open(log_path, "w") as log:
        up = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    def healthy(name):
        try:
            return requests.get(urls[name] + "/health", timeout=1).ok
        except requests.RequestException:
            return False
    try:
        wait_until(lambda: all(healthy(n) for n in urls), 60, message="the three services to be healthy")
        # The banner (printed once all three listen) says what happens to one that stops.
        wait_until(lambda: "Ctrl-C stops all services" in log_path.read_text(), 30, message="the banner")
        assert "is started again" in log_path.read_text()
        before = _children(up.pid)
        order_pid = next(p for p in before if "order_service" in Path(f"/proc/{p}/cmdline").read_text())
        os.kill(order_pid, signal.SIGKILL)

        wait_until(lambda: "order_service was killed by SIGKILL" in log_path.read_text(), 10,
                   message="the launcher to report the kill")
        wait_until(lambda: healthy("order"), 30, message="the order service to be started again")
        after = _children(up.pid)
        assert order_pid not in after and len(after) == 3
        assert set(before) - {order_pid} <= set(after), "the other services were restarted too"
        assert healthy("invoicing") and healthy("shipping") and up.poll() is None

        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
        assert up.returncode == 0
        assert not [pid for pid in after if _alive(pid)], "a service outlived atomshop up"
        assert "all services stopped" in log_path.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
