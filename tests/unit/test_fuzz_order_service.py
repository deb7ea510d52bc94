"""Hostile input on the order service, fuzzed with hypothesis: never a 5xx, nothing stored on a 4xx, the feed
stays valid XML after every accepted order, CSRF on the form, no debug pages, a per-install secret key."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import func, select

from order_service.app import create_app
from order_service.models import Notification, Order
from tests.faults.atom import ATOM_NS
from tests.faults.figures import record

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
STRICT = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
TRACE_MARKERS = ("Traceback", "File \"/", "werkzeug.debug", "Werkzeug Debugger", "sqlalchemy.exc")

# Any code point, lone surrogates and XML-illegal controls included.
any_char = st.characters(codec=None, exclude_categories=())
nasty_text = st.one_of(
    st.text(any_char, max_size=30),
    st.text(st.sampled_from("\x00\x01\x08\x0b\x0c\x1f\ud800\udfff\ufffe\uffff<>&]]>\"'\u2028\u202e"), max_size=5),
    st.sampled_from(["<script>alert(1)</script>", "]]>", "&amp;", "x" * 200, "x" * 201, " ", "", "\t", "é" * 200]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                        nasty_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(nasty_text, inner, max_size=4)), max_leaves=12)
ids = st.one_of(st.integers(-3, 8), st.sampled_from([2**31, 2**63, 10**30, True, 1.0, "1", None]), json_value)
quantities = st.one_of(st.integers(-2, 10_001), st.sampled_from([9999, 10000, 2**63, 1.5, "2", True, None]))
address_part = st.one_of(st.sampled_from(["Main Street 1", "12345", "Springfield"]), nasty_text, json_value)


@st.composite
def near_valid_orders(draw):
    """A valid order with a drawn subset of its parts (maybe none) made hostile or removed."""
    line_count = draw(st.integers(1, 3) if draw(st.integers(0, 9)) else st.integers(1, 300))
    body = {"customer_id": draw(st.integers(1, 3)),
            "shipping_address": {"street": "Main Street 1", "zip": "12345", "city": "Springfield"},
            "billing_address": {"street": "Elm Road 2", "zip": "54321", "city": "Shelbyville"},
            "lines": [{"item_id": draw(st.integers(1, 4)), "quantity": draw(st.integers(1, 9999))}
                      for _ in range(line_count)]}
    parts = ["customer_id", "shipping_address", "billing_address", "lines", "lines.0", "lines.0.item_id",
             "lines.0.quantity", "extra", *(f"{kind}_address.{part}" for kind in ("shipping", "billing")
                                           for part in ("street", "zip", "city"))]
    strategies = {"customer_id": ids, "item_id": ids, "quantity": quantities, "street": address_part,
                  "zip": address_part, "city": address_part}
    for path in draw(st.sets(st.sampled_from(parts), max_size=3)):
        *parents, leaf = path.split(".")
        target = body
        for key in parents:
            if isinstance(target, list):
                target = target[int(key)] if key.isdigit() and int(key) < len(target) else None
            else:
                target = target.get(key)
            if not isinstance(target, (dict, list)):
                break
        else:
            if leaf == "extra":
                body[draw(nasty_text)] = draw(json_value)
            elif isinstance(target, list):
                if leaf.isdigit() and int(leaf) < len(target):
                    target[int(leaf)] = draw(json_value)
            elif draw(st.integers(0, 4)) == 0:
                target.pop(leaf, None)
            else:
                target[leaf] = draw(strategies.get(leaf, json_value))
    return body if draw(st.integers(0, 19)) else draw(json_value)


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"{", b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000, b"\xff\xfe{}", b"NaN",
                     b'"\\ud800"', b'{"customer_id": 1e999}', b"\xef\xbb\xbf{}", b"null"]),
    st.text(any_char, max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


class Recorder:
    """Counts what the fuzzing tried and what it saw, and does the per-example checks."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.db = app.extensions["atomshop.db"]
        self.tried = 0
        self.statuses: dict[int, int] = {}

    def counts(self) -> tuple[int, int]:
        with self.db.read() as session:
            return (session.scalar(select(func.count()).select_from(Order)),
                    session.scalar(select(func.count()).select_from(Notification)))

    def check(self, response, before: tuple[int, int], created: bool) -> None:
        self.tried += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        body = response.get_data(as_text=True)
        assert response.status_code < 500, f"{response.status_code}: {body[:500]}"
        assert not any(marker in body for marker in TRACE_MARKERS), body[:500]
        after = self.counts()
        if created:
            assert after == (before[0] + 1, before[1] + 1)
            self.assert_feed_valid()
        else:
            assert after == before, f"{response.status_code} but something was stored: {before} → {after}"

    def assert_feed_valid(self) -> None:
        feed = self.client.get("/feed")
        assert feed.status_code == 200
        root = etree.fromstring(feed.data, STRICT)  # raises on anything ill-formed
        newest = root.find(f"{{{ATOM_NS}}}entry")
        if newest is None:  # the new order filled a page: the current page is empty, the order is in the archive
            prev = root.find(f"{{{ATOM_NS}}}link[@rel='prev-archive']").get("href")
            archive = self.client.get(prev.replace("http://localhost", ""))
            root = etree.fromstring(archive.data, STRICT)
            newest = root.find(f"{{{ATOM_NS}}}entry")
        document = json.loads(newest.findtext(f"{{{ATOM_NS}}}content"))
        assert document == self.client.get(f"/api/orders/{document['id']}").get_json()


