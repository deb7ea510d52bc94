"""Entries the handler cannot take: bounded retries then a dead letter; unknown types skipped; duplicates once."""
from __future__ import annotations

import threading

import pytest
import responses
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from tests.unit.follower_feed import (
    BASE,
    FEED_URL,
    MODELS,
    FakeFeed,
    Recorder,
    effects,
    entry_xml,
    make_db,
    make_follower,
    page_xml,
)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_an_entry_that_is_not_json_is_retried_then_dead_lettered_and_the_rest_follows(rsps, tmp_path):
    feed = FakeFeed(rsps, size=10, count=5)
    feed.entry_overrides[3] = entry_xml(3, content="{not json")
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler, max_attempts=3)
    assert follower.poll() == 2  # 1 and 2; 3 fails (attempt 1) and nothing after it may go first
    assert follower.load().position == 2 and follower.load().retry_attempts == 1
    assert "position 3, attempt 1 of 3" in follower.last_error
    assert follower.poll() == 0
    assert follower.load().retry_attempts == 2
    assert follower.poll() == 2  # attempt 3: dead letter, then 4 and 5
    assert handler.positions == [1, 2, 4, 5]
    assert follower.load().position == 5 and follower.load().retry_position is None
    [letter] = follower.dead_letters()
    assert letter["position"] == 3 and letter["attempts"] == 3 and "JSONDecodeError" in letter["reason"]
    assert letter["content"] == "{not json"
    assert follower.stats()["dead_lettered"] == 1
    assert follower.last_error is None


def test_a_dead_letter_retried_after_the_cause_is_fixed_stores_its_effect_and_goes_away(rsps, tmp_path):
    FakeFeed(rsps, size=10, count=3)
    db, handler = make_db(tmp_path), Recorder(fail_on={2})
    follower = make_follower(db, handler, max_attempts=1)
    assert follower.poll() == 2
    [letter] = follower.dead_letters()
    with pytest.raises(RuntimeError, match="refuses position 2"):
        follower.retry_dead_letter(letter["id"])
    assert follower.dead_letters()[0]["attempts"] == 2
    handler.fail_on.clear()
    follower.retry_dead_letter(letter["id"])
    assert follower.dead_letters() == []
    assert effects(db) == [1, 2, 3]
    with pytest.raises(LookupError):
        follower.retry_dead_letter(letter["id"])


def test_an_entry_with_missing_fields_becomes_a_dead_letter(rsps, tmp_path):
    from common.feeds.follow.follower import FeedFollower
    from common.service.db import Database
    from invoicing_service.handlers import handle
    from invoicing_service.models import Base, tracking
    feed = FakeFeed(rsps, size=10, count=2)
    feed.entry_overrides[1] = entry_xml(1, content='{"id": 1, "lines": []}')
    db = Database(f"sqlite:///{tmp_path / 'inv.db'}", Base)
    db.create_all()
    follower = FeedFollower(FEED_URL, "invoicing", db, handle, tracking, event_types={"OrderCreated"},
                            max_attempts=1)
    assert follower.poll() == 1
    [letter] = follower.dead_letters()
    assert letter["position"] == 1 and "customer" in letter["reason"]


def test_unknown_event_types_are_skipped_and_counted_not_dead_lettered(rsps, tmp_path):
    feed = FakeFeed(rsps, size=10, count=4)
    feed.entry_overrides[2] = entry_xml(2, event_type="OrderCancelled", content="whatever")
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    assert follower.poll() == 3
    assert handler.positions == [1, 3, 4]
    assert follower.stats()["skipped"] == 1 and follower.dead_letters() == []
    assert follower.load().position == 4


def test_a_duplicated_entry_on_a_page_is_handled_once(rsps, tmp_path):
    feed = FakeFeed(rsps, size=10, count=0)
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(1), entry_xml(2), entry_xml(2), entry_xml(3)])
    db, handler = make_db(tmp_path), Recorder()
    assert make_follower(db, handler).poll() == 3
    assert handler.positions == [1, 2, 3]


def test_two_different_entries_at_one_position_are_a_broken_feed_and_neither_is_handled(rsps, tmp_path):
    from common.feeds.follow.errors import FeedError

    feed = FakeFeed(rsps, size=10, count=0)
    feed.overrides[FEED_URL] = page_xml(FEED_URL, [entry_xml(1), entry_xml(2), entry_xml(2, order_id=99),
                                                   entry_xml(3)])
    db, handler = make_db(tmp_path), Recorder()
    with pytest.raises(FeedError, match="two different entries at position 2"):
        make_follower(db, handler).poll()
    assert handler.positions == [] and effects(db) == []


