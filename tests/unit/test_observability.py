"""/metrics, the lag a follower reports, /health's problems and the structured logs, against a feed served by
`responses` (the real-server versions are in tests/integration/test_observability.py)."""
from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import responses
from prometheus_client.parser import text_string_to_metric_families

from common.feeds.follow.client import FeedEntry, Page
from common.feeds.follow.progress import Progress
from common.service import health, logs
from common.service.config import ConfigError
from invoicing_service.app import create_app as create_invoicing
from order_service.app import create_app as create_order
from tests.unit.follower_feed import FEED_URL, FakeFeed

CONTRACT_FOLLOWER_SERIES = ("atomshop_follower_position", "atomshop_follower_lag_entries",
                            "atomshop_follower_lag_seconds", "atomshop_follower_dead_letters",
                            "atomshop_follower_entries_total")


def scrape(client) -> dict[tuple[str, tuple], float]:
    """/metrics parsed by prometheus-client's own parser: (sample name, sorted labels) → value."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def sample(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def feed():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFeed(rsps, size=3, count=5)


@pytest.fixture
def consumer():
    return create_invoicing({"ORDER_FEED_URL": FEED_URL, "TESTING": True})


# ---- /metrics --------------------------------------------------------------------------------------------------
def test_a_publisher_exposes_its_feed_head_position_and_counts_feed_requests_by_route_and_status():
    app = create_order({"TESTING": True})
    client = app.test_client()
    order = {"customer_id": 1, "shipping_address": {"street": "1 Main", "zip": "1", "city": "X"},
             "billing_address": {"street": "1 Main", "zip": "1", "city": "X"}, "lines": [{"item_id": 1, "quantity": 1}]}
    for _ in range(3):
        assert client.post("/api/orders", json=order).status_code == 201
    before = scrape(client)
    etag = client.get("/feed").headers["ETag"]
    assert client.get("/feed", headers={"If-None-Match": etag}).status_code == 304
    after = scrape(client)
    assert sample(after, "atomshop_feed_head_position") == 3

    def delta(status):
        labels = {"route": "/feed", "method": "GET", "status": status}
        return (sample(after, "atomshop_http_requests_total", **labels) or 0) - (
            sample(before, "atomshop_http_requests_total", **labels) or 0)
    assert delta("200") == 1 and delta("304") == 1  # by route template: archive pages are /feed/pages/<path:raw>
    assert sample(after, "atomshop_http_requests_total", route="/api/orders", method="POST", status="201") >= 3
    assert (sample(after, "atomshop_http_request_duration_seconds_count", route="/feed", method="GET",
                   held="false") or 0) >= 2


def test_a_follower_exposes_the_contract_series_labelled_with_its_feed_url(consumer, feed):
    client = consumer.test_client()
    before = scrape(client)
    assert client.post("/poll").get_json()["processed"] == 5
    after = scrape(client)
    for name in CONTRACT_FOLLOWER_SERIES:
        assert sample(after, name, feed=FEED_URL) is not None, name
    assert sample(after, "atomshop_follower_position", feed=FEED_URL) == 5
    assert sample(after, "atomshop_follower_lag_entries", feed=FEED_URL) == 0
    assert sample(after, "atomshop_follower_lag_seconds", feed=FEED_URL) == 0
    assert sample(after, "atomshop_follower_dead_letters", feed=FEED_URL) == 0
    handled = sample(after, "atomshop_follower_entries_total", feed=FEED_URL) - (
        sample(before, "atomshop_follower_entries_total", feed=FEED_URL) or 0)
    assert handled == 5
    assert sample(after, "atomshop_follower_halted", feed=FEED_URL) == 0
    passes = sample(after, "atomshop_follower_passes_total", feed=FEED_URL, outcome="read") - (
        sample(before, "atomshop_follower_passes_total", feed=FEED_URL, outcome="read") or 0)
    assert passes == 1


def test_a_followers_entry_counter_is_exported_from_zero_before_any_pass():
    feed_url = "http://never-polled.test/feed"  # a series no other test has made in this process's registry
    client = create_invoicing({"ORDER_FEED_URL": feed_url, "TESTING": True, "POLL_INTERVAL": 0}).test_client()
    assert sample(scrape(client), "atomshop_follower_entries_total", feed=feed_url) == 0


def test_metrics_can_be_turned_off_for_a_benchmark_baseline():
    client = create_order({"TESTING": True, "METRICS": False}).test_client()
    assert client.get("/metrics").status_code == 404


# ---- lag -------------------------------------------------------------------------------------------------------
def test_lag_goes_up_while_a_follower_is_stuck_and_back_to_0_after(consumer, feed):
    client = consumer.test_client()
    follower = consumer.extensions["atomshop.followers"]["orders"]
    follower.applier.max_attempts = 1000  # stuck on the entry, never dead-lettered, for as long as the test wants
    original = follower.handler
    stopped = {"on": False}

    def gate(session, entry):
        if stopped["on"]:
            raise RuntimeError("stopped by the test")
        original(session, entry)

    follower.handler = gate
    health = client.get("/health").get_json()
    assert health["lag_entries"] is None  # it has not read the feed yet: it does not know the head
    client.post("/poll")
    health = client.get("/health").get_json()
    assert (health["position"], health["head_position"], health["lag_entries"], health["lag_seconds"]) == (5, 5, 0, 0)

    stopped["on"] = True
    feed.count = 7
    client.post("/poll")
    first = client.get("/health").get_json()
    assert (first["position"], first["head_position"], first["lag_entries"]) == (5, 7, 2)
    assert first["lag_seconds"] > 0  # the entries were published on 2026-01-01, long before now
    feed.count = 10
    client.post("/poll")
    second = client.get("/health").get_json()
    assert (second["position"], second["lag_entries"]) == (5, 5) and second["lag_seconds"] >= first["lag_seconds"]
    assert second["feeds"]["orders"]["lag_entries"] == 5
    metrics = scrape(client)
    assert sample(metrics, "atomshop_follower_lag_entries", feed=FEED_URL) == 5
    assert sample(metrics, "atomshop_follower_lag_seconds", feed=FEED_URL) > 0

    stopped["on"] = False
    client.post("/poll")
    health = client.get("/health").get_json()
    assert (health["position"], health["lag_entries"], health["lag_seconds"]) == (10, 0, 0)
    assert sample(scrape(client), "atomshop_follower_lag_entries", feed=FEED_URL) == 0


def _page(positions: range, published: datetime, current: bool) -> Page:
    entries = tuple(FeedEntry(p, f"e{p}", "T", "{}", None, (published + timedelta(minutes=p)).isoformat())
                    for p in positions)
    return Page("u", entries, None, None if current else "next", not current)


def test_lag_seconds_count_from_the_oldest_entry_not_handled_and_the_head_comes_from_the_current_page():
    progress = Progress()
    published = datetime(2026, 1, 1, tzinfo=UTC)
    now = published + timedelta(hours=1)
    assert progress.lag(0, now) is None
    archive, current = _page(range(1, 4), published, False), _page(range(4, 6), published, True)
    progress.saw(archive)
    assert progress.head.position == 3  # an archive bounds the head from below
    progress.saw(current)
    progress.handled_up_to([archive], 2)  # position 3 (published at 00:03) is the oldest not handled
    lag = progress.lag(2, now)
    assert (lag.head.position, lag.entries, lag.seconds) == (5, 3, 57 * 60)
    progress.handled_up_to([archive, current], 5)
    assert progress.lag(5, now).entries == 0 and progress.lag(5, now).seconds == 0
    # Another instance moved the shared position past what this one saw pending: fall back to the head's time.
    progress.handled_up_to([archive], 2)
    assert progress.lag(4, now).seconds == 55 * 60


# ---- /health ---------------------------------------------------------------------------------------------------
def test_health_is_200_with_the_database_and_the_lag_per_feed(consumer):
    response = consumer.test_client().get("/health")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok" and body["database"] == "ok"
    assert "problems" not in body and set(body["feeds"]["orders"]) >= {"position", "lag_entries", "lag_seconds"}


def test_health_answers_503_with_the_problems_any_part_reports(consumer):
    health.add_check(consumer, lambda: ({"mailer": "down"}, ["mailer: connection refused"]))
    response = consumer.test_client().get("/health")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable" and body["problems"] == ["mailer: connection refused"]
    assert body["mailer"] == "down" and body["database"] == "ok"


def test_a_halted_follower_makes_health_503_and_sets_its_gauge(consumer, feed):
    follower = consumer.extensions["atomshop.followers"]["orders"]
    follower.load()  # the tracking record exists once the follower has started
    follower.tracking.halt("the feed no longer holds entry tag:… at position 3")
    client = consumer.test_client()
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 503 and body["feeds"]["orders"]["state"] == "halted"
    assert len(body["problems"]) == 1 and "halted" in body["problems"][0] and FEED_URL in body["problems"][0]
    assert sample(scrape(client), "atomshop_follower_halted", feed=FEED_URL) == 1


def test_an_unreachable_database_makes_health_503_quickly_and_every_other_part_stays_quiet(tmp_path):
    app = create_order({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"})
    db = app.extensions["atomshop.db"]
    db.ping = lambda timeout: "OperationalError: unable to open database file"
    response = app.test_client().get("/health")
    body = response.get_json()
    assert response.status_code == 503 and body["problems"] == [
        "database: OperationalError: unable to open database file"]
    assert body["database"] == "unreachable" and "feed_position" not in body


def test_ping_answers_none_for_a_working_database_and_says_what_is_wrong_with_one_it_cannot_reach(tmp_path):
    from common.service.db import Database

    assert Database(f"sqlite:///{tmp_path}/db.sqlite").ping() is None
    broken = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "OperationalError" in broken.ping(timeout=5)


# ---- logs ------------------------------------------------------------------------------------------------------
@pytest.fixture
def captured(monkeypatch):
    """Set logging up as a process would, writing into a buffer; the root logger is restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()

    def configure(fmt: str | None):
        if fmt is None:
            monkeypatch.delenv("LOG_FORMAT", raising=False)
        else:
            monkeypatch.setenv("LOG_FORMAT", fmt)
        handler = logs.configure_logging("invoicing-service")
        handler.setStream(buffer)
        return buffer

    yield configure
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_log_format_json_writes_one_object_per_line_with_service_feed_position_and_order_id(captured):
    buffer = captured("json")
    logs.set_service("invoicing")
    log = logging.getLogger("invoicing_service.handlers")
    log.info("invoice issued", extra={"feed": FEED_URL, "position": 7, "order_id": 42})
    log.warning("plain line")
    first, second = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert first["message"] == "invoice issued" and first["level"] == "INFO" and first["service"] == "invoicing"
    assert (first["feed"], first["position"], first["order_id"]) == (FEED_URL, 7, 42)
    assert first["logger"] == "invoicing_service.handlers" and "time" in first
    assert second["message"] == "plain line" and second["service"] == "invoicing"


def test_without_log_format_lines_stay_short_and_for_people(captured):
    buffer = captured(None)
    logging.getLogger("x").info("hello", extra={"position": 3})
    line = buffer.getvalue().strip()
    assert line.endswith("invoicing-service INFO x: hello") and not line.startswith("{")


def test_an_unknown_log_format_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        logs.log_format()