@pytest.fixture
def recorder(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'order.db'}"})
    assert not app.debug and not app.testing
    return Recorder(app)


def test_fuzzed_json_orders_never_cause_a_5xx_nor_store_anything_when_rejected(recorder):
    @FUZZ
    @given(body=near_valid_orders())
    def attempt(body):
        before = recorder.counts()
        response = recorder.client.post("/api/orders", data=json.dumps(body), content_type="application/json")
        assert response.status_code in (201, 400, 413, 415, 422), response.status_code
        if response.status_code == 201:  # hostile but legal strings are stored intact
            document = response.get_json()
            assert document["shipping_address"] == body["shipping_address"]
            assert document["billing_address"] == body["billing_address"]
        else:
            assert "error" in response.get_json()
        recorder.check(response, before, response.status_code == 201)

    attempt()
    assert recorder.statuses.get(201, 0) > 0 and recorder.statuses.get(422, 0) > 0, recorder.statuses
    record("fuzz_json_orders", hostile_inputs=recorder.tried, statuses=recorder.statuses)


def test_fuzzed_raw_bodies_and_content_types_are_rejected_with_a_4xx(recorder):
    @FUZZ
    @given(body=raw_bodies, content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin-1", "text/plain", "application/x-www-form-urlencoded",
         "", "application/json; charset=utf-16"]))
    def attempt(body, content_type):
        before = recorder.counts()
        response = recorder.client.post("/api/orders", data=body, content_type=content_type)
        assert 400 <= response.status_code < 500, response.status_code
        recorder.check(response, before, created=False)

    attempt()
    before = recorder.counts()
    huge = json.dumps({"customer_id": 1, "padding": "x" * (1024 * 1024 + 1)})
    response = recorder.client.post("/api/orders", data=huge, content_type="application/json")
    assert response.status_code == 413
    recorder.check(response, before, created=False)
    record("fuzz_raw_bodies", hostile_inputs=recorder.tried, statuses=recorder.statuses)


def _csrf_token(client) -> str:
    page = client.get("/orders/new")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, "the order form carries no CSRF token"
    return match.group(1)


form_text = st.one_of(nasty_text, st.sampled_from(["1", "2", "0", "-1", "9999", "10000", "1e3", "abc"]))


@st.composite
def form_posts(draw):
    """A form post where a drawn subset of fields (maybe none) is hostile or missing."""
    fields = {"customer_id": "1"}
    for kind in ("shipping", "billing"):
        fields.update({f"{kind}_street": "Main Street 1", f"{kind}_zip": "12345", f"{kind}_city": "Springfield"})
    for n in range(draw(st.integers(1, 3) if draw(st.integers(0, 9)) else st.integers(0, 12))):
        fields.update({f"lines-{n}-item_id": str(draw(st.integers(1, 3))), f"lines-{n}-quantity": "2"})
    for name in draw(st.sets(st.sampled_from(sorted(fields)), max_size=4)):
        if draw(st.integers(0, 5)):
            fields[name] = draw(form_text)
        else:
            del fields[name]
    return fields


