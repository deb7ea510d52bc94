"""The database connections a publisher opens beside its host's engine, and the connect timeout all of them share.

On PostgreSQL a publisher keeps two kinds of its own: a small autocommit pool reading archive pages (archive.py) and
one LISTEN connection per process (notify.py). Like the host service's engine (common/service/db.py takes its
value from here), each gives up connecting after CONNECT_TIMEOUT_S: a server that does not answer (a network
partition) fails a connection, never hangs the request or the thread that asked for it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 5


def autocommit_reader(engine: Engine) -> Engine:
    """A small engine beside `engine` for reads that need no transaction (a stored page never changes).

    Each statement commits on its own, so a read is one round trip: no BEGIN, no ROLLBACK when the connection goes
    back to the pool (psycopg skips it on an idle connection) and no pre-ping (a dropped connection is retried once
    instead, archive.py). Four alternated runs of bench/feed_speed.py (random archive at 1M orders, PostgreSQL):
    787, 859, 760, 690 req/s with it against 708, 654, 722, 598 with the pooled read (BEGIN, pre-ping, SELECT,
    ROLLBACK)."""
    return create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=4, max_overflow=8,
                         pool_reset_on_return=None, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def listen_connection(engine: Engine) -> psycopg.Connection:
    """A psycopg connection in autocommit to `engine`'s PostgreSQL database, for LISTEN (notify.py)."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
