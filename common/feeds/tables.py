"""The library's tables are mixins the service maps on its own Base: what they have once mapped."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlalchemy import FromClause


class TableMixin:
    """Base of the library's column mixins: mapped on a service's Base, a class has these (as DeclarativeBase
    declares them, for type checkers only)."""

    if TYPE_CHECKING:
        __table__: ClassVar[FromClause]

        def __init__(self, **kwargs: Any) -> None: ...
