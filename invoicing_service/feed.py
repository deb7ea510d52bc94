"""The invoicing feed: InvoiceIssued (the invoice document) and InvoiceCancelled, one entry per effect."""
from __future__ import annotations

from common.contracts import INVOICE_ISSUED, INVOICING_FEED
from common.service.publishing import Publish, resource_feed
from invoicing_service.models import ArchivePage, FeedOrigin, Notification

INVOICING_FEED_SPEC = resource_feed("invoicing", "invoicing", "invoice", "/api/invoices/", "order_id", INVOICE_ISSUED)

PUBLISH = Publish(Notification, INVOICING_FEED_SPEC, INVOICING_FEED, archive=ArchivePage, origin=FeedOrigin)
