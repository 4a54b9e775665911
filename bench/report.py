"""bench/results/REPORT.md from results.json: the report's tables, before / after / improvement."""

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


def evaluate_targets(results: dict) -> list[dict]:
    """Each target of issue 7 with met / missed / not measured."""
    sections = results.get("sections", {})
    out = []
    endpoints = _rows_by_key(sections.get("endpoints"))
    n = (sections.get("endpoints") or {}).get("connections", [1, None])[-1]
    for key in ("agent_list", "featured", "stats", "agent_detail", "page_home", "page_agent"):
        row = endpoints.get(key)
        name = f"cached {key}: >= 0.85x floor req/s, p50 < 2 ms at 1 connection"
        if not row or "not_measured" in row:
            out.append(_target(name, (row or {}).get("not_measured", "not measured"), None))
            continue
        ratio = row[f"c{n}"]["ours_warm"]["ratio_to_floor"]
        p50 = row["c1"]["ours_warm"]["p50_ms"]
        met = None if ratio is None else ratio >= 0.85 and p50 < 2
        out.append(_target(name, f"{ratio}x, p50 {_ms(p50)} ms", met))
    row = endpoints.get("agent_list")
    if row and "not_measured" not in row:
        ratio = row[f"c{n}"]["ours_uncached"]["ratio_to_floor"]
        naive = row[f"c{n}"].get("naive", {}).get("ratio_to_floor")
        out.append(
            _target(
                "uncached agent list >= 0.30x floor",
                f"{ratio}x (naive DRF: {naive}x)",
                None if ratio is None else ratio >= 0.30,
            )
        )
    row = endpoints.get("search")
    if row and "not_measured" not in row:
        p50 = row["c1"]["ours_uncached"]["p50_ms"]
        out.append(
            _target(
                "search p50 < 15 ms, 1 connection (uncached)",
                f"{_ms(p50)} ms (warm {_ms(row['c1']['ours_warm']['p50_ms'])} ms)",
                p50 < 15,
            )
        )
    else:
        out.append(_target("search p50 < 15 ms", "not measured", None))
    row = endpoints.get("stats")
    if row and "not_measured" not in row:
        warm, cold = row["c1"]["ours_warm"]["p50_ms"], row["cold"]["p50_ms"]
        out.append(_target("stats < 2 ms warm", f"{_ms(warm)} ms", warm < 2))
        out.append(_target("stats < 20 ms cold", f"{_ms(cold)} ms", cold < 20))
    queries = sections.get("query") or {}
    for row in queries.get("rows", []):
        if not row.get("report_row", True):
            continue
        ms = row["ours"]["median_ms"]
        out.append(_target(f"query '{row['title']}' < 5 ms", f"{_ms(ms)} ms", ms < 5))
    depth = queries.get("depth")
    if depth:
        ratio = depth["cursor_deep_over_first"]
        out.append(
            _target(
                f"cursor page {depth['deep_page']} within 1.2x of page 1",
                f"{ratio}x (OFFSET: {depth['offset_deep_over_first']}x)",
                ratio is not None and ratio <= 1.2,
            )
        )
    load = sections.get("load") or {}
    if "rps" in load:
        hit = (load.get("cache") or {}).get("hit_rate")
        out += [
            _target(
                "load: 0 errors", f"{load['errors']} of {load['requests']}", load["errors"] == 0
            ),
            _target("load: p95 < 100 ms", f"{_ms(load['p95_ms'])} ms", load["p95_ms"] < 100),
            _target("load: p99 < 200 ms", f"{_ms(load['p99_ms'])} ms", load["p99_ms"] < 200),
            _target("load: >= 1,000 req/s", f"{load['rps']:.0f}", load["rps"] >= 1000),
            _target(
                "load: cache hit rate >= 90 %",
                _pct(hit),
                None if hit is None else hit >= 0.90,
                (load.get("cache") or {}).get("source", ""),
            ),
        ]
    else:
        out.append(_target("load test targets", load.get("not_measured", "not measured"), None))
    for row in (sections.get("compression") or {}).get("rows", []):
        # The report's figures are for a 20-agent listing; smaller bodies are shown, not judged.
        if "not_measured" in row or row["key"] not in ("agent_list", "search"):
            continue
        for codec, goal in (("brotli", 0.74), ("gzip", 0.68)):
            saving = row[f"{codec}_saving"]
            out.append(
                _target(
                    f"{codec} >= {goal:.0%} smaller: {row['key']}",
                    _pct(saving) if saving is not None else "served uncompressed",
                    saving is not None and saving >= goal,
                )
            )
    mem = sections.get("memory") or {}
    if mem.get("max_rss_mb") is not None:
        out.append(
            _target(
                "RSS per worker < 150 MB", f"max {mem['max_rss_mb']} MB", mem["max_rss_mb"] < 150
            )
        )
    growth = (sections.get("scale") or {}).get("growth_10x_over_bench")
    if growth:
        for key, ratio in growth.items():
            out.append(_target(f"flat at 10x data: {key} (<= 1.5x)", f"{ratio}x", ratio <= 1.5))
    return out


