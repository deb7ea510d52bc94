"""`GET /metrics`: Prometheus metrics of a service — its feed, its followers, its HTTP traffic.

Names CONTRACT.md fixes: `atomshop_feed_head_position` (publishers); `atomshop_follower_position`,
`atomshop_follower_lag_entries`, `atomshop_follower_lag_seconds`, `atomshop_follower_dead_letters` and the counter
`atomshop_follower_entries_total`, each labelled `feed="<feed url>"` (followers). The rest is ours (README).

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py does when it is unset):
prometheus-client then keeps every worker's values in files there and a scrape, whichever worker answers it, sums
the counters and histograms of all of them. Gauges that describe state keep the most recently set value of any
worker ("mostrecent"): each is set from the database at scrape time, or by the worker whose poller read the feed.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from common.feeds import FeedFollower
from common.feeds.follow.progress import PassReport
from common.feeds.publish.publisher import PUBLISHER_KEY
from common.service.following import FOLLOWERS_KEY, halted_reason

# Decided once, like prometheus-client itself decides where values live when it is first imported.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
_START = "atomshop.metrics.start"
_FEED = ["feed"]
# Requests take milliseconds, held long polls up to their wait (20 s or more).
_LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60)



def _state(name: str, documentation: str, labels: list[str] | None = None) -> Gauge:
    """A gauge describing state: under several workers, the value most recently set by any of them."""
    return Gauge(name, documentation, labels or [], multiprocess_mode="mostrecent")


FEED_HEAD = _state("atomshop_feed_head_position", "Position of the newest entry of the feed this service publishes")
HTTP_REQUESTS = Counter("atomshop_http_requests", "HTTP requests answered, by route template, method and status",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("atomshop_http_request_duration_seconds",
                         "Time to answer an HTTP request, by route template and method; held=true for a long poll "
                         "the feed held (Preference-Applied)", ["route", "method", "held"], buckets=_LATENCY_BUCKETS)

POSITION = _state("atomshop_follower_position", "Durable position of the follower in the feed", _FEED)
HEAD = _state("atomshop_follower_head_position", "Newest position of the feed the follower has seen", _FEED)
LAG_ENTRIES = _state("atomshop_follower_lag_entries", "Entries between the follower's position and the feed's head",
                    _FEED)
LAG_SECONDS = _state("atomshop_follower_lag_seconds",
                    "Seconds since the oldest entry the follower has not handled was published (0: caught up)",
                    _FEED)
DEAD_LETTERS = _state("atomshop_follower_dead_letters", "Dead letters the follower holds", _FEED)
HALTED = _state("atomshop_follower_halted", "1 when the follower has halted (history rewritten), else 0", _FEED)
FAILURES_IN_A_ROW = _state("atomshop_follower_failures_in_a_row", "Failed scheduled polls in a row", _FEED)
BACKOFF = _state("atomshop_follower_backoff_seconds", "Seconds the poller still waits before its next poll", _FEED)
LAST_POLL = _state("atomshop_follower_last_poll_timestamp_seconds", "Unix time of the last successful pass", _FEED)
ENTRIES = Counter("atomshop_follower_entries", "Entries the follower handled", _FEED)
PASSES = Counter("atomshop_follower_passes", "Passes over the feed, by outcome (read, not_modified, stuck, failed)",
                 ["feed", "outcome"])
PASS_SECONDS = Histogram("atomshop_follower_pass_duration_seconds", "Duration of a pass over the feed", _FEED,
                         buckets=_LATENCY_BUCKETS)
PAGES_PER_PASS = Histogram("atomshop_follower_pages_per_pass", "Page requests made by a pass (a 304 included)",
                           _FEED, buckets=(0, 1, 2, 3, 5, 10, 25, 100, 1000, 10000))
ENTRIES_PER_PASS = Histogram("atomshop_follower_entries_per_pass", "Entries handled by a pass", _FEED,
                             buckets=(0, 1, 2, 5, 20, 100, 500, 2000, 10000, 100000))

bp = Blueprint("metrics", __name__)
# (route, method, status, held) → the labelled counter and histogram
_children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})


def init_app(app: Flask) -> None:
    """Count every request, watch every follower's passes and serve /metrics (off with config METRICS=False)."""
    if not app.config.get("METRICS", True):
        return
    app.before_request(_start)
    app.after_request(_count)
    for follower in app.extensions.get(FOLLOWERS_KEY, {}).values():
        follower.progress.listeners.append(_pass_listener(follower))
    app.register_blueprint(bp)


