"""deploy/nginx/atomshop.conf.template renders to a configuration nginx accepts."""
from __future__ import annotations

import pytest

from tests.servers import NGINX_TEMPLATE, NginxServer, render_template


def test_the_rendered_template_passes_nginx_t():
    server = NginxServer(order="127.0.0.1:8081", invoicing="127.0.0.1:8082", shipping="127.0.0.1:8083")
    try:
        assert "test is successful" in server.check_config()
    finally:
        server.stop()


def test_rendering_fails_when_a_placeholder_has_no_value():
    with pytest.raises(KeyError, match="ORDER_UPSTREAM"):
        render_template(NGINX_TEMPLATE.read_text(), {})


def location_block(config: str, name: str) -> str:
    """The body of `location <name> { … }` in `config` (nested braces included)."""
    start = config.index("{", config.index(f"location {name}")) + 1
    depth, end = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(config[end], 0)
        end += 1
    return config[start:end - 1]


def test_archive_pages_wait_for_a_cache_lock_less_than_the_half_second_nginx_waits_between_looks():
    # Followers woken by the same append all walk back to the page that just filled: with the feed location's 5 s
    # lock timeout, nginx looks at the lock again only after 500 ms, so every follower but one waited that long.
    config = render_template(NGINX_TEMPLATE.read_text(), {
        "ORDER_UPSTREAM": "127.0.0.1:1", "INVOICING_UPSTREAM": "127.0.0.1:2", "SHIPPING_UPSTREAM": "127.0.0.1:3",
        "NGINX_PORT": "8080", "NGINX_CACHE_DIR": "/tmp/cache", "ATOMSHOP_HOME": "/tmp", "FEED_TOKEN": "",
        "NGINX_FEED_LOG": "/tmp/feed.log"})
    feed = location_block(config, "~ ^/(?<feed_service>")
    assert "return 419;" in feed and "error_page 419 = @feed_archive;" in feed
    archive = location_block(config, "@feed_archive")
    assert "proxy_cache atomshop_feed;" in archive and "proxy_cache_lock on;" in archive
    timeout = archive.split("proxy_cache_lock_timeout", 1)[1].split(";", 1)[0].strip()
    assert timeout.endswith("ms") and int(timeout[:-2]) < 500, timeout
