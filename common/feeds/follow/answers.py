"""What a feed's HTTP answer says besides its body: whether two entity tags match, how long Retry-After asks."""
from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests


def same_tag(a: str | bytes | None, b: str | bytes | None) -> bool:
    """Whether two entity tags match by weak comparison (RFC 9110 §8.8.3.2)."""
    if not a or not b:
        return False
    a, b = (t.decode("latin-1") if isinstance(t, bytes) else t for t in (a, b))
    return a.strip().removeprefix("W/") == b.strip().removeprefix("W/")


def retry_after(resp: requests.Response) -> float | None:
    """The seconds a 429 or 503 asks to wait (Retry-After, RFC 9110 §10.2.3: a number or an HTTP date), if any."""
    value = resp.headers.get("Retry-After", "").strip()
    if resp.status_code not in (429, 503) or not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
