"""The invoicing service's Flask app."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.service.app import ConsumerService, create_consumer_app
from invoicing_service import handler
from invoicing_service.models import Base, Invoice, tracking

INVOICING = ConsumerService(
    __name__, "invoicing", "Invoicing", Base, tracking, handler.handle, handler.handle_batch, handler.EVENT_TYPES,
    Invoice, "invoices", "invoicing", migrations=Path(__file__).with_name("migrations"))


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, overridden by `config` (tests)."""
    return create_consumer_app(INVOICING, config)
