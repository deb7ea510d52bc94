"""The app factory every service is built with: one declaration says what it publishes and what it follows."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase

from common.feeds import TrackingModels
from common.service import following, health, logs, metrics, migrate, publishing, security, web
from common.service.config import base_config
from common.service.db import Database
from common.service.errors import database_unavailable
from common.service.following import Follow
from common.service.publishing import Publish


class NaturalOrderJSON(DefaultJSONProvider):
    """Flask's JSON, keeping documents' keys in their natural field order instead of sorting them."""

    sort_keys = False


@dataclass(frozen=True)
class Service:
    """What makes one service: names, database, the feed it publishes, the feeds it follows, its own routes."""

    import_name: str  # a module of the service package (its app.py), so Flask finds the templates next to it
    name: str  # "invoicing": config, data file, the header's key
    title: str  # "Invoicing": page titles and navigation
    base: type[DeclarativeBase]
    migrations: Path | None = None  # its Alembic history; None: schema from create_all()
    publishes: Publish | None = None
    follows: tuple[Follow, ...] = ()
    tracking: TrackingModels | None = None  # the followers' tables on `base`; needed when it follows a feed
    blueprints: tuple[Blueprint, ...] = ()
    setup: Callable[[Flask, Database], None] | None = None  # anything else: seed data, error pages


def create_service_app(service: Service, config: dict[str, Any] | None = None) -> Flask:
    """Build the service's app from the environment, overridden by `config` (tests)."""
    app = Flask(service.import_name)
    app.config.from_mapping(base_config(service.name))
    app.config.update(security.security_config())
    if service.publishes:
        app.config.update(publishing.publish_config())
    if service.follows:
        app.config.update(following.follow_config(service.follows))
    app.config.update(config or {})
    app.json = NaturalOrderJSON(app)
    db = migrate.init_app(app, service.base, migrations=service.migrations)
    web.init_app(app, service.name, service.title)
    security.init_app(app)  # before CSRFProtect: a cross-site POST is a 403, whatever its token
    CSRFProtect(app)
    if service.publishes:
        publishing.init_app(app, db, service.publishes)
    if service.follows:
        assert service.tracking is not None, "a service that follows a feed needs tracking_models(Base)"
        following.init_app(app, db, service.tracking, service.follows)
    health.init_app(app)
    metrics.init_app(app)
    app.register_error_handler(OperationalError, database_unavailable)
    logs.set_service(service.name)
    for blueprint in service.blueprints:
        app.register_blueprint(blueprint)
    if service.setup:
        service.setup(app, db)
    return app
