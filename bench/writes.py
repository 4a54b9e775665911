"""The endpoints section's writes: install and review POSTs under wrk, beside the floor.

Each POST creates something (201): wrk walks precomputed (signed-in bench user, agent) pairs
that had no installation (review) yet, through bench/mix.lua with a one-operation mix, so no
request repeats or conflicts. Measured on the production server (cache on: a write's cost
includes retiring the copies it changes), interleaved with the floor, at 1 and N
connections. What the runs created is removed afterwards through the services.
"""

from datetime import UTC, datetime
from statistics import median

from . import wrk
from .config import SCRATCH_DIR
from .endpoints import route_exists
from .load import _install_pairs, _lua, _review_pairs, undo_writes

WRITES = (
    ("install", "Install (POST)", "/api/v1/agents/%s/install/"),
    ("review", "Review (POST)", "/api/v1/agents/%s/reviews/"),
)


class _Poster:
    """wrk runs of one kind of POST, each run starting at the first pair not sent yet."""

    def __init__(self, kind: str, template: str, *, fx, server):
        self.kind, self.server = kind, server
        users, agents = (_install_pairs if kind == "install" else _review_pairs)(fx)
        self.pairs = len(agents)
        op = {"name": kind, "weight": 1, "method": "POST", "path": template, "auth": True}
        data = {
            "seed": 7,
            "ops": [{**op, "kind": kind}],
            "tokens": fx.load_tokens,
            f"{kind}_users": users,
            f"{kind}_agents": agents,
        }
        SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
        self.data_file = SCRATCH_DIR / f"writes_{kind}.lua"
        self.data_file.write_text("return " + _lua(data) + "\n")
        self.sent = 0
        self.statuses = {"s2xx": 0, "s3xx": 0, "s4xx": 0, "s5xx": 0}

    def __call__(self, connections: int, duration: float) -> dict:
        run = wrk.run(
            self.server.url("/"), connections=connections, duration=duration,
            script=wrk.MIX_LUA, script_args=[self.data_file, self.sent],
        )  # fmt: skip
        self.sent += run.get("ops", {}).get(self.kind, run["requests"])  # answered or not
        for k in self.statuses:
            self.statuses[k] += run[k]
        self.server.drain(settle_s=min(run["p99_ms"] / 1000, 2.0))
        return run


def _level(post: _Poster, server, connections: int, cfg) -> dict:
    """cfg.rounds runs of the POST and of the floor, interleaved, at one width."""
    runs = {"ours": [], "floor": []}
    for _ in range(cfg.rounds):
        runs["ours"].append(post(connections, cfg.duration))
        floor = wrk.run(server.url("/floor/"), connections=connections, duration=cfg.duration)
        server.drain(settle_s=min(floor["p99_ms"] / 1000, 2.0))
        runs["floor"].append(floor)
    level = {name: wrk.summarize(measured) for name, measured in runs.items()}
    pairs = zip(runs["ours"], runs["floor"], strict=True)
    ratios = [o["rps"] / f["rps"] for o, f in pairs if f["rps"]]
    level["ours"]["ratio_to_floor"] = round(median(ratios), 3) if ratios else None
    return level


def _measure(kind, title, template, *, fx, server, cfg, log) -> dict:
    probe = template % fx.agent_id
    if not route_exists(probe):
        return {"key": kind, "title": title, "not_measured": f"{probe} does not exist yet"}
    post = _Poster(kind, template, fx=fx, server=server)
    if not cfg.smoke:  # untimed: each worker's first writes pay for imports and connections
        post(cfg.connections, 1)
    result = {
        "key": kind,
        "title": title,
        "path": template.replace("%s", "{agent}"),
        "pairs": post.pairs,
    }
    for connections in sorted({1, cfg.connections}):
        result[f"c{connections}"] = _level(post, server, connections, cfg)
    result["statuses"] = post.statuses
    result["requests_sent"] = post.sent
    if post.sent > post.pairs:
        result["note"] = "more requests than free pairs: later ones repeated a pair"
    widest = f"c{cfg.connections}"
    log(
        f"  {title}: p50 {result['c1']['ours']['p50_ms']} ms, "
        f"{result[widest]['ours']['rps']} req/s "
        f"({result[widest]['ours']['ratio_to_floor']}x floor), statuses {post.statuses}"
    )
    return result


def run_writes(*, fx, server, cfg, log) -> list[dict]:
    since = datetime.now(UTC)
    try:
        return [
            _measure(kind, title, template, fx=fx, server=server, cfg=cfg, log=log)
            for kind, title, template in WRITES
        ]
    finally:
        undone = undo_writes(fx, since)
        log(f"  writes undone: {undone}")
