"""The shared layout in a real Chromium: every piece of atomshop/ui.html on one sample page."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from flask import Flask, flash, render_template_string
from flask_wtf import FlaskForm
from werkzeug.serving import make_server
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, NumberRange

from common.service import web
from tests.browser import PHONE, follow, screenshot

SAMPLE = """{% extends "atomshop/base.html" %}{% import "atomshop/ui.html" as ui %}
{% block title %}Sample{% endblock %}
{% block content %}
<div class="page-head"><h1>Sample page</h1><a class="button" href="#">Main action</a></div>
{{ ui.error_summary(form) }}
<form method="post" novalidate>
  <fieldset><legend>Shipping address</legend>
    <div class="grid grid--address">{{ ui.field(form.street, class="field--wide") }}
      {{- ui.field(form.zip) }}{{ ui.field(form.city) }}</div>
  </fieldset>
  {{ ui.field(form.same) }}
  {{ ui.field(form.item) }}{{ ui.field(form.quantity, hint="1 to 9999") }}
  <div class="actions"><button type="submit">Save</button><button class="secondary" type="button">Other</button></div>
</form>
{% call ui.data_table("Orders", [("Order", ""), ("Customer", ""), ("Placed", ""), ("Total", "num")], count=3) %}
  {% for i in range(3) %}<tr><td><a href="#">#{{ 3 - i }}</a></td><td>Ada Lovelace &lt;ada@example.org&gt;</td>
  <td>{{ placed | when }}</td><td class="num">{{ (i * 1234.5) | money }}</td></tr>{% endfor %}
{% endcall %}
{{ ui.pagination(page, "orders") }}
{{ ui.consumer_status(status, "#") }}
{% endblock %}"""


class SampleForm(FlaskForm):
    class Meta:
        csrf = False

    street = StringField("Street", validators=[DataRequired()])
    zip = StringField("ZIP code", validators=[DataRequired()])
    city = StringField("City", validators=[DataRequired()])
    same = BooleanField("Billing address same as shipping")
    item = SelectField("Item", choices=[SelectChoice("1", "Coffee beans · 12.50"), SelectChoice("2", "Mug · 8.00")])
    quantity = IntegerField("Quantity", validators=[NumberRange(min=1, max=9999)])


@pytest.fixture
def sample_site():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test")
    web.init_app(app, "invoicing", "Invoicing")

    @app.route("/", methods=["GET", "POST"])
    def sample():
        form = SampleForm()
        if form.is_submitted():
            form.validate()
            flash("Polled the feed: 3 entries processed.", "success")
        status = {"position": 41, "last_poll": datetime(2026, 5, 1, 12, 0, 0), "poll_interval": 5.0,
                  "last_error": "feed unreachable: connection refused", "feed_url": "http://127.0.0.1:8081/feed",
                  "dead_letters": [{"position": 7, "entry_id": "urn:atomshop:order:7", "reason": "<b>bad</b> JSON",
                                    "attempts": 3}]}
        return render_template_string(SAMPLE, form=form, page=web.Page([], 2, 160), status=status,
                                      placed=datetime(2026, 5, 1, 11, 59, 3))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(5)


def test_the_shared_layout_is_styled_accessible_and_escapes_hostile_text(browser_page, sample_site, output_dir):
    page = browser_page
    page.goto(sample_site)
    assert page.locator(".site-header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(27, 31, 36)"
    assert page.get_by_role("link", name="Invoicing", exact=True).get_attribute("aria-current") == "page"
    assert page.locator(".status__position").inner_text() == "41"
    assert page.locator(".error-text", has_text="bad").first.inner_text() == "<b>bad</b> JSON"
    screenshot(page, output_dir, "sample")

    follow(page, page.get_by_role("button", name="Save"))
    assert page.get_by_label("Street").get_attribute("aria-invalid") == "true"
    assert page.locator("#street-errors").is_visible()
    assert page.get_by_role("status").first.inner_text() == "Polled the feed: 3 entries processed."
    screenshot(page, output_dir, "sample-with-errors")

    page.keyboard.press("Tab")  # the skip link comes first and shows itself on focus
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_the_shared_layout_fits_a_phone(new_page, sample_site, output_dir):
    page = new_page(viewport=PHONE)
    page.goto(sample_site)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    screenshot(page, output_dir, "sample-phone")
