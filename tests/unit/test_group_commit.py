"""Group commit: concurrent writes share a transaction, each gets its own outcome, a failure is only its own."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Integer, String, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.service.db import Database
from common.service.group_commit import GroupCommit


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'group.db'}", Base)
    database.create_all()
    yield database
    database.dispose()


def stored(db) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(Row.name).order_by(Row.id)))


def insert_names(batches: list[list[str]]):
    """A store that INSERTs each name (returning its id) and records the batches it was given."""
    def store(session, names):
        batches.append(list(names))
        return [session.execute(insert(Row).values(name=name).returning(Row.id)).scalar_one() for name in names]
    return store


def wait_until_waiting(group: GroupCommit, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(group._waiting) < count:
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.001)


class HeldFirst:
    """A store whose first transaction stays open until released, so that the next writes queue behind it."""

    def __init__(self):
        self.batches: list[list[str]] = []
        self.store = insert_names(self.batches)
        self.writing = threading.Event()
        self.release = threading.Event()

    def __call__(self, session, names):
        if not self.batches:
            self.writing.set()
            self.release.wait(10)
        return self.store(session, names)


def write_queued(group: GroupCommit, held: HeldFirst, first: str, then: list[str], write) -> None:
    """`first` is written (and held); `then` all queue behind it; then the lot is released and done."""
    threads = [threading.Thread(target=write, args=(first,))]
    threads[0].start()
    assert held.writing.wait(10)
    threads += [threading.Thread(target=write, args=(name,)) for name in then]
    for thread in threads[1:]:
        thread.start()
    wait_until_waiting(group, len(then))
    held.release.set()
    for thread in threads:
        thread.join(10)


def test_writes_waiting_while_another_is_written_share_the_next_transaction(db):
    held = HeldFirst()
    group = GroupCommit(db, held)
    results: dict[str, int] = {}

    def write(name):
        results[name] = group.write(name)

    write_queued(group, held, "a", list("bcde"), write)
    assert held.batches[0] == ["a"] and sorted(held.batches[1]) == list("bcde") and len(held.batches) == 2
    assert sorted(stored(db)) == list("abcde")
    with db.read() as session:  # each writer got its own row's id
        assert results == dict(session.execute(select(Row.name, Row.id)).all())


def test_a_failing_write_fails_alone_and_the_others_of_its_transaction_are_stored(db):
    with db.write() as session:
        session.execute(insert(Row).values(name="taken"))
    held = HeldFirst()
    group = GroupCommit(db, held)
    outcomes: dict[str, object] = {}

    def write(name):
        try:
            outcomes[name] = group.write(name)
        except IntegrityError as exc:
            outcomes[name] = exc

    write_queued(group, held, "x", ["taken", "y"], write)
    assert isinstance(outcomes["taken"], IntegrityError)  # the name is stored already: a unique-key clash
    assert isinstance(outcomes["x"], int) and isinstance(outcomes["y"], int)
    assert sorted(stored(db)) == ["taken", "x", "y"]
    assert sorted(held.batches[1]) == ["taken", "y"]  # the shared transaction failed, then each went alone
    assert sorted(map(tuple, held.batches[2:])) == [("taken",), ("y",)]


def test_a_write_returns_once_its_transaction_has_committed(db):
    group = GroupCommit(db, insert_names([]))
    row_id = group.write("one")
    with db.read() as session:  # another connection sees it the moment write() returns
        assert session.scalar(select(Row.name).where(Row.id == row_id)) == "one"


def test_a_transaction_takes_at_most_max_batch_writes(db):
    held = HeldFirst()
    group = GroupCommit(db, held, max_batch=2)
    write_queued(group, held, "n0", [f"n{n}" for n in range(1, 7)], group.write)
    assert [len(batch) for batch in held.batches] == [1, 2, 2, 2]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Row)) == 7
