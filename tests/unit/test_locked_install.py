"""The environment the suite runs in holds exactly the versions the lock file pins."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.lockcheck import differences, installed, locked

LOCK = Path(__file__).resolve().parents[2] / "requirements" / "test.txt"


def test_the_lock_check_notices_a_package_at_another_version():
    assert differences({"flask": "3.0.0"}, {"flask": "3.1.0"}) == ["flask: locked 3.0.0, installed 3.1.0"]
    assert differences({"flask": "3.0.0"}, {}) == ["flask: locked 3.0.0, installed nothing"]


def test_every_locked_package_is_installed_at_its_locked_version():
    if not os.environ.get("CI") and not Path(sys.prefix, ".installed-test").exists():
        pytest.skip("not installed by `make test` from the lock (CI checks it)")
    assert differences(locked(LOCK), installed()) == []
