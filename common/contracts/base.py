"""What every published shape shares: unknown fields ignored, frozen, and a document's schema version."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from common.contracts.fields import explained

RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def _a_real_moment(value: str) -> str:
    # The pattern alone takes month 13 or hour 25; a follower would store and publish it again. RFC 3339 allows a
    # leap second (:60), which datetime does not: checked as :59.
    seconds_at = 17  # YYYY-MM-DDTHH:MM:SS, as the pattern has it
    moment = value[:seconds_at] + "59" + value[seconds_at + 2:] if value[seconds_at:seconds_at + 2] == "60" else value
    datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return value


Timestamp = Annotated[str, Field(pattern=RFC3339), AfterValidator(_a_real_moment),
                      explained("must be an RFC 3339 timestamp")]
SchemaVersion = Annotated[int, Field(strict=True, ge=1), explained("must be a positive integer")]


class Contract(BaseModel):
    """A published shape: unknown fields are ignored (a newer publisher may add optional ones)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Document(Contract):
    """A document an entry carries. `schema_version` grows when the publisher adds optional fields; a follower
    reads any version, keeping the fields it knows (absent means 1: documents published before it existed)."""

    schema_version: SchemaVersion = 1


def check_total(amounts: Iterable[Decimal], total: Decimal) -> None:
    """A document's total must be the sum of its lines' amounts."""
    if sum(amounts, Decimal("0.00")) != total:
        raise PydanticCustomError("atomshop", "total {total} is not the sum of the lines", {"total": str(total)})
