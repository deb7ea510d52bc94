"""Prometheus metrics of nginx's feed cache, from its access log: requests for /order/feed… by cache status.

nginx sends one JSON line per feed request over syslog (UDP; see `access_log` in deploy/nginx/atomshop.conf.template);
this process counts them and serves /metrics. Requests a cache answers never reach the order service, so only
nginx can say how many there were: HIT (from the cache), MISS, EXPIRED/REVALIDATED (asked the origin, mostly a
304), STALE/UPDATING (an old copy while a refresh runs). Lost datagrams cost a few counts, never nginx's time.

    python deploy/feed_cache_exporter.py [--syslog-port 5514] [--metrics-port 9113]
"""
from __future__ import annotations

import argparse
import json
import logging
import socketserver

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger("feed_cache_exporter")

REQUESTS = Counter("atomshop_nginx_feed_requests", "Feed requests nginx answered, by cache status and HTTP status",
                   ["cache", "status"])
SECONDS = Histogram("atomshop_nginx_feed_request_duration_seconds", "Time nginx took to answer a feed request",
                    ["cache"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60))


def record(line: str) -> bool:
    """Count one syslog line holding nginx's JSON (`<190>… nginx: {…}`); False when it holds none."""
    start = line.find("{")
    if start < 0:
        return False
    try:
        fields = json.loads(line[start:])
        seconds = float(fields.get("seconds") or 0)
    except ValueError:
        return False
    cache = fields.get("cache") or "NONE"  # not looked up in the cache (e.g. an error before it)
    REQUESTS.labels(cache, str(fields.get("status", ""))).inc()
    SECONDS.labels(cache).observe(seconds)
    return True


class _Syslog(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        line = self.request[0].decode("utf-8", "replace")
        if not record(line):
            log.warning("not a feed log line: %.200s", line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--syslog-port", type=int, default=5514)
    parser.add_argument("--metrics-port", type=int, default=9113)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start_http_server(args.metrics_port, addr=args.host)
    with socketserver.UDPServer((args.host, args.syslog_port), _Syslog) as server:
        log.info("counting nginx feed requests from syslog on udp %s:%d; metrics on :%d", args.host,
                 args.syslog_port, args.metrics_port)
        server.serve_forever()


if __name__ == "__main__":
    main()
