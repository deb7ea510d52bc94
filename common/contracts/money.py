"""Money as exact decimals, written "42.00" in every document."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")


def to_money(value: object) -> Decimal:
    """A Decimal with two places from a string, int or Decimal; ValueError if it is not an exact amount."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"money must be a decimal string, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount of money: {value!r}") from None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise ValueError(f"not an amount of money with at most two decimal places: {value!r}")
    return amount.quantize(CENT)


def format_money(amount: Decimal) -> str:
    """The contract's money string: two decimal places, e.g. "42.00"."""
    return str(amount.quantize(CENT))
