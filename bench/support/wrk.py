"""Running wrk (-t2 -c32, as issue 12 measures) and reading its figures."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    p99_ms: float
    errors: int  # socket errors plus answers outside 2xx/3xx


def wrk(url: str, lua: str = "", seconds: float = 3.0, threads: int = 2, connections: int = 32) -> Run:
    """One wrk run against `url` with an optional Lua script."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        done = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                               "--timeout", "10s", "--latency", "-s", script.name, url], capture_output=True, text=True)
    finally:
        Path(script.name).unlink()
    if done.returncode != 0:
        print(f"  wrk {url} failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        return Run(0.0, float("nan"), 1)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)] if p99 else float("nan")
    # wrk's "timeout" only means slower than --timeout: the rate shows it; refused or cut connections are errors.
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write) (\d+)", out))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(rate, p99_ms, errors + (int(bad.group(1)) if bad else 0))


def header_script(headers: dict[str, str]) -> str:
    return "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())


def post_script(body: str) -> str:
    return 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' \
           f"wrk.body = [[{body}]]\n"


def random_paths_script(paths: list[str]) -> str:
    listed = ", ".join(f'"{p}"' for p in paths)
    return ("local paths = {" + listed + "}\n"
            "local seeded = false\n"
            "request = function()\n"
            "  if not seeded then math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)); seeded = true end\n"
            "  return wrk.format('GET', paths[math.random(#paths)])\n"
            "end\n")
