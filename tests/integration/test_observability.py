"""Observability against real servers: multiprocess metrics under gunicorn, /health while PostgreSQL is stopped and
started, lag against a real order feed, the nginx feed-cache exporter, and the Grafana dashboard's queries
checked against what real services export."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import REPO, GunicornProcess, NginxServer, PostgresServer
from tests.support import ManagedProcess, ServiceProcess, free_port, wait_until

ORDER = {"customer_id": 1, "shipping_address": {"street": "1 Main", "zip": "1", "city": "X"},
         "billing_address": {"street": "1 Main", "zip": "1", "city": "X"}, "lines": [{"item_id": 1, "quantity": 1}]}
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "atomshop.json"


def families(url: str) -> list:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return list(text_string_to_metric_families(response.text))


def value(fams: list, name: str, **labels) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 when there are none)."""
    return sum(s.value for f in fams for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


# ---- multiprocess ------------------------------------------------------------------------------------------------
def test_metrics_of_three_gunicorn_workers_add_up_whichever_worker_answers_and_survive_a_worker_dying(tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from a previous run")  # emptied at start
    # POLL_INTERVAL=0: no scheduled poller, so the order service (a follower too) may run several workers.
    order = GunicornProcess("order_service.app:create_app()", tmp_path / "order", workers=3, threads=1,
                            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "POLL_INTERVAL": "0"}, name="order")
    with order:
        requests.post(order.url + "/api/orders", json=ORDER, timeout=10).raise_for_status()
        before = value(families(order.url + "/metrics"), "atomshop_http_requests_total", route="/feed")
        sent, workers = 0, set()
        # Concurrent, so the three single-threaded workers all take some; on a loaded machine one may take a
        # whole round, so rounds go on until two or more have counted (each round's requests are all counted).
        while len(workers) < 2 and sent < 600:
            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(lambda _: requests.get(order.url + "/feed", timeout=10).status_code,
                                         range(60)))
            assert statuses == [200] * 60
            sent += 60
            workers = {p.name.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
        assert len(workers) >= 2 and "999999.db" not in workers, workers
        for _ in range(6):  # each scrape may be answered by another worker: each sees the sum
            fams = families(order.url + "/metrics")
            assert value(fams, "atomshop_http_requests_total", route="/feed", status="200") - before == sent
            heads = [s for f in fams for s in f.samples if s.name == "atomshop_feed_head_position"]
            assert [s.value for s in heads] == [1]  # one value, not one per worker
        # A worker dies and gunicorn replaces it (child_exit → mark_process_dead): what it counted still counts.
        victim = int(next(iter(metrics_dir.glob("counter_*.db"))).stem.split("_")[1])
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(_worker_pids(order.proc.pid)) == 3 and victim not in _worker_pids(order.proc.pid),
                   message="gunicorn to replace the killed worker")
        fams = families(order.url + "/metrics")
        assert value(fams, "atomshop_http_requests_total", route="/feed", status="200") - before == sent


