"""Each published document's JSON Schema is served by its publisher, and what the feed carries validates."""
from __future__ import annotations

import json

import feedparser
import jsonschema
import pytest

from order_service.app import create_app


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'order.db'}"})


@pytest.fixture
def client(app):
    return app.test_client()


ORDER = {"customer_id": 1, "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
         "billing_address": {"street": "9 Bill Rd", "zip": "54321", "city": "Shelbyville"},
         "lines": [{"item_id": 1, "quantity": 2}, {"item_id": 2, "quantity": 1}]}


def test_the_order_service_serves_the_json_schema_of_order_created(client):
    response = client.get("/schemas/OrderCreated.json")
    assert response.status_code == 200 and response.mimetype == "application/schema+json"
    schema = response.get_json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["title"] == "OrderCreated"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"id", "created", "customer", "lines", "total"} <= set(schema["required"])


def test_every_entry_of_the_feed_validates_against_the_schema_its_category_names(client):
    for _ in range(3):
        assert client.post("/api/orders", json=ORDER).status_code == 201
    feed = feedparser.parse(client.get("/feed").data)
    assert len(feed.entries) == 3
    for entry in feed.entries:
        event_type = entry.tags[0].term
        schema = client.get(f"/schemas/{event_type}.json").get_json()
        jsonschema.validate(json.loads(entry.content[0].value), schema, cls=jsonschema.Draft202012Validator)


def test_the_schema_refuses_what_the_order_service_would_never_publish(client):
    schema = client.get("/schemas/OrderCreated.json").get_json()
    document = client.post("/api/orders", json=ORDER).get_json()
    for broken in ({**document, "total": 42}, {**document, "lines": []}, {**document, "id": 0}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("name", ["Nope", "InvoiceIssued", "..%2Fetc"])
def test_an_event_type_the_service_does_not_publish_is_404(client, name):
    assert client.get(f"/schemas/{name}.json").status_code == 404
