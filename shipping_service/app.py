"""The shipping service: follows the order feed, keeps one shipment per order, publishes the shipping feed."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.service.app import Service, create_service_app
from common.service.following import Follow
from shipping_service import handlers, views
from shipping_service.feed import PUBLISH
from shipping_service.models import Base, tracking

ORDER_FEED = Follow("orders", "ORDER_FEED_URL", "http://127.0.0.1:8081/feed", handlers.handle,
                    handlers.handle_batch, handlers.EVENT_TYPES, title="the order feed")
SHIPPING = Service(__name__, "shipping", "Shipping", Base, Path(__file__).with_name("migrations"),
                   publishes=PUBLISH, follows=(ORDER_FEED,), tracking=tracking, blueprints=(views.bp,),
                   setup=views.init_app)


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, overridden by `config` (tests)."""
    return create_service_app(SHIPPING, config)
