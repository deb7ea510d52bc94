"""Alembic migrations: each service's schema history, applied at start-up by one instance at a time.

A service keeps its history in `<package>/migrations/` (env.py, script.py.mako, versions/) and passes that
folder to `init_app(app, Base, migrations=...)` below, which calls `upgrade()` instead of `create_all()`.
Several instances starting at once take turns: on PostgreSQL through an advisory lock held on a connection
of its own, on SQLite through an exclusive lock on a file next to the database. The first one upgrades, the
others find the database at head and do nothing.

Authoring a revision (no alembic.ini needed):
    python -m common.service.migrate order_service revision -m "add orders" --autogenerate
"""
from __future__ import annotations

import argparse
import fcntl
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from flask import Flask
from sqlalchemy import Connection, MetaData, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from common.service.db import DB_KEY, Database

# Advisory locks are per database, so one fixed key serializes the migrations of that database:
# the bytes of "atomshop" read as a (positive) 64-bit integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"atomshop", "big")


def migrations_dir(package: str) -> Path:
    """The `migrations/` folder of an installed service package, e.g. migrations_dir("order_service")."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"no package named {package!r}")
    return Path(list(spec.submodule_search_locations)[0]) / "migrations"


def alembic_config(script_location: str | Path, url: URL | str | None = None) -> Config:
    """An Alembic Config built in code: the history in script_location, the database at url."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # ConfigParser interpolation
    return config


def upgrade(db: Database, script_location: str | Path, revision: str = "head") -> None:
    """Upgrade the database to `revision` of the history in script_location, one instance at a time."""
    config = alembic_config(script_location, db.url)
    with migration_lock(db):
        # write_engine: on SQLite the transaction takes the write lock at BEGIN (see common.service.db).
        with db.write_engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


def init_app(app: Flask, base: type[DeclarativeBase], migrations: str | Path | None = None) -> Database:
    """Attach a Database for app.config['DATABASE_URL'] to the app and bring its schema up to date.

    With `migrations` (the service's Alembic folder) the schema comes from its history, upgraded to head one
    instance at a time; without, from `create_all()` under the same lock.
    """
    db = Database(app.config["DATABASE_URL"], base)
    app.extensions[DB_KEY] = db
    if migrations is None:
        with migration_lock(db):  # instances starting at once must not race to CREATE the same tables
            db.create_all()
    else:
        upgrade(db, migrations)
    return db


@contextmanager
def migration_lock(db: Database) -> Iterator[None]:
    """Hold the lock that lets one process at a time migrate this database."""
    if db.is_postgresql:
        with _advisory_lock(db):
            yield
    elif db.is_sqlite and db.url.database and db.url.database != ":memory:":
        with _file_lock(Path(db.url.database + ".migrate.lock")):
            yield
    else:  # an in-memory database belongs to this process alone
        yield


@contextmanager
def _advisory_lock(db: Database) -> Iterator[None]:
    # A session-level lock on a connection of its own, so it spans the migration's transactions and is
    # released by the server if this process dies half-way.
    with db.engine.connect() as lock_connection:
        lock_connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        lock_connection.commit()  # do not sit "idle in transaction" while waiting for the others
        try:
            yield
        finally:
            lock_connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            lock_connection.commit()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # flock is released by the kernel when the process dies, so a crash never leaves the lock behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_migrations(target_metadata: MetaData | None) -> None:
    """The body of a service's migrations/env.py: migrate the connection `upgrade()` hands over, or
    `sqlalchemy.url` when run from the command line."""
    from alembic import context

    config = context.config
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection, target_metadata)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise ValueError("alembic: no connection handed over and no sqlalchemy.url to connect to")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _run_on(connection, target_metadata)
    finally:
        engine.dispose()


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate renders a TypeDecorator (Money, UTCDateTime) as the column type it stores, so a revision
    never imports application code that may change or move later."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False  # Alembic's own rendering


def _run_on(connection: Connection, target_metadata: MetaData | None) -> None:
    from alembic import context  # exists only while Alembic runs env.py

    # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                      render_as_batch=connection.dialect.name == "sqlite", render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def main(argv: list[str] | None = None) -> int:
    """`python -m common.service.migrate <package> upgrade|revision|current|history`: run Alembic on a service."""
    parser = argparse.ArgumentParser(prog="python -m common.service.migrate", description=main.__doc__)
    parser.add_argument("package", help="service package, e.g. order_service")
    parser.add_argument("action", choices=["upgrade", "revision", "current", "history"])
    parser.add_argument("-m", "--message", help="revision message")
    parser.add_argument("--autogenerate", action="store_true", help="revision: diff the models against head")
    parser.add_argument("--url", help="database URL (default DATABASE_URL; revision: a scratch SQLite file)")
    args = parser.parse_args(argv)
    location = migrations_dir(args.package)
    url = args.url or os.environ.get("DATABASE_URL")
    if args.action == "upgrade":
        if not url:
            parser.error("upgrade needs --url or DATABASE_URL")
        db = Database(url)
        try:
            upgrade(db, location)
        finally:
            db.dispose()
    elif args.action == "revision":
        with tempfile.TemporaryDirectory() as scratch:
            if not url:  # autogenerate compares against a database at head: bring a scratch one there
                url = f"sqlite:///{scratch}/scratch.db"
                scratch_db = Database(url)
                upgrade(scratch_db, location)
                scratch_db.dispose()
            command.revision(alembic_config(location, url), message=args.message, autogenerate=args.autogenerate)
    elif args.action == "current":
        command.current(alembic_config(location, url), verbose=True)
    else:
        command.history(alembic_config(location, url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
