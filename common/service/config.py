"""Configuration from the environment, shared by every service (see CONTRACT.md)."""
from __future__ import annotations

import math
import os
import secrets
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
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: when several instances start at once, the first writer wins and the rest read its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def base_config(service: str) -> dict[str, Any]:
    """Settings every service reads from the environment."""
    return {
        "SERVICE_NAME": service,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_database_url(service),
        "SECRET_KEY": secret_key(service),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }
