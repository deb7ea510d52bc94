"""Long polling of a feed's current page: RFC 7240's `Prefer: wait=N`, read and answered."""
from __future__ import annotations

import re

MAX_WAIT_SECONDS = 30  # the contract: honour at least 20; nginx's read timeout for long polls is above this
_WAIT = re.compile(r'^\s*wait\s*=\s*"?(\d+(?:\.\d+)?)"?\s*$', re.IGNORECASE)


def requested_wait(prefer_headers: list[str]) -> float | None:
    """The `wait` preference of a request's Prefer header field(s) (RFC 7240 §4.3) in seconds, or None.

    Preferences are comma-separated and each may carry `;`-parameters; the first `wait` wins (§2: a preference
    named twice is taken from its first occurrence). A malformed value is ignored, as RFC 7240 asks.
    """
    for field in prefer_headers:
        for preference in field.split(","):
            found = _WAIT.match(preference.split(";", 1)[0])
            if found:
                return float(found.group(1))
            if preference.split(";", 1)[0].split("=", 1)[0].strip().lower() == "wait":
                return None  # the first wait is malformed: ignored, and a later one does not count
    return None


def applied_wait(requested: float, cap: float = MAX_WAIT_SECONDS) -> int:
    """The whole seconds this server will hold a request that asked for `requested`."""
    return max(0, min(int(requested), int(cap)))
