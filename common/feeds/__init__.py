"""atomshop's feed library: publish a service's events as a paged, cacheable Atom feed, and follow such feeds.

Publish (common.feeds.publish): a notifications table on your Base (`NotificationMixin`), a `FeedSpec` saying what
an entry is, and a `FeedPublisher` that appends in your unit of work and serves `/feed` and its archive pages
(with an `ArchivePageMixin` table, each archive page is rendered once for every process).
Follow (common.feeds.follow): a `FeedFollower` applies a handler to each new entry exactly once, keeping its
position in your database (`tracking_models(Base)`), and a `Poller` runs it in the background.
The library knows no service: all it needs from its host is a `UnitOfWork` (common.feeds.uow).
"""
from common.feeds.follow.client import FeedClient, FeedEntry, FeedError
from common.feeds.follow.follower import BatchHandler, FeedFollower, Handler
from common.feeds.follow.poller import Poller
from common.feeds.follow.tracking import TrackingModels, tracking_models
from common.feeds.publish.archive import ArchivePageMixin
from common.feeds.publish.atom import FeedSpec
from common.feeds.publish.log import FeedOriginMixin, NotificationMixin
from common.feeds.publish.publisher import FeedPublisher
from common.feeds.uow import UnitOfWork

__all__ = ["ArchivePageMixin", "BatchHandler", "FeedClient", "FeedEntry", "FeedError", "FeedFollower",
           "FeedOriginMixin", "FeedPublisher", "FeedSpec", "Handler", "NotificationMixin", "Poller", "TrackingModels",
           "UnitOfWork", "tracking_models"]
