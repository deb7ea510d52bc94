"""The order feed: what an entry of the feed says about an order."""
from __future__ import annotations

from common.feeds.publish.atom import FeedSpec
from common.feeds.publish.publisher import FeedPublisher
from order_service.models import Notification

FEED_ID = "tag:atomshop.example,2026:feed/orders"

ORDER_FEED = FeedSpec(
    feed_id=FEED_ID,
    title="atomshop orders",
    author="atomshop order service",
    entry_id=lambda order: f"tag:atomshop.example,2026:order/{order['id']}",
    entry_title=lambda order: f"Order {order['id']}",
    entry_path=lambda order: f"/api/orders/{order['id']}",
)


def make_publisher(page_size: int, cache_pages: int) -> FeedPublisher:
    """The publisher of the order feed."""
    return FeedPublisher(Notification, ORDER_FEED, page_size=page_size, cache_pages=cache_pages)
