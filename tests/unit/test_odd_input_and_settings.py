"""Requests and settings a review found answered with a 500 or a crash (or worse): each is now a clear refusal."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.contracts import OrderCancelled
from common.service import launcher
from common.service.config import ConfigError
from invoicing_service.app import create_app as create_invoicing
from order_service import create_app as create_order
from shipping_service.app import create_app as create_shipping


@pytest.fixture
def client(tmp_path):
    app = create_order({"TESTING": True, "POLL_INTERVAL": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"})
    return app.test_client()


@pytest.mark.parametrize("page", ["\u00b2", "\u0663", "9" * 5000])  # digits to str.isdigit, not to int()
@pytest.mark.parametrize("path", ["/", "/api/orders", "/feed/view"])
def test_a_page_number_of_other_digits_or_thousands_of_them_is_a_400_on_the_order_service(client, path, page):
    response = client.get(path, query_string={"page": page})
    assert response.status_code == 400
    assert b"page must be a positive integer" in response.data


@pytest.mark.parametrize("make", [create_invoicing, create_shipping])
def test_a_page_number_of_other_digits_is_a_400_on_the_consumers(tmp_path, make):
    consumer = make({"TESTING": True, "POLL_INTERVAL": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"})
    consumer.testing = False  # answer as in production instead of raising
    assert consumer.test_client().get("/", query_string={"page": "\u00b2"}).status_code == 400


def test_made_up_http_methods_share_one_metrics_label_instead_of_making_new_series(tmp_path, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "secret")  # sent by a client without credentials, too
    client = create_order({"TESTING": True, "POLL_INTERVAL": 0,
                           "DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"}).test_client()
    for n in range(3):
        client.open("/", method=f"RANDOM{n}X")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "RANDOM" not in metrics
    assert 'method="other"' in metrics


def test_a_feed_token_ending_in_a_newline_is_a_configuration_error(monkeypatch, tmp_path):
    # As read from a secret file; accepted, it was compared with the bearer value a client sends, never equal.
    monkeypatch.setenv("FEED_TOKEN", "s3cret\n")
    with pytest.raises(ConfigError, match="FEED_TOKEN"):
        create_order({"TESTING": True, "POLL_INTERVAL": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"})


@pytest.mark.parametrize("password", ["s3cret\n", "s3cret\r\n", "s3\tcret"])
def test_an_admin_password_with_a_control_character_is_a_configuration_error(monkeypatch, tmp_path, password):
    # As read from a secret file; accepted, no browser's or curl's Basic credentials could ever match it.
    monkeypatch.setenv("ADMIN_PASSWORD", password)
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD"):
        create_order({"TESTING": True, "POLL_INTERVAL": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"})


def test_an_admin_password_with_spaces_and_symbols_is_taken_as_it_is(monkeypatch, tmp_path):
    monkeypatch.setenv("ADMIN_PASSWORD", " pass word: ünï $\"' ")
    app = create_order({"TESTING": True, "POLL_INTERVAL": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"})
    assert app.test_client().get("/").status_code == 401
    assert app.test_client().get("/", auth=("admin", " pass word: ünï $\"' ")).status_code == 200


@pytest.mark.parametrize("variable", ["POLL_INTERVAL", "LONG_POLL_WAIT"])
@pytest.mark.parametrize("value", ["inf", "-inf", "1e999"])
def test_an_infinite_interval_is_a_configuration_error(monkeypatch, tmp_path, variable, value):
    # Accepted, POLL_INTERVAL=inf crashed the poller's start with an OverflowError outside the error handling.
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        create_invoicing({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'i.db'}"})


@pytest.mark.parametrize("url", ["ftp://example/feed", "orders.example/feed", "http://host:port/feed"])
def test_a_feed_url_that_is_not_http_is_a_configuration_error(monkeypatch, tmp_path, url):
    monkeypatch.setenv("ORDER_FEED_URL", url)
    with pytest.raises(ConfigError, match="ORDER_FEED_URL must be an http or https URL"):
        create_invoicing({"TESTING": True, "POLL_INTERVAL": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'i.db'}"})


def test_atomshop_up_gives_each_service_its_own_database_even_with_database_url_set(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'leftover.db'}")
    monkeypatch.setenv("ATOMSHOP_DATA_DIR", str(tmp_path / "data"))
    given: dict[str, str | None] = {}

    class Started(Exception):
        pass

    def start(cmd, env):
        given[cmd[2]] = env.get("DATABASE_URL")
        if len(given) == 3:
            raise Started
        return type("Proc", (), {"pid": 1, "returncode": None, "poll": lambda self: None})()

    monkeypatch.setattr(launcher, "start_service", start)
    with pytest.raises(Started):
        launcher.main(["up"])
    assert list(given.values()) == [None, None, None]  # each takes the SQLite file of its own in the data folder
    assert "DATABASE_URL is set but not used" in capsys.readouterr().err


@pytest.mark.parametrize("moment", ["2026-13-45T25:61:61Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z"])
def test_a_timestamp_the_pattern_takes_but_no_calendar_has_is_refused(moment):
    with pytest.raises(ValidationError, match="must be an RFC 3339 timestamp"):
        OrderCancelled.model_validate({"id": 1, "cancelled": moment})


def test_a_leap_second_is_a_timestamp_rfc_3339_allows():
    assert OrderCancelled.model_validate({"id": 1, "cancelled": "2016-12-31T23:59:60Z"}).cancelled.endswith("60Z")


def test_an_instance_starting_while_another_writes_the_secret_key_gets_that_same_whole_key(tmp_path, monkeypatch):
    import os
    import threading

    from common.service import config

    monkeypatch.setenv("ATOMSHOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    writing, go_on = threading.Event(), threading.Event()
    real_fdopen = os.fdopen

    class HeldWrite:  # the first instance's write of its key waits until the second instance has its key
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def write(self, text):
            writing.set()
            go_on.wait(10)
            return self.file.write(text)

    held = {"first": True}

    def fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        if threading.current_thread().name == "first" and held.pop("first", False):
            return HeldWrite(file)
        return file

    monkeypatch.setattr(config.os, "fdopen", fdopen)
    keys: dict[str, str] = {}
    first = threading.Thread(target=lambda: keys.update(first=config.secret_key("invoicing")), name="first")
    first.start()
    assert writing.wait(10)
    keys["second"] = config.secret_key("invoicing")  # while the first instance is still writing its key
    go_on.set()
    first.join(10)
    assert len(keys["second"]) == 64 and keys["first"] == keys["second"]
    assert config.secret_key("invoicing") == keys["second"]
    assert [p.name for p in tmp_path.iterdir()] == ["invoicing.secret"]  # no file left half-way


def test_an_empty_secret_key_file_is_refused_with_what_to_do(tmp_path, monkeypatch):
    from common.service import config

    monkeypatch.setenv("ATOMSHOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    (tmp_path / "order.secret").write_text("\n")
    with pytest.raises(config.ConfigError, match="order.secret is empty: delete it"):
        config.secret_key("order")
