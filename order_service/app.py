"""The order service: web UI, JSON API and the order feed."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.service.app import Service, create_service_app
from common.service.db import Database
from order_service import api, errors, views
from order_service.feed import PUBLISH
from order_service.models import Base
from order_service.seed import seed_demo_data


def _setup(app: Flask, db: Database) -> None:
    app.extensions["csrf"].exempt(api.bp)  # JSON clients send no cookies or form tokens
    errors.init_app(app)
    seed_demo_data(db)


ORDERS = Service(__name__, "order", "Orders", Base, Path(__file__).with_name("migrations"), publishes=PUBLISH,
                 blueprints=(views.bp, api.bp), setup=_setup)


def create_app(config: dict | None = None) -> Flask:
    """Build the order service from the environment, overridden by `config` (tests)."""
    return create_service_app(ORDERS, config)
