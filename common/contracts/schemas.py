"""JSON Schemas (draft 2020-12) of the published documents, by event type."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from common.contracts.orders import ORDER_CREATED, OrderDocument

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Every event type any atomshop feed publishes, with the model of its content.
PUBLISHED: dict[str, type[BaseModel]] = {ORDER_CREATED: OrderDocument}


def json_schema(model: type[BaseModel], event_type: str) -> dict[str, Any]:
    """The model's JSON Schema as served at /schemas/<event_type>.json."""
    return {"$schema": DRAFT, **model.model_json_schema(mode="serialization"), "title": event_type}
