"""Invoicing's pages and JSON API: the invoices, one per order."""
from common.service.records import record_routes
from invoicing_service.models import Invoice

bp = record_routes("invoices", Invoice, "invoicing/list.html", "invoicing/detail.html")
