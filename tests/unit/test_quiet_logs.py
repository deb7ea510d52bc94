"""An idle service prints nothing at INFO: no scheduler runs, no 304 access lines, no Alembic chatter."""
from __future__ import annotations

import logging

from common.service.cli import quiet_idle_logs


def _access(code: str) -> logging.LogRecord:
    return logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '127.0.0.1 - - [x] "%s" %s %s',
                             ("GET /feed HTTP/1.1", code, "-"), None)


def test_304_access_lines_are_debug_and_others_stay_info(caplog):
    quiet_idle_logs()
    werkzeug_log = logging.getLogger("werkzeug")
    with caplog.at_level(logging.INFO):
        werkzeug_log.handle(_access("304"))
        werkzeug_log.handle(_access("200"))
        logging.getLogger("apscheduler.executors.default").info("Running job")
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    assert [r.getMessage().split('"')[2].strip() for r in caplog.records] == ["200 -"]


def test_304_access_lines_show_when_debug_is_asked_for(caplog):
    quiet_idle_logs()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("werkzeug").handle(_access("304"))
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
