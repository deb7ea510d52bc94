"""The documents stay true: docs/contract.md holds the whole contract; README's commands are all accounted for
(tests/e2e/test_readme_commands.py runs them)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import IN_CI

ROOT = Path(__file__).resolve().parents[2]
SHARED_CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"
# Commands of README's shell blocks that this test does not run, and why.
NOT_RUN = {
    "make run": "it is `atomshop up`, which this test runs itself",
    "make test": "it runs the whole suite, this test included",
    "docker compose up": "docker is not available to the suite; tests/integration/test_compose_file.py checks the file",
}


def _contract_terms(text: str) -> set[str]:
    """Every route ("GET /feed") and environment variable ("POLL_INTERVAL") the contract names in backticks."""
    terms = set(re.findall(r"`((?:GET|POST|PUT|DELETE) /[^`\s]*)", text))
    terms |= set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", text))
    return terms


def test_docs_contract_holds_every_route_and_variable_of_the_shared_contract():
    if not SHARED_CONTRACT.exists():
        message = f"{SHARED_CONTRACT} is not there (it sits next to the worktrees, not in a clone)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    shared = SHARED_CONTRACT.read_text()
    ours = (ROOT / "docs" / "contract.md").read_text()
    missing = sorted(t for t in _contract_terms(shared) if t not in ours)
    assert not missing, f"docs/contract.md lacks: {missing}"
    assert ours.startswith(shared.rstrip()), "docs/contract.md no longer begins with the shared contract as given"


def test_readme_links_the_contract_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "../shared/" not in readme and "(docs/contract.md)" in readme


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, re.S)


def test_every_readme_shell_command_is_either_run_here_or_listed_with_a_reason():
    for block in shell_blocks((ROOT / "README.md").read_text()):
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if command and not command.startswith(("curl", "etag=", "export", "atomshop up")) and \
                    not command.startswith(tuple(NOT_RUN)) and not line.startswith(" "):
                pytest.fail(f"README command neither run by tests/e2e/test_readme_commands.py nor in NOT_RUN: {line}")
