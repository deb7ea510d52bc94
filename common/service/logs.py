"""How every atomshop process logs: short lines for people, or one JSON object per line (LOG_FORMAT=json).

The one place logging is set up (`serve` for `python -m <service>` and `atomshop up`, deploy/gunicorn.conf.py under
gunicorn). Every record carries the service's name; records logged with `extra=` carry their context too (`feed`,
`consumer`, `position`, `order_id`, `entry_id`), which the JSON lines show as fields of their own.
"""
from __future__ import annotations

import logging
import os

from pythonjsonlogger.json import JsonFormatter

from common.service.config import ConfigError

FORMATS = ("text", "json")
_service = {"name": "-"}


def set_service(name: str) -> None:
    """Name the service this process runs, for every record it logs from now on."""
    _service["name"] = name


class ServiceField(logging.Filter):
    """Adds `service` to every record that has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "service"):
            record.service = _service["name"]
        return True


def log_format() -> str:
    """LOG_FORMAT: "text" (the default) or "json"."""
    value = (os.environ.get("LOG_FORMAT") or "text").strip().lower()
    if value not in FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def formatter(prog: str | None = None) -> logging.Formatter:
    """The formatter LOG_FORMAT asks for; `prog` names the process in text lines before its app names it."""
    if log_format() == "json":
        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(service)s %(message)s",
                             rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    name = f"{prog} " if prog else ""
    return logging.Formatter(f"%(asctime)s {name}%(levelname)s %(name)s: %(message)s", "%H:%M:%S")


def configure_logging(prog: str | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send every logger's records to stderr in LOG_FORMAT, replacing whatever handlers the root logger had."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(prog))
    handler.addFilter(ServiceField())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler


def restyle(logger: logging.Logger, prog: str | None = None) -> None:
    """Give the handlers of a logger that does not propagate (gunicorn's own) the same format and fields."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(prog))
        handler.addFilter(ServiceField())
