"""Archive pages rendered once: stored for every process, one primary-key read, the very bytes a render makes."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import current_app, request, url_for
from sqlalchemy import event, func, select

from common.feeds.publish import atom
from common.feeds.publish.atom import PageLinks, render_page
from common.feeds.publish.pages import Page
from common.feeds.publish.publisher import PUBLISHER_KEY
from order_service import create_app
from order_service.models import ArchivePage
from tests.unit.test_feed_http import SIZE, place

PROXIES = [
    {},
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "X-Forwarded-Prefix": "/orders"},
    {"X-Forwarded-Host": "xn--bcher-kva.example:8443"},
    {"Host": 'odd"host&<name>'},
    {"Host": "bücher.example"},
]


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                       "FEED_PAGE_SIZE": SIZE})


@pytest.fixture
def client(app):
    return app.test_client()


def render_directly(number: int) -> bytes:
    """What render_page makes for archive page `number` with this request's own root and external links."""
    publisher = current_app.extensions[PUBLISHER_KEY]
    with current_app.extensions["atomshop.db"].read() as session:
        page = Page(number, SIZE, number * SIZE)
        links = PageLinks(self_url=url_for("feed.page", raw=str(number), _external=True),
                          current_url=url_for("feed.current", _external=True),
                          prev_archive=(url_for("feed.page", raw=str(number - 1), _external=True)
                                        if number > 1 else None),
                          next_archive=url_for("feed.page", raw=str(number + 1), _external=True))
        rows = publisher.log.between(session, page.first, page.last)
        return render_page(publisher.spec, links, True, rows[0].created, rows, request.url_root)


@pytest.mark.parametrize("headers", PROXIES)
def test_a_stored_archive_is_byte_for_byte_what_rendering_it_makes(tmp_path, headers):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}", "FEED_PAGE_SIZE": SIZE})
    app.add_url_rule("/direct/<int:number>", "direct", render_directly)  # behind the same proxy middleware
    client = app.test_client()
    place(client, 2 * SIZE + 1)
    client.get("/feed/pages/2")  # stored, for whichever root asks first
    app.extensions[PUBLISHER_KEY].cache.clear()
    served = client.get("/feed/pages/2", headers=headers)
    assert served.status_code == 200
    assert served.data == client.get("/direct/2", headers=headers).data


def test_an_archive_page_is_one_primary_key_read_once_stored(app, client):
    place(client, 3 * SIZE)
    client.get("/feed/pages/2")
    app.extensions[PUBLISHER_KEY].cache.clear()  # a process that never served it, as far as memory goes
    statements = driver_statements_during(app, lambda: client.get("/feed/pages/2"))
    queries = [s for s in statements if s.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "ROLLBACK")]
    assert len(queries) == 1 and "FROM archive_pages" in queries[0], queries


def driver_statements_during(app, action) -> list[str]:
    """Every statement SQLite runs while `action` runs, on whatever connection (the archive read bypasses the
    engine's execution events, so they are traced at the driver)."""
    engine = app.extensions["atomshop.db"].engine
    seen: list[str] = []
    engine.dispose()  # every connection from here on is a new one, traced from its start

    def trace(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(seen.append)
    event.listen(engine, "connect", trace)
    try:
        action()
    finally:
        event.remove(engine, "connect", trace)
    return seen


def test_another_process_serves_a_stored_page_without_rendering_it(app, client, tmp_path, monkeypatch):
    place(client, 2 * SIZE)
    first = client.get("/feed/pages/1")
    other = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                        "FEED_PAGE_SIZE": SIZE})

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered again")
    monkeypatch.setattr(atom, "render_page", no_rendering)
    again = other.test_client().get("/feed/pages/1")
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]


def test_made_up_host_names_store_no_more_pages(app, client):
    place(client, 2 * SIZE)
    for n in range(5):
        assert client.get("/feed/pages/1", headers={"Host": f"attacker-{n}.example"}).status_code == 200
    with app.extensions["atomshop.db"].read() as session:
        assert session.scalar(select(func.count()).select_from(ArchivePage)) == 1


def test_a_page_stored_by_another_format_version_is_rendered_again(app, client):
    place(client, 2 * SIZE)
    client.get("/feed/pages/1")
    db = app.extensions["atomshop.db"]
    with db.write() as session:
        stored = session.get(ArchivePage, (SIZE, 1))
        stored.format_version, stored.body = atom.FORMAT_VERSION - 1, b"stale bytes"
    app.extensions[PUBLISHER_KEY].cache.clear()
    response = client.get("/feed/pages/1")
    assert b"stale bytes" not in response.data and response.data.startswith(b"<?xml")
    with db.read() as session:
        assert session.get(ArchivePage, (SIZE, 1)).format_version == atom.FORMAT_VERSION


def test_an_event_type_holding_the_root_placeholder_is_refused_rather_than_served_wrong(app):
    publisher = app.extensions[PUBLISHER_KEY]
    links = PageLinks(atom.LINK_ROOT + "feed", atom.LINK_ROOT + "feed")

    class Row:
        position, event_type, document = 1, f"Order{atom.ROOT}", '{"id": 1}'
        created = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="placeholder"):
        atom.render_template(publisher.spec, links, False, Row.created, [Row])
