"""Configuration from the environment, shared by every service (see CONTRACT.md)."""
from __future__ import annotations

import contextlib
import math
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot use."""


def data_dir() -> Path:
    """Folder for the embedded SQLite files and per-install secrets (ATOMSHOP_DATA_DIR, default ./data)."""
    return Path(os.environ.get("ATOMSHOP_DATA_DIR", "data")).resolve()


def default_database_url(service: str) -> str:
    """The service's own SQLite file in the data folder."""
    return f"sqlite:///{data_dir() / (service + '.db')}"


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    """Read a float variable, failing with a message that names it."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also rejects NaN
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    if math.isinf(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """Read an integer variable, failing with a message that names it."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def secret_key(service: str) -> str:
    """SECRET_KEY from the environment, else a random key kept in the data folder (one per install)."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = data_dir() / f"{service}.secret"
    key = _stored_key(path)
    if key is not None:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a name of its own, then linked into place: instances starting at once see no key or all
    # of it (a file created first and written after was once read empty: the app then had no secret key), and the
    # first link wins, the others reading its key.
    fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{service}.secret.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(written, path)
    finally:
        os.unlink(written)
    key = _stored_key(path)
    if key is None:
        raise ConfigError(f"{path} could not be created")
    return key


def _stored_key(path: Path) -> str | None:
    """The key kept at `path`, None when there is none; ConfigError when the file is empty."""
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not key:
        raise ConfigError(f"{path} is empty: delete it to have a new key made at the next start, or set SECRET_KEY")
    return key


def base_config(service: str) -> dict[str, Any]:
    """Settings every service reads from the environment."""
    return {
        "SERVICE_NAME": service,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_database_url(service),
        "SECRET_KEY": secret_key(service),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }
