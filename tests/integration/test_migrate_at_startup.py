"""Alembic migrations at start-up (common.service.migrate) on real SQLite files and a real PostgreSQL cluster."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.service import migrate as common_migrate
from common.service.db import Database
from common.service.migrate import migrations_dir, upgrade
from tests.servers import REPO
from tests.support import wait_until

ENV_PY = """
from common.service.migrate import run_migrations

run_migrations(None)
"""
# A two-step history: a table, then a column and one row of data. The data step shows whether the
# history was applied exactly once; the sleep widens the window in which unserialized instances collide.
REVISION_1 = """
import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "r1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("widget", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))
    if os.environ.get("MIGRATION_MARKER"):
        Path(os.environ["MIGRATION_MARKER"]).touch()
    time.sleep(float(os.environ.get("MIGRATION_SLEEP", "0.3")))


def downgrade():
    op.drop_table("widget")
"""
REVISION_2 = """
import sqlalchemy as sa
from alembic import op

revision = "r2"
down_revision = "r1"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("widget", sa.Column("colour", sa.String(20)))
    op.execute("INSERT INTO widget (name, colour) VALUES ('first', 'red')")


def downgrade():
    op.drop_column("widget", "colour")
"""
# One instance starting up: imports, says it is ready, waits for the signal to go, then migrates.
INSTANCE = """
import os, sys, time
from pathlib import Path
from common.service.db import Database
from common.service.migrate import upgrade

ready, go = Path(sys.argv[3]), Path(sys.argv[4])
ready.touch()
while not go.exists():
    time.sleep(0.005)
db = Database(sys.argv[1])
upgrade(db, sys.argv[2])
db.dispose()
"""


@pytest.fixture
def history(tmp_path) -> Path:
    """A throwaway migration history: env.py, two revisions."""
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    (location / "env.py").write_text(ENV_PY)
    (location / "versions" / "r1_widget.py").write_text(textwrap.dedent(REVISION_1))
    (location / "versions" / "r2_colour.py").write_text(textwrap.dedent(REVISION_2))
    return location


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or a fresh database on the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return request.getfixturevalue("postgres").create_database()


def _state(url: str) -> tuple[str, list[tuple]]:
    db = Database(url)
    try:
        with db.read() as session:
            version = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            rows = session.execute(text("SELECT name, colour FROM widget")).all()
        return version, [tuple(row) for row in rows]
    finally:
        db.dispose()


def _instance(url: str, history: Path, workdir: Path, n: int, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", INSTANCE, url, str(history), str(workdir / f"ready-{n}"), str(workdir / "go")],
        cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)


def test_an_empty_database_is_upgraded_to_the_newest_revision(database_url, history):
    db = Database(database_url)
    upgrade(db, history)
    db.dispose()

    assert _state(database_url) == ("r2", [("first", "red")])


def test_upgrading_a_database_already_at_head_changes_nothing(database_url, history):
    for _ in range(3):
        db = Database(database_url)
        upgrade(db, history)
        db.dispose()

    assert _state(database_url) == ("r2", [("first", "red")])


def test_four_instances_starting_at_once_apply_the_history_exactly_once(database_url, history, tmp_path):
    instances = [_instance(database_url, history, tmp_path, n) for n in range(4)]
    try:
        wait_until(lambda: all((tmp_path / f"ready-{n}").exists() for n in range(4)), 60,
                   message="four instances ready to migrate")
        (tmp_path / "go").touch()
        outputs = [proc.communicate(timeout=60)[0] for proc in instances]
    finally:
        for proc in instances:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    assert [proc.returncode for proc in instances] == [0, 0, 0, 0], "\n".join(outputs)
    assert _state(database_url) == ("r2", [("first", "red")])


def test_an_instance_killed_while_migrating_does_not_block_the_next_one(database_url, history, tmp_path):
    marker = tmp_path / "migrating"
    (tmp_path / "go").touch()
    stuck = _instance(database_url, history, tmp_path, 0, env={"MIGRATION_MARKER": str(marker),
                                                                 "MIGRATION_SLEEP": "120"})
    try:
        wait_until(marker.exists, 60, message="the first instance to be half-way through its migration")
    finally:
        os.killpg(stuck.pid, signal.SIGKILL)
        stuck.wait()

    db = Database(database_url)
    upgrade(db, history)  # would wait forever if the dead instance's lock or transaction outlived it
    db.dispose()

    assert _state(database_url) == ("r2", [("first", "red")])


class _Base(DeclarativeBase):
    pass


class _Unmigrated(_Base):
    """A model the migration history does not know: create_all would make its table, migrations do not."""

    __tablename__ = "unmigrated"
    id: Mapped[int] = mapped_column(primary_key=True)


def test_init_app_with_migrations_builds_the_schema_from_the_history_not_from_the_models(database_url, history):
    app = Flask(__name__)
    app.config["DATABASE_URL"] = database_url

    db = common_migrate.init_app(app, _Base, migrations=history)

    tables = set(inspect(db.engine).get_table_names())
    db.dispose()
    assert {"widget", "alembic_version"} <= tables
    assert "unmigrated" not in tables


@pytest.mark.parametrize("package", ["order_service", "invoicing_service", "shipping_service"])
def test_each_service_has_its_own_migration_history_folder(package):
    location = migrations_dir(package)

    assert (location / "env.py").is_file()
    assert (location / "script.py.mako").is_file()
    assert (location / "versions").is_dir()
    assert f"from {package}.models import Base" in (location / "env.py").read_text()
