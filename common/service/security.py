"""Trust boundaries of every service: who may call what (FEED_TOKEN, ADMIN_PASSWORD), cross-site requests,
the browser's security headers, and which links and redirects a page may carry."""
from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from common.service.config import ConfigError

# Methods that change nothing: a browser may send them from anywhere.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Open to anyone who reaches the port: load balancers and Prometheus scrape them without credentials.
OPEN_PATHS = frozenset({"/health", "/metrics"})
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
BROWSER_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
# RFC 6750's b64token: also what the nginx front door can compare literally (no quote, no `$`, no space).
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
_FEED_TOKEN_VIEW = "_atomshop_accepts_feed_token"
# No browser or curl prompt sends them in a password: set in ADMIN_PASSWORD, the pages could never be opened.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A link's scheme as a browser reads it: tabs and newlines anywhere are dropped, so they may hide "javascript:".
_HTTP_LINK = re.compile(r"^https?://[^\s\x00-\x1f\x7f\\]+$", re.IGNORECASE)

V = TypeVar("V", bound=Callable[..., Any])


def security_config() -> dict[str, Any]:
    """FEED_TOKEN and ADMIN_PASSWORD from the environment (None when unset: that part stays open), and a session
    cookie that scripts cannot read and browsers do not send with another site's POST."""
    token = os.environ.get("FEED_TOKEN") or None
    if token is not None and not _TOKEN.fullmatch(token):  # also refuses a final newline, which `$` lets through
        raise ConfigError("FEED_TOKEN must be letters, digits and . _ ~ + / - (e.g. `openssl rand -hex 32`)")
    password = os.environ.get("ADMIN_PASSWORD") or None
    if password is not None and _CONTROL.search(password):  # a final newline, as read from a secret file
        raise ConfigError("ADMIN_PASSWORD must not contain control characters (is there a final newline?)")
    return {"FEED_TOKEN": token, "ADMIN_PASSWORD": password,
            "SESSION_COOKIE_SAMESITE": "Lax", "SESSION_COOKIE_HTTPONLY": True}


def accepts_feed_token(view: V) -> V:
    """Mark a view (a document entries link to, e.g. /api/orders/<id>) as readable with the FEED_TOKEN too."""
    setattr(view, _FEED_TOKEN_VIEW, True)
    return view


def http_link(url: object) -> str | None:
    """`url` when it is an absolute http(s) URL a browser reads as such, else None (never `javascript:` & co)."""
    return url if isinstance(url, str) and _HTTP_LINK.match(url) else None


def same_origin_path(url: str | None, fallback: str) -> str:
    """A path on this service to redirect to: `url` when it is this request's origin under its prefix, else
    `fallback` — a Referer like `//evil.example/x` or `http://evil/` never reaches a Location header."""
    if not url or any(c in url for c in "\\\t\r\n"):
        return fallback
    parts = urlsplit(url)
    here = urlsplit(request.host_url)
    if (parts.scheme, parts.netloc) != (here.scheme, here.netloc):
        return fallback
    path = parts.path or "/"
    root = request.script_root + "/"
    if not path.startswith(root) or path.startswith("//"):
        return fallback
    return path + ("?" + parts.query if parts.query else "")


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, with its signer built once per set of keys rather than on every request
    (itsdangerous test-serialises on construction: about a quarter of a 304's time in the app, measured)."""

    def __init__(self) -> None:
        self._signer: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._signer  # one read: another thread may replace it meanwhile, with an equal signer
        if cached is None or cached[0] != keys:
            cached = self._signer = (keys, super().get_signing_serializer(app))
        return cached[1]


def init_app(app: Flask) -> None:
    """Check credentials and cross-site requests before any view (and before CSRF), add headers after."""
    app.session_interface = SessionCookies()
    app.before_request(_refuse_cross_site)
    app.before_request(_require_credentials)
    app.after_request(_browser_headers)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        return ("", url)
    return parts.scheme, f"{(parts.hostname or '').lower()}:{port}"


def _refuse_cross_site() -> Response | None:
    """403 for a state-changing request a browser sent from another site; programs send neither header."""
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    origin = request.headers.get("Origin")
    if site == "cross-site":
        return _refusal(403, "cross-site request refused (Sec-Fetch-Site: cross-site)")
    if origin is not None and _origin(origin) != _origin(request.host_url):
        return _refusal(403, f"cross-site request refused (Origin {origin!r} is not this service's origin)")
    return None


def _require_credentials() -> Response | None:
    """401 unless the request carries what its URL asks for (see CONTRACT.md: FEED_TOKEN, ADMIN_PASSWORD)."""
    config = current_app.config
    token, password = config.get("FEED_TOKEN"), config.get("ADMIN_PASSWORD")
    if request.path in OPEN_PATHS or (token is None and password is None):
        return None
    is_feed = request.path == "/feed" or request.path.startswith("/feed/")
    view = current_app.view_functions.get(request.endpoint or "")
    takes_token = is_feed or getattr(view, _FEED_TOKEN_VIEW, False)
    if is_feed and token is None:
        return None  # feeds open; everything else follows ADMIN_PASSWORD
    if not is_feed and password is None:
        return None
    if takes_token and token is not None and _bearer_matches(token):
        return None
    if password is not None and _basic_matches(password):  # the operator may read anything
        return None
    challenges = []
    if takes_token and token is not None:
        challenges.append('Bearer realm="atomshop feed"')
    if password is not None:
        challenges.append('Basic realm="atomshop", charset="UTF-8"')
    response = _refusal(401, "credentials required: " + (
        "Authorization: Bearer <FEED_TOKEN>" if is_feed else "HTTP Basic admin:<ADMIN_PASSWORD>"))
    response.headers["WWW-Authenticate"] = ", ".join(challenges)
    return response


def _bearer_matches(token: str) -> bool:
    return bearer_matches(request.headers.get("Authorization", ""), token)


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an Authorization header's value is `Bearer <token>`."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def may_read_feed(app: Flask) -> Callable[[dict[str, Any]], bool]:
    """For WSGI middleware serving the feed: whether a request's environ may read it without a refusal (no
    FEED_TOKEN configured, or its bearer token). Anything else goes to the app, whose hooks decide and refuse."""
    token = app.config.get("FEED_TOKEN")
    if token is None:
        return lambda environ: True
    return lambda environ: bearer_matches(environ.get("HTTP_AUTHORIZATION", ""), token)


def _basic_matches(password: str) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared, always: the time taken says nothing about which part was wrong.
    user_ok = hmac.compare_digest(user.encode(), b"admin")
    password_ok = hmac.compare_digest(given.encode(), password.encode())
    return user_ok and password_ok


def _refusal(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _browser_headers(response: Response) -> Response:
    """Every response: nosniff, Referrer-Policy, no framing; HTML also the Content-Security-Policy."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}  # one pass, not a case-insensitive search per name
    for name, value in BROWSER_HEADERS.items():
        if name.lower() not in present:
            headers.add(name, value)
    if "content-security-policy" not in present and response.mimetype == "text/html":
        headers.add("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response
