"""The suite's free_port (tests/support.py): pytest-xdist workers never share a port."""
from __future__ import annotations

import pytest

from tests.support import free_port


@pytest.mark.parametrize("worker, workers", [(0, 2), (1, 2), (2, 3)])
def test_each_xdist_worker_is_given_only_ports_of_its_own_share(monkeypatch, worker, workers):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))

    ports = {free_port() for _ in range(30)}

    assert {port // 2 % workers for port in ports} == {worker}


def test_without_xdist_any_free_port_will_do(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)

    assert len({free_port() // 2 % 3 for _ in range(60)}) > 1
