"""The feed a service publishes: its publisher at /feed and the JSON Schemas of its documents at /schemas/."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify
from pydantic import BaseModel
from sqlalchemy.orm import Session

from common.contracts import json_schema
from common.feeds import FeedPublisher, FeedSpec, UnitOfWork
from common.feeds.publish.log import NotificationLog
from common.feeds.publish.publisher import PUBLISHER_KEY
from common.feeds.publish.shortcut import NotModifiedShortcut
from common.service import metrics, security, web
from common.service.cli import SHUTDOWN_KEY
from common.service.config import env_int

SCHEMAS_KEY = "atomshop.schemas"

bp = Blueprint("schemas", __name__)


@dataclass(frozen=True)
class Publish:
    """The feed a service publishes: its notifications table, what an entry says, its documents' models."""

    model: type  # a NotificationMixin table on the service's Base
    spec: FeedSpec
    documents: dict[str, type[BaseModel]] = field(default_factory=dict)  # event type → model of its content
    archive: type | None = None  # an ArchivePageMixin table: archive pages rendered once, kept for every process
    origin: type | None = None  # a FeedOriginMixin table: when the feed began, the date of an empty feed

    @cached_property
    def log(self) -> NotificationLog:
        """The notifications table's log (its statements built once, on first use)."""
        return NotificationLog(self.model)

    def append(self, session: Session, event_type: str, document: Any) -> Any:
        """Add an entry in the caller's unit of work (the one holding the effect it records), its document checked
        against its published model first: a document that breaks its contract is never published."""
        return self.log.append(session, event_type, self._checked(event_type, document))

    def append_many(self, session: Session, event_type: str, documents: list[Any]) -> list[Any]:
        """`append` for several documents of one event type, in order: one read of the newest row, one INSERT."""
        return self.log.append_many(session, [(event_type, self._checked(event_type, d)) for d in documents])

    def lock(self, session: Session) -> None:
        """Take the feed's append lock now, before the row locks of a change that will append (NotificationLog)."""
        self.log.lock(session)

    def _checked(self, event_type: str, document: Any) -> Any:
        model = self.documents[event_type]
        # An instance of the published model was checked when it was made: validating it again adds nothing.
        checked = document if type(document) is model else model.model_validate(document)
        return checked.model_dump(mode="json")


def resource_feed(service: str, name: str, noun: str, api_path: str, key: str, creation: str,
                  html_path: str | None = None) -> FeedSpec:
    """The FeedSpec of a feed whose entries are each about one resource, `document[key]` its id: the resource's
    `creation` entry is `tag:…:<noun>/<id>`, a later one `tag:…:<noun>/<id>/<EventType>`; each links to
    `<api_path><id>`, the resource's current document. `html_path`: the feed's page for people, if it has one."""
    tag = "tag:atomshop.example,2026:"

    def entry_id(event_type: str, document: dict[str, Any]) -> str:
        suffix = "" if event_type == creation else f"/{event_type}"
        return f"{tag}{noun}/{document[key]}{suffix}"

    def entry_title(event_type: str, document: dict[str, Any]) -> str:
        title = f"{noun.capitalize()} {document[key]}"
        return title if event_type == creation else f"{title}: {event_type}"

    return FeedSpec(feed_id=f"{tag}feed/{name}", title=f"atomshop {name}", author=f"atomshop {service} service",
                    entry_id=entry_id, entry_title=entry_title,
                    entry_path=lambda _event_type, document: f"{api_path}{document[key]}", html_path=html_path)


def publish_config() -> dict[str, Any]:
    """FEED_PAGE_SIZE (entries per page) and FEED_CACHE_PAGES (rendered pages kept in memory)."""
    return {"FEED_PAGE_SIZE": env_int("FEED_PAGE_SIZE", 20), "FEED_CACHE_PAGES": env_int("FEED_CACHE_PAGES", 256)}


def init_app(app: Flask, db: UnitOfWork, publish: Publish) -> FeedPublisher:
    """Serve the service's feed at /feed and its documents' schemas at /schemas/<EventType>.json."""
    publisher = FeedPublisher(publish.model, publish.spec, page_size=app.config["FEED_PAGE_SIZE"],
                              cache_pages=app.config["FEED_CACHE_PAGES"], archive_model=publish.archive,
                              origin_model=publish.origin)
    publisher.init_app(app, db)
    web.inside_proxy(app, lambda inner: NotModifiedShortcut(
        inner, publisher, accepts=security.may_read_feed(app), headers=security.BROWSER_HEADERS.items(),
        answered=_counted(app), trusted_hosts=app.config.get("TRUSTED_HOSTS")))
    app.extensions.setdefault(SHUTDOWN_KEY, []).append(publisher.close)  # answer held long polls at once
    app.extensions[SCHEMAS_KEY] = {name: json_schema(model, name) for name, model in publish.documents.items()}
    app.register_blueprint(bp)
    return publisher


def _counted(app: Flask) -> Callable[[str, int, float], None] | None:
    """What the shortcut tells metrics of each 304 it answers (the route the view would have counted it under)."""
    if not app.config.get("METRICS", True):
        return None
    return lambda method, status, seconds: metrics.count("/feed", method, status, False, seconds)


def publisher() -> FeedPublisher:
    """The current app's publisher."""
    found: FeedPublisher = current_app.extensions[PUBLISHER_KEY]
    return found


@bp.get("/schemas/<event_type>.json")
def schema(event_type: str) -> Response:
    """The JSON Schema (draft 2020-12) of the content of one event type this service publishes."""
    found = current_app.extensions[SCHEMAS_KEY].get(event_type)
    if found is None:
        abort(404, f"this service publishes no event type {event_type!r}")
    response = jsonify(found)
    response.mimetype = "application/schema+json"
    return response
