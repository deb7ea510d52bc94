"""README's commands, run as written against a real `atomshop up` (its ports swapped for free ones)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import requests

from tests.support import atomshop_up, free_port, wait_until
from tests.unit.test_docs import ROOT, shell_blocks

DEFAULT_PORTS = {"order": 8081, "invoicing": 8082, "shipping": 8083}


def test_readme_try_it_commands_work_as_written_against_atomshop_up(tmp_path):
    """Each `curl` block of README runs in bash against `atomshop up`, its ports swapped for free ones."""
    blocks = [b for b in shell_blocks((ROOT / "README.md").read_text()) if "curl" in b]
    assert blocks, "README has no curl examples any more"
    ports = {name: free_port() for name in DEFAULT_PORTS}
    env = {k: v for k, v in os.environ.items() if k not in ("ORDER_FEED_URL", "DATABASE_URL", "POLL_INTERVAL")}
    env["ATOMSHOP_DATA_DIR"] = str(tmp_path / "data")
    with atomshop_up(tmp_path, ports, {}):
        for name, port in ports.items():
            wait_until(lambda port=port: requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok, 30,
                       message=f"{name} to be healthy")
        outputs = []
        for block in blocks:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", _runnable(block, ports, tmp_path)],
                                    capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_shell_env(env))
            assert result.returncode == 0, f"README block failed:\n{block}\n{result.stderr}"
            outputs.append(result.stdout)
        text = "\n".join(outputs)
        # What the README says each command shows.
        assert "HTTP/1.1 304" in text, "the conditional GET did not answer 304"
        assert "Preference-Applied: wait=5" in text, "the long poll was not held"
        assert "HTTP/1.1 201" in text and "Location: /api/orders/1" in text
        assert re.search(r'Link: <http://127\.0\.0\.1:\d+/api/orders\?page=1>; rel="first"', text)
        assert '"processed":' in text and '"problem":null' in text
        assert '"order_id":1' in text and '"number":"INV-' in text
        secured = [out for block, out in zip(blocks, outputs, strict=True) if "ADMIN_PASSWORD=" in block]
        for out in secured:  # README's Security block: the token opened the feed, the password the API
            assert "<feed" in out and '"first_name":"Ada"' in out, out[:500]


def _shell_env(env: dict[str, str]) -> dict[str, str]:
    """The environment a reader has after `make run`'s install: the venv's commands (atomshop, …) on PATH."""
    return {**env, "PATH": f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"}


def _runnable(block: str, ports: dict[str, int], tmp_path) -> str:
    """The block with its ports swapped. A block that starts `atomshop up` itself (README's Security section)
    gets its own free ports; its `atomshop up` runs in the background until the block ends."""
    if not any(line.startswith("atomshop up") for line in block.splitlines()):
        own, start = ports, ""
    else:
        own = {name: free_port() for name in DEFAULT_PORTS}
        flags = " ".join(f"--{name}-port {port}" for name, port in own.items())
        health = " && ".join(f"curl -sf -o /dev/null http://127.0.0.1:{port}/health" for port in own.values())
        start = (f"atomshop up {flags} > {tmp_path}/up-block.log 2>&1 & up=$!; "
                 "trap 'kill -INT $up; wait $up || true' EXIT; "
                 f"for i in $(seq 200); do if {health}; then break; fi; sleep 0.3; done")
    lines = [start if line.startswith("atomshop up") else line for line in block.splitlines()]
    script = "\n".join(lines)
    for name, default in DEFAULT_PORTS.items():
        script = script.replace(f"127.0.0.1:{default}", f"127.0.0.1:{own[name]}")
    return script
