"""Field types every published document shares: ids, bounded text, money, each with the message a person reads."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import GroupedMetadata, MaxLen, MinLen
from pydantic import AfterValidator, Field, PlainSerializer, Strict, ValidationError, WithJsonSchema, WrapValidator
from pydantic_core import PydanticCustomError

from common.contracts.money import format_money, to_money

# Ids are 64-bit signed integers in every database we support; a larger number is simply no id.
MAX_ID = 2**63 - 1
MONEY_MAX = Decimal("99999999.99")  # an item's price fits the order service's NUMERIC(10, 2)
NOT_ALLOWED = "contains a character that is not allowed (control character or invalid code point)"

# Characters XML 1.0 cannot carry (C0 controls but tab, LF, CR; surrogates; U+FFFE, U+FFFF): never accepted,
# so they can never break a feed.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def has_xml_illegal(text: str) -> bool:
    """Whether `text` holds a character XML 1.0 cannot carry."""
    return _XML_ILLEGAL.search(text) is not None


def explained(message: str, **by_error_type: str) -> WrapValidator:
    """Replace pydantic's wording for a field's own value by ours (`by_error_type`, else `message`).

    Errors inside a nested value keep their own location and message.
    """
    def wrap(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if any(error["loc"] for error in exc.errors()):
                raise
            kind = exc.errors()[0]["type"]
            if kind == "atomshop":  # already ours
                raise
            raise PydanticCustomError("atomshop", by_error_type.get(kind, message)) from None
    return WrapValidator(wrap)


def _xml_safe(value: str) -> str:
    if has_xml_illegal(value):
        raise PydanticCustomError("atomshop", NOT_ALLOWED)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("atomshop", "must not be empty")
    return value


@dataclass(frozen=True)
class XmlText(GroupedMetadata):
    """A string of at most `max_length` characters that XML can carry; `required`: not blank either.

    Metadata for `Annotated[str, XmlText(100)]`: pydantic expands it like its own `StringConstraints`.
    """

    max_length: int
    required: bool = False

    def __iter__(self) -> Iterator[object]:
        too_long = f"must be at most {self.max_length} characters"
        if self.required:
            yield from (Strict(), MinLen(1), MaxLen(self.max_length), AfterValidator(_not_blank),
                        AfterValidator(_xml_safe),
                        explained("must be a string", string_too_short="must not be empty", string_too_long=too_long))
        else:
            yield from (Strict(), MaxLen(self.max_length), AfterValidator(_xml_safe),
                        explained("must be a string", string_too_long=too_long))


# A database id: an integer from 1 to 2**63 - 1 (never a bool or a string), named in its message.
CustomerId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID), explained("must be the integer id of a customer")]
ItemId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID), explained("must be the integer id of an item")]
OrderId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID), explained("must be the integer id of an order")]
# A link back to a document (the order's page), as long as a URL may reasonably be.
Url = Annotated[str, XmlText(2000)]


def _money(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise PydanticCustomError("atomshop", "must be a decimal string with two places, e.g. \"42.00\"")
    try:
        amount = to_money(value)
    except ValueError as exc:
        raise PydanticCustomError("atomshop", str(exc)) from None
    return amount


Money = Annotated[Decimal, WrapValidator(lambda value, _handler: _money(value)),
                  WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"}),
                  PlainSerializer(format_money, return_type=str, when_used="json")]


def at_most(maximum: Decimal) -> AfterValidator:
    """Metadata for `Annotated[Money, at_most(maximum)]`: an amount from 0.00 to `maximum`."""
    def check(amount: Decimal) -> Decimal:
        if not Decimal(0) <= amount <= maximum:
            raise PydanticCustomError("atomshop", f"must be from 0.00 to {maximum}")
        return amount
    return AfterValidator(check)


def location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the API names fields: shipping_address.street, lines[0].quantity."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def messages(exc: ValidationError) -> dict[str, str]:
    """{field: what is wrong} for every problem pydantic found, first problem per field."""
    found: dict[str, str] = {}
    for error in exc.errors():
        missing = error["type"] == "missing" and error["loc"]
        found.setdefault(location(error["loc"]), f"missing field {error['loc'][-1]!r}" if missing else error["msg"])
    return found
