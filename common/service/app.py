"""The app factory both feed consumers (invoicing, shipping) are built with; each brings its bounded context."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import DeclarativeBase

from common.service import db as database
from common.service import web
from common.service.following import consumer_config, init_consumer
from common.feeds.follow.follower import BatchHandler, Handler
from common.service.records import record_routes
from common.feeds.follow.tracking import TrackingModels


@dataclass(frozen=True)
class ConsumerService:
    """What makes one consumer service: its names, database, feed handler and the records it keeps."""

    import_name: str  # a module of the service package (its app.py), so Flask finds the templates next to it
    service: str  # "invoicing": config, data file, consumer name
    title: str
    base: type[DeclarativeBase]
    tracking: TrackingModels
    handler: Handler
    batch_handler: BatchHandler | None
    event_types: frozenset[str]
    record_model: type
    plural: str  # "invoices": URL paths and JSON
    template_folder: str  # "invoicing": templates <folder>/list.html and <folder>/detail.html
    migrations: Path | None = None  # its Alembic history (<package>/migrations); None: schema from create_all()


def create_consumer_app(spec: ConsumerService, config: dict | None = None) -> Flask:
    """Build a consumer app from the environment, overridden by `config` (tests)."""
    app = Flask(spec.import_name)
    app.config.from_mapping(consumer_config(spec.service))
    app.config.update(config or {})
    web.init_app(app, spec.service, spec.title)
    db = database.init_app(app, spec.base, migrations=spec.migrations)
    init_consumer(app, db, spec.tracking, spec.handler, spec.event_types, spec.batch_handler)
    app.register_blueprint(record_routes(spec.plural, spec.record_model, f"{spec.template_folder}/list.html",
                                         f"{spec.template_folder}/detail.html"))
    return app