def test_an_entry_failing_again_after_the_position_was_reset_behind_its_dead_letter_is_dead_lettered_again(
        rsps, tmp_path):
    FakeFeed(rsps, size=5, count=3)
    db = make_db(tmp_path)
    follower = make_follower(db, Recorder(fail_on={2}), max_attempts=1)
    assert follower.poll() == 2  # 1 and 3 handled, 2 a dead letter
    follower.reset_position(0)  # the operator's way out of a halt: read again from the start
    assert follower.poll() == 2  # 2 fails again: its letter is replaced, and the follower goes on
    assert [d["position"] for d in follower.dead_letters()] == [2]
    assert follower.load().position == 3


def test_when_another_instance_advances_first_the_follower_rereads_and_duplicates_nothing(rsps, tmp_path):
    feed = FakeFeed(rsps, size=3, count=7)
    db = make_db(tmp_path)
    mine, theirs = Recorder(), Recorder()
    me, other = make_follower(db, mine), make_follower(db, theirs)
    serve = rsps.registered()[0].callback
    raced = []

    def serve_and_race(request):
        # The other instance polls to the end right after I fetched /feed, before my first transaction.
        if not raced:
            raced.append(True)
            other.poll()
        return serve(request)

    rsps.registered()[0].callback = serve_and_race
    assert me.poll() == 0  # my work on the page (if any) lost the compare-and-set and was rolled back
    assert theirs.positions == list(range(1, 8))
    assert effects(db) == list(range(1, 8)) and me.stats()["handled"] == 7
    feed.count = 9
    assert me.poll() == 2
    assert effects(db) == list(range(1, 10))


def test_a_compare_and_set_that_finds_the_position_moved_rolls_back_the_page(rsps, tmp_path):
    FakeFeed(rsps, size=10, count=3)
    db = make_db(tmp_path)
    handler = Recorder()
    follower = make_follower(db, handler)
    T = MODELS.Tracking

    class Sneaky:
        """Moves the position under my feet, as a concurrent writer without row locks could."""

        calls = 0

        def __call__(self, session, entry):
            handler(session, entry)
            if entry.position == 3 and not Sneaky.calls:
                Sneaky.calls += 1
                session.execute(update(T).where(T.consumer == "test").values(position=1))

    follower.handler = Sneaky()
    # The CAS (WHERE position=0) misses: the whole page, effects included, is rolled back, re-read and redone.
    assert follower.poll() == 3
    assert handler.positions == [1, 2, 3, 1, 2, 3]
    assert effects(db) == [1, 2, 3]
    assert follower.load().position == 3 and follower.stats()["handled"] == 3


