"""Page arithmetic and validator rules of the paged feed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.feeds.publish.pages import (
    EPOCH,
    SETTLE,
    Page,
    current_page,
    http_second,
    last_modified,
    not_modified_since,
    parse_page_number,
)

SIZE = 20


@pytest.mark.parametrize("orders, number, first, last, archives", [
    (0, 1, 1, 0, 0),
    (1, 1, 1, 1, 0),
    (SIZE - 1, 1, 1, SIZE - 1, 0),
    (SIZE, 2, SIZE + 1, SIZE, 1),  # a full page becomes an archive; the current page is empty
    (SIZE + 1, 2, SIZE + 1, SIZE + 1, 1),
    (2 * SIZE - 1, 2, SIZE + 1, 2 * SIZE - 1, 1),
    (2 * SIZE, 3, 2 * SIZE + 1, 2 * SIZE, 2),
])
def test_the_current_page_holds_the_positions_after_the_last_full_page(orders, number, first, last, archives):
    page = current_page(orders, SIZE)
    assert (page.number, page.first, page.last) == (number, first, last)
    assert not page.is_archive
    assert page.has_older == (archives > 0)
    for k in range(1, archives + 1):
        archive = Page(k, SIZE, orders)
        assert archive.is_archive
        assert (archive.first, archive.last) == ((k - 1) * SIZE + 1, k * SIZE)


def test_every_position_lands_on_exactly_one_page():
    for orders in range(0, 3 * SIZE + 2):
        current = current_page(orders, SIZE)
        covered = [p for k in range(1, current.number) for p in range(Page(k, SIZE, orders).first,
                                                                      Page(k, SIZE, orders).last + 1)]
        covered += list(range(current.first, current.last + 1))
        assert covered == list(range(1, orders + 1))


@pytest.mark.parametrize("raw, expected", [
    ("1", 1), ("42", 42), ("999999999999999", 999999999999999),
    ("0", None), ("01", None), ("-1", None), ("+1", None), ("1.5", None), ("abc", None), ("", None),
    (" 1", None), ("1/", None), ("١", None), ("1" * 16, None), ("9" * 400, None),
])
def test_only_canonical_page_numbers_are_accepted(raw, expected):
    assert parse_page_number(raw) == expected


T = datetime(2026, 3, 1, 12, 0, 0, 400_000, tzinfo=UTC)


def test_last_modified_is_the_entrys_own_second_until_that_second_has_settled():
    assert last_modified(T, T) == http_second(T)
    assert last_modified(T, T + timedelta(seconds=1)) == http_second(T)
    settled = http_second(T + SETTLE) + timedelta(seconds=1)
    assert last_modified(T, settled - timedelta(microseconds=1)) == http_second(T)
    assert last_modified(T, settled) == settled
    assert last_modified(T, settled + timedelta(days=3)) == settled


def test_last_modified_is_never_after_now_and_never_before_the_entrys_second():
    for micros in range(0, 3_000_000, 50_000):
        now = T + timedelta(microseconds=micros)
        lm = last_modified(T, now)
        assert http_second(T) <= lm <= now


def test_an_empty_feed_was_last_modified_at_the_epoch():
    assert last_modified(None, T) == EPOCH
    assert not_modified_since(None, EPOCH)


def test_a_date_from_the_same_second_as_the_newest_entry_never_answers_not_modified():
    assert not not_modified_since(T, http_second(T))
    assert not not_modified_since(T, T)
    assert not not_modified_since(T, http_second(T) + timedelta(seconds=1))


def test_our_own_last_modified_answers_not_modified_once_settled_and_only_then():
    for micros in range(0, 4_000_000, 100_000):
        now = T + timedelta(microseconds=micros)
        lm = last_modified(T, now)
        assert not_modified_since(T, lm) == (lm > http_second(T))
    # Any entry stamped after the client's copy was sent is newer than that copy's Last-Modified.
    late_now = T + timedelta(seconds=5)
    lm = last_modified(T, late_now)
    assert not not_modified_since(late_now + timedelta(milliseconds=1), lm)
