"""The published language of each feed: one pydantic model per document, its JSON Schema served at /schemas/."""
from common.contracts.fields import messages
from common.contracts.orders import ORDER_CREATED, OrderDocument, OrderRequest
from common.contracts.schemas import PUBLISHED, json_schema

__all__ = ["ORDER_CREATED", "OrderDocument", "OrderRequest", "PUBLISHED", "json_schema", "messages"]
