"""Compare the installed distributions with a pip-tools lock file: `python -m tests.lockcheck requirements/test.txt`."""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """{package: version} pinned by a lock file."""
    return {canonical(name): version for name, version in _PIN.findall(path.read_text())}


def installed() -> dict[str, str]:
    """{package: version} of every distribution in this environment."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def differences(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    """Each locked package that is missing or installed at another version."""
    return [f"{name}: locked {version}, installed {have.get(name, 'nothing')}"
            for name, version in sorted(lock.items()) if have.get(name) != version]


def main(argv: list[str]) -> int:
    lock = locked(Path(argv[0]))
    problems = differences(lock, installed())
    for line in problems:
        print(line)
    print(f"{len(lock) - len(problems)} of {len(lock)} locked packages installed at exactly the locked version")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
