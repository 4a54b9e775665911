"""wrk, the load generator: one run, its figures parsed from the Lua `done()` line."""

import json
import shutil
import subprocess
from statistics import median

from .config import BENCH_DIR

STATS_LUA = BENCH_DIR / "stats.lua"
MIX_LUA = BENCH_DIR / "mix.lua"
# The machine is shared: no run is longer or wider than this.
MAX_CONNECTIONS = 100
MAX_DURATION = 15


class WrkMissing(RuntimeError):
    pass


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url, *, connections, duration, headers=(), script=STATS_LUA, script_args=()) -> dict:
    """`wrk -t1 -cN -dS --latency`; returns requests, req/s, p50/p95/p99 ms and error counts."""
    if not available():
        raise WrkMissing("wrk is not installed (apt-get install -y wrk)")
    connections = min(connections, MAX_CONNECTIONS)
    duration = min(duration, MAX_DURATION)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    cmd += ["-s", str(script)]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(url)
    if script_args:
        cmd += ["--", *map(str, script_args)]
    done = subprocess.run(  # noqa: S603
        cmd, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if done.returncode:
        raise RuntimeError(f"wrk exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    return {
        **raw,
        "connections": connections,
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": errors,
    }


def summarize(runs: list[dict]) -> dict:
    """Median of each figure over interleaved rounds, plus the rounds themselves."""
    if not runs:
        return {}
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms")
    out = {k: round(median(r[k] for r in runs), 3) for k in keys}
    out["requests"] = sum(r["requests"] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    out["rounds"] = [{k: r[k] for k in (*keys, "requests", "errors")} for r in runs]
    return out
