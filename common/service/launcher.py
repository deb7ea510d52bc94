"""`atomshop up`: the whole system on one machine, each service its own process and SQLite file."""
from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

from common.service.config import data_dir

# (package, default port); each follower is told where the feeds it follows are.
SERVICES = [("order_service", 8081), ("invoicing_service", 8082), ("shipping_service", 8083)]
STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 30


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM if the launcher dies, even by SIGKILL, so nothing is orphaned.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _command(package: str, host: str, port: int) -> list[str] | None:
    """`python -m <package> --host H --port P`, or None when that service is not installed."""
    if importlib.util.find_spec(package) is None or importlib.util.find_spec(package + ".__main__") is None:
        return None
    return [sys.executable, "-m", package, "--host", host, "--port", str(port)]


def start_service(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start one service process that dies with the launcher."""
    return subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)


def _wait_listening(host: str, ports: list[int], procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    """Return once every port accepts connections, a service has exited, or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while waiting and time.monotonic() < deadline and all(p.poll() is None for p in procs.values()):
        try:
            with socket.create_connection((host, waiting[0]), timeout=0.5):
                waiting.pop(0)
        except OSError:
            time.sleep(0.1)


def describe_exit(package: str, returncode: int) -> str:
    """How a service ended, for people: "order_service was killed by SIGKILL", "… exited with status 3"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{package} was killed by {name}"
    return f"{package} exited with status {returncode}"


class Restarts:
    """When a service that died may start again: after 1 s, doubling per quick death, at most 30 s.

    A service that stayed up for RESET_AFTER seconds counts as healthy again: its next death waits 1 s.
    """

    FIRST, MAX, RESET_AFTER = 1.0, 30.0, 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.delay: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.due: dict[str, float] = {}

    def started_now(self, package: str) -> None:
        self.started[package] = self.clock()
        self.due.pop(package, None)

    def died(self, package: str) -> float:
        """Schedule a restart of `package`; returns the wait in seconds."""
        now = self.clock()
        if now - self.started.get(package, now) >= self.RESET_AFTER:
            self.delay.pop(package, None)
        wait = self.delay.get(package, self.FIRST)
        self.delay[package] = min(self.MAX, wait * 2)
        self.due[package] = now + wait
        return wait

    def ready(self) -> list[str]:
        """The services whose restart is due now."""
        now = self.clock()
        return [package for package, at in self.due.items() if at <= now]


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
    # One URL for three services would put their tables in one database, where their names clash (notifications,
    # feed_origin, the migrations' version table): each keeps the SQLite file of its own instead.
    if env.pop("DATABASE_URL", None):
        print("atomshop: DATABASE_URL is set but not used: `atomshop up` gives each service its own SQLite "
              f"database in {env['ATOMSHOP_DATA_DIR']} (start services one by one to give each its own URL)",
              file=sys.stderr, flush=True)
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
    commands = {package: cmd for package, _ in SERVICES
                if (cmd := _command(package, args.host, ports[package])) is not None}
    restarts = Restarts()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for package, cmd in commands.items():
        procs[package] = start_service(cmd, env)
        restarts.started_now(package)
    # The banner comes once every service listens, so their start-up lines do not push it away.
    _wait_listening(args.host, [ports[p] for p in procs], procs, READY_TIMEOUT_SECONDS)
    print(f"atomshop: data in {env['ATOMSHOP_DATA_DIR']}", flush=True)
    for package, proc in procs.items():
        print(f"  {package.replace('_', ' '):18} http://{args.host}:{ports[package]}/  (pid {proc.pid})", flush=True)
    print("A service that stops is started again (after 1 s, up to 30 s when it keeps failing); "
          "the others keep running.", flush=True)
    print("Ctrl-C stops all services.", flush=True)
    while not stopping:
        for package, proc in procs.items():
            if proc.returncode is None and (returncode := proc.poll()) is not None:
                wait = restarts.died(package)
                print(f"atomshop: {describe_exit(package, returncode)}; starting it again in {wait:g} s; "
                      "the others keep running", file=sys.stderr, flush=True)
        for package in restarts.ready():
            if stopping:
                break
            procs[package] = start_service(commands[package], env)
            restarts.started_now(package)
            print(f"atomshop: {package} started again (pid {procs[package].pid}) at "
                  f"http://{args.host}:{ports[package]}/", flush=True)
        time.sleep(0.2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_services(procs)
    print("atomshop: all services stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
