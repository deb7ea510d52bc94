"""atomshop order service: takes orders and publishes them as an Atom feed."""
from order_service.app import create_app

__all__ = ["create_app"]
