"""The throwaway PostgreSQL cluster the real-server tests share (tests/servers.py)."""
from __future__ import annotations

import os

from sqlalchemy import text

from common.service.db import Database


def test_each_created_database_is_empty_and_separate_from_the_others(postgres):
    first, second = Database(postgres.create_database()), Database(postgres.create_database())
    try:
        with first.write() as session:
            session.execute(text("CREATE TABLE marker (id integer primary key)"))
        with second.read() as session:
            tables = session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all()
        assert first.is_postgresql and first.url.host == "127.0.0.1"
        assert first.url.database != second.url.database
        assert tables == []
    finally:
        first.dispose()
        second.dispose()


def test_the_cluster_listens_on_loopback_only_and_lives_in_its_own_temp_folder_not_owned_by_root(postgres):
    db = Database(postgres.admin_url)
    try:
        with db.read() as session:
            listen = session.execute(text("SHOW listen_addresses")).scalar_one()
            data_directory = session.execute(text("SELECT current_setting('data_directory')")).scalar_one()
    finally:
        db.dispose()
    assert listen == "127.0.0.1"
    assert data_directory.startswith(str(postgres.dir))
    assert os.stat(data_directory).st_uid != 0, "PostgreSQL refuses to run as root"
