"""The shared layout: navigation between services (direct and behind the front door), macros, paging."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest
from flask import Flask, render_template_string
from flask_wtf import FlaskForm
from sqlalchemy import Integer, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, NumberRange

from common.service import web


class QuantityForm(FlaskForm):
    class Meta:
        csrf = False

    street = StringField("Street", validators=[DataRequired()])
    quantity = IntegerField("Quantity", validators=[NumberRange(min=1, max=9999)])


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    web.init_app(app, "order", "Orders")

    @app.get("/")
    def home():
        return render_template_string('{% extends "atomshop/base.html" %}'
                                      '{% block content %}<h1>Home</h1>{% endblock %}')

    @app.route("/form", methods=["GET", "POST"])
    def form():
        f = QuantityForm()
        status = 422 if f.is_submitted() and not f.validate() else 200
        return render_template_string(
            '{% import "atomshop/ui.html" as ui %}{{ ui.error_summary(f) }}{{ ui.field(f.street) }}'
            '{{ ui.field(f.quantity, hint="1 to 9999") }}', f=f), status

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(Row(id=i) for i in range(1, 121))
        s.commit()

    @app.get("/rows")
    def rows():
        with Session(engine) as s:
            page = web.paginate(s, select(Row).order_by(Row.id.desc()))
            return render_template_string(
                '{% import "atomshop/ui.html" as ui %}'
                '{% call ui.data_table("Rows", [("Id", "num")], count=page.items|length) %}'
                '{% for r in page.items %}<tr><td class="num">{{ r.id }}</td></tr>{% endfor %}{% endcall %}'
                '{{ ui.pagination(page, "rows") }}', page=page)

    return app


def nav_links(html: str) -> dict[str, str]:
    return dict(re.findall(r'services__link--(\w+)" href="([^"]*)"', html))


def test_pages_link_the_other_services_on_their_direct_ports_by_default(app, monkeypatch):
    monkeypatch.delenv("INVOICING_SERVICE_URL", raising=False)
    monkeypatch.setenv("SHIPPING_SERVICE_URL", "http://shipping.example:9000/")
    html = app.test_client().get("/").get_data(as_text=True)
    assert nav_links(html) == {"order": "http://127.0.0.1:8081/", "invoicing": "http://127.0.0.1:8082/",
                               "shipping": "http://shipping.example:9000/"}
    assert 'aria-current="page">Orders' in html
    assert 'href="/static/atomshop/atomshop.css"' in html


def test_behind_the_front_door_pages_link_the_other_services_on_the_same_host(app):
    html = app.test_client().get("/", headers={"X-Forwarded-Prefix": "/order"}).get_data(as_text=True)
    assert nav_links(html) == {"order": "/order/", "invoicing": "/invoicing/", "shipping": "/shipping/"}
    assert 'href="/order/static/atomshop/atomshop.css"' in html
    assert 'class="brand" href="/order/"' in html


def test_a_nested_prefix_keeps_its_parent_path(app):
    html = app.test_client().get("/", headers={"X-Forwarded-Prefix": "/shop/order/"}).get_data(as_text=True)
    assert nav_links(html) == {"order": "/shop/order/", "invoicing": "/shop/invoicing/", "shipping": "/shop/shipping/"}


def test_a_prefix_applied_by_proxyfix_is_not_added_twice(app):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_prefix=1)
    html = app.test_client().get("/", headers={"X-Forwarded-Prefix": "/order"}).get_data(as_text=True)
    assert nav_links(html)["invoicing"] == "/invoicing/"
    assert 'href="/order/static/atomshop/atomshop.css"' in html


@pytest.mark.parametrize("prefix", ['/x"><script>alert(1)</script>', "//evil.example", "javascript:alert(1)", "/a b"])
def test_a_hostile_prefix_is_ignored(app, prefix):
    html = app.test_client().get("/", headers={"X-Forwarded-Prefix": prefix}).get_data(as_text=True)
    assert "<script>alert" not in html and "evil.example" not in html and "javascript:" not in html
    assert nav_links(html)["invoicing"] == "http://127.0.0.1:8082/"


def test_a_field_with_an_error_has_its_message_bound_to_the_input(app):
    response = app.test_client().post("/form", data={"street": "", "quantity": "0"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<label for="quantity">Quantity</label>' in html
    error = re.search(r'<ul class="errors" id="quantity-errors">(.*?)</ul>', html).group(1)
    assert "between 1 and 9999" in error
    quantity_input = re.search(r'<input[^>]*id="quantity"[^>]*>', html).group(0)
    assert 'aria-describedby="quantity-hint quantity-errors"' in quantity_input
    assert 'aria-invalid="true"' in quantity_input and 'value="0"' in quantity_input
    assert 'href="#street"' in html and 'href="#quantity"' in html  # the summary links to each field


def test_a_valid_field_has_no_error_markup(app):
    html = app.test_client().post("/form", data={"street": "Main 1", "quantity": "2"}).get_data(as_text=True)
    assert 'class="errors"' not in html and "aria-invalid" not in html and "error-summary" not in html
    assert 'aria-describedby="quantity-hint"' in html


def test_lists_are_paged_at_fifty_newest_first(app):
    client = app.test_client()
    first = client.get("/rows").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', first)]
    assert ids == list(range(120, 70, -1))
    assert 'href="/rows?page=2"' in first and 'rel="prev"' not in first
    assert "1–50 of 120 rows · page 1 of 3" in first
    last = client.get("/rows?page=3").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', last)] == list(range(20, 0, -1))
    assert 'href="/rows?page=2"' in last and 'rel="next"' not in last
    behind_proxy = client.get("/rows?page=2", headers={"X-Forwarded-Prefix": "/order"}).get_data(as_text=True)
    assert 'href="/order/rows?page=1"' in behind_proxy and 'href="/order/rows?page=3"' in behind_proxy


@pytest.mark.parametrize("page, status", [("0", 400), ("abc", 400), ("-1", 400), ("4", 404)])
def test_a_page_that_is_not_there_is_a_clear_client_error(app, page, status):
    assert app.test_client().get(f"/rows?page={page}").status_code == status


def test_an_empty_list_is_page_one_with_a_message(app):
    with app.test_request_context("/"):
        page = web.Page([], 1, 0)
        html = render_template_string('{% import "atomshop/ui.html" as ui %}'
                                      '{% call ui.data_table("Rows", [], count=0, empty="No rows yet.") %}{% endcall %}'
                                      '{{ ui.pagination(page) }}', page=page)
    assert page.pages == 1 and not page.has_next and "No rows yet." in html and "<table" not in html


def test_money_and_times_are_shown_the_same_way_everywhere():
    assert web.money(Decimal("42")) == "42.00" and web.money("3.5") == "3.50" and web.money(None) == ""
    html = str(web.when(datetime(2026, 1, 2, 3, 4, 5)))
    assert html == '<time datetime="2026-01-02T03:04:05+00:00">2026-01-02 03:04:05 UTC</time>'
    assert "never" in web.when(None)
    assert str(web.when("<b>not a date</b>")) == "&lt;b&gt;not a date&lt;/b&gt;"
