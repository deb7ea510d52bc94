"""Feed pages passed over while walking back, kept on a spool file so a long backlog never fills memory."""
from __future__ import annotations

import pickle
import tempfile

from common.feeds.follow.client import FeedEntry, Page


class PageStack:
    """Pages passed over while walking back, spilled to a temporary file so memory stays bounded."""

    def __init__(self) -> None:
        # Lives as long as the stack, across calls: close() closes it, so a with-block cannot.
        self._file = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115
        self._offsets: list[int] = []

    def push(self, page: Page) -> None:
        self._file.seek(0, 2)
        self._offsets.append(self._file.tell())
        pickle.dump((page.url, [tuple(e.__getattribute__(f) for f in FeedEntry.__slots__) for e in page.entries],
                     page.prev, page.next, page.is_archive, page.etag), self._file, pickle.HIGHEST_PROTOCOL)

    def pop(self) -> Page:
        offset = self._offsets.pop()
        self._file.seek(offset)
        url, entries, prev, nxt, is_archive, etag = pickle.load(self._file)
        self._file.truncate(offset)
        return Page(url, tuple(FeedEntry(*e) for e in entries), prev, nxt, is_archive, etag)

    def __len__(self) -> int:
        return len(self._offsets)

    def close(self) -> None:
        self._file.close()
