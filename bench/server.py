"""gunicorn as production runs it (aios/gunicorn.conf.py), on a free loopback port."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .config import ROOT_DIR, SCRATCH_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, headers=None, *, method="GET", body=None, timeout=30):
    """One request on a fresh connection: (status, headers dict with lower-case names, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        conn.close()


class Gunicorn:
    """`with Gunicorn(env, "cached") as server:` serves until the block ends."""

    def __init__(self, env: dict, name: str, *, log, workers: int | None = None):
        self.env = dict(env)
        self.name = name
        self.log = log
        self.port = free_port()
        self.env["BIND"] = f"127.0.0.1:{self.port}"
        self.env.pop("GUNICORN_ACCESSLOG", None)  # an access log per request would be measured
        # Two servers run side by side: each keeps its own metrics files and monitoring window
        # (gunicorn.conf.py clears the metrics directory when a server starts).
        self.env["PROMETHEUS_MULTIPROC_DIR"] = str(SCRATCH_DIR / f"prometheus-{name}")
        self.env["MONITORING_DIR"] = str(SCRATCH_DIR / f"monitoring-{name}")
        self.env["MONITORING_KEY_PREFIX"] = f"bench:{name}:monitoring"
        if workers:
            self.env["API_WORKERS"] = str(workers)
        self.log_path = Path(SCRATCH_DIR) / f"gunicorn-{name}.log"
        self.process = None

    def __enter__(self):
        SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "aios/gunicorn.conf.py"],
            cwd=ROOT_DIR,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited; see {self.log_path.name}")
            try:
                status, _, _ = http_get(self.port, "/floor/", timeout=2)
            except OSError:
                time.sleep(0.2)
                continue
            if status != 200:
                raise RuntimeError(f"gunicorn ({self.name}): /floor/ answered {status}")
            # Every worker must be up before anything is measured.
            if len(self.worker_pids()) >= self.expected_workers():
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn ({self.name}) did not start within 60 s")
        self.log(f"gunicorn {self.name}: {len(self.worker_pids())} workers on :{self.port}")
        return self

    def expected_workers(self) -> int:
        configured = self.env.get("API_WORKERS")
        return int(configured) if configured else os.cpu_count() + 1  # gunicorn.conf.py

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, headers=None, **kwargs):
        return http_get(self.port, path, headers, **kwargs)

    def drain(self, *, settle_s: float = 0.0, fast_s: float = 0.05, timeout: float = 60.0):
        """Wait until the workers are idle again; returns seconds waited.

        When wrk stops, requests it already sent keep the sync workers busy, and a slow
        variant (the naive stats) would eat into the next variant's run. A fast answer from
        the floor means the accept queue is empty; the requests still in flight (one per
        busy worker at most) take about as long as the run's slowest: `settle_s`.
        """
        start = time.monotonic()
        fast = 0
        while fast < 2 and time.monotonic() - start < timeout:
            sent = time.monotonic()
            self.get("/floor/", timeout=timeout)
            fast = fast + 1 if time.monotonic() - sent < fast_s else 0
        time.sleep(settle_s)
        return time.monotonic() - start

    def worker_pids(self) -> list[int]:
        """The master's children, read from /proc."""
        master = self.process.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the parenthesised command name: state, ppid, ...
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master:
                pids.append(int(entry.name))
        return sorted(pids)

    def error_lines(self) -> list[str]:
        """Tracebacks and errors gunicorn logged, for the report."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if "Error" in line or "Traceback" in line]
