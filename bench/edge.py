"""Section "edge": the load mix through Varnish (deploy/varnish/default.vcl) beside the app alone.

One gunicorn purging one varnishd (EDGE_PURGE_URLS), the same mix as section "load" run
alternately through the edge and straight at the app, each after a warm-up: req/s, latency,
errors, the edge's hit ratio (varnishstat, and the X-Cache header of anonymous reads), the
purges the writes sent and how long the edge took to confirm them (the app's metrics).

`Varnish` starts a varnishd of its own (foreground, a free port, its own working directory)
with the committed VCL and a generated backend.vcl; the tests use it too.
"""

import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from .config import ROOT_DIR

VCL = ROOT_DIR / "deploy" / "varnish" / "default.vcl"
VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
VARNISHSTAT = shutil.which("varnishstat") or "/usr/bin/varnishstat"


def varnish_missing() -> str | None:
    """Why varnishd cannot run here, or None."""
    if not Path(VARNISHD).exists():
        return "varnishd is not installed (apt-get install varnish varnish-modules)"
    with tempfile.TemporaryDirectory() as directory:
        _write_backend(Path(directory), 9, ("127.0.0.1",))
        probe = subprocess.run(  # noqa: S603
            [VARNISHD, "-j", "none", "-C", "-f", str(VCL), "-p", f"vcl_path={directory}"],
            capture_output=True,
            text=True,
            check=False,
        )
    if probe.returncode:
        # The xkey vmod comes with varnish-modules; without it the VCL does not compile.
        return f"varnishd cannot compile deploy/varnish/default.vcl: {probe.stderr[-300:]}"
    return None


