"""gunicorn settings for every atomshop service.

Use: `gunicorn --config deploy/gunicorn.conf.py 'order_service.app:create_app()'`.

The scheduled feed pollers run once per instance. A follower's app lists its pollers in
app.extensions["atomshop.background"] (see common/cli.py); gunicorn starts them in the worker after the app
is loaded and stops them when the worker exits. Every service follows a feed (the order service follows
invoicing and shipping), so each runs ONE worker process and takes its concurrency from threads
(`--workers 1`, threads below) and scales out as more instances; a follower started with more workers refuses
to boot rather than poll twice. With POLL_INTERVAL=0 (reads only on POST /poll) nothing runs in the background
and any number of workers may serve.

Metrics: every worker counts its own requests; with PROMETHEUS_MULTIPROC_DIR set, prometheus-client keeps the
values in files in that folder and `/metrics`, whichever worker answers it, adds them up. When it is unset this
config makes a private folder for this gunicorn (set before any worker imports prometheus-client), empties a
given one at start, and tells prometheus-client when a worker dies so its live values go.
"""
import glob
import logging
import os
import shutil
import signal
import tempfile

# Before anything imports prometheus_client: it decides where values live at import.
_own_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _own_metrics_dir = tempfile.mkdtemp(prefix="atomshop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir

from common.service.cli import BACKGROUND_KEY, on_sigterm, quiet_idle_logs  # noqa: E402
from common.service.logs import configure_logging, restyle  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gthread: a held long poll (GET /feed with Prefer: wait) occupies one thread of its worker, idle on a condition
# variable, with no database connection; measured (bench/latency.py, README "Serving model") at about 40 KB of RSS
# per held request and no CPU. Threads are started on demand, so a high ceiling costs nothing until used; it
# bounds how many long polls one worker holds while still answering everything else.
threads = int(os.environ.get("GUNICORN_THREADS", "512"))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "2000"))
worker_class = "gthread"
# A POST /poll waits for the feed; the feed answers quickly, so this is a generous upper bound.
timeout = 60
graceful_timeout = 20
# Idle keep-alive connections from nginx stay open longer than nginx keeps them (60 s), so nginx never
# reuses a connection gunicorn has just closed (that error would make it serve a stale page or a 502).
keepalive = 75
accesslog = "-"
errorlog = "-"
# Lets ProxyFix in the apps trust X-Forwarded-* from nginx on another host (the compose network).
forwarded_allow_ips = "*"
# No gunicornc control socket: several instances share a home folder in tests, and the image's is read-only.
control_socket_disable = True


def on_starting(server):
    """Logging in LOG_FORMAT for the apps and gunicorn alike; an empty metrics folder (values of a previous run
    would be added to this one's)."""
    configure_logging()
    quiet_idle_logs()
    for name in ("gunicorn.error", "gunicorn.access"):
        restyle(logging.getLogger(name))
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def on_exit(server):
    """Remove the metrics folder this config made."""
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


def child_exit(server, worker):
    """A worker is gone: drop its live gauges (counters and histograms keep counting what it did)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _background(worker) -> list:
    app = getattr(worker, "wsgi", None)  # the Flask app gunicorn loaded in this worker
    return list(getattr(app, "extensions", {}).get(BACKGROUND_KEY, []))


def post_worker_init(worker):
    """Start the app's background tasks (a consumer's poller) in this worker, the only one."""
    tasks = _background(worker)
    if tasks and worker.cfg.workers != 1:
        # Raising here makes gunicorn halt with a boot error instead of running a poller per worker.
        raise RuntimeError(f"{worker.cfg.proc_name}: an app with background tasks (a scheduled poller) must run "
                           f"with --workers 1 (got {worker.cfg.workers}); use --threads for concurrency and "
                           "more instances to scale out")
    _release_held_requests_on_stop(worker)
    worker.atomshop_background = tasks  # what worker_exit stops: only what this worker started
    for task in tasks:
        task.start()
    if tasks:
        worker.log.info("started %d background task(s) in worker %s", len(tasks), worker.pid)


def _release_held_requests_on_stop(worker) -> None:
    """On SIGTERM, first answer the long polls this worker holds (they would keep it for graceful_timeout)."""
    app = getattr(worker, "wsgi", None)
    graceful = signal.getsignal(signal.SIGTERM)  # gunicorn's own handler, installed before this hook runs
    if app is None or not callable(graceful):
        return
    on_sigterm(app, then=graceful)


def worker_exit(server, worker):
    """Stop the background tasks this worker started before it goes away."""
    for task in getattr(worker, "atomshop_background", []):
        task.stop()
