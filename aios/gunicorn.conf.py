"""Gunicorn settings; the same knobs as the app (README, "Settings")."""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
# gthread (threads > 1) with keep-alive, by numbers: on 2 cores cached hits at 32 connections
# did 3,118 req/s with 3 workers x 4 threads against 1,810-1,877 with 5 sync workers (which
# close every connection), the floor view 1,382 against 789-856 (`make bench`, section
# "workers", compares the whole mix). One near copy per process serves its threads.
workers = int(os.environ.get("API_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("API_THREADS", 4))
# A request past REQUEST_TIMEOUT is cut by the database first (statement timeout); the
# worker timeout is the last resort behind it.
timeout = int(os.environ.get("REQUEST_TIMEOUT", 30)) + 5
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10000))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# The request id the app returns (X-Request-ID) ties an access line to the app's JSON logs.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s "%(a)s"'
errorlog = "-"
wsgi_app = "aios.wsgi:application"
# The master imports the app once and forks ready workers: /healthz answers about 3 s after
# start instead of 6-8 s with five workers importing Django side by side on 2 busy cores, and
# the workers share the imported code's memory. Nothing connects at import (databases, Redis
# and the monitoring reporter start in each worker on first use). A code change needs a
# restart, not a HUP.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"


def _cap_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and
    freed memory in one arena is not reused by another: threaded workers keep more memory
    resident than they use. MALLOC_ARENA_MAX in the environment is honoured as glibc would;
    otherwise 2 arenas, set here in the master so every forked worker inherits it."""
    import contextlib
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to cap
        ctypes.CDLL(name).mallopt(-8, 2)  # -8: M_ARENA_MAX


_cap_malloc_arenas()

_var_dir = os.environ.get("AIOS_VAR_DIR") or os.path.join(os.path.dirname(__file__), "..", "var")
_var_dir = os.path.abspath(_var_dir)
# gunicornc's socket lives with the rest of this checkout's state, not in $HOME/.gunicorn, where
# every checkout on the machine would share (and replace) one socket.
control_socket = os.path.join(_var_dir, "gunicorn.ctl")

# Prometheus multiprocess mode: each worker writes its metrics to files here and /metrics
# merges them (aios.monitoring). Set before any worker imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(_var_dir, "prometheus"))
# preload_app imports the app, and prometheus_client opens its files, before on_starting.
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    # A previous run's files would add its counts to this one's. The master's own (opened by
    # preload_app's import) go too: it serves nothing, and each forked worker opens its own.
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def child_exit(server, worker):
    # A dead worker's gauges (connections, pool, memory) stop counting in the live sums.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
