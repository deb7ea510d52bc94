"""Command line of a service: `<service> [--host H] [--port P]`, and `<service> reset-position --feed URL --to N`."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wsgi import ClosingIterator

from common.service.config import ConfigError
from common.service.db import DB_KEY
from common.service.logs import configure_logging

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Started by `serve` after the app is built, stopped when the server stops (e.g. a consumer's scheduler).
BACKGROUND_KEY = "atomshop.background"
# Called first when the process is asked to stop (SIGTERM/SIGINT), in every worker: e.g. the publisher answers the
# long polls it holds at once, so the server has nothing in flight to wait for.
SHUTDOWN_KEY = "atomshop.on_shutdown"
# How long a stopping server lets the requests it is answering finish before it closes the database (held long
# polls are answered at once by then): well within the 5 s a SIGTERM is given.
SETTLE_SECONDS = 3.0


def run_shutdown_hooks(app: Flask) -> None:
    """Run the app's shutdown hooks (each at most once matters: they must be idempotent)."""
    for hook in getattr(app, "extensions", {}).get(SHUTDOWN_KEY, []):
        hook()


def on_sigterm(app: Flask, then: Callable[[int, FrameType | None], None],
               also: Iterable[Callable[[], None]] = ()) -> None:
    """On SIGTERM, start the app's shutdown hooks (and `also`) in a thread of their own, then call `then`."""
    extra = list(also)

    def shut_down() -> None:
        run_shutdown_hooks(app)
        for stop in extra:
            stop()

    def _on_term(signum: int, frame: FrameType | None) -> None:
        # Not in the handler itself: Python runs it in the main thread between two bytecodes, maybe inside a lock
        # a hook takes (a request in a sync worker, or this very handler when a second SIGTERM arrives, as gunicorn's
        # arbiter sends one after the one sent to the whole group). Taken there, that lock is never released.
        threading.Thread(target=shut_down, name="atomshop-shutdown", daemon=True).start()
        then(signum, frame)

    signal.signal(signal.SIGTERM, _on_term)


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 answers. Werkzeug still closes each connection after its answer (it cannot drain an unread request
    body otherwise); gunicorn, as deployed, keeps a follower's connection alive from page to page."""

    protocol_version = "HTTP/1.1"


class InFlight:
    """WSGI middleware counting the requests being answered, so a stopping server can let them finish: werkzeug's
    request threads are daemons, which server_close() does not wait for."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._cond = threading.Condition()
        self._count = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._cond:
            self._count += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return ClosingIterator(body, self._done)  # done once the server has sent it and closed it

    def _done(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def settle(self, timeout: float) -> bool:
        """Wait up to `timeout` s until no request is being answered; whether none is."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


class _NotModifiedToDebug(logging.Filter):
    """Werkzeug's access line of a 304 (an idle follower's poll) becomes DEBUG: shown only when asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) >= 2 and str(args[-2]) == "304":
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def quiet_idle_logs() -> None:
    """An idle service prints nothing: the scheduler's per-run lines, 304 access lines and Alembic's start-up
    chatter go below INFO (warnings and errors still show)."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, _NotModifiedToDebug) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(_NotModifiedToDebug())


def serve(create_app: Callable[[], Flask], prog: str, default_port: int, argv: list[str] | None = None) -> int:
    """Build the app from the environment and serve it until SIGINT/SIGTERM (or run a subcommand)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reset-position"]:
        return reset_position(create_app, prog, argv[1:])
    parser = argparse.ArgumentParser(prog=prog, description=f"Run the atomshop {prog}.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port to listen on (default {default_port})")
    args = parser.parse_args(argv)
    try:
        configure_logging(prog)
        quiet_idle_logs()
        app = create_app()
    except ConfigError as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        return 2
    in_flight = InFlight(app)
    server = make_server(args.host, args.port, in_flight, threaded=True, request_handler=KeepAliveHandler)
    background = app.extensions.get(BACKGROUND_KEY, [])
    for task in background:
        task.start()

    def _interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Passes in progress end between two transactions and their requests are cut short: the process is gone
    # within seconds, not when a slow feed lets go.
    stop_passes = [task.follower.stop for task in background if getattr(task, "follower", None)]
    on_sigterm(app, then=_interrupt, also=stop_passes)
    print(f"{prog} listening on http://{args.host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # SIGINT, or SIGTERM after it started the same in a thread
        run_shutdown_hooks(app)
        for stop in stop_passes:
            stop()
    finally:
        for task in background:
            task.stop()
        server.server_close()
        # A request still being answered (a released long poll rendering its 304) would open a connection again
        # after the database is closed, and keep it open as the process exits.
        in_flight.settle(SETTLE_SECONDS)
        close_database(app)
    return 0


def close_database(app: Flask) -> None:
    """Close the app's pooled database connections as the process stops. On SQLite the last connection to close
    checkpoints the WAL into the database file: a stopped service leaves one self-contained file, which a copy
    backs up whole (with committed pages left in `<name>.db-wal`, a copy of the main file alone is older)."""
    db = app.extensions.get(DB_KEY)
    if db is not None:
        db.dispose()


def reset_position(create_app: Callable[[], Flask], prog: str, argv: list[str]) -> int:
    """`<service> reset-position --feed URL --to N`: set the position in that feed, clearing a halt."""
    parser = argparse.ArgumentParser(prog=f"{prog} reset-position", description=(
        "Set this service's position in a feed it follows, clearing a halt, the bookmark and the recorded entry. "
        "The next pass (of a running service too) resumes after position N."))
    parser.add_argument("--feed", required=True, help="the URL of the followed feed (as configured)")
    parser.add_argument("--to", type=int, required=True, metavar="N", help="the position to resume after (0: all)")
    args = parser.parse_args(argv)
    if args.to < 0:
        parser.error("--to must be 0 or more")
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        return 2
    from common.service.following import FOLLOWERS_KEY  # noqa: PLC0415 (following imports this module)

    followers = app.extensions.get(FOLLOWERS_KEY, {})
    chosen = [f for f in followers.values() if f.feed_url == args.feed]
    if not chosen:
        known = ", ".join(f.feed_url for f in followers.values()) or "none"
        print(f"{prog}: follows no feed {args.feed} (it follows: {known})", file=sys.stderr)
        return 2
    old = chosen[0].reset_position(args.to)
    was = f" (was halted: {old.halted})" if old.halted else ""
    print(f"{prog}: position in {args.feed} set from {old.position} to {args.to}{was}", flush=True)
    return 0
