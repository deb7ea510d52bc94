"""`atomshop up`: the whole system on one machine, each service its own process and SQLite file."""
from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from common.service.config import data_dir

# (package, default port); each follower is told where the feeds it follows are.
SERVICES = [("order_service", 8081), ("invoicing_service", 8082), ("shipping_service", 8083)]
STOP_GRACE_SECONDS = 10


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM if the launcher dies, even by SIGKILL, so nothing is orphaned.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_services(host: str, ports: dict[str, int], env: dict[str, str]) -> dict[str, subprocess.Popen[bytes]]:
    """Start each installed service as `python -m <package>` and return the processes."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for package, _ in SERVICES:
        if importlib.util.find_spec(package) is None or importlib.util.find_spec(package + ".__main__") is None:
            continue
        cmd = [sys.executable, "-m", package, "--host", host, "--port", str(ports[package])]
        procs[package] = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)
    return procs


def stop_services(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every service, then SIGKILL what is still running after the grace period."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `atomshop` command."""
    parser = argparse.ArgumentParser(prog="atomshop", description="Run the atomshop system.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the three services on this machine (Ctrl-C stops them)")
    up.add_argument("--host", default="127.0.0.1")
    for package, port in SERVICES:
        flag = "--" + package.split("_")[0] + "-port"
        up.add_argument(flag, type=int, default=port, dest=package, help=f"default {port}")
    args = parser.parse_args(argv)

    ports = {package: getattr(args, package) for package, _ in SERVICES}
    env = dict(os.environ)
    env["ATOMSHOP_DATA_DIR"] = str(data_dir())
    # Each follower is told where the feeds it follows are: invoicing and shipping the order feed, the order
    # service the invoicing and shipping feeds.
    for variable, package in (("ORDER_FEED_URL", "order_service"), ("INVOICING_FEED_URL", "invoicing_service"),
                              ("SHIPPING_FEED_URL", "shipping_service")):
        env.setdefault(variable, f"http://{args.host}:{ports[package]}/feed")
    for package, _ in SERVICES:  # the pages' navigation between the services (common/web.py)
        env.setdefault(package.split("_")[0].upper() + "_SERVICE_URL", f"http://{args.host}:{ports[package]}/")
    env.setdefault("PYTHONUNBUFFERED", "1")

    stopping = False

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    procs = start_services(args.host, ports, env)
    print(f"atomshop: data in {env['ATOMSHOP_DATA_DIR']}", flush=True)
    for package, proc in procs.items():
        print(f"  {package.replace('_', ' '):18} http://{args.host}:{ports[package]}/  (pid {proc.pid})", flush=True)
    print("Ctrl-C stops all services.", flush=True)
    rc = 0
    while not stopping:
        for package, proc in procs.items():
            if proc.poll() is not None:
                print(f"atomshop: {package} exited with status {proc.returncode}; stopping the others", file=sys.stderr)
                stopping, rc = True, 1
                break
        time.sleep(0.2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_services(procs)
    print("atomshop: all services stopped.", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
