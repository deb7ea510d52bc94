"""The order service application factory."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, jsonify
from flask_wtf.csrf import CSRFProtect

from common.service import db as database
from common.service import web
from common.service.config import base_config, env_int
from common.feeds.publish.publisher import PUBLISHER_KEY
from order_service import api, errors, views
from order_service.feed import make_publisher
from order_service.models import Base
from order_service.seed import seed_demo_data


def create_app(config: dict | None = None) -> Flask:
    """Build the order service: web UI, JSON API and Atom feed."""
    app = Flask(__name__)
    app.config.update(base_config("order"))
    app.config["FEED_PAGE_SIZE"] = env_int("FEED_PAGE_SIZE", 20)
    app.config["FEED_CACHE_PAGES"] = env_int("FEED_CACHE_PAGES", 256)
    app.config.update(config or {})
    app.json.sort_keys = False  # documents keep their natural field order

    # The schema comes from the service's Alembic history, upgraded at start-up one instance at a time.
    db = database.init_app(app, Base, migrations=Path(__file__).with_name("migrations"))
    seed_demo_data(db)
    web.init_app(app, "order", "Orders")
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # JSON clients send no cookies or form tokens
    errors.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    make_publisher(app.config["FEED_PAGE_SIZE"], app.config["FEED_CACHE_PAGES"]).init_app(app)

    @app.get("/health")
    def health():
        publisher = app.extensions[PUBLISHER_KEY]
        with db.read() as session:
            newest = publisher.log.last(session)
        return jsonify({"status": "ok", "service": "order", "feed_position": newest[0] if newest else 0})

    return app
