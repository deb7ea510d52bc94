"""POST /poll ends a held long poll rather than waiting it out, even one that begins while it waits
(common/service/following.py `_poll_cutting_long_polls`)."""
from __future__ import annotations

import time

import pytest

from common.feeds.follow.passgate import PassRunning
from common.service.following import _poll_cutting_long_polls


class Client:
    def __init__(self):
        self.cuts = 0

    def cut_long_polls(self):
        self.cuts += 1


class Follower:
    """A follower whose pass in progress ends after `busy` calls (each waits as long as it is allowed to)."""

    def __init__(self, busy: int):
        self.client, self.busy, self.waits = Client(), busy, []

    def poll(self, wait=None):
        self.waits.append(wait)
        if len(self.waits) <= self.busy:
            time.sleep(wait)
            raise PassRunning("a pass is running")
        return 3


def test_while_it_waits_for_the_pass_in_progress_it_cuts_long_polls_again_and_again():
    follower = Follower(busy=3)

    assert _poll_cutting_long_polls(follower, time.monotonic() + 30) == 3

    assert follower.client.cuts == 4, "a cut before each wait: a long poll begun meanwhile is cut too"
    assert all(wait <= 0.1 for wait in follower.waits)


def test_when_its_time_is_up_it_says_the_pass_is_still_running():
    follower = Follower(busy=1000)

    with pytest.raises(PassRunning):
        _poll_cutting_long_polls(follower, time.monotonic() + 0.35)

    assert follower.client.cuts == len(follower.waits) and all(wait <= 0.1 for wait in follower.waits)
