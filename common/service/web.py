"""The look and navigation shared by the three services' HTML pages."""
from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort, request, url_for
from markupsafe import Markup, escape
from werkzeug.middleware.proxy_fix import ProxyFix

from common.service.ids import IdConverter
from common.service.security import http_link

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

# Where each service's UI lives, for the navigation between them: (key, label, env variable, direct URL).
SERVICE_LINKS = [
    ("order", "Orders", "ORDER_SERVICE_URL", "http://127.0.0.1:8081/"),
    ("invoicing", "Invoicing", "INVOICING_SERVICE_URL", "http://127.0.0.1:8082/"),
    ("shipping", "Shipping", "SHIPPING_SERVICE_URL", "http://127.0.0.1:8083/"),
]
PER_PAGE = 50
PROXY_KEY = "atomshop.proxy"  # the ProxyFix layer: middleware added under it sees the request as the client made it
# A proxy prefix we are willing to echo into links: slash-separated path segments of safe characters.
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")


def _checked_prefix(wsgi_app: WSGIApplication) -> WSGIApplication:
    """WSGI middleware that drops an X-Forwarded-Prefix which is not a plain path, before ProxyFix trusts it."""
    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raw = environ.get("HTTP_X_FORWARDED_PREFIX")
        if raw is not None and not _PREFIX.match(raw.strip().rstrip("/")):
            del environ["HTTP_X_FORWARDED_PREFIX"]
        return wsgi_app(environ, start_response)
    return middleware


def inside_proxy(app: Flask, wrap: Callable[[WSGIApplication], WSGIApplication]) -> None:
    """Add WSGI middleware under the proxy layer (init_app's), so it sees the scheme, host and prefix a client
    used through the front door, as views do."""
    proxy: ProxyFix = app.extensions[PROXY_KEY]
    proxy.app = wrap(proxy.app)


def service_links(service: str) -> list[tuple[str, str, str]]:
    """(key, label, URL) of each service's UI, as seen by the browser that made this request.

    Behind the front door (a request carrying X-Forwarded-Prefix, e.g. /order) the other services live next
    to this one on the same host (/invoicing/, /shipping/), so the links are host-relative paths; reached
    directly, they are the configured ports (ORDER_SERVICE_URL, INVOICING_SERVICE_URL, SHIPPING_SERVICE_URL).
    """
    prefix = request.script_root  # set by ProxyFix from a checked X-Forwarded-Prefix (see init_app)
    if prefix:
        parent = prefix.rsplit("/", 1)[0]  # '/shop/order' -> '/shop', '/order' -> ''
        return [(key, label, prefix + "/" if key == service else f"{parent}/{key}/")
                for key, label, _, _ in SERVICE_LINKS]
    return [(key, label, os.environ.get(var) or default) for key, label, var, default in SERVICE_LINKS]


@dataclass
class Page:
    """One page of a list: its rows and where it sits among the pages."""
    items: Sequence[Any]
    number: int
    total: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_index(self) -> int:
        """1-based index of the first row on this page (0 when the list is empty)."""
        return (self.number - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.total, self.number * self.per_page)


def requested_page() -> int:
    """The ?page= number of this request (1 when absent); anything but a positive integer is a 400."""
    raw = request.args.get("page", "1")
    # isdigit() alone also takes "²" and other digits int() refuses; the length is checked before int() reads it.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        abort(400, description=f"page must be a positive integer, got {raw!r}")
    return int(raw)


def paginate(session: Session, stmt: Select[Any], per_page: int = PER_PAGE) -> Page:
    """Run a `select()` for the page asked for by ?page= (already ordered by the caller); 404 past the end."""
    from sqlalchemy import func, select

    number = requested_page()
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = Page([], number, total, per_page)
    if number > page.pages:
        abort(404, description=f"there is no page {number}; the last is {page.pages}")
    page.items = session.scalars(stmt.limit(per_page).offset((number - 1) * per_page)).all()
    return page


def link_header(page: Page) -> str:
    """RFC 8288 Link header of a paged list: rel first, prev, next, last as absolute ?page= URLs."""
    base = request.base_url
    rels = [("first", 1), ("prev", page.number - 1 if page.has_prev else None),
            ("next", page.number + 1 if page.has_next else None), ("last", page.pages)]
    return ", ".join(f'<{base}?page={number}>; rel="{rel}"' for rel, number in rels if number)


def money(value: object) -> str:
    """A money amount as a decimal string with two places ('42.00'), whatever type it arrives as."""
    if value is None or value == "":
        return ""
    return f"{Decimal(str(value)):.2f}"


def when(value: datetime | str | float | None) -> Markup:
    """A timestamp as a <time> element readable by people (UTC, to the second) and machines (ISO 8601)."""
    if value is None or value == "":
        return Markup('<span class="muted">never</span>')
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return escape(value)
    if value.tzinfo is None:  # the services store naive UTC
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        value.isoformat(timespec="seconds"), value.strftime("%Y-%m-%d %H:%M:%S UTC"))


def email(address: object) -> Markup:
    """An e-mail address that a narrow column breaks before "@" or "." only, never inside a word."""
    parts = [escape(part) for part in re.split(r"(?=[@.])", str(address or ""))]
    return Markup('<span class="email">{}</span>').format(Markup("<wbr>").join(parts))


def page_url(number: int) -> str:
    """This page's URL with ?page=number: host-relative and under the proxy prefix, so it stays in this service."""
    return f"{request.script_root}{request.path}?page={number}"


def init_app(app: Flask, service: str, title: str) -> None:
    """Register the shared layout (`atomshop/base.html`), macros, stylesheet and filters for one service."""
    bp = Blueprint("atomshop", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/atomshop")
    app.register_blueprint(bp)
    # Behind the front door, links and redirects honour X-Forwarded-Proto/-Host/-Prefix.
    # Flask's documented way to add WSGI middleware, which mypy sees as assigning to a method.
    proxy = app.extensions[PROXY_KEY] = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_prefix=1)
    app.wsgi_app = _checked_prefix(proxy)  # type: ignore[method-assign, assignment]
    app.url_map.converters["id"] = IdConverter  # before the service's own routes, which use `<id:…>`
    app.add_template_filter(money, "money")
    app.add_template_filter(when, "when")
    app.add_template_filter(http_link, "http_link")  # links from elsewhere: http(s) only (ui.link)
    app.add_template_filter(email, "email")
    app.add_template_global(page_url, "page_url")  # a global, so macros imported without context see it

    @app.context_processor
    def _layout() -> dict[str, Any]:
        def asset(filename: str) -> str:
            return url_for("atomshop.static", filename=filename)

        links = service_links(service)
        return {"service_key": service, "service_title": title, "service_links": links,
                "service_urls": {key: url for key, _, url in links}, "service_home": request.script_root + "/",
                "asset": asset}