def _mark(met) -> str:
    return "not measured" if met is None else "met" if met else "**missed**"


def render(results: dict) -> str:
    s = results.get("sections", {})
    m = results.get("machine", {})
    lines = [
        "# Performance report (`make bench`)",
        "",
        f"Generated {results['finished_at']} by `{results['command']}` "
        f"({'SMOKE run: small data, seconds per section, figures mean nothing' if results['smoke'] else 'full run'}). "  # noqa: E501
        "Every figure below is in `results.json` beside this file; query plans are in `plans/`.",
        "",
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
                ["gunicorn", f"{m.get('gunicorn_workers')} sync workers (aios/gunicorn.conf.py)"],
                ["Load generator", f"{m.get('load_generator')}, 1 thread, same machine"],
                ["Data", results.get("data", "")],
            ],
        ),
        m.get("note", ""),
        "",
    ]

    targets = results.get("targets", [])
    if targets:
        lines += ["## Targets (issue 7)", ""]
        lines += _table(
            ["Target", "Measured", "Result"],
            [[t["target"], t["measured"], _mark(t["met"])] for t in targets],
        )
        met = sum(1 for t in targets if t["met"])
        missed = sum(1 for t in targets if t["met"] is False)
        lines += [f"{met} met, {missed} missed, {len(targets) - met - missed} not measured.", ""]

    q = s.get("query")
    lines += ["## 1. Queries (in-process, median of warm runs)", ""]
    if q and "rows" in q:
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
        d = q["depth"]
        deep = d["deep_page"]
        lines += _table(
            ["Pagination (listed agents by rating)", "Page 1 (ms)", f"Page {deep} (ms)", "Deep / first"],  # noqa: E501
            [
                ["Key-set cursor (aios/pagination.py)", _ms(d["cursor_page_1"]["median_ms"]),
                 _ms(d[f"cursor_page_{deep}"]["median_ms"]), _x(d["cursor_deep_over_first"])],
                ["OFFSET", _ms(d["offset_page_1"]["median_ms"]),
                 _ms(d[f"offset_page_{deep}"]["median_ms"]), _x(d["offset_deep_over_first"])],
            ],
        )  # fmt: skip
    else:
        lines += [_section_missing(results, "query"), ""]

    e = s.get("endpoints")
    lines += ["## 2. Endpoints (gunicorn, wrk)", ""]
    if e and e.get("rows"):
        n = e["connections"][-1]
        lines += [
            f"Interleaved in one run: {e['rounds']} round(s) of {e['duration_s']} s per variant "
            f"and connection count; medians of the rounds. Ratios are req/s over the floor's "
            f"req/s in the same rounds. Before = naive DRF (bench/naive.py); after = the app, "
            f"uncached (CACHE_ENABLED=false) and warm (cache filled). Cold = single requests "
            f"right after the cache was emptied.",
            "",
            "### Latency at 1 connection (ms)",
            "",
        ]
        rows = []
        for r in e["rows"]:
            if "not_measured" in r:
                rows.append([r["title"], f"not measured: {r['not_measured']}", "", "", "", "", ""])
                continue
            c1 = r["c1"]
            naive = c1.get("naive")
            before = f"{_ms(naive['p50_ms'])} / {_ms(naive['p99_ms'])}" if naive else "-"
            improvement = (
                _x(round(naive["p50_ms"] / c1["ours_warm"]["p50_ms"], 1)) if naive else "-"
            )
            rows.append(
                [
                    r["title"],
                    before,
                    f"{_ms(c1['ours_uncached']['p50_ms'])} / {_ms(c1['ours_uncached']['p99_ms'])}",
                    f"{_ms(r['cold']['p50_ms'])} / {_ms(r['cold']['p95_ms'])} / {_ms(r['cold']['p99_ms'])}",  # noqa: E501
                    f"{_ms(c1['ours_warm']['p50_ms'])} / {_ms(c1['ours_warm']['p95_ms'])} / {_ms(c1['ours_warm']['p99_ms'])}",  # noqa: E501
                    _pct(c1["ours_warm"].get("cache_hit_rate")),
                    improvement,
                ]
            )
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
            rows,
        )
        floor = next((r["c1"]["floor"] for r in e["rows"] if "c1" in r), None)
        if floor:
            lines += [
                f"Floor at 1 connection: p50 {_ms(floor['p50_ms'])} ms, {floor['rps']:.0f} req/s.",
                "",
            ]
        lines += [f"### Throughput at {n} connections (req/s, ratio to the floor)", ""]
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
        lines += _table(
            [
                "Endpoint",
                "Before: naive",
                "After, uncached",
                "After, warm",
                "Floor",
                "Warm p95 / p99 (ms)",
            ],
            rows,
        )
        failures = [
            f"{r['title']} / {variant} at {level}: {data['errors']} of {data['requests']}"
            for r in e["rows"]
            if "not_measured" not in r
            for level in (k for k in r if k.startswith("c") and k[1:].isdigit())
            for variant, data in r[level].items()
            if data.get("errors")
        ]
        lines += [
            "Non-2xx/3xx or socket errors during these runs: "
            + ("; ".join(failures) if failures else "none")
            + ".",
            "",
        ]
    else:
        lines += [_section_missing(results, "endpoints"), ""]

    load = s.get("load")
    lines += ["## 3. Load test (mixed traffic)", ""]
    if load and "rps" in load:
        mix = ", ".join(f"{o['op']} {o['share']:.0%}" for o in load["ops"])
        cache = load.get("cache") or {}
        lines += _table(
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
            ],
        )
        warmup_s = results.get("config", {}).get("load_warmup_s", "?")
        per_ns = ", ".join(
            f"{ns} {_pct(v.get('hit_rate'))}"
            for ns, v in (cache.get("per_namespace") or {}).items()
        )
        lines += [
            f"Mix ({load['write_share']:.0%} writes, Zipf popularity): {mix}.",
            "",
            f"Measured over {load['duration_s']} s, after a warm-up of the same mix "
            f"({load['warmup_requests']} requests over {warmup_s} s): the steady state, not "
            "the first seconds after a deployment.",
            "",
            f"Hit rate by namespace: {per_ns or '-'}.",
            "",
            f"Status classes: {load['status']}; socket errors: {load['socket_errors']}.",
            "",
            f"Cache hit rate source: {cache.get('source', '-')}",
            "",
        ]
        if load.get("skipped_ops"):
            skipped = "; ".join(f"{o['op']} ({o['reason']})" for o in load["skipped_ops"])
            lines += [f"Left out of the mix: {skipped}.", ""]
        lines += [f"Writes undone after the run through the services: {load['undone']}.", ""]
        ro = load.get("read_only")
        if ro:
            lines += [
                f"The same mix without its writes (10 s, diagnostic): {ro['rps']:.0f} req/s, "
                f"p95 {_ms(ro['p95_ms'])} ms, p99 {_ms(ro['p99_ms'])} ms, cache hit rate "
                f"{_pct(ro['cache_hit_rate'])}, {ro['errors']} errors: the difference is what "
                "the writes' cache invalidation costs.",
                "",
            ]
    else:
        lines += [_section_missing(results, "load", load), ""]

    lines += ["## 4. Compression, memory, scale", ""]
    comp = s.get("compression")
    if comp and comp.get("rows"):
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
        lines += _table(["Response (as served)", "Bytes", "gzip saving", "brotli saving"], rows)
    else:
        lines += [_section_missing(results, "compression", comp), ""]
    mem = s.get("memory")
    if mem and mem.get("workers"):
        per = ", ".join(f"{w['VmRSS_mb']:.0f}" for w in mem["workers"])
        pss = ", ".join(f"{w.get('Pss_mb', 0):.0f}" for w in mem["workers"])
        lines += [
            f"Memory per gunicorn worker after {mem['after']}: RSS {per} MB (max "
            f"{mem['max_rss_mb']} MB; the report: {REPORT_FIGURES['rss_mb']} MB); PSS (shared "
            f"pages split between processes) {pss} MB; master {mem['master_rss_mb']} MB.",
            "",
        ]
    else:
        lines += [_section_missing(results, "memory", mem), ""]
    scale = s.get("scale")
    if scale and "growth_10x_over_bench" in scale:
        rows = []
        for key in ("agent_list", "search", "stats"):
            b, t = scale["bench"], scale["10x"]
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
        lines += [
            f"Scale: {scale['bench']['agents']} vs {scale['10x']['agents']} agents "
            f"(search term `{scale['term']}`).",
            "",
        ]
        lines += _table(
            [
                "",
                "Query, bench (ms)",
                "Query, 10x (ms)",
                "Endpoint p50 uncached, bench",
                "Endpoint p50 uncached, 10x",
            ],
            rows,
        )
    else:
        lines += [_section_missing(results, "scale", scale), ""]

    if results.get("errors"):
        lines += ["## Harness errors", ""]
        for name, text in results["errors"].items():
            lines += [f"- {name}: `{text.strip().splitlines()[-1]}`"]
        lines.append("")
    lines += [
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
        "- gunicorn's `max_requests` recycling (production setting) stays on: a recycled "
        "worker's first requests are part of the figures.",
        "",
        "## Reproduce",
        "",
        "`make bench` (add `BENCH_ARGS=--with-10x` for the scale section; `make bench-smoke` "
        "checks the harness in seconds). `DATABASE_URL` and `REDIS_URL` choose the servers "
        "(defaults `postgres://postgres@127.0.0.1:5432/aios_bench`, `redis://127.0.0.1:6379/8`); "
        "the data set is seeded once and reused.",
        "",
    ]
    return "\n".join(lines)


def _section_missing(results, name, data=None) -> str:
    if data and data.get("not_measured"):
        return f"Not measured: {data['not_measured']}."
    if name in results.get("errors", {}):
        return "Not measured: the harness failed in this section (see Harness errors)."
    return "Not measured: section not run (see `--sections`)."
