"""The shipping service's Flask app."""
from __future__ import annotations

from flask import Flask

from common.consumer_app import ConsumerService, create_consumer_app
from shipping_service import handler
from shipping_service.models import Base, Shipment, tracking

SHIPPING = ConsumerService(
    __name__, "shipping", "Shipping", Base, tracking, handler.handle, handler.handle_batch, handler.EVENT_TYPES,
    Shipment, "shipments", "shipping")


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, overridden by `config` (tests)."""
    return create_consumer_app(SHIPPING, config)
