"""The one thing the feed library needs from its host service: a database unit of work."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session


class UnitOfWork(Protocol):
    """Sessions on the service's own database (common.service.db.Database is one)."""

    @property
    def is_sqlite(self) -> bool:
        """Whether writers are serialized by the database file (BEGIN IMMEDIATE) rather than by row locks."""
        ...

    def read(self) -> AbstractContextManager[Session]:
        """A session for reading; its transaction is rolled back at the end."""
        ...

    def write(self) -> AbstractContextManager[Session]:
        """A session whose transaction is the unit of work: committed on success, rolled back on error."""
        ...
