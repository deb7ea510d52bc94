"""Throwaway real servers for the integration tests: a PostgreSQL cluster, nginx with the repo's config, gunicorn."""
from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from tests.support import IN_CI, Managed, ManagedProcess, free_port, require_binary, stop_all

REPO = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = REPO / "deploy" / "nginx" / "atomshop.conf.template"
NGINX_HOME = REPO / "deploy" / "nginx" / "home"
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
# What the official nginx image's envsubst step would replace: ${UPPER_CASE} names only, never nginx's $lower vars.
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def _run_as(user: str | None, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    if user:
        cmd = [require_binary("runuser"), "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def _pg_binary(name: str) -> str:
    # Debian keeps the server binaries off PATH, one folder per major version: take the newest.
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return require_binary(name, *reversed(found))


class PostgresServer(Managed):
    """A PostgreSQL cluster in a temp folder on a free loopback port; `create_database()` hands out URLs."""

    def __init__(self):
        self.initdb = _pg_binary("initdb")
        self.pg_ctl = _pg_binary("pg_ctl")
        # The server refuses to run as root: run it as the postgres user, who must own the folder.
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="atomshop-pg-"))  # short: the socket path has a length limit
        self.data = self.dir / "data"
        self.port = 0
        self._names = itertools.count(1)
        self._started = False

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        """SQLAlchemy URL of a database of this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """initdb, then start the server and wait until it accepts connections."""
        atexit.register(self.stop)  # also when the session dies without running fixture finalizers
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        _run_as(self.user, [self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                            "--no-locale", "--no-sync"], cwd=self.dir)
        for _attempt in range(3):  # another process may grab the free port between choosing and binding it
            self.port = free_port()
            options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
            try:
                _run_as(self.user, [self.pg_ctl, "-D", str(self.data), "-l", str(self.dir / "server.log"),
                                    "-o", options, "-w", "-t", "60", "start"], cwd=self.dir)
                self._started = True
                return self
            except subprocess.CalledProcessError:
                continue
        raise AssertionError(f"PostgreSQL did not start:\n{self.log()}")

    def pause(self) -> None:
        """Stop the server (fast shutdown: connections dropped), keeping its data and port for resume()."""
        _run_as(self.user, [self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"], cwd=self.dir)

    def resume(self) -> None:
        """Start a paused server again on the same port."""
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        _run_as(self.user, [self.pg_ctl, "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options,
                            "-w", "-t", "60", "start"], cwd=self.dir)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name unless given) and return its SQLAlchemy URL."""
        import psycopg

        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server at once and delete the cluster."""
        if self._started:
            self._started = False
            try:
                _run_as(self.user, [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                        cwd=self.dir)
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)



def render_template(text: str, values: dict[str, str]) -> str:
    """Fill ${NAME} placeholders like envsubst does; a placeholder without a value is an error."""
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise KeyError(f"no value for nginx template placeholders {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _servers(addresses: str | list[str]) -> str:
    # The template says `server ${X_UPSTREAM};`. Several instances (compose resolves a scaled service's name to
    # all of them) become several server lines: "a:1; server b:2".
    return addresses if isinstance(addresses, str) else "; server ".join(addresses)


class NginxServer(ManagedProcess):
    """nginx running the repo's front-door config, rendered for loopback upstreams, in a temp prefix."""

    name = "nginx"

    def __init__(self, order: str | list[str], invoicing: str | list[str] | None = None,
                 shipping: str | list[str] | None = None, port: int | None = None, feed_token: str = "",
                 feed_log: str | None = None):
        self.binary = require_binary("nginx", "/usr/sbin/nginx")
        self.port = port or free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="atomshop-nginx-"))
        atexit.register(shutil.rmtree, self.prefix, True)  # even if start() is never reached
        self.log_path = self.prefix / "logs" / "nginx.out"
        # Where the feed's JSON access lines go: a file here, `syslog:server=…` for the cache exporter.
        self.feed_log = feed_log or str(self.prefix / "logs" / "feed.log")
        # An upstream that is not running yet answers 502, which is what nginx does in production too.
        self.upstreams = {"ORDER_UPSTREAM": _servers(order),
                          "INVOICING_UPSTREAM": _servers(invoicing or f"127.0.0.1:{free_port()}"),
                          "SHIPPING_UPSTREAM": _servers(shipping or f"127.0.0.1:{free_port()}")}
        self.feed_token = feed_token  # "" leaves the feed open at the door

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.log"

    def write_config(self) -> Path:
        """Render the template into <prefix>/atomshop.conf and wrap it in a main config using the prefix."""
        for sub in ("logs", "cache", "temp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        site = render_template(NGINX_TEMPLATE.read_text(), {
            **self.upstreams, "NGINX_PORT": f"127.0.0.1:{self.port}", "NGINX_CACHE_DIR": str(self.prefix / "cache"),
            "ATOMSHOP_HOME": str(NGINX_HOME), "FEED_TOKEN": self.feed_token, "NGINX_FEED_LOG": self.feed_log})
        (self.prefix / "atomshop.conf").write_text(site)
        # Run as root, the master would hand the workers to `nobody`, who cannot use this private temp prefix.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        main = f"""{user}worker_processes 1;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 2048; }}
