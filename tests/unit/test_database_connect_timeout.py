"""A PostgreSQL server that never answers (a network partition) fails every connection atomshop opens, in bounded
time: the service's engine, the publisher's archive reader and its LISTEN connection all give up after
CONNECT_TIMEOUT_S rather than hang the request or thread that asked."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from common.feeds.publish import connections
from common.feeds.publish.archive import ArchiveStore
from common.feeds.publish.connections import listen_connection
from common.service import db as service_db
from common.service.db import Database
from order_service.models import ArchivePage

TIMEOUT_S = 2  # in place of CONNECT_TIMEOUT_S (5), so the suite waits less; psycopg, like libpq, waits 2 s at least
BOUND_S = 3 * TIMEOUT_S + 5  # generous: what is checked is that the attempt ends at all (else it waits for ever)


def test_the_service_and_the_library_connect_with_the_same_timeout():
    assert service_db.CONNECT_TIMEOUT_S == connections.CONNECT_TIMEOUT_S == 5


@pytest.fixture
def silent_server(monkeypatch) -> Iterator[str]:
    """The URL of a "PostgreSQL server" whose kernel accepts connections but which never says a word."""
    monkeypatch.setattr(connections, "CONNECT_TIMEOUT_S", TIMEOUT_S)
    monkeypatch.setattr(service_db, "CONNECT_TIMEOUT_S", TIMEOUT_S)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # completed handshakes wait in the backlog: connecting succeeds, the startup hangs
        yield f"postgresql+psycopg://atomshop@127.0.0.1:{listener.getsockname()[1]}/atomshop"


def ends_with_error(attempt: Callable[[], object]) -> tuple[BaseException | None, float]:
    """Run `attempt` in a thread; (what it raised, seconds it took). Fails the test if it is still waiting."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            attempt()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert outcome, f"still connecting after {BOUND_S} s: no connect timeout"
    return outcome[0], time.monotonic() - started


def test_the_services_engine_gives_up_on_a_server_that_never_answers(silent_server):
    db = Database(silent_server)

    def connect() -> None:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    error, seconds = ends_with_error(connect)
    db.dispose()
    assert isinstance(error, OperationalError), error
    assert seconds >= TIMEOUT_S / 2  # it did wait for the server, as long as the timeout says


def test_an_archive_read_gives_up_on_a_server_that_never_answers(silent_server):
    engine = create_engine(silent_server)
    store = ArchiveStore(ArchivePage, db=None, format_version=1, engine=engine)  # type: ignore[arg-type]
    error, _ = ends_with_error(lambda: store.get(20, 1))
    store.close()
    engine.dispose()
    assert isinstance(error, psycopg.OperationalError), error  # the read fails: the request answers 500, not never


def test_the_listen_connection_gives_up_on_a_server_that_never_answers(silent_server):
    engine = create_engine(silent_server)
    error, _ = ends_with_error(lambda: listen_connection(engine).close())
    engine.dispose()
    assert isinstance(error, psycopg.OperationalError), error  # the listener logs it and tries again later