def _write_backend(directory: Path, port: int, purgers) -> None:
    """The backend.vcl default.vcl includes: the app on `port`, the purgers ACL."""
    acl = "\n".join(f'    "{address}";' for address in purgers)
    (directory / "backend.vcl").write_text(
        f'backend app {{ .host = "127.0.0.1"; .port = "{port}"; }}\nacl purgers {{\n{acl}\n}}\n'
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Varnish:
    """`with Varnish(backend_port, directory=...) as edge:` serves on `edge.port` until the
    block ends. `purgers` are the addresses allowed to purge."""

    def __init__(self, backend_port: int, *, directory: Path, purgers=("127.0.0.1",), mb=64):
        self.backend_port = backend_port
        self.directory = Path(directory).resolve()
        self.purgers = purgers
        self.mb = mb
        self.port = _free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Varnish":
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_backend(self.directory, self.backend_port, self.purgers)
        self.log_path = self.directory / "varnishd.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            # -j none: no separate unprivileged user, which could not read a private temp dir.
            [VARNISHD, "-j", "none", "-F", "-a", f"127.0.0.1:{self.port}", "-f", str(VCL),
             "-p", f"vcl_path={self.directory}", "-n", str(self.directory / "work"),
             "-s", f"malloc,{self.mb}m", "-T", "none"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"varnishd exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("varnishd did not listen within 30 s")

    def __exit__(self, *exc) -> bool:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return False

    def stats(self) -> dict[str, int]:
        """varnishstat's counters by name ("MAIN.cache_hit": 12, ...)."""
        done = subprocess.run(  # noqa: S603
            [VARNISHSTAT, "-n", str(self.directory / "work"), "-1", "-j"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        raw = json.loads(done.stdout)
        counters = raw.get("counters", raw)
        return {
            name: int(value["value"])
            for name, value in counters.items()
            if isinstance(value, dict) and "value" in value
        }


# --- The section -----------------------------------------------------------------------------

VARNISH_COUNTERS = (
    "MAIN.client_req",
    "MAIN.cache_hit",
    "MAIN.cache_hit_grace",
    "MAIN.cache_miss",
    "MAIN.cache_hitmiss",
    "MAIN.cache_hitpass",
    "MAIN.s_pass",
    "MAIN.backend_req",
)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)")


def _edge_metrics(text: str) -> dict:
    """The app's purge figures from its /metrics: requests by result, delay histogram."""
    out = {"ok": 0.0, "failed": 0.0, "delay_count": 0.0, "delay_sum": 0.0, "buckets": {}}
    for line in (text or "").splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        if name == "aios_edge_purges_total":
            result = dict(re.findall(r'(\w+)="([^"]*)"', labels)).get("result")
            if result in ("ok", "failed"):
                out[result] += value
        elif name == "aios_edge_purge_delay_seconds_count":
            out["delay_count"] += value
        elif name == "aios_edge_purge_delay_seconds_sum":
            out["delay_sum"] += value
        elif name == "aios_edge_purge_delay_seconds_bucket":
            le = dict(re.findall(r'(\w+)="([^"]*)"', labels)).get("le")
            out["buckets"][le] = out["buckets"].get(le, 0.0) + value
    return out


def purge_figures(before: str, after: str) -> dict:
    """Purges sent during a run and how long after the write the edge confirmed them."""
    old, new = _edge_metrics(before), _edge_metrics(after)
    count = new["delay_count"] - old["delay_count"]
    buckets = sorted(
        ((float(le), new["buckets"][le] - old["buckets"].get(le, 0.0)) for le in new["buckets"]),
    )
    p95 = next((le for le, n in buckets if count and n >= 0.95 * count), None)
    return {
        "purges_ok": int(new["ok"] - old["ok"]),
        "purges_failed": int(new["failed"] - old["failed"]),
        "delay_mean_ms": round((new["delay_sum"] - old["delay_sum"]) / count * 1000, 2)
        if count
        else None,
        # The histogram's bucket edge: an upper bound.
        "delay_p95_ms_at_most": None if p95 is None or p95 == float("inf") else p95 * 1000,
    }


def varnish_figures(before: dict, after: dict) -> dict:
    """varnishstat's breakdown over a run. Approximate: worker threads add their counts to
    the shared counters in batches, so some land in the next reading (the hit ratios come from
    the answers' X-Cache headers instead)."""
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in VARNISH_COUNTERS}
    return {
        "requests": delta["MAIN.client_req"],
        "hits": delta["MAIN.cache_hit"],
        "hits_in_grace": delta["MAIN.cache_hit_grace"],
        "misses": delta["MAIN.cache_miss"],
        "hit_for_miss": delta["MAIN.cache_hitmiss"],
        "passes": delta["MAIN.s_pass"],
        "backend_requests": delta["MAIN.backend_req"],
    }


def _run_mix(url, cfg, data_file, *, offset, duration) -> dict:
    from . import wrk

    return wrk.run(
        url,
        connections=cfg.load_connections,
        duration=duration,
        script=wrk.MIX_LUA,
        script_args=[data_file, offset],
    )


def _row(result: dict) -> dict:
    bad = result["s4xx"] + result["s5xx"] + result["errors"] - result["errors_status"]
    row = {k: result[k] for k in ("requests", "rps", "p50_ms", "p95_ms", "p99_ms")}
    row["errors"] = bad
    row["status"] = {k: result[k] for k in ("s2xx", "s3xx", "s4xx", "s5xx")}
    hits = result["cache_hit_header"]
    seen = hits + result["cache_miss_header"]
    # The edge's X-Cache on each answer, counted by the mix: HIT, MISS (anonymous reads) or
    # PASS (signed-in reads and writes, neither).
    row["edge_hits"] = hits
    row["hit_ratio"] = round(hits / result["requests"], 4) if result["requests"] and seen else None
    row["hit_ratio_anonymous"] = round(hits / seen, 4) if seen else None
    return row


def run_section(*, fx, env: dict, cfg, log) -> dict:
    """The mix through the edge and straight at the app, alternately, on one gunicorn."""
    from datetime import UTC, datetime

    from . import appmetrics, load
    from .config import SCRATCH_DIR
    from .load import REVIEW_PAIRS
    from .server import Gunicorn

    reason = varnish_missing()
    if reason:
        return {"not_measured": reason}
    _, skipped, data_file = load._mix_file(fx, "mix_data_edge.lua")
    if data_file is None:
        return skipped
    since = datetime.now(UTC)
    server = Gunicorn(env, "edge", log=log, workers=cfg.workers)
    varnish = Varnish(server.port, directory=SCRATCH_DIR / "varnish", mb=256)
    server.env["EDGE_PURGE_URLS"] = varnish.url
    server.env["TRUSTED_PROXIES"] = "127.0.0.1/32"
    targets = {"edge": varnish.url + "/", "app": None}
    slot = REVIEW_PAIRS // 8  # each run reviews with pairs of its own: no 409
    runs = []
    with varnish, server:
        targets["app"] = server.url("/")
        for n, name in enumerate(("edge", "app")):
            log(f"  edge section: warm-up {name}")
            _run_mix(targets[name], cfg, data_file, offset=n * slot, duration=cfg.load_warmup)
        order = ["edge", "app"] * max(1, cfg.rounds)
        for n, name in enumerate(order, start=2):
            metrics_before = appmetrics.metrics_text(server)
            stats_before = varnish.stats()
            result = _run_mix(
                targets[name], cfg, data_file, offset=n * slot, duration=cfg.load_duration
            )
            row = {"target": name, **_row(result)}
            row["purges"] = purge_figures(metrics_before, appmetrics.metrics_text(server))
            if name == "edge":
                row["varnish"] = varnish_figures(stats_before, varnish.stats())
            runs.append(row)
            log(
                f"  {name}: {row['rps']} req/s, p95 {row['p95_ms']} ms, errors {row['errors']}"
                + (f", edge hit ratio {row['hit_ratio']}" if name == "edge" else "")
            )
        server_errors = server.error_lines()[:20]
    undone = load.undo_writes(fx, since)
    summary = {}
    for name in ("edge", "app"):
        mine = [r for r in runs if r["target"] == name]
        summary[name] = {
            k: round(statistics.median(r[k] for r in mine), 3)
            for k in ("rps", "p50_ms", "p95_ms", "p99_ms")
        }
        summary[name]["errors"] = sum(r["errors"] for r in mine)
    edge_runs = [r for r in runs if r["target"] == "edge"]
    for key in ("hit_ratio", "hit_ratio_anonymous"):
        summary["edge"][key] = round(statistics.median(r[key] or 0 for r in edge_runs), 4)
    summary["rps_ratio"] = (
        round(summary["edge"]["rps"] / summary["app"]["rps"], 3) if summary["app"]["rps"] else None
    )
    return {
        "connections": cfg.load_connections,
        "warmup_s": cfg.load_warmup,
        "duration_s": cfg.load_duration,
        "skipped_ops": skipped,
        "runs": runs,
        "summary": summary,
        "undone": undone,
        "server_errors": server_errors,
        "counter_staleness_s": float(env.get("COUNTER_STALENESS", 30)),
    }