def test_two_polls_at_once_in_one_process_never_both_handle_an_entry(rsps, tmp_path):
    FakeFeed(rsps, size=5, count=60)
    db, handler = make_db(tmp_path), Recorder()
    follower = make_follower(db, handler)
    results = []
    threads = [threading.Thread(target=lambda: results.append(follower.poll())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, 60]
    assert handler.positions == list(range(1, 61))


def test_two_followers_sharing_a_database_split_the_work_without_duplicates(rsps, tmp_path):
    feed = FakeFeed(rsps, size=4, count=0)
    db = make_db(tmp_path)
    a, b = Recorder(), Recorder()
    fa, fb = make_follower(db, a), make_follower(db, b)
    for n in range(1, 41):
        feed.count = n
        (fa if n % 3 else fb).poll()
        (fb if n % 2 else fa).poll()
    assert sorted(a.positions + b.positions) == list(range(1, 41))
    assert effects(db) == list(range(1, 41))
    assert BASE in fa.load().bookmark


def recording_batch(handler):
    """A batch handler that applies `handler` to each entry, and the list of the positions of each batch."""
    batches = []

    def batch(session, entries):
        batches.append([e.position for e in entries])
        for entry in entries:
            handler(session, entry)
    return batch, batches


def test_a_batch_handler_takes_whole_pages_and_a_failing_batch_falls_back_to_one_entry_at_a_time(rsps, tmp_path):
    feed = FakeFeed(rsps, size=4, count=10)
    feed.entry_overrides[6] = entry_xml(6, content="{not json")
    feed.entry_overrides[7] = entry_xml(7, event_type="OrderShipped")
    db, handler = make_db(tmp_path), Recorder()
    batch, batches = recording_batch(handler)
    follower = make_follower(db, handler, batch_handler=batch, max_attempts=2)
    # Page 1 in one batch; pages 2 and 3 as one batch fail on 6, so does page 2 alone: then 5 alone, and 6 is
    # to be retried; nothing after it is handled before it.
    assert follower.poll() == 5
    assert batches == [[1, 2, 3, 4], [5, 6, 8, 9, 10], [5, 6, 8]]
    assert follower.poll() == 3  # 6 dead-lettered on its second attempt, 7 skipped, 8, then page 3 as a batch
    assert batches[-1] == [9, 10]
    assert effects(db) == [1, 2, 3, 4, 5, 8, 9, 10]
    assert [d["position"] for d in follower.dead_letters()] == [6]
    assert follower.stats()["skipped"] == 1 and follower.stats()["handled"] == 8


def test_walked_back_pages_are_handled_in_groups_and_a_failing_group_page_by_page(rsps, tmp_path):
    feed = FakeFeed(rsps, size=2, count=9)  # /feed is page 5 (9); pages 1-4 are archives
    feed.entry_overrides[4] = entry_xml(4, content="{not json")
    db, handler = make_db(tmp_path), Recorder()
    batch, batches = recording_batch(handler)
    follower = make_follower(db, handler, batch_handler=batch, max_attempts=1)
    assert follower.poll() == 8
    # Page 1 on its own; pages 2-5 as one group fail on 4, so page by page: page 2's batch fails too (3 alone,
    # 4 dead-lettered), pages 3 and 4 as batches, then /feed's single entry.
    assert batches == [[1, 2], [3, 4, 5, 6, 7, 8, 9], [3, 4], [5, 6], [7, 8]]
    assert effects(db) == [1, 2, 3, 5, 6, 7, 8, 9]
    assert [d["position"] for d in follower.dead_letters()] == [4]
    assert follower.load().position == 9 and follower.load().bookmark == FEED_URL


def database_failure() -> OperationalError:
    return OperationalError("UPDATE invoices SET ...", {}, Exception("deadlock detected"))


def test_a_database_error_in_the_handler_is_not_the_entrys_fault_and_never_dead_letters_it(rsps, tmp_path):
    """max_attempts=1 would dead-letter any failure at once: an OperationalError must end the pass instead."""
    FakeFeed(rsps, size=10, count=3)
    db, recorder = make_db(tmp_path), Recorder()
    broken = True

    def handler(session, entry):
        if broken and entry.position == 2:
            raise database_failure()
        recorder(session, entry)
    follower = make_follower(db, handler, max_attempts=1)
    with pytest.raises(OperationalError, match="deadlock"):
        follower.poll()
    assert follower.load().position == 0 and follower.load().retry_position is None
    assert follower.dead_letters() == [] and effects(db) == []  # 1's effect rolled back with the page
    broken = False
    assert follower.poll() == 3
    assert effects(db) == [1, 2, 3] and follower.dead_letters() == []


def test_a_database_error_in_the_batch_handler_ends_the_pass_without_hunting_for_a_culprit_entry(rsps, tmp_path):
    """Entry-by-entry fallback is for finding a bad entry; a failing database has none, so nothing runs alone."""
    FakeFeed(rsps, size=10, count=3)
    db, handler = make_db(tmp_path), Recorder()

    def batch(session, entries):
        raise database_failure()
    follower = make_follower(db, handler, batch_handler=batch, max_attempts=1)
    with pytest.raises(OperationalError, match="deadlock"):
        follower.poll()
    assert handler.positions == []
    assert follower.load().position == 0 and follower.load().retry_position is None
    assert follower.dead_letters() == [] and effects(db) == []


@pytest.mark.parametrize("batched", [False, True])
def test_an_entry_whose_alternate_link_leads_off_the_feeds_origin_is_dead_lettered_never_handled(
        rsps, tmp_path, batched):
    # A handler may keep the link (an invoice's order_url) and publish it again: the origin rule holds for it too.
    feed = FakeFeed(rsps, size=5, count=3)
    feed.entry_overrides[2] = entry_xml(2).replace(f"{BASE}/api/orders/2", "http://elsewhere.test/api/orders/2")
    db, handler = make_db(tmp_path), Recorder()
    batches: list[list[int]] = []

    def batch(session, entries):
        batches.append([e.position for e in entries])
        for entry in entries:
            handler(session, entry)

    follower = make_follower(db, handler, max_attempts=1, batch_handler=batch if batched else None)
    assert follower.poll() == 2
    assert effects(db) == [1, 3]
    [letter] = follower.dead_letters()
    assert letter["position"] == 2 and "alternate link" in letter["reason"] and "elsewhere.test" in letter["reason"]
    assert [1, 2, 3] not in batches
