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
