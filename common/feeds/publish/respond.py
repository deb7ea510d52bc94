"""The HTTP side of serving a feed page: validators, conditional GET (304) and the Atom response."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Response, request, url_for
from werkzeug.datastructures import Headers
from werkzeug.http import http_date

from common.feeds.publish.atom import FORMAT_VERSION, fill
from common.feeds.publish.pages import Page, entity_tag, last_modified, not_modified_since

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

ATOM_TYPE = "application/atom+xml; charset=utf-8"
CURRENT_CACHE_CONTROL = "public, max-age=2"
ARCHIVE_CACHE_CONTROL = "public, max-age=31536000, immutable"


def respond(page: Page, updated: datetime | None, now: datetime, cache_control: str,
            template: Callable[[], bytes]) -> Response:
    """The page, or 304 when the request's validators match — decided before anything is rendered."""
    root = request.url_root
    etag, headers = validators(page, updated, now, root, cache_control)
    if request.headers.get("If-None-Match") is not None:  # RFC 9110 §13.2.2: it overrides If-Modified-Since
        fresh = request.if_none_match.contains_weak(etag)
    else:
        since = request.if_modified_since
        fresh = since is not None and not_modified_since(updated, since, full=page.is_archive)
    if fresh:
        response = NotModified(status=304, headers=headers)
        del response.headers["Content-Type"]
        return response
    current = url_for(".current", _external=True)
    link_root = current[:len(current) - len(relative_path(".current"))]
    return Response(fill(template(), root, link_root), status=200, headers=headers, content_type=ATOM_TYPE)


class NotModified(Response):
    """A 304 that keeps its Last-Modified: the contract has every feed response carry ETag and Last-Modified.

    werkzeug drops it from a 304 as representation metadata, which RFC 9110 §15.4.5 allows but does not require
    (a SHOULD NOT, waived for metadata that guides cache updates; nginx sends it too)."""

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        headers = super().get_wsgi_headers(environ)
        if "Last-Modified" in self.headers and "Last-Modified" not in headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def validators(page: Page, updated: datetime | None, now: datetime, root: str,
               cache_control: str) -> tuple[str, dict[str, str]]:
    """The page's entity tag (it names the root URL the links are built on: each host name has its own) and the
    headers of every answer about it, 200 or 304."""
    etag = entity_tag(FORMAT_VERSION, root, page.size, page.number, page.last, updated)
    modified = last_modified(updated, now, full=page.is_archive)
    return etag, {"ETag": f'"{etag}"', "Last-Modified": http_date(modified),
                  "Cache-Control": cache_control}


def relative_path(endpoint: str, **values: Any) -> str:
    """The endpoint's URL relative to the root URL (url_for's path without the script root)."""
    return url_for(endpoint, **values)[len(request.script_root):].lstrip("/")
