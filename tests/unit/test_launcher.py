"""`atomshop up`'s supervision rules: how an exit reads, and when a service that died starts again."""
from __future__ import annotations

import signal

from common.service.launcher import Restarts, describe_exit


def test_an_exit_by_signal_names_the_signal_and_a_plain_exit_its_status():
    assert describe_exit("order_service", -signal.SIGKILL) == "order_service was killed by SIGKILL"
    assert describe_exit("order_service", 3) == "order_service exited with status 3"


def test_restarts_back_off_while_a_service_keeps_dying_and_reset_once_it_stayed_up():
    now = [0.0]
    restarts = Restarts(clock=lambda: now[0])
    restarts.started_now("order")
    assert restarts.died("order") == 1.0
    assert restarts.ready() == []
    now[0] += 1.0
    assert restarts.ready() == ["order"]
    restarts.started_now("order")
    assert restarts.died("order") == 2.0 and restarts.died("order") == 4.0
    for _ in range(10):
        wait = restarts.died("order")
    assert wait == Restarts.MAX
    restarts.started_now("order")
    now[0] += Restarts.RESET_AFTER
    assert restarts.died("order") == 1.0