def _worker_pids(master: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


# ---- /health and PostgreSQL --------------------------------------------------------------------------------------
def test_health_answers_503_while_postgresql_is_stopped_and_200_again_once_it_is_back(tmp_path):
    with PostgresServer() as postgres:
        env = {"DATABASE_URL": postgres.create_database(), "POLL_INTERVAL": "0",
               "ORDER_FEED_URL": f"http://127.0.0.1:{free_port()}/feed"}  # no feed: not a reason to be unhealthy
        with ServiceProcess("invoicing_service", tmp_path, env=env) as service:
            health = requests.get(service.url + "/health", timeout=10)
            assert health.status_code == 200 and health.json()["database"] == "ok"
            postgres.pause()
            try:
                down = requests.get(service.url + "/health", timeout=15)  # answers, never hangs on the database
                assert down.status_code == 503, down.text
                body = down.json()
                assert body["status"] == "unavailable" and body["database"] == "unreachable"
                assert len(body["problems"]) == 1 and body["problems"][0].startswith("database: ")
                assert requests.get(service.url + "/metrics", timeout=15).status_code == 200
            finally:
                postgres.resume()
            wait_until(lambda: requests.get(service.url + "/health", timeout=15).status_code == 200, timeout=30,
                       message="/health to be 200 again")
            assert requests.get(service.url + "/health", timeout=10).json()["status"] == "ok"


# ---- lag against a real order feed -------------------------------------------------------------------------------
def test_lag_goes_up_while_a_follower_is_stopped_and_back_to_0_after(tmp_path):
    from invoicing_service.app import create_app

    with ServiceProcess("order_service", tmp_path / "order") as order:
        def place():
            requests.post(order.url + "/api/orders", json=ORDER, timeout=10).raise_for_status()

        place()
        app = create_app({"ORDER_FEED_URL": order.url + "/feed", "POLL_INTERVAL": 0, "TESTING": True,
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'invoicing.db'}"})
        client = app.test_client()
        follower = app.extensions["atomshop.followers"]["orders"]
        follower.applier.max_attempts = 1000  # stuck while stopped, never dead-lettered
        handle, stopped = follower.handler, {"on": False}

        def gate(session, entry):
            if stopped["on"]:
                raise RuntimeError("follower stopped by the test")
            handle(session, entry)

        follower.handler = gate
        client.post("/poll")
        assert client.get("/health").get_json()["lag_entries"] == 0
        stopped["on"] = True
        lags = []
        for _ in range(3):
            place()
            client.post("/poll")
            health = client.get("/health").get_json()
            lags.append((health["lag_entries"], health["lag_seconds"]))
        assert [entries for entries, _ in lags] == [1, 2, 3]
        assert all(seconds > 0 for _, seconds in lags) and lags[-1][1] >= lags[0][1]
        exported = {s.name: s.value for f in text_string_to_metric_families(client.get("/metrics").get_data(True))
                    for s in f.samples if s.labels.get("feed") == order.url + "/feed"}
        assert exported["atomshop_follower_lag_entries"] == 3 and exported["atomshop_follower_lag_seconds"] > 0
        stopped["on"] = False
        assert client.post("/poll").get_json()["processed"] == 3
        health = client.get("/health").get_json()
        assert (health["position"], health["lag_entries"], health["lag_seconds"]) == (4, 0, 0)


# ---- nginx's feed cache, exported --------------------------------------------------------------------------------
class Exporter(ManagedProcess):
    name = "feed-cache-exporter"

    def __init__(self, workdir: Path):
        self.syslog_port, self.metrics_port = free_port(), free_port()
        self.log_path = workdir / "exporter.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self) -> Exporter:
        self._spawn([sys.executable, str(REPO / "deploy" / "feed_cache_exporter.py"), "--host", "127.0.0.1",
                     "--syslog-port", str(self.syslog_port), "--metrics-port", str(self.metrics_port)], cwd=REPO)
        self._wait_answering(self.url + "/metrics")
        return self


@pytest.fixture
def stack(tmp_path):
    """The three services (SQLite, followers polled on demand), and nginx in front of the order service sending
    its feed log to the exporter."""
    with ServiceProcess("order_service", tmp_path / "order") as order, Exporter(tmp_path) as exporter:
        feed_log = f"syslog:server=127.0.0.1:{exporter.syslog_port},tag=nginx,nohostname"
        with NginxServer(order=f"127.0.0.1:{order.port}", feed_log=feed_log) as nginx:
            env = {"ORDER_FEED_URL": order.url + "/feed", "POLL_INTERVAL": "0"}
            with ServiceProcess("invoicing_service", tmp_path / "invoicing", env=env) as invoicing, \
                    ServiceProcess("shipping_service", tmp_path / "shipping", env=env) as shipping:
                yield {"order": order, "invoicing": invoicing, "shipping": shipping, "nginx": nginx,
                       "exporter": exporter}


def test_the_exporter_counts_nginx_feed_requests_by_cache_status_and_every_dashboard_query_names_an_exported_metric(
        stack):
    order, nginx, exporter = stack["order"], stack["nginx"], stack["exporter"]
    requests.post(order.url + "/api/orders", json=ORDER, timeout=10).raise_for_status()
    for name in ("invoicing", "shipping"):
        assert requests.post(stack[name].url + "/poll", timeout=30).json()["processed"] == 1
    cache = [requests.get(nginx.url + "/order/feed", timeout=10).headers["X-Cache-Status"] for _ in range(5)]
    assert cache[0] == "MISS" and "HIT" in cache

    def counted():
        fams = families(exporter.url + "/metrics")
        return fams if value(fams, "atomshop_nginx_feed_requests_total") >= 5 else None
    fams = wait_until(counted, message="the exporter to count nginx's feed requests")
    for status in set(cache):
        assert value(fams, "atomshop_nginx_feed_requests_total", cache=status, status="200") == cache.count(status)

    exported = set()
    for url in [stack[name].url for name in ("order", "invoicing", "shipping")] + [exporter.url]:
        for family in families(url + "/metrics"):
            exported |= _sample_names(family)
    queries = _dashboard_queries()
    used = {name for query in queries for name in metric_names(query)}
    assert {"atomshop_follower_lag_entries", "atomshop_follower_lag_seconds", "atomshop_follower_dead_letters",
            "atomshop_nginx_feed_requests_total", "atomshop_http_requests_total"} <= used
    assert used - exported == set(), f"the dashboard queries metrics no service exports: {used - exported}"


def _sample_names(family) -> set[str]:
    """The sample names a family can carry, whether or not it has samples yet (labelled, never set)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created")}.get(family.type, ("",))
    return {family.name + suffix for suffix in suffixes} | {s.name for s in family.samples}


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", ())]
    assert queries and all(q.strip() for q in queries)
    return queries


_PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                 "group_right", "inf", "nan"}


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads: identifiers that are not functions, keywords or label names."""
    query = re.sub(r'"(?:\\.|[^"\\])*"', '""', query)
    query = re.sub(r"\{[^}]*\}", "", query)  # label matchers
    query = re.sub(r"\[[^\]]*\]", "", query)  # ranges
    query = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", query)
    query = re.sub(r"\boffset\s+-?[0-9a-z]+", "", query)  # offset 5m
    return {m.group() for m in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", query)
            if m.group().lower() not in _PROMQL_WORDS and not query[m.end():].lstrip().startswith("(")}


def test_metric_names_finds_the_metrics_of_a_query_and_nothing_else():
    query = ('histogram_quantile(0.95, sum by (le, job) (rate(a_seconds_bucket{route=~"/feed.*", x="by(y)"}[5m])))'
             ' / on (job) group_left max without (feed) (b_total offset 5m) > bool 0')
    assert metric_names(query) == {"a_seconds_bucket", "b_total"}


def test_prometheus_scrapes_every_instance_of_every_service_by_dns_and_grafana_is_provisioned():
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in ("order", "invoicing", "shipping"):
        (sd,) = jobs[service]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["type"] == "A" and sd["port"] == 8000
    assert jobs["feed-cache"]["static_configs"] == [{"targets": ["feed-cache-exporter:9113"]}]
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text())
    uids = {d["uid"] for d in datasource["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    assert {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} <= uids
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/atomshop.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
