"""bench/results/REPORT.md from results.json: the report's tables, before / after / improvement."""

from .config import READ_SCOPES

REPORT_FIGURES = {
    # What the origin report measured (issue 7), for the "report" column.
    "search_query_ms": 95,
    "search_endpoint_ms": 234,
    "stats_ms": 45,
    "load_p95_ms": 187,
    "load_p99_ms": 342,
    "load_rps": 847,
    "hit_rate": 0.82,
    "rss_mb": 387,
}


def _ms(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _x(value) -> str:
    return "-" if value is None else f"{value:g}x"


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _rows_by_key(section) -> dict:
    return {r["key"]: r for r in (section or {}).get("rows", []) if "key" in r}


def _target(name, measured_text, met, note="") -> dict:
    return {"target": name, "measured": measured_text, "met": met, "note": note}


SHARED_HIT_GOAL = 0.95
CACHEABLE_HIT_GOAL = 0.85


def _not_run(section: str) -> str:
    return f"not measured (section {section} not run)"


def evaluate_targets(results: dict) -> list[dict]:
    """Each target of the read-path issue (issue 13) with met / missed / not measured."""
    sections = results.get("sections", {})
    e = sections.get("endpoints") or {}
    return [
        *_cached_hit_targets(e),
        *_uncached_read_targets(e),
        *_write_targets(e),
        *_search_targets(e, sections.get("scale") or {}),
        *_load_targets(sections.get("load") or {}),
        _memory_target(sections.get("memory") or {}),
    ]


def _most_connections(e: dict) -> int:
    """The endpoints section's highest connection count (its throughput level)."""
    return (e.get("connections") or [1])[-1]


def _endpoint_not_measured(e: dict, row) -> str:
    """Why an endpoint's (or a write's) target has no figure."""
    return (row or {}).get("not_measured") or ("not measured" if e else _not_run("endpoints"))


def _cached_hit_targets(e: dict) -> list[dict]:
    """Cached hits: every endpoint and page."""
    n = _most_connections(e)
    out = []
    for row in e.get("rows", []) or [{"title": "every endpoint and page", "not_measured": None}]:
        name = f"cached {row['title']}: >= 1.0x floor req/s at {n} conn., p50 < 1 ms at 1"
        if "not_measured" in row:
            out.append(_target(name, row["not_measured"] or _not_run("endpoints"), None))
            continue
        ratio = row[f"c{n}"]["ours_warm"]["ratio_to_floor"]
        p50 = row["c1"]["ours_warm"]["p50_ms"]
        met = None if ratio is None else ratio >= 1.0 and p50 < 1
        out.append(_target(name, f"{_x(ratio)}, p50 {_ms(p50)} ms", met))
    return out


def _uncached_read_targets(e: dict) -> list[dict]:
    """Uncached reads: the list, the detail and the signed-in user's installations."""
    endpoints = _rows_by_key(e)
    n = _most_connections(e)
    out = []
    for key, title in (
        ("agent_list", "agent list"),
        ("agent_detail", "agent detail"),
        ("my_installations", "my installations"),
    ):
        row = endpoints.get(key)
        name = f"uncached {title}: >= 0.30x floor req/s at {n} conn."
        if not row or "not_measured" in row:
            out.append(_target(name, _endpoint_not_measured(e, row), None))
            continue
        ratio = row[f"c{n}"]["ours_uncached"]["ratio_to_floor"]
        naive = row[f"c{n}"].get("naive", {}).get("ratio_to_floor")
        out.append(
            _target(
                name,
                f"{_x(ratio)} (naive DRF: {_x(naive)})",
                None if ratio is None else ratio >= 0.30,
            )
        )
    return out


def _write_targets(e: dict) -> list[dict]:
    """The writes: install and review POSTs."""
    writes = {w["key"]: w for w in e.get("writes", []) or []}
    n = _most_connections(e)
    out = []
    for key in ("install", "review"):
        name = f"{key} POST: >= 0.20x floor req/s at {n} conn."
        row = writes.get(key)
        if not row or "not_measured" in row:
            out.append(_target(name, _endpoint_not_measured(e, row), None))
            continue
        ratio = row[f"c{n}"]["ours"]["ratio_to_floor"]
        bad = row["statuses"]["s4xx"] + row["statuses"]["s5xx"]
        measured = f"{_x(ratio)} ({row[f'c{n}']['ours']['rps']:.0f} req/s)"
        if bad:
            measured += f", {bad} non-2xx"
        out.append(_target(name, measured, None if ratio is None else ratio >= 0.20))
    return out


def _search_targets(e: dict, scale: dict) -> list[dict]:
    """Search, uncached: its latency on the bench data and its growth at 10x the data."""
    out = []
    row = _rows_by_key(e).get("search")
    name = "search uncached, 1 connection: p50 < 15 ms (bench data)"
    if row and "not_measured" not in row:
        p50 = row["c1"]["ours_uncached"]["p50_ms"]
        out.append(_target(name, f"{_ms(p50)} ms", p50 < 15))
    else:
        out.append(_target(name, _endpoint_not_measured(e, row), None))
    growth = scale.get("growth_10x_over_bench") or {}
    name = "search uncached at 10x data: p50 <= 1.5x bench"
    if "endpoint_search" in growth:
        ratio = growth["endpoint_search"]
        query = growth.get("query_search")
        out.append(_target(name, f"{_x(ratio)} (its queries: {_x(query)})", ratio <= 1.5))
    else:
        out.append(_target(name, "not measured (the scale section runs with --with-10x)", None))
    return out


def _load_targets(load: dict) -> list[dict]:
    """The load test: throughput, latency, errors and the two hit rates."""
    if "rps" not in load:
        reason = load.get("not_measured") or _not_run("load")
        return [_target("load mix targets (req/s, p95, p99, errors, hit rates)", reason, None)]
    cache = load.get("cache") or {}
    shared = (cache.get("scopes") or {}).get("shared") or {}
    floor_ratio = load.get("ratio_to_floor")
    c = load["connections"]
    return [
        _target(
            f"load mix, {c} conn.: >= 1,000 req/s",
            f"{load['rps']:.0f} req/s ({_x(floor_ratio)} the floor's "
            f"{(load.get('floor') or {}).get('rps', 0):.0f} req/s at {c} conn.)",
            load["rps"] >= 1000,
        ),
        _target("load mix: p95 < 100 ms", f"{_ms(load['p95_ms'])} ms", load["p95_ms"] < 100),
        _target("load mix: p99 < 200 ms", f"{_ms(load['p99_ms'])} ms", load["p99_ms"] < 200),
        _target(
            "load mix: 0 errors", f"{load['errors']} of {load['requests']}", load["errors"] == 0
        ),
        _shared_target(shared),
        _cacheable_target(cache),
    ]


def _cacheable_target(cache: dict) -> dict:
    """The hit rate of every cacheable read in the load mix, with each namespace's."""
    hit = cache.get("hit_rate")
    namespaces = (cache.get("per_namespace") or {}).items()
    per_ns = ", ".join(f"{ns} {_pct(v.get('hit_rate'))}" for ns, v in namespaces)
    return _target(
        "load mix: hit rate of all cacheable reads >= 85 %",
        f"{_pct(hit)}" + (f" ({per_ns})" if per_ns else ""),
        None if hit is None else hit >= CACHEABLE_HIT_GOAL,
        cache.get("source", ""),
    )


def _memory_target(mem: dict) -> dict:
    name = "RSS per worker < 150 MB"
    if mem.get("max_rss_mb") is None:
        return _target(name, _not_run("memory"), None)
    return _target(name, f"max {mem['max_rss_mb']} MB", mem["max_rss_mb"] < 150)


def _shared_target(shared: dict) -> dict:
    """Shared reads' hit rate: exact when no namespace mixes shared and per-user reads,
    otherwise bounds (see bench.load.scope_hit_rates) and the namespaces' own figure."""
    name = "load mix: hit rate of shared reads >= 95 %"
    low, high = shared.get("hit_rate_low"), shared.get("hit_rate_high")
    whole = shared.get("hit_rate_namespaces")
    if low is None:
        return _target(name, "not measured (no per-namespace cache metrics)", None)
    namespaces = " + ".join(shared.get("namespaces", []))
    if low == high:
        return _target(name, f"{_pct(low)} ({namespaces})", low >= SHARED_HIT_GOAL)
    # The namespaces' figure counts the signed-in (per-user) agent detail as shared: a lower
    # estimate as long as per-user copies hit less often than shared ones.
    met = low >= SHARED_HIT_GOAL or (whole is not None and whole >= SHARED_HIT_GOAL)
    return _target(
        name,
        f"{_pct(whole)} ({namespaces}, signed-in agent detail included); anonymous only: "
        f"between {_pct(low)} and {_pct(high)}",
        met,
        "judged on the namespaces' figure or the lower bound, whichever is higher",
    )


def _mark(met) -> str:
    return "not measured" if met is None else "met" if met else "**missed**"


def render(results: dict) -> str:
    s = results.get("sections", {})
    lines = [
        *_title(results),
        *_machine_section(results),
        *_targets_section(results.get("targets", [])),
        *_queries_section(results, s.get("query")),
        *_endpoints_section(results, s.get("endpoints")),
        *_load_section(results, s.get("load")),
        *_workers_section(results, s.get("workers")),
        *_edge_section(results, s.get("edge")),
        "## 4. Compression, memory, scale",
        "",
        *_compression_part(results, s.get("compression")),
        *_memory_part(results, s.get("memory")),
        *_scale_part(results, s.get("scale")),
        *_harness_errors_section(results),
        *_method_section(),
        *_reproduce_section(),
    ]
    return "\n".join(lines)


def _title(results: dict) -> list[str]:
    return [
        "# Performance report (`make bench`)",
        "",
        f"Generated {results['finished_at']} by `{results['command']}` "
        f"({'SMOKE run: small data, seconds per section, figures mean nothing' if results['smoke'] else 'full run'}). "  # noqa: E501
        "Every figure below is in `results.json` beside this file; query plans are in `plans/`.",
        "",
    ]


def _machine_section(results: dict) -> list[str]:
    m = results.get("machine", {})
    return [
        "## Machine",
        "",
        *_table(
            ["", ""],
            [
                ["CPU", f"{m.get('cpu_model')}, {m.get('cores')} cores"],
                ["Memory", f"{m.get('memory_gib')} GiB"],
                [
                    "PostgreSQL",
                    f"{m.get('postgresql')} (shared_buffers {m.get('postgresql_shared_buffers')})",
                ],
                ["Redis", m.get("redis")],
                ["Python", m.get("python")],
                [
                    "gunicorn",
                    f"{m.get('gunicorn_workers')} workers x {m.get('gunicorn_threads', 1)} threads"
                    " (aios/gunicorn.conf.py)",
                ],
                ["Load generator", f"{m.get('load_generator')}, 1 thread, same machine"],
                ["Data", results.get("data", "")],
            ],
        ),
        m.get("note", ""),
        "",
    ]


def _targets_section(targets: list[dict]) -> list[str]:
    if not targets:
        return []
    lines = [
        "## Targets (issue 13, the read path)",
        "",
        "All from this run. Ratios are req/s over the floor's (a trivial view, `/floor/`, "
        "behind the full middleware) in the same rounds, as the machine is noisy.",
        "",
    ]
    lines += _table(
        ["Target", "Measured", "Result"],
        [
            [t["target"], t["measured"] + (f" ({t['note']})" if t.get("note") else ""),
             _mark(t["met"])]
            for t in targets
        ],
    )  # fmt: skip
    met = sum(1 for t in targets if t["met"])
    missed = sum(1 for t in targets if t["met"] is False)
    return [*lines, f"{met} met, {missed} missed, {len(targets) - met - missed} not measured.", ""]


def _queries_section(results: dict, q) -> list[str]:
    lines = ["## 1. Queries (in-process, median of warm runs)", ""]
    if not (q and "rows" in q):
        return [*lines, _section_missing(results, "query"), ""]
    lines += [
        "Before: the naive version (index scans off for its main query, as with only "
        "primary keys indexed; a COUNT for the paginator; OFFSET; one query per nested "
        "object). After: the app's own QuerySet methods, search and stats functions.",
        "",
    ]
    lines += _table(
        ["Query", "Before (ms)", "After (ms)", "Improvement", "Queries before / after"],
        [
            [
                f"{r['title']}" + (f" (`{r['arg']}`)" if r["arg"] else ""),
                _ms(r["naive"]["median_ms"]),
                _ms(r["ours"]["median_ms"]),
                _x(r["improvement"]),
                f"{r['naive']['queries']} / {r['ours']['queries']}",
            ]
            for r in q["rows"]
        ],
    )
    return [*lines, *_pagination_table(q["depth"])]


def _pagination_table(d: dict) -> list[str]:
    """The key-set cursor against OFFSET, on the first page and a deep one."""
    deep = d["deep_page"]
    return _table(
        ["Pagination (listed agents by rating)", "Page 1 (ms)", f"Page {deep} (ms)", "Deep / first"],  # noqa: E501
        [
            ["Key-set cursor (aios/pagination.py)", _ms(d["cursor_page_1"]["median_ms"]),
             _ms(d[f"cursor_page_{deep}"]["median_ms"]), _x(d["cursor_deep_over_first"])],
            ["OFFSET", _ms(d["offset_page_1"]["median_ms"]),
             _ms(d[f"offset_page_{deep}"]["median_ms"]), _x(d["offset_deep_over_first"])],
        ],
    )  # fmt: skip


def _endpoints_section(results: dict, e) -> list[str]:
    lines = ["## 2. Endpoints (gunicorn, wrk)", ""]
    if not (e and e.get("rows")):
        return [*lines, _section_missing(results, "endpoints"), ""]
    n = e["connections"][-1]
    return [
        *lines,
        f"Interleaved in one run: {e['rounds']} round(s) of {e['duration_s']} s per variant "
        f"and connection count; medians of the rounds. Ratios are req/s over the floor's "
        f"req/s in the same rounds. Before = naive DRF (bench/naive.py); after = the app, "
        f"uncached (CACHE_ENABLED=false) and warm (cache filled). Cold = single requests "
        f"right after the cache was emptied.",
        "",
        *_latency_part(e),
        *_throughput_part(e, n),
        *_writes_part(e, n),
        *_endpoint_failures(e),
    ]


def _latency_part(e: dict) -> list[str]:
    """Latency at 1 connection: naive, uncached, cold and warm, and the floor's."""
    lines = ["### Latency at 1 connection (ms)", ""]
    lines += _table(
        [
            "Endpoint",
            "Before: naive p50 / p99",
            "After, uncached p50 / p99",
            "After, cold p50 / p95 / p99",
            "After, warm p50 / p95 / p99",
            "Warm hit rate (app metrics)",
            "Improvement (p50, warm)",
        ],
        [_latency_row(r) for r in e["rows"]],
    )
    floor = next((r["c1"]["floor"] for r in e["rows"] if "c1" in r), None)
    if floor:
        lines += [
            f"Floor at 1 connection: p50 {_ms(floor['p50_ms'])} ms, {floor['rps']:.0f} req/s.",
            "",
        ]
    return lines


def _latency_row(r: dict) -> list:
    if "not_measured" in r:
        return [r["title"], f"not measured: {r['not_measured']}", "", "", "", "", ""]
    c1 = r["c1"]
    naive = c1.get("naive")
    before = f"{_ms(naive['p50_ms'])} / {_ms(naive['p99_ms'])}" if naive else "-"
    improvement = _x(round(naive["p50_ms"] / c1["ours_warm"]["p50_ms"], 1)) if naive else "-"
    return [
        r["title"],
        before,
        f"{_ms(c1['ours_uncached']['p50_ms'])} / {_ms(c1['ours_uncached']['p99_ms'])}",
        f"{_ms(r['cold']['p50_ms'])} / {_ms(r['cold']['p95_ms'])} / {_ms(r['cold']['p99_ms'])}",
        f"{_ms(c1['ours_warm']['p50_ms'])} / {_ms(c1['ours_warm']['p95_ms'])} / {_ms(c1['ours_warm']['p99_ms'])}",  # noqa: E501
        _pct(c1["ours_warm"].get("cache_hit_rate")),
        improvement,
    ]


def _throughput_part(e: dict, n: int) -> list[str]:
    """Throughput at n connections, each variant's req/s with its ratio to the floor."""
    rows = []
    for r in e["rows"]:
        if "not_measured" in r:
            continue
        level = r[f"c{n}"]
        naive = level.get("naive")
        rows.append(
            [
                r["title"],
                f"{naive['rps']:.0f} ({_x(naive['ratio_to_floor'])})" if naive else "-",
                f"{level['ours_uncached']['rps']:.0f} ({_x(level['ours_uncached']['ratio_to_floor'])})",  # noqa: E501
                f"{level['ours_warm']['rps']:.0f} ({_x(level['ours_warm']['ratio_to_floor'])})",
                f"{level['floor']['rps']:.0f}",
                f"{_ms(level['ours_warm']['p95_ms'])} / {_ms(level['ours_warm']['p99_ms'])}",
            ]
        )
    return [
        f"### Throughput at {n} connections (req/s, ratio to the floor)",
        "",
        *_table(
            [
                "Endpoint",
                "Before: naive",
                "After, uncached",
                "After, warm",
                "Floor",
                "Warm p95 / p99 (ms)",
            ],
            rows,
        ),
    ]


def _writes_part(e: dict, n: int) -> list[str]:
    """The signed-in POSTs measured, then a line for each write not measured."""
    lines = []
    writes = [w for w in e.get("writes", []) if "not_measured" not in w]
    if writes:
        lines += [
            "### Writes (POST, signed in)",
            "",
            "wrk posts through bench/mix.lua with a one-operation mix: each request a "
            "(bench user, agent) pair with no installation (review) yet, so every POST "
            "creates one (201); production server (cache on: each write retires the copies "
            "it changes); interleaved with the floor; removed afterwards through the services.",
            "",
        ]
        lines += _table(
            ["Write", "p50 / p99 at 1 conn. (ms)", f"req/s at {n} conn.", "Ratio to floor",
             "Floor", "Statuses"],
            [
                [
                    w["title"],
                    f"{_ms(w['c1']['ours']['p50_ms'])} / {_ms(w['c1']['ours']['p99_ms'])}",
                    f"{w[f'c{n}']['ours']['rps']:.0f}",
                    _x(w[f"c{n}"]["ours"]["ratio_to_floor"]),
                    f"{w[f'c{n}']['floor']['rps']:.0f}",
                    ", ".join(f"{k} {v}" for k, v in w["statuses"].items() if v)
                    + (f" ({w['note']})" if w.get("note") else ""),
                ]
                for w in writes
            ],
        )  # fmt: skip
    for w in e.get("writes", []):
        if "not_measured" in w:
            lines += [f"{w['title']}: not measured: {w['not_measured']}.", ""]
    return lines


def _endpoint_failures(e: dict) -> list[str]:
    """Every variant and connection count with non-2xx/3xx responses or socket errors."""
    failures = [
        f"{r['title']} / {variant} at {level}: {data['errors']} of {data['requests']}"
        for r in e["rows"]
        if "not_measured" not in r
        for level in (k for k in r if k.startswith("c") and k[1:].isdigit())
        for variant, data in r[level].items()
        if data.get("errors")
    ]
    return [
        "Non-2xx/3xx or socket errors during these runs: "
        + ("; ".join(failures) if failures else "none")
        + ".",
        "",
    ]


def _load_section(results: dict, load) -> list[str]:
    lines = ["## 3. Load test (mixed traffic)", ""]
    if not (load and "rps" in load):
        return [*lines, _section_missing(results, "load", load), ""]
    cache = load.get("cache") or {}
    mix = ", ".join(f"{o['op']} {o['share']:.0%}" for o in load["ops"])
    warmup_s = results.get("config", {}).get("load_warmup_s", "?")
    lines += _load_summary(load, cache)
    lines += [
        f"Mix ({load['write_share']:.0%} writes, Zipf popularity): {mix}.",
        "",
        f"Measured over {load['duration_s']} s, after a warm-up of the same mix "
        f"({load['warmup_requests']} requests over {warmup_s} s): the steady state, not "
        "the first seconds after a deployment.",
        "",
    ]
    lines += _load_namespaces(load, cache)
    lines += _load_scopes(cache)
    lines += [
        f"Status classes: {load['status']}; socket errors: {load['socket_errors']}.",
        "",
        f"Cache hit rate source: {cache.get('source', '-')}",
        "",
    ]
    if load.get("skipped_ops"):
        skipped = "; ".join(f"{o['op']} ({o['reason']})" for o in load["skipped_ops"])
        lines += [f"Left out of the mix: {skipped}.", ""]
    lines += [f"Writes undone after the run through the services: {load['undone']}.", ""]
    return [*lines, *_load_read_only(load.get("read_only"))]


def _load_summary(load: dict, cache: dict) -> list[str]:
    """The load test's figures beside the origin report's."""
    return _table(
        ["", "Report", "Measured"],
        [
            ["Connections", "-", load["connections"]],
            ["Throughput (req/s)", REPORT_FIGURES["load_rps"], f"{load['rps']:.0f}"],
            ["p50 (ms)", "-", _ms(load["p50_ms"])],
            ["p95 (ms)", REPORT_FIGURES["load_p95_ms"], _ms(load["p95_ms"])],
            ["p99 (ms)", REPORT_FIGURES["load_p99_ms"], _ms(load["p99_ms"])],
            [
                "Error rate",
                "-",
                f"{_pct(load['error_rate'])} ({load['errors']} of {load['requests']})",
            ],
            ["Cache hit rate", _pct(REPORT_FIGURES["hit_rate"]), _pct(cache.get("hit_rate"))],
            [
                f"Floor at {load['connections']} connections, right after (req/s)",
                "-",
                f"{(load.get('floor') or {}).get('rps', 0):.0f}",
            ],
            ["Mix / floor (req/s)", "-", _x(load.get("ratio_to_floor"))],
        ],
    )


def _load_namespaces(load: dict, cache: dict) -> list[str]:
    """Cache look-ups by namespace, each with the operations that read it."""
    readers = {}
    for op, (namespace, scope) in READ_SCOPES.items():
        readers.setdefault(namespace, []).append(
            f"{op} ({scope.replace('_', '-')}, {load.get('requests_by_op', {}).get(op, 0)})"
        )
    ns_rows = [
        [ns, f"{v['hits']:.0f}", f"{v['misses']:.0f}", _pct(v["hit_rate"]),
         ", ".join(readers.get(ns, ["-"]))]
        for ns, v in (cache.get("per_namespace") or {}).items()
    ]  # fmt: skip
    if not ns_rows:
        return []
    return [
        "Cache look-ups over the measured run, by namespace (the app's metrics):",
        "",
        *_table(
            ["Namespace", "Hits", "Misses", "Hit rate",
             "Read by (scope, requests sent in the run)"],
            ns_rows,
        ),
    ]  # fmt: skip


def _load_scopes(cache: dict) -> list[str]:
    """Shared and per-user reads' hit rates (bounds where a namespace holds both)."""
    scope_rows = [
        [
            name,
            " + ".join(v["namespaces"]),
            v["lookups"],
            _pct(v["hit_rate_namespaces"]),
            _pct(v["hit_rate_low"])
            if v["hit_rate_low"] == v["hit_rate_high"]
            else f"{_pct(v['hit_rate_low'])} to {_pct(v['hit_rate_high'])}",
        ]
        for name, v in (cache.get("scopes") or {}).items()
    ]
    if not scope_rows:
        return []
    return [
        "Shared copies (made for everyone) and per-user ones. The app sends no cache "
        "header (X-Cache) to count by response, and its metrics count by namespace: "
        "`agent` holds both the anonymous detail (shared) and the signed-in one (per "
        "user, policy per_user=True). Its look-ups are split by the mix's own count "
        "of requests per operation; its hits cannot be, so the scope's own rate is "
        "given as bounds (at worst every hit went to the other scope, at best all to "
        "this one) beside the plain rate of the namespaces it reads.",
        "",
        *_table(
            ["Scope", "Namespaces", "Look-ups (est.)", "Hit rate of the namespaces",
             "Hit rate of the scope's own reads"],
            scope_rows,
        ),
    ]  # fmt: skip


def _load_read_only(ro) -> list[str]:
    """The diagnostic run of the mix without its writes, if there was one."""
    if not ro:
        return []
    return [
        f"The same mix without its writes (10 s, diagnostic): {ro['rps']:.0f} req/s, "
        f"p95 {_ms(ro['p95_ms'])} ms, p99 {_ms(ro['p99_ms'])} ms, cache hit rate "
        f"{_pct(ro['cache_hit_rate'])}, {ro['errors']} errors: the difference is what "
        "the writes' cache invalidation costs.",
        "",
    ]


def _workers_section(results: dict, workers) -> list[str]:
    lines = ["## 3b. Worker model (the load mix under sync and gthread workers)", ""]
    if not (workers and workers.get("rows")):
        return [*lines, _section_missing(results, "workers", workers), ""]
    lines += [
        f"The same mix at {workers['connections']} connections, one fresh server per model: "
        f"{workers['warmup_s']} s of warm-up, then {workers['duration_s']} s measured, the "
        "writes undone. sync workers close every connection after its response; gthread "
        "keeps them alive (keepalive 5 s).",
        "",
    ]
    return lines + _table(
        ["Model", "Processes x threads", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Errors"],
        [
            [r["title"], f"{r['worker_processes']} x {r['threads']}", f"{r['rps']:.0f}",
             _ms(r["p50_ms"]), _ms(r["p95_ms"]), _ms(r["p99_ms"]),
             f"{r['errors']} of {r['requests']}"]
            for r in workers["rows"]
        ],
    )  # fmt: skip


def _edge_section(results: dict, edge) -> list[str]:
    lines = ["## 3c. The edge cache (the load mix through Varnish beside the app alone)", ""]
    if not (edge and edge.get("runs")):
        return [*lines, _section_missing(results, "edge", edge), ""]
    summary = edge["summary"]
    lines += [
        f"One gunicorn purging one varnishd (deploy/varnish/default.vcl), the load mix at "
        f"{edge['connections']} connections sent alternately through the edge and straight at "
        f"the app: {edge['warmup_s']} s of warm-up each, then {edge['duration_s']} s per run, "
        "the writes undone. Anonymous reads may be answered by the edge; signed-in reads and "
        "writes pass through it. Through the edge: "
        f"{_x(summary['rps_ratio'])} the app's req/s; the edge answered "
        f"{_pct(summary['edge']['hit_ratio'])} of all requests and "
        f"{_pct(summary['edge']['hit_ratio_anonymous'])} of the anonymous reads itself.",
        "",
    ]
    rows = []
    for r in edge["runs"]:
        p = r["purges"]
        delay = "-" if p["delay_mean_ms"] is None else f"{_ms(p['delay_mean_ms'])} ms"
        if p["delay_p95_ms_at_most"] is not None:
            delay += f" (p95 <= {_ms(p['delay_p95_ms_at_most'])} ms)"
        rows.append(
            [
                "through the edge" if r["target"] == "edge" else "app alone",
                f"{r['rps']:.0f}",
                _ms(r["p50_ms"]),
                _ms(r["p95_ms"]),
                _ms(r["p99_ms"]),
                f"{r['errors']} of {r['requests']}",
                _pct(r["hit_ratio"]) if r["target"] == "edge" else "-",
                f"{p['purges_ok']} ok, {p['purges_failed']} failed, {delay}",
            ]
        )
    return lines + _table(
        ["Run", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Errors", "Edge hits",
         "Purges (write to confirmation)"],
        rows,
    )  # fmt: skip


def _compression_part(results: dict, comp) -> list[str]:
    if not (comp and comp.get("rows")):
        return [_section_missing(results, "compression", comp), ""]
    rows = []
    for r in comp["rows"]:
        if "not_measured" in r:
            rows.append([r["key"], f"not measured: {r['not_measured']}", "", ""])
            continue
        gz = _pct(r["gzip_saving"]) if r["gzip_saving"] is not None else "not compressed"
        br = _pct(r["brotli_saving"]) if r["brotli_saving"] is not None else "not compressed"
        if "offline_gzip6_saving" in r:
            gz += f" (offline gzip -6: {_pct(r['offline_gzip6_saving'])})"
            br += f" (offline brotli q5: {_pct(r['offline_brotli5_saving'])})"
        rows.append([r["title"], r["identity_bytes"], gz, br])
    return _table(["Response (as served)", "Bytes", "gzip saving", "brotli saving"], rows)


def _memory_part(results: dict, mem) -> list[str]:
    if not (mem and mem.get("workers")):
        return [_section_missing(results, "memory", mem), ""]
    per = ", ".join(f"{w['VmRSS_mb']:.0f}" for w in mem["workers"])
    pss = ", ".join(f"{w.get('Pss_mb', 0):.0f}" for w in mem["workers"])
    return [
        f"Memory per gunicorn worker after {mem['after']}: RSS {per} MB (max "
        f"{mem['max_rss_mb']} MB; the report: {REPORT_FIGURES['rss_mb']} MB); PSS (shared "
        f"pages split between processes) {pss} MB; master {mem['master_rss_mb']} MB.",
        "",
    ]


def _scale_part(results: dict, scale) -> list[str]:
    if not (scale and "growth_10x_over_bench" in scale):
        return [_section_missing(results, "scale", scale), ""]
    b, t = scale["bench"], scale["10x"]
    rows = []
    for key in ("agent_list", "search", "stats"):
        be = b.get("endpoints_uncached_c1", {}).get(key, {})
        te = t.get("endpoints_uncached_c1", {}).get(key, {})
        rows.append(
            [
                key,
                _ms(b["queries"][key]["median_ms"]),
                _ms(t["queries"][key]["median_ms"]),
                _ms(be.get("p50_ms")),
                _ms(te.get("p50_ms")),
            ]
        )
    return [
        f"Scale: {b['agents']} vs {t['agents']} agents (search term `{scale['term']}`).",
        "",
        *_table(
            [
                "",
                "Query, bench (ms)",
                "Query, 10x (ms)",
                "Endpoint p50 uncached, bench",
                "Endpoint p50 uncached, 10x",
            ],
            rows,
        ),
    ]


def _harness_errors_section(results: dict) -> list[str]:
    if not results.get("errors"):
        return []
    lines = ["## Harness errors", ""]
    for name, text in results["errors"].items():
        lines += [f"- {name}: `{text.strip().splitlines()[-1]}`"]
    return [*lines, ""]


def _method_section() -> list[str]:
    return [
        "## Method and caveats",
        "",
        "- gunicorn runs `aios/gunicorn.conf.py` with `bench.settings`: production settings "
        "(DEBUG off, a random secret key, the same middleware) plus the /naive/ and /floor/ "
        "routes. Two deliberate differences: throttle rates are raised (every request comes "
        "from 127.0.0.1; the throttle classes still run) and the psycopg pool is 1 + 2 "
        "connections per worker (a sync worker holds one; the production minimum of 20 per "
        "worker would exhaust this shared PostgreSQL).",
        "- Naive queries run with index scans disabled for their main statement (as if only "
        "primary keys were indexed), a COUNT for LimitOffset, and one query per nested object.",
        "- Cold = one request right after the bench Redis database was emptied (a true miss, "
        "which also fills the cache). Uncached = a second gunicorn with CACHE_ENABLED=false.",
        "- The mix draws agents, categories and search terms Zipf-distributed (s = 1) by "
        "popularity; search terms are the commonest words of agent names, commonest first, so "
        "broad searches dominate (pessimistic for search). Signed-in requests use 200 seeded "
        "users' tokens; reviews go to (user, agent) pairs without a review, so no 409 is "
        "expected. Writes are undone afterwards through the services.",
        "- The hit path's per-client budget (RESPONSE_CACHE_HIT_RATE) is raised like the "
        "throttles: every request comes from one address. The hit path itself and "
        "COUNTER_STALENESS (30 s) keep their defaults.",
        "- gunicorn's `max_requests` recycling (production setting) stays on: a recycled "
        "worker's first requests are part of the figures.",
        "",
    ]


def _reproduce_section() -> list[str]:
    return [
        "## Reproduce",
        "",
        "`make bench` (add `BENCH_ARGS=--with-10x` for the scale section; `make bench-smoke` "
        "checks the harness in seconds). `DATABASE_URL` and `REDIS_URL` choose the servers "
        "(defaults `postgres://postgres@127.0.0.1:5432/aios_bench`, `redis://127.0.0.1:6379/8`); "
        "the data set is seeded once and reused.",
        "",
    ]


def _section_missing(results, name, data=None) -> str:
    if data and data.get("not_measured"):
        return f"Not measured: {data['not_measured']}."
    if name in results.get("errors", {}):
        return "Not measured: the harness failed in this section (see Harness errors)."
    return "Not measured: section not run (see `--sections`)."
