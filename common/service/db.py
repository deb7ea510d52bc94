"""Database setup shared by the services: one engine and two session factories per app."""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

# A server that does not answer (a network partition) fails a connection, never hangs it: the same bound as the
# connections the feed library opens itself.
from common.feeds.publish.connections import CONNECT_TIMEOUT_S

SQLITE_BUSY_TIMEOUT_MS = 30_000
DB_KEY = "atomshop.db"  # where an app keeps its Database (app.extensions), set by migrate.init_app

# Every constraint and index gets a predictable name, the same on SQLite and PostgreSQL, so a later migration can
# drop or alter it by name (SQLite batch mode cannot address an unnamed constraint).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A MetaData for a service's Base (`metadata = service_metadata()`), with the shared naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """Engine plus `read()` and `write()` units of work for one service's database."""

    def __init__(self, url: str, metadata_base: type[DeclarativeBase] | None = None):
        self.url = make_url(url)
        self.engine = _make_engine(url)
        # On SQLite a write transaction must take the write lock at BEGIN (BEGIN IMMEDIATE):
        # a deferred one that reads first and writes later fails with SQLITE_BUSY_SNAPSHOT
        # when another writer committed in between, and busy_timeout cannot help it.
        self.write_engine = self.engine.execution_options(atomshop_write=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        self.base = metadata_base
        self._probe: Engine | None = None  # /health's own engine (PostgreSQL): no pool, short connect timeout

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; its transaction is rolled back at the end."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction is the unit of work: committed on success, rolled back on error."""
        with self._write.begin() as session:
            yield session

    def create_all(self) -> None:
        """Create missing tables of the service's Base (the embedded default's schema set-up)."""
        if self.base is not None:
            self.base.metadata.create_all(self.engine)

    def ping(self, timeout: float = 2.0) -> str | None:
        """None when the database answers `SELECT 1` within `timeout` seconds, else what went wrong.

        On a connection of its own (never waiting for the pool, never leaving a broken connection in it), in a
        thread given `timeout`: a frozen server can hold a query past any client setting.
        """
        outcome: list[str | None] = []

        def probe() -> None:
            try:
                with self._probe_engine().connect() as conn:
                    conn.execute(text("SELECT 1"))
                outcome.append(None)
            except Exception as exc:  # whatever the driver raises is the answer
                outcome.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")

        worker = threading.Thread(target=probe, name="db-ping", daemon=True)
        worker.start()
        worker.join(timeout)
        if not outcome:
            return f"no answer to SELECT 1 within {timeout:g}s"
        return outcome[0]

    def _probe_engine(self) -> Engine:
        if self.is_sqlite:
            return self.engine
        if self._probe is None:
            self._probe = create_engine(self.url, poolclass=NullPool, connect_args={"connect_timeout": 2})
        return self._probe

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (see the `begin` hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _use_wal(cursor)  # readers never block the writer, nor it them
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across process crashes
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("atomshop_write") else "BEGIN")

    return engine


def _use_wal(cursor: sqlite3.Cursor) -> None:
    # Turning a new file to WAL takes an exclusive lock, and when several processes open the new file at once
    # (gunicorn workers booting) SQLite answers "database is locked" at once instead of waiting: retry.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def get_db() -> Database:
    """The current app's Database."""
    db: Database = current_app.extensions[DB_KEY]
    return db
