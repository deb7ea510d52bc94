"""Helpers for tests that run real processes and servers on loopback."""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, and one no other pytest-xdist worker of this run is given.

    The port is handed to a server that binds it a moment later. Two workers asking at once could otherwise be
    given the same port: one server then fails to bind while its readiness check is answered by the other
    worker's server on that port. So each worker takes only its share of the ports: those whose half (Linux hands
    out odd ports to bind(0), keeping even ones for connect()) equals its number modulo the count of workers.
    """
    worker, workers = _xdist_worker()
    for _ in range(1000):  # the kernel picks each port at random: about `workers` tries
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port // 2 % workers == worker:
            return port
    raise RuntimeError(f"no free port for pytest-xdist worker {worker} of {workers}")


def _xdist_worker() -> tuple[int, int]:
    """(this worker's number, how many workers) under pytest-xdist; (0, 1) without it."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", …
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return (int(name[2:]), count) if name.startswith("gw") and count > 1 else (0, 1)


def require_binary(name: str, *candidates: str) -> str:
    """Path of a server binary; fail under CI=true, skip with a reason elsewhere."""
    for candidate in (name, *candidates):
        executable = os.path.isabs(candidate) and os.access(candidate, os.X_OK)
        found = shutil.which(candidate) or (candidate if executable else None)
        if found:
            return found
    message = (f"{name} is not installed "
               f"(CI installs it in .ci/run; locally: apt-get install -y the package providing {name})")
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll predicate until it returns a truthy value, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Managed:
    """A server as a context manager: started on enter (stopped again if the start fails), stopped on exit."""

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class ManagedProcess(Managed):
    """A server subprocess in its own process group, its output in a log file, stopped on exit."""

    name = "server"
    log_path: Path
    proc: subprocess.Popen | None = None

    def _spawn(self, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                         start_new_session=True)
        atexit.register(self.kill)

    def _wait_answering(self, url: str, timeout: float = 30.0) -> None:
        def answering():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_until(answering, timeout, message=f"{self.name} to answer {url}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Ask the process group to stop, SIGKILL it if it takes longer than timeout."""
        self.ask_to_stop(sig)
        self.wait_stopped(timeout)

    def ask_to_stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to the process group, without waiting (see stop_all)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def wait_stopped(self, timeout: float = 15.0) -> None:
        """Wait for the process to end after ask_to_stop, SIGKILL it if it takes longer than timeout."""
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no clean-up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def stop_all(processes, timeout: float = 15.0) -> None:
    """Stop processes together: each is asked once, then waited for, so their graceful stops overlap (a system
    of seven gunicorns stopped one after another took 20 s). For processes whose stop() is ManagedProcess's."""
    processes = [p for p in processes if p is not None]
    for process in processes:
        process.ask_to_stop()
    for process in processes:
        try:
            process.wait_stopped(timeout)
        except Exception:  # noqa: BLE001 - stopping is best effort at the end of a test
            process.kill()


class ServiceProcess(ManagedProcess):
    """One atomshop service run as `python -m <package> --port P`, the way users run it."""

    def __init__(self, package: str, workdir: Path, env: dict[str, str] | None = None, port: int | None = None,
                 name: str | None = None):
        self.package = package
        self.name = name or package
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "ATOMSHOP_DATA_DIR": str(self.workdir / "data"), "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.log_path = self.workdir / f"{self.name}-{self.port}.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServiceProcess:
        """Start the process and wait until /health answers 200."""
        self.starts += 1
        self._spawn([sys.executable, "-m", self.package, "--host", "127.0.0.1", "--port", str(self.port)],
                    cwd=self.workdir, env=self.env)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        self._wait_answering(self.url + "/health", timeout)

    def restart(self) -> ServiceProcess:
        self.stop()
        return self.start()


@contextmanager
def three_services(workdir: Path, poll_intervals: dict[str, str], feed_page_size: int,
                   follow_every_feed: bool = True):
    """Order, invoicing and shipping as `python -m` processes on free ports, each knowing where the other two are
    (their feeds and UIs); yields {name: base URL}. `poll_intervals` names each service's POLL_INTERVAL."""
    ports = {name: free_port() for name in ("order", "invoicing", "shipping")}
    feeds = ports if follow_every_feed else {"order": ports["order"]}
    env = {"DATABASE_URL": "", "SECRET_KEY": "", "FEED_PAGE_SIZE": str(feed_page_size),
           **{f"{name.upper()}_FEED_URL": f"http://127.0.0.1:{port}/feed" for name, port in feeds.items()},
           **{f"{name.upper()}_SERVICE_URL": f"http://127.0.0.1:{port}/" for name, port in ports.items()}}
    services = {name: ServiceProcess(f"{name}_service", workdir / name, port=port,
                                     env={**env, "POLL_INTERVAL": poll_intervals[name]})
                for name, port in ports.items()}
    try:
        for service in services.values():
            service.start()
        yield {name: service.url for name, service in services.items()}
    finally:
        for service in services.values():
            service.stop()


@contextmanager
def atomshop_up(workdir: Path, ports: dict[str, int], env: dict[str, str], log_name: str = "up.log"):
    """`atomshop up` (the launcher) on the given ports with `env` on top of a clean environment, until its banner;
    yields (process, path of its output); stops it with Ctrl-C (SIGINT) as a person would."""
    clean = {k: v for k, v in os.environ.items() if k not in ("ORDER_FEED_URL", "DATABASE_URL", "POLL_INTERVAL")}
    cmd = [sys.executable, "-m", "common.service.launcher", "up"] + \
        [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    log_path = workdir / log_name
    with open(log_path, "w") as log:
        up = subprocess.Popen(cmd, env={**clean, "ATOMSHOP_DATA_DIR": str(workdir / "data"), **env}, stdout=log,
                              stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_until(lambda: "Ctrl-C stops all services" in log_path.read_text(), 60, message="atomshop up's banner")
        yield up, log_path
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
