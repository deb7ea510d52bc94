"""Each service's Alembic history (<service>/migrations/) on real SQLite files and a real PostgreSQL cluster:
it builds exactly the schema the models describe, the services apply it at start-up, and it re-runs cleanly."""
from __future__ import annotations

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, func, inspect, select, text

from common.service.db import Database
from common.service.migrate import alembic_config, migrations_dir, upgrade

SERVICES = ["order_service", "invoicing_service", "shipping_service"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or a fresh database on the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return request.getfixturevalue("postgres").create_database()


def metadata_of(package: str) -> MetaData:
    return importlib.import_module(f"{package}.models").Base.metadata


def head_of(package: str) -> str:
    return ScriptDirectory.from_config(alembic_config(migrations_dir(package))).get_current_head()


def schema_diff(db: Database, metadata: MetaData) -> list:
    """What Alembic's autogenerate would still have to do to bring the database to the models: [] when none."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "compare_server_default": True})
        return compare_metadata(context, metadata)


def version_of(db: Database) -> str:
    with db.read() as session:
        return session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


@pytest.mark.parametrize("package", SERVICES)
def test_the_history_has_one_head_and_ships_next_to_the_package(package):
    script = ScriptDirectory.from_config(alembic_config(migrations_dir(package)))

    assert len(script.get_heads()) == 1, f"{package}: branched history {script.get_heads()}"
    assert list(script.walk_revisions()), f"{package}: no revision"


@pytest.mark.parametrize("package", SERVICES)
def test_the_history_from_empty_builds_exactly_the_schema_of_the_models(package, database_url):
    db = Database(database_url)
    try:
        upgrade(db, migrations_dir(package))

        assert version_of(db) == head_of(package)
        # A model changed without a revision fails here
        # (`python -m common.service.migrate <pkg> revision --autogenerate` writes one).
        assert schema_diff(db, metadata_of(package)) == []
    finally:
        db.dispose()


@pytest.mark.parametrize("package", SERVICES)
def test_the_service_upgrades_an_empty_database_at_start_up_and_again_harmlessly(package, database_url):
    create_app = importlib.import_module(f"{package}.app").create_app
    config = {"TESTING": True, "DATABASE_URL": database_url, "POLL_INTERVAL": 0}

    first = create_app(config)
    db = first.extensions["atomshop.db"]
    tables = set(inspect(db.engine).get_table_names())
    counts = _row_counts(db, metadata_of(package))
    first.extensions["atomshop.db"].dispose()
    again = create_app(config)  # a restart: the database is at head, nothing to do, nothing lost
    db = again.extensions["atomshop.db"]
    try:
        assert tables == set(metadata_of(package).tables) | {"alembic_version"}
        assert version_of(db) == head_of(package)
        assert _row_counts(db, metadata_of(package)) == counts
        assert schema_diff(db, metadata_of(package)) == []
    finally:
        db.dispose()


@pytest.mark.parametrize("package", SERVICES)
def test_the_history_downgrades_to_empty_and_upgrades_again(package, database_url):
    db = Database(database_url)
    config = alembic_config(migrations_dir(package), db.url)
    try:
        upgrade(db, migrations_dir(package))
        command.downgrade(config, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade(db, migrations_dir(package))
        assert schema_diff(db, metadata_of(package)) == []
    finally:
        db.dispose()


def test_the_check_notices_a_model_change_that_has_no_migration(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'orders.db'}")
    try:
        upgrade(db, migrations_dir("order_service"))
        changed = MetaData(naming_convention=metadata_of("order_service").naming_convention)
        for table in metadata_of("order_service").tables.values():
            table.to_metadata(changed)
        changed.tables["orders"].append_column(Column("gift_wrap", Integer))

        diff = schema_diff(db, changed)
    finally:
        db.dispose()

    assert [(op[0], op[3].name) for op in diff] == [("add_column", "gift_wrap")]


def _row_counts(db: Database, metadata: MetaData) -> dict[str, int]:
    with db.read() as session:
        return {name: session.scalar(select(func.count()).select_from(table))
                for name, table in metadata.tables.items()}
