"""The look and navigation shared by the three services' HTML pages."""
from __future__ import annotations

import os

from flask import Blueprint, Flask

# Where each service's UI lives, for the navigation between them.
SERVICE_LINKS = [
    ("order", "Orders", "ORDER_SERVICE_URL", "http://127.0.0.1:8081/"),
    ("invoicing", "Invoicing", "INVOICING_SERVICE_URL", "http://127.0.0.1:8082/"),
    ("shipping", "Shipping", "SHIPPING_SERVICE_URL", "http://127.0.0.1:8083/"),
]


def init_app(app: Flask, service: str, title: str) -> None:
    """Register the shared layout (`atomshop/base.html`) and stylesheet, and tell pages which service they are in."""
    bp = Blueprint("atomshop", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/atomshop")
    app.register_blueprint(bp)
    links = [(key, label, os.environ.get(var, default)) for key, label, var, default in SERVICE_LINKS]

    @app.context_processor
    def _layout():
        return {"service_key": service, "service_title": title, "service_links": links}
