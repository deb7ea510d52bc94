"""SIGTERM starts the app's shutdown hooks without running them inside the signal handler.

Python runs a handler in the main thread between two of its bytecodes. A hook run there that takes a lock the main
thread already holds (a sync worker's request, or the same handler interrupted by a second SIGTERM, as gunicorn's
arbiter sends one after the one sent to the whole process group) would wait for it forever: the worker then hung
until gunicorn's graceful_timeout killed it.
"""
from __future__ import annotations

import os
import signal
import threading

import pytest
from flask import Flask

from common.service.cli import SHUTDOWN_KEY, on_sigterm


@pytest.fixture
def restore_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def app_with_hook(hook) -> Flask:
    app = Flask(__name__)
    app.extensions[SHUTDOWN_KEY] = [hook]
    return app


def test_a_sigterm_while_the_main_thread_holds_a_lock_a_hook_takes_runs_the_hook_once_the_lock_is_free(
        restore_sigterm):
    lock = threading.Lock()
    took_the_lock = threading.Event()
    handled = threading.Event()

    def hook():
        if lock.acquire(timeout=5):
            took_the_lock.set()
            lock.release()

    on_sigterm(app_with_hook(hook), then=lambda signum, frame: handled.set())
    with lock:
        os.kill(os.getpid(), signal.SIGTERM)
        assert handled.wait(5), "the handler never ran"
    assert took_the_lock.wait(10), "the hook could not take the lock the interrupted main thread held"


def test_a_sigterm_runs_every_hook_then_what_it_is_given_and_calls_the_next_handler(restore_sigterm):
    ran: list[str] = []
    done = threading.Event()
    on_sigterm(app_with_hook(lambda: ran.append("hook")), then=lambda signum, frame: ran.append(f"then {signum}"),
               also=[lambda: ran.append("also"), done.set])
    os.kill(os.getpid(), signal.SIGTERM)
    assert done.wait(5)
    assert sorted(ran) == sorted(["hook", "also", f"then {int(signal.SIGTERM)}"])
    assert ran.index("hook") < ran.index("also")
