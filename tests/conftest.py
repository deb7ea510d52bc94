"""Fixtures shared by the whole suite."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """Each test gets its own data folder and no stray configuration from the developer's shell."""
    for name in ("DATABASE_URL", "FEED_PAGE_SIZE", "ORDER_FEED_URL", "INVOICING_FEED_URL", "SHIPPING_FEED_URL",
                 "POLL_INTERVAL", "LONG_POLL_WAIT", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATOMSHOP_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def output_dir(request):
    """A folder for artefacts a person should look at (screenshots), under test-output/."""
    path = os.path.join(os.path.dirname(__file__), "..", "test-output", request.node.name)
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster shared by the session; each test creates its own databases on it."""
    from tests.servers import PostgresServer

    with PostgresServer() as server:
        yield server
        _stop_append_listeners()


def _stop_append_listeners() -> None:
    """Stop the append listeners of the apps tests built in this process before their cluster goes: each would
    otherwise log "failed … retrying" into the run's output until the worker exits."""
    import gc

    from common.feeds.publish.notify import AppendListener

    for thing in gc.get_objects():
        if isinstance(thing, AppendListener):
            thing.stop()
