"""The rolling window behind the snapshot: per-second buckets shared by every worker.

On the request path a worker only bumps counters in a dict of its own (one lock, a few
dict operations: microseconds). Once a second its reporter thread (`reporter.py`) takes
those counters and adds them to shared storage, together with the worker's state (memory,
open connections, pool):

* Redis (when `REDIS_URL` or `REDIS_SENTINELS` is set): one hash per second, `HINCRBY` per
  field in one pipeline, expiring after the window; worker states are short-lived keys
  indexed by a sorted set. Timeouts are tight and a failed write drops that second's data:
  Redis trouble never reaches a request.
* Files in `MONITORING_DIR` (the embedded default): each worker appends one JSON line per
  flush to its own per-minute file and replaces its own state file, so writers never share
  a file; readers merge every file of the window. Old files are pruned.

Latencies are counted in logarithmic buckets (8 % wide, 0.1 ms .. 120 s), so a percentile
read back is the upper edge of its bucket: at most 8 % above the true value, never below.

Field names in a bucket: n requests, e 5xx responses, r<i> request latency bucket i,
q queries, d<i> query latency bucket i, s slow queries, h / m cache hits / misses,
lc / lm / g<i> copies served while their counters lagged (count, summed lag in ms, lag
bucket i), pk / pf PURGE requests to the edge cache that succeeded / failed, pn / pd<i>
write-to-purge delays (count, bucket i), px purge keys given up, cpu CPU microseconds used
by the worker during that second.
"""

import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from aios import redis_ha

log = logging.getLogger(__name__)

FLOOR_SECONDS = 0.0001
GROWTH = 1.08
_LOG_GROWTH = math.log(GROWTH)
MAX_BUCKET = math.ceil(math.log(120 / FLOOR_SECONDS) / _LOG_GROWTH)


def bucket_of(seconds: float) -> int:
    if seconds <= FLOOR_SECONDS:
        return 0
    return min(MAX_BUCKET, math.ceil(math.log(seconds / FLOOR_SECONDS) / _LOG_GROWTH))


def bucket_upper_seconds(index: int) -> float:
    return FLOOR_SECONDS * GROWTH**index


