"""FEED_TOKEN and ADMIN_PASSWORD through the nginx front door (deploy/nginx/atomshop.conf.template), in front of
the real services under gunicorn on PostgreSQL: the cache serves archive pages only to requests with the token."""
from __future__ import annotations

import requests
from requests.auth import HTTPBasicAuth

from tests.integration.test_nginx_front_door import ADDRESS, PAGE_SIZE
from tests.servers import GunicornServices
from tests.support import wait_until

TOKEN = "door-token-5f0c2a9e"
PASSWORD = "front door password"
ADMIN = HTTPBasicAuth("admin", PASSWORD)
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_the_door_serves_cached_archives_only_with_the_token_and_the_consumers_follow_with_it(postgres, tmp_path):
    secrets = {"FEED_TOKEN": TOKEN, "ADMIN_PASSWORD": PASSWORD}
    with GunicornServices(postgres, tmp_path, order_instances=1, poll_interval=0.5, page_size=PAGE_SIZE,
                          secrets=secrets) as services, services.front_door() as door:
        order = door.url + "/order"
        assert requests.post(order + "/api/orders", json={}, timeout=10).status_code == 401
        customer = requests.get(order + "/api/customers", auth=ADMIN, timeout=10).json()[0]
        item = requests.get(order + "/api/items", auth=ADMIN, timeout=10).json()[0]
        for _ in range(PAGE_SIZE + 1):  # page 1 becomes an archive
            placed = requests.post(order + "/api/orders", auth=ADMIN, timeout=10, json={
                "customer_id": customer["id"], "shipping_address": ADDRESS, "billing_address": ADDRESS,
                "lines": [{"item_id": item["id"], "quantity": 1}]})
            assert placed.status_code == 201, placed.text

        archive = order + "/feed/pages/1"
        first = requests.get(archive, headers=BEARER, timeout=10)
        second = requests.get(archive, headers=BEARER, timeout=10)
        assert first.status_code == second.status_code == 200 and b"<entry" in second.content
        assert second.headers["X-Cache-Status"] == "HIT"  # the cache still absorbs the pollers

        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN.upper()}"},
                        {"Authorization": f"bearer  {TOKEN}x"},
                        {"Authorization": f"Basic {TOKEN}"}):
            for url in (archive, order + "/feed"):
                refused = requests.get(url, headers=headers, timeout=10)
                assert refused.status_code == 401, (url, headers)
                assert refused.headers["WWW-Authenticate"].startswith("Bearer")
                assert refused.headers["Content-Type"] == "application/json" and "error" in refused.json()
                assert b"<entry" not in refused.content  # never the cached bytes

        # Authorization passes through to the services: documents by token, pages and the API by password.
        assert requests.get(order + "/api/orders/1", headers=BEARER, timeout=10).json()["id"] == 1
        assert requests.get(order + "/api/orders/1", timeout=10).status_code == 401
        assert requests.get(order + "/", timeout=10).status_code == 401
        assert requests.get(order + "/", auth=ADMIN, timeout=10).status_code == 200
        assert requests.get(order + "/feed/view", auth=ADMIN, timeout=10).status_code == 200
        assert requests.get(door.url + "/health", timeout=10).status_code == 200
        assert requests.get(order + "/health", timeout=10).status_code == 200

        # The consumers read the order feed through the door with the token.
        for name, plural in (("invoicing", "invoices"), ("shipping", "shipments")):
            url = f"{door.url}/{name}/api/{plural}"
            wait_until(lambda url=url: len(requests.get(url, auth=ADMIN, timeout=5).json()) == PAGE_SIZE + 1,
                       30, message=f"{name} to follow the feed with the token")
            assert requests.get(url, timeout=5).status_code == 401
