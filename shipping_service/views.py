"""Shipping's pages and JSON API: the shipments, one per order."""
from common.service.records import record_routes
from shipping_service.models import Shipment

bp = record_routes("shipments", Shipment, "shipping/list.html", "shipping/detail.html")
