"""Page arithmetic and the validator rules of a paged feed (pure functions, no I/O)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# An entry stamped at t is committed (visible to readers) by t + SETTLE: the stamp is taken right before
# the commit, so this only has to cover the commit itself. Validators never trust a date closer than that.
SETTLE = timedelta(seconds=1)

# Page numbers in URLs: no sign, no leading zero, small enough for a 64-bit position.
_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,14}")


@dataclass(frozen=True)
class Page:
    """Page `number` of a feed whose newest position is `last_position`."""

    number: int
    size: int
    last_position: int

    @property
    def current_number(self) -> int:
        return current_page_number(self.last_position, self.size)

    @property
    def is_archive(self) -> bool:
        return self.number < self.current_number

    @property
    def first(self) -> int:
        """First position the page holds (or will hold)."""
        return (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        """Last position the page holds now (first - 1 when it is empty)."""
        return min(self.number * self.size, self.last_position)

    @property
    def has_older(self) -> bool:
        return self.number > 1


def current_page_number(last_position: int, size: int) -> int:
    """The current page: the one position last_position + 1 will land on."""
    return last_position // size + 1


def current_page(last_position: int, size: int) -> Page:
    """The current (newest, possibly partial or empty) page."""
    return Page(current_page_number(last_position, size), size, last_position)


def parse_page_number(raw: str) -> int | None:
    """The page number in a URL segment, or None when it is not a canonical positive integer."""
    return int(raw) if _PAGE_NUMBER.fullmatch(raw) else None


def http_second(moment: datetime) -> datetime:
    """`moment` truncated to the one-second resolution of HTTP dates."""
    return moment.replace(microsecond=0)


def last_modified(newest: datetime | None, now: datetime, settle: timedelta = SETTLE, full: bool = False) -> datetime:
    """Last-Modified for a page whose newest notification was stamped `newest` (None: nothing published).

    The first whole second after newest + settle, once that second has come: every entry stamped before it is
    committed, so the date truthfully bounds the copy being sent. Before that, the second of `newest` itself,
    which `not_modified_since` never answers 304 to — a late entry from the same second cannot be hidden.
    A `full` page (an archive) can gain no entry: the second of `newest`, whenever it is asked, as its bytes never
    change and caches keep it for a year.
    """
    if newest is None:
        return EPOCH
    if full:
        return http_second(newest)
    settled = http_second(newest + settle) + timedelta(seconds=1)
    return settled if settled <= now else http_second(newest)


def not_modified_since(newest: datetime | None, since: datetime, settle: timedelta = SETTLE,
                       full: bool = False) -> bool:
    """Whether a page whose newest notification was stamped `newest` has certainly not changed since `since`.

    Compared at full precision: only when the newest entry was committed strictly before `since`. A `full` page
    (an archive) has not changed since its Last-Modified, the second of `newest`: nothing can join it.
    """
    if newest is None:
        return True
    if full:
        return since >= http_second(newest)
    return newest + settle < since


def entity_tag(*parts: object) -> str:
    """A strong entity tag for the representation identified by `parts`."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