def test_fuzzed_form_posts_with_a_valid_csrf_token_never_cause_a_5xx_nor_store_on_rejection(recorder):
    token = _csrf_token(recorder.client)

    @FUZZ
    @given(fields=form_posts())
    def attempt(fields):
        before = recorder.counts()
        encoded = {k: v.encode("utf-8", "surrogatepass") for k, v in fields.items()}
        response = recorder.client.post("/orders", data={**encoded, "csrf_token": token})
        assert response.status_code in (303, 400, 422), response.status_code
        if response.status_code == 303:
            assert re.search(r"/orders/\d+$", response.headers["Location"])
        recorder.check(response, before, response.status_code == 303)

    attempt()
    assert recorder.statuses.get(303, 0) > 0 and recorder.statuses.get(422, 0) > 0, recorder.statuses
    record("fuzz_form_posts", hostile_inputs=recorder.tried, statuses=recorder.statuses)


def test_a_form_post_without_a_valid_csrf_token_is_refused_with_400_and_stores_nothing(recorder):
    _csrf_token(recorder.client)  # the session exists; only the token is missing or wrong
    valid = {"customer_id": "1", "shipping_street": "Main Street 1", "shipping_zip": "12345",
             "shipping_city": "Springfield", "billing_street": "Main Street 1", "billing_zip": "12345",
             "billing_city": "Springfield", "lines-0-item_id": "1", "lines-0-quantity": "1"}
    for token in (None, "", "forged-token", "x" * 91):
        before = recorder.counts()
        data = dict(valid) if token is None else {**valid, "csrf_token": token}
        response = recorder.client.post("/orders", data=data)
        assert response.status_code == 400, response.status_code
        recorder.check(response, before, created=False)
    # A token from another browser session is refused too.
    other = recorder.app.test_client()
    foreign = _csrf_token(other)
    before = recorder.counts()
    fresh = recorder.app.test_client()
    response = fresh.post("/orders", data={**valid, "csrf_token": foreign})
    assert response.status_code == 400
    recorder.check(response, before, created=False)
    # And the same form with the session's own token is accepted: the refusal above was the token's doing.
    before = recorder.counts()
    response = recorder.client.post("/orders", data={**valid, "csrf_token": _csrf_token(recorder.client)})
    assert response.status_code == 303
    recorder.check(response, before, created=True)


def test_error_responses_show_no_stack_trace_nor_debugger(recorder):
    client = recorder.client
    for method, path in (("get", "/no-such-page"), ("get", "/api/orders/999999"), ("delete", "/api/orders"),
                         ("get", "/feed/pages/0"), ("get", "/feed/pages/99999999999999999999"),
                         ("get", "/orders/abc")):
        response = getattr(client, method)(path)
        assert 400 <= response.status_code < 500
        body = response.get_data(as_text=True)
        assert not any(marker in body for marker in TRACE_MARKERS), (path, body[:300])


def test_the_secret_key_comes_from_the_environment_or_a_per_install_random_default(tmp_path, monkeypatch):
    keys = []
    for name in ("install-a", "install-b"):
        monkeypatch.setenv("ATOMSHOP_DATA_DIR", str(tmp_path / name))
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / name / 'order.db'}"})
        keys.append(app.secret_key)
        again = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / name / 'order.db'}"})
        assert again.secret_key == app.secret_key, "the default key must survive a restart"
        key_files = list((tmp_path / name).glob("*.secret"))
        assert key_files and all(f.stat().st_mode & 0o077 == 0 for f in key_files), "key files must be private"
    assert keys[0] != keys[1] and all(len(k) >= 32 for k in keys)
    for key in keys:
        found = subprocess.run(["git", "grep", "-F", "-q", key], cwd=REPO).returncode
        assert found == 1, "a generated key appears in the repository"
    monkeypatch.setenv("SECRET_KEY", "from-the-environment-0123456789abcdef")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'env' / 'order.db'}"})
    assert app.secret_key == "from-the-environment-0123456789abcdef"
