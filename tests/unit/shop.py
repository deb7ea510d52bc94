"""The three services in one test process, their feeds reached through `responses` (unit tests only).

Each app answers at its own made-up origin (http://order.test, …): a request a follower makes with `requests` is
handed to that app's Flask test client, so each service reads the others' real feeds, with nothing listening.
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import responses
from flask import Flask

from common.feeds.publish.publisher import PUBLISHER_KEY
from invoicing_service.app import create_app as create_invoicing
from order_service.app import create_app as create_order
from shipping_service.app import create_app as create_shipping

ORIGINS = {"order": "http://order.test", "invoicing": "http://invoicing.test", "shipping": "http://shipping.test"}


class Shop:
    """The order, invoicing and shipping apps wired to each other's feeds; `poll(name)` runs that one's followers."""

    def __init__(self, tmp_path, rsps: responses.RequestsMock, page_size: int = 20):
        feeds = {f"{name.upper()}_FEED_URL": origin + "/feed" for name, origin in ORIGINS.items()}
        common = {"TESTING": True, "POLL_INTERVAL": 0, "FEED_PAGE_SIZE": page_size, **feeds}
        self.apps: dict[str, Flask] = {
            "order": create_order({**common, "DATABASE_URL": f"sqlite:///{tmp_path / 'order.db'}"}),
            "invoicing": create_invoicing({**common, "DATABASE_URL": f"sqlite:///{tmp_path / 'invoicing.db'}"}),
            "shipping": create_shipping({**common, "DATABASE_URL": f"sqlite:///{tmp_path / 'shipping.db'}"})}
        for name, origin in ORIGINS.items():
            rsps.add_callback(responses.GET, re.compile(re.escape(origin) + "/.*"), self._forward(name))

    def _forward(self, name: str):
        client = self.apps[name].test_client()

        def serve(request):
            url = urlsplit(request.url)
            response = client.get(url.path + (f"?{url.query}" if url.query else ""), base_url=ORIGINS[name],
                                  headers={k: v for k, v in request.headers.items() if k.lower().startswith("if-")})
            return response.status_code, dict(response.headers), response.get_data()
        return serve

    def client(self, name: str):
        return self.apps[name].test_client()

    def poll(self, *names: str) -> int:
        """POST /poll on each named service (all three by default), in that order; the entries handled."""
        handled = 0
        for name in names or ("invoicing", "shipping", "order"):
            response = self.client(name).post("/poll")
            assert response.status_code == 200, response.get_json()
            handled += response.get_json()["processed"]
        return handled

    def settle(self) -> None:
        """Poll until nothing is left to handle anywhere."""
        for _ in range(10):
            if not self.poll():
                return
        raise AssertionError("the services kept finding new entries")

    def place(self, quantity: int = 1) -> int:
        body = {"customer_id": 1, "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
                "billing_address": {"street": "9 Bill Rd", "zip": "54321", "city": "Shelbyville"},
                "lines": [{"item_id": 1, "quantity": quantity}]}
        response = self.client("order").post("/api/orders", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def status(self, order_id: int) -> dict:
        return self.client("order").get(f"/api/orders/{order_id}/status").get_json()

    def feed_events(self, name: str) -> list[tuple[str, dict]]:
        """(event type, document) of every entry of that service's feed, in position order."""
        publisher = self.apps[name].extensions[PUBLISHER_KEY]
        with publisher.db.read() as session:
            last = publisher.log.last(session)
            rows = publisher.log.between(session, 1, last[0] if last else 0)
            return [(row.event_type, json.loads(row.document)) for row in reversed(rows)]
