"""Each worker's reporter thread: once a second, pool sample, process stats, window flush.

Started lazily by the first request a process serves (after gunicorn forks, never in the
master), so each worker has exactly one. `MONITORING_REPORT_INTERVAL=0` disables it.
"""

import logging
import os
import socket
import threading
import time

import psutil
from django.conf import settings

from . import dbinstrument, metrics, pool, window

log = logging.getLogger(__name__)

_lock = threading.Lock()
_started_pid: int | None = None
_process: psutil.Process | None = None
_last_cpu: float | None = None


def ensure_started() -> None:
    global _started_pid
    pid = os.getpid()
    if _started_pid == pid:
        return
    with _lock:
        if _started_pid == pid:
            return
        _started_pid = pid
        window.recorder.take()  # counts inherited from a parent process are the parent's
        interval = settings.MONITORING_REPORT_INTERVAL
        window.recorder.enabled = interval > 0
        if interval > 0:
            threading.Thread(
                target=_run, args=(interval,), name="aios-monitoring", daemon=True
            ).start()


def _run(interval: float, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    ticks = 0
    while not stop.wait(interval):
        ticks += 1
        try:
            tick(prune=ticks % 60 == 0)
        except Exception:
            log.exception("monitoring reporter tick failed")


def process_state() -> dict:
    """This worker's state: memory, CPU used since the last call, connections, pool."""
    global _process, _last_cpu
    if _process is None or _process.pid != os.getpid():
        _process, _last_cpu = psutil.Process(), None
    with _process.oneshot():
        rss = _process.memory_info().rss
        times = _process.cpu_times()
    cpu = times.user + times.system
    if _last_cpu is not None and cpu > _last_cpu:
        used = cpu - _last_cpu
        metrics.worker_cpu.inc(used)
        window.recorder.add("cpu", round(used * 1_000_000))
    _last_cpu = cpu
    metrics.worker_memory.set(rss)
    pools = pool.sample_all()
    return {
        "worker": window.worker_id(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "ts": time.time(),
        "rss_bytes": rss,
        "db_connections": sum(dbinstrument.open_connections().values()),
        "pool_size": sum(p["size"] for p in pools.values()),
        "pool_in_use": sum(p["in_use"] for p in pools.values()),
        "pool_waiting": sum(p["waiting"] for p in pools.values()),
    }


def tick(*, prune: bool = False) -> bool:
    ok = window.flush(process_state())
    if prune:
        window.sink().prune()
    return ok
