"""Database ids as they may appear in URLs and JSON bodies."""
from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from common.contracts.fields import MAX_ID  # a larger number would overflow the driver: a 500, not a 404


def is_id(value: Any) -> bool:
    """Whether a JSON value is a possible database id (an integer from 1 to MAX_ID, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


class IdConverter(IntegerConverter):
    """URL converter `<id:name>`: like `<int:name>` but only matches possible ids, so others answer 404."""

    def __init__(self, url_map: Map, **kwargs: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)