def registry() -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process's registry."""
    if not MULTIPROCESS:
        return REGISTRY
    from prometheus_client import multiprocess

    collected = CollectorRegistry()
    # prometheus_client leaves this constructor unannotated; it registers itself in `collected`.
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format, state gauges refreshed from the database first."""
    refresh(current_app)
    return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def refresh(app: Flask) -> None:
    """Set the state gauges from the database and from what this process's followers know."""
    publisher = app.extensions.get(PUBLISHER_KEY)
    if publisher is not None:
        try:
            with publisher.db.read() as session:
                newest = publisher.log.last(session)
            FEED_HEAD.set(newest[0] if newest else 0)
        except SQLAlchemyError:
            pass  # /health says so; the gauge keeps its last value
    for follower in app.extensions.get(FOLLOWERS_KEY, {}).values():
        ENTRIES.labels(follower.feed_url)  # the counter is exported from 0, before this process's first pass
        try:
            position = follower.stats()["position"]
            DEAD_LETTERS.labels(follower.feed_url).set(follower.dead.count())
        except SQLAlchemyError:
            continue
        _follower_gauges(follower, position)


def _follower_gauges(f: FeedFollower, position: int) -> None:
    feed = f.feed_url
    POSITION.labels(feed).set(position)
    HALTED.labels(feed).set(1 if halted_reason(f) else 0)
    lag = f.lag(position)
    if lag is not None:  # only the process that read the feed knows the head: others leave its values alone
        HEAD.labels(feed).set(lag.head.position)
        LAG_ENTRIES.labels(feed).set(lag.entries)
        if lag.seconds is not None:
            LAG_SECONDS.labels(feed).set(lag.seconds)
    if f.last_poll is not None:
        LAST_POLL.labels(feed).set(f.last_poll.timestamp())
    poller = getattr(f, "poller", None)
    if poller is not None and poller.status()["running"]:
        status = poller.status()
        FAILURES_IN_A_ROW.labels(feed).set(status["failures_in_a_row"])
        BACKOFF.labels(feed).set(status["backing_off_for"])


def _pass_listener(f: FeedFollower) -> Callable[[PassReport], None]:
    def on_pass(report: PassReport) -> None:
        feed = report.feed_url
        PASSES.labels(feed, report.outcome).inc()
        PASS_SECONDS.labels(feed).observe(report.seconds)
        PAGES_PER_PASS.labels(feed).observe(report.requests)
        ENTRIES_PER_PASS.labels(feed).observe(report.handled)
        ENTRIES.labels(feed).inc(report.handled)
        if report.position is not None:
            _follower_gauges(f, report.position)
    return on_pass


def _start() -> None:
    request.environ[_START] = time.perf_counter()


def _count(response: Response) -> Response:
    started = request.environ.get(_START)
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"  # templates, never raw paths: bounded label values
    held = "Preference-Applied" in response.headers
    count(route, request.method, response.status_code, held,
          None if started is None else time.perf_counter() - started)
    return response


def count(route: str, method: str, status: int, held: bool, seconds: float | None) -> None:
    """Count one answered request (and its duration, when known) under its route template."""
    # Any client may send any method name: the made-up ones share a label instead of making new series.
    method = method if method in HTTP_METHODS else "other"
    key = (route, method, status, "true" if held else "false")
    children = _children.get(key)
    if children is None:  # labels() validates and locks: once per combination, not once per request
        children = _children[key] = (HTTP_REQUESTS.labels(route, method, str(status)),
                                      HTTP_SECONDS.labels(route, method, key[3]))
    children[0].inc()
    if seconds is not None:
        children[1].observe(seconds)
