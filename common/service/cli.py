"""Command line of a service: `<service> [--host H] [--port P]`."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from common.service.config import ConfigError

# Started by `serve` after the app is built, stopped when the server stops (e.g. a consumer's scheduler).
BACKGROUND_KEY = "atomshop.background"


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1: a follower walking a feed reuses one connection instead of opening one per page."""

    protocol_version = "HTTP/1.1"


def serve(create_app: Callable[[], Flask], prog: str, default_port: int, argv: list[str] | None = None) -> int:
    """Build the app from the environment and serve it until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog=prog, description=f"Run the atomshop {prog}.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port to listen on (default {default_port})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {prog} %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, app, threaded=True, request_handler=KeepAliveHandler)
    background = app.extensions.get(BACKGROUND_KEY, [])
    for task in background:
        task.start()

    def _stop(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"{prog} listening on http://{args.host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for task in background:
            task.stop()
        server.server_close()
    return 0