http {{
    types {{ text/html html; text/css css; }}
    default_type application/octet-stream;
    log_format cache '$request_method $request_uri $status cache=$upstream_cache_status upstream=$upstream_addr';
    access_log logs/access.log cache;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include atomshop.conf;
}}
"""
        path = self.prefix / "nginx.conf"
        path.write_text(main)
        return path

    def check_config(self) -> str:
        """`nginx -t` on the rendered config; returns its output, raises if the config is invalid."""
        conf = self.write_config()
        result = subprocess.run([self.binary, "-p", str(self.prefix), "-c", str(conf), "-t"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"nginx -t failed:\n{result.stderr}")
        return result.stderr

    def start(self) -> NginxServer:
        conf = self.write_config()
        self._spawn([self.binary, "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"], cwd=self.prefix)
        self._wait_answering(self.url + "/health")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Fast stop (SIGTERM: open connections are closed, where SIGQUIT would wait out every held long poll
        the services keep open through it), then delete the prefix."""
        super().stop(sig, timeout)
        shutil.rmtree(self.prefix, ignore_errors=True)


class GunicornProcess(ManagedProcess):
    """A service run under gunicorn with deploy/gunicorn.conf.py, the way compose runs it."""

    def __init__(self, app: str, workdir: Path, env: dict[str, str] | None = None, workers: int = 1,
                 threads: int = 4, port: int | None = None, name: str | None = None):
        self.app = app
        self.name = name or app
        self.port = port or free_port()
        self.workers, self.threads = workers, threads
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "ATOMSHOP_DATA_DIR": str(self.workdir / "data"), "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.log_path = self.workdir / f"{self.name.split(':')[0]}-{self.port}.log"
        self.access_log = self.workdir / f"{self.name.split(':')[0]}-{self.port}.access.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers), "--threads", str(self.threads),
                "--access-logfile", str(self.access_log), "--chdir", str(REPO), self.app]

    def start(self, wait: bool = True) -> GunicornProcess:
        self._spawn(self.command, cwd=self.workdir, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /health answers 200 (fails at once if gunicorn exits)."""
        self._wait_answering(self.url + "/health", timeout=timeout)

    def access_lines(self, path_prefix: str) -> list[str]:
        """Access log lines of requests whose path starts with path_prefix."""
        try:
            lines = self.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [line for line in lines if re.search(r'"[A-Z]+ ' + re.escape(path_prefix), line)]


class GunicornServices(Managed):
    """The three services under gunicorn on a PostgreSQL cluster, one database per service, the way compose runs
    them: the consumers read the order feed through the front door at `door_port` (start it with front_door()).

    Every service follows a feed now, so each instance runs `--workers 1` (one scheduled poller per instance) on
    the service's one database and data folder (its SECRET_KEY file), like a compose service scaled with --scale:
    `order_instances` of the order service, `consumer_instances` of invoicing and of shipping. Each reads the
    feeds it follows through the front door.
    """

    def __init__(self, postgres: PostgresServer, workdir: Path, order_instances: int = 1, consumer_instances: int = 1,
                 threads: int = 4, poll_interval: float = 1.0, page_size: int | None = None,
                 secrets: dict[str, str] | None = None, long_poll_wait: float = 0):
        self.door_port = free_port()
        self.secrets = secrets or {}  # FEED_TOKEN, ADMIN_PASSWORD: given to every service (and the door)
        door = f"http://127.0.0.1:{self.door_port}"
        feed_url = f"{door}/order/feed"
        order_env = {"DATABASE_URL": postgres.create_database(), "POLL_INTERVAL": str(poll_interval),
                     "INVOICING_FEED_URL": f"{door}/invoicing/feed", "SHIPPING_FEED_URL": f"{door}/shipping/feed",
                     **self.secrets}
        if page_size:
            order_env["FEED_PAGE_SIZE"] = str(page_size)
        self.orders = [GunicornProcess("order_service.app:create_app()", workdir / "order", env=order_env,
                                       workers=1, threads=threads, name="order") for _ in range(order_instances)]
        self.order = self.orders[0]
        self.consumers: dict[str, list[GunicornProcess]] = {}
        for name in ("invoicing", "shipping"):
            # long_poll_wait 0 by default: these set-ups measure scheduled polls and the cache in front of them;
            # tests/integration/test_long_poll.py covers long polls.
            env = {"DATABASE_URL": postgres.create_database(), "POLL_INTERVAL": str(poll_interval),
                   "LONG_POLL_WAIT": str(long_poll_wait), "ORDER_FEED_URL": feed_url, **self.secrets}
            if page_size:
                env["FEED_PAGE_SIZE"] = str(page_size)
            self.consumers[name] = [
                GunicornProcess(f"{name}_service.app:create_app()", workdir / name, env=env, workers=1,
                                threads=threads, name=name)
                for _ in range(consumer_instances)]
        self._started: list[GunicornProcess] = []

    @property
    def invoicing(self) -> list[GunicornProcess]:
        return self.consumers["invoicing"]

    @property
    def shipping(self) -> list[GunicornProcess]:
        return self.consumers["shipping"]

    def start(self) -> GunicornServices:
        """The order service, then every other instance at once (they migrate their databases in turn)."""
        self._started.append(self.order.start())
        instances = [*self.orders[1:], *(instance for group in self.consumers.values() for instance in group)]
        for instance in instances:
            self._started.append(instance.start(wait=False))
        for instance in instances:
            instance.wait_ready()
        return self

    def front_door(self) -> NginxServer:
        """An nginx (not started) with the repo's config on door_port, in front of every instance."""
        return NginxServer(order=[f"127.0.0.1:{o.port}" for o in self.orders],
                           invoicing=[f"127.0.0.1:{i.port}" for i in self.invoicing],
                           shipping=[f"127.0.0.1:{i.port}" for i in self.shipping], port=self.door_port,
                           feed_token=self.secrets.get("FEED_TOKEN", ""))

    def stop(self) -> None:
        stop_all(reversed(self._started))



class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src", "action") and value:
                self.urls.append(value)


def page_links(html: str) -> list[str]:
    """Every href, src and form action in an HTML page."""
    parser = _Links()
    parser.feed(html)
    return parser.urls


def feed_links(feed) -> dict[str, str]:
    """rel -> href of a feedparser-parsed feed's own links."""
    return {link["rel"]: link["href"] for link in feed.feed.links}


__all__ = ["PostgresServer", "NginxServer", "GunicornProcess", "GunicornServices", "render_template", "page_links",
           "feed_links", "IN_CI"]
