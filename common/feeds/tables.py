"""The library's tables are mixins the service maps on its own Base: what they have once mapped, and the column
types their timestamps and their ids, positions and counts use (a service's own tables may use them too)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from sqlalchemy import FromClause


# An id, a feed position, a page number or a count: the documents take ids up to 2**63-1 (MAX_ID) and positions have
# no bound, and PostgreSQL's INTEGER is 32 bits. SQLite's INTEGER is 64 bits already, and the only type a primary key
# autoincrements with (a rowid alias): it stays INTEGER there, so SQLite databases need no migration either.
Int64 = BigInteger().with_variant(Integer(), "sqlite")


class TableMixin:
    """Base of the library's column mixins: mapped on a service's Base, a class has these (as DeclarativeBase
    declares them, for type checkers only)."""

    if TYPE_CHECKING:
        __table__: ClassVar[FromClause]

        def __init__(self, **kwargs: Any) -> None: ...


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC (microsecond precision) and read back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)
