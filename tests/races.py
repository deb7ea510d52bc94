"""A race made to happen: one transaction commits in the middle of another (READ COMMITTED's window)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from common.service.db import Database


def commit_midway(db: Database, store: Callable[[Any], Any], table: str, act: Callable[[Any, Any], Any],
                  expected: tuple[type[Exception], ...]) -> tuple[Any, Any]:
    """Run `act(session, stored)` in one transaction while another, in which `stored = store(session)` ran and was
    flushed, commits right after `act`'s first statement naming `table`: (stored, what `act` returned or the
    `expected` exception it raised)."""
    storing = db.write()
    session = storing.__enter__()
    stored = store(session)
    session.flush()
    committed = []

    def commit_after_first_look(conn, cursor, statement, parameters, context, executemany):
        if not committed and table in statement:
            committed.append(statement)
            storing.__exit__(None, None, None)  # what was stored becomes visible to `act`'s next statement

    event.listen(db.engine, "after_cursor_execute", commit_after_first_look)
    try:
        with db.write() as s:
            return stored, act(s, stored)
    except expected as exc:
        return stored, exc
    finally:
        event.remove(db.engine, "after_cursor_execute", commit_after_first_look)
        if not committed:
            storing.__exit__(None, None, None)
