"""History is never rewritten: the entry at a follower's position must stay what it was when it was handled.

A follower records, with its position p, the atom:id and atom:updated of the entry at p. Each pass finds the page
holding p and compares. A feed whose database was recreated or restored from a backup, or a URL that now points
at another feed, fails the comparison (a different entry at p, or no p at all), and the follower halts instead of
skipping or mixing up entries: see `FeedFollower` and `TrackingStore.halt`/`reset`.
"""
from __future__ import annotations

import logging

from common.feeds.follow.errors import FollowerHalted
from common.feeds.follow.page import FeedEntry, Page
from common.feeds.follow.tracking import Tracked, TrackingStore

log = logging.getLogger(__name__)

RESET_HINT = "run `<service> reset-position --feed <url> --to <position>` once you know where to resume"


def holds(page: Page, position: int) -> bool:
    """Whether handling can start on this page: it holds `position` (for position 0: the first entry)."""
    return page.first is not None and page.first <= max(position, 1)


def behind(page: Page, position: int) -> bool:
    """Whether `page` is a current page (no next-archive) ending before `position`: a rewound feed, or a cache's copy
    older than what was handled (another instance read a newer one by a long poll, which passes the cache)."""
    return position > 0 and page.next is None and (page.last is None or page.last < position)


def verdict(page: Page, state: Tracked) -> tuple[str | None, FeedEntry | None]:
    """(why the follower must halt, or None; the entry at the position when the record names none yet).

    `page` is the page the walk ended on: it holds the position if the feed still has it."""
    p = state.position
    if p == 0:
        return None, None
    entry = page.entry_at(p)
    if entry is None:
        if page.first is None or page.last is None:
            now = "is empty"
        elif page.first > p:
            now = f"begins at position {page.first}"
        elif page.last < p:
            now = f"ends at position {page.last}"
        else:
            return f"{page.url} skips position {p} (a gap in the feed)", None
        return (f"the feed {now}, but this follower has handled entries up to position {p}: the feed's history "
                "was rewritten (its database recreated or restored from a backup?)"), None
    if state.entry_id is None:
        return None, entry
    if entry.id != state.entry_id or (state.entry_updated is not None and entry.updated != state.entry_updated):
        return (f"the feed now holds a different entry at position {p} (id {entry.id[:200]}, updated "
                f"{entry.updated}) than the one this follower handled there (id {state.entry_id[:200]}, updated "
                f"{state.entry_updated}): the feed's history was rewritten (its database recreated or restored "
                "from a backup?)"), None
    return None, None


def confirm(tracking: TrackingStore, page: Page, state: Tracked) -> None:
    """Check `page` (where the walk to the position ended) still holds the entry recorded with the position:
    halt durably (FollowerHalted) when it does not; record the entry when the record names none yet."""
    reason, unrecorded = verdict(page, state)
    if reason is not None:
        reason = tracking.halt(f"{reason}. Nothing more is applied; {RESET_HINT}.")
        log.error("%s: halted: %s", tracking.consumer, reason)
        raise FollowerHalted(reason)
    if unrecorded is not None:
        tracking.record_entry(state.position, unrecorded.id, unrecorded.updated)
        state.entry_id, state.entry_updated = unrecorded.id, unrecorded.updated
