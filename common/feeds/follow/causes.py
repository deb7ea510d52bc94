"""The short cause a follower's error text gives for a failed request (a requests exception)."""
from __future__ import annotations

import requests


def cause(exc: requests.RequestException) -> str:
    """A short cause without the connection library's details (addresses, errno, TLS internals)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused" if _refused(exc) else "cannot connect, or the connection broke"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the response was cut short"
    return "the request failed"


def _refused(exc: BaseException) -> bool:
    """Whether a ConnectionRefusedError lies under `exc` (requests wraps urllib3's error, which wraps the socket's):
    nothing listens there, the likeliest outage and the one a person can act on."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 12:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        todo += [e for e in (current.__cause__, current.__context__, getattr(current, "reason", None),
                             *getattr(current, "args", ())) if isinstance(e, BaseException)]
    return False