class Recorder:
    """This process's counts not yet flushed, by second (one per process, like a metric).

    Off until the process's reporter starts (`reporter.ensure_started`): a management command
    or a process without a reporter would pile up counts nobody flushes.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[int, Counter] = {}
        self.enabled = False

    def _counter(self) -> Counter:
        second = int(time.time())
        counter = self._pending.get(second)
        if counter is None:
            counter = self._pending[second] = Counter()
        return counter

    def add(self, field: str, n: int = 1) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._counter()[field] += n

    def observe_request(self, seconds: float, *, error: bool) -> None:
        if not self.enabled:
            return
        with self._lock:
            counter = self._counter()
            counter["n"] += 1
            counter[f"r{bucket_of(seconds)}"] += 1
            if error:
                counter["e"] += 1

    def observe_query(self, seconds: float) -> None:
        if not self.enabled:
            return
        with self._lock:
            counter = self._counter()
            counter["q"] += 1
            counter[f"d{bucket_of(seconds)}"] += 1

    def take(self) -> dict[int, Counter]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending


recorder = Recorder()


def worker_id() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{socket.gethostname()}-{os.getpid()}")


def _ttl() -> int:
    return settings.MONITORING_WINDOW_SECONDS + 120


class RedisSink:
    def __init__(self, prefix: str):
        self.client = redis_ha.client(
            socket_timeout=0.25, socket_connect_timeout=0.25, retry_on_timeout=False
        )
        self.prefix = prefix

    def write(self, buckets: dict[int, Counter], state: dict | None) -> None:
        ttl = _ttl()
        pipe = self.client.pipeline(transaction=False)
        for second, fields in buckets.items():
            key = f"{self.prefix}:s:{second}"
            for field, n in fields.items():
                pipe.hincrby(key, field, n)
            pipe.expire(key, ttl)
        if state is not None:
            wid = state["worker"]
            pipe.set(f"{self.prefix}:w:{wid}", json.dumps(state), ex=ttl)
            pipe.zadd(f"{self.prefix}:workers", {wid: state["ts"]})
            pipe.zremrangebyscore(f"{self.prefix}:workers", "-inf", state["ts"] - ttl)
        pipe.execute()

    def read(self, first: int, last: int, live_since: float):
        pipe = self.client.pipeline(transaction=False)
        seconds = list(range(first, last + 1))
        for second in seconds:
            pipe.hgetall(f"{self.prefix}:s:{second}")
        pipe.zrangebyscore(f"{self.prefix}:workers", live_since, "+inf")
        *hashes, live = pipe.execute()
        buckets = {
            second: Counter({k.decode(): int(v) for k, v in fields.items()})
            for second, fields in zip(seconds, hashes, strict=True)
            if fields
        }
        states = []
        if live:
            raw = self.client.mget([f"{self.prefix}:w:{wid.decode()}" for wid in live])
            states = [json.loads(value) for value in raw if value]
        return buckets, states

    def prune(self) -> None:
        """Keys expire by themselves."""


class FileSink:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, buckets: dict[int, Counter], state: dict | None) -> None:
        wid = state["worker"] if state else worker_id()
        by_minute: dict[int, dict] = defaultdict(dict)
        for second, fields in buckets.items():
            by_minute[second // 60][second] = dict(fields)
        for minute, seconds in by_minute.items():
            # One writer per file (this process), so appended lines never interleave.
            with open(self.directory / f"{minute}.{wid}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(seconds, separators=(",", ":")) + "\n")
        if state is not None:
            tmp = self.directory / f".state.{wid}.tmp"
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, self.directory / f"state.{wid}.json")

    def read(self, first: int, last: int, live_since: float):
        buckets: dict[int, Counter] = defaultdict(Counter)
        states = []
        for entry in os.scandir(self.directory):
            name = entry.name
            if name.endswith(".jsonl"):
                minute = name.split(".", 1)[0]
                if not minute.isdigit() or not first // 60 <= int(minute) <= last // 60:
                    continue
                with open(entry.path, encoding="utf-8") as f:
                    for line in f:
                        try:
                            seconds = json.loads(line)
                        except ValueError:  # a line being written right now
                            continue
                        for second, fields in seconds.items():
                            if first <= int(second) <= last:
                                buckets[int(second)].update(fields)
            elif name.startswith("state.") and name.endswith(".json"):
                with contextlib.suppress(OSError, ValueError):
                    state = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                    if state["ts"] >= live_since:
                        states.append(state)
        return dict(buckets), states

    def prune(self) -> None:
        """Delete files no window can need any more (any worker's: the dead leave theirs)."""
        horizon = time.time() - _ttl()
        for entry in os.scandir(self.directory):
            with contextlib.suppress(OSError, ValueError):
                name = entry.name
                if name.endswith(".jsonl"):
                    if int(name.split(".", 1)[0]) * 60 + 60 < horizon:
                        os.unlink(entry.path)
                elif name.startswith("state.") and entry.stat().st_mtime < horizon:
                    os.unlink(entry.path)


_sink = None
_sink_lock = threading.Lock()
_flush_lock = threading.Lock()


def sink():
    global _sink
    with _sink_lock:
        if _sink is None:
            if redis_ha.configured():
                _sink = RedisSink(settings.MONITORING_KEY_PREFIX)
            else:
                _sink = FileSink(settings.MONITORING_DIR)
        return _sink


@receiver(setting_changed)
def _reset_sink(*, setting, **kwargs):
    global _sink
    if setting in {*redis_ha.SETTINGS, "MONITORING_KEY_PREFIX", "MONITORING_DIR"}:
        with _sink_lock:
            _sink = None


_last_error_log = 0.0


def flush(state: dict | None = None) -> bool:
    """Add this process's pending counts (and its state) to the shared window."""
    global _last_error_log
    with _flush_lock:
        buckets = recorder.take()
        if not buckets and state is None:
            return True
        try:
            sink().write(buckets, state)
        except Exception:
            from .metrics import window_flush_errors

            window_flush_errors.inc()
            if time.monotonic() - _last_error_log > 60:  # one line a minute, not one a second
                _last_error_log = time.monotonic()
                log.warning(
                    "monitoring window flush failed; data for this second lost", exc_info=True
                )
            return False
        return True


class WindowUnavailable(Exception):
    """The shared store (Redis) did not answer: no window can be read right now."""


def read(window_seconds: int, *, now: float | None = None, live_for: float = 5.0):
    """Every worker's buckets for the last `window_seconds`, and the states of live workers.

    Raises WindowUnavailable when the shared store fails, so callers can say so instead of
    answering 500 while Redis is down.
    """
    now = time.time() if now is None else now
    last = int(now)
    try:
        return sink().read(last - window_seconds + 1, last, now - live_for)
    except Exception as exc:
        raise WindowUnavailable(str(exc)) from exc
