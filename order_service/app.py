"""The order service: web UI, JSON API and the order feed; follows the invoicing and shipping feeds."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.feeds.publish.publisher import PUBLISHER_KEY
from common.service.app import Service, create_service_app
from common.service.db import Database
from common.service.following import Follow
from order_service import api, errors, handlers, views
from order_service.feed import PUBLISH
from order_service.models import Base, tracking
from order_service.orders import INTAKE_KEY, Intake
from order_service.seed import seed_demo_data


def _setup(app: Flask, db: Database) -> None:
    app.extensions["csrf"].exempt(api.bp)  # JSON clients send no cookies or form tokens
    app.extensions[INTAKE_KEY] = Intake(db, app.extensions[PUBLISHER_KEY])
    errors.init_app(app)
    seed_demo_data(db)


INVOICING_FEED = Follow("invoicing", "INVOICING_FEED_URL", "http://127.0.0.1:8082/feed", handlers.handle_invoicing,
                        event_types=handlers.handle_invoicing.event_types, title="the invoicing feed")
SHIPPING_FEED = Follow("shipping", "SHIPPING_FEED_URL", "http://127.0.0.1:8083/feed", handlers.handle_shipping,
                       event_types=handlers.handle_shipping.event_types, title="the shipping feed")
ORDERS = Service(__name__, "order", "Orders", Base, Path(__file__).with_name("migrations"), publishes=PUBLISH,
                 follows=(INVOICING_FEED, SHIPPING_FEED), tracking=tracking, blueprints=(views.bp, api.bp),
                 setup=_setup)


def create_app(config: dict | None = None) -> Flask:
    """Build the order service from the environment, overridden by `config` (tests)."""
    return create_service_app(ORDERS, config)
