"""The shipping service's Flask app."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.service.app import ConsumerService, create_consumer_app
from shipping_service import handler
from shipping_service.models import Base, Shipment, tracking

SHIPPING = ConsumerService(
    __name__, "shipping", "Shipping", Base, tracking, handler.handle, handler.handle_batch, handler.EVENT_TYPES,
    Shipment, "shipments", "shipping", migrations=Path(__file__).with_name("migrations"))


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, overridden by `config` (tests)."""
    return create_consumer_app(SHIPPING, config)
