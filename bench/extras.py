"""Sections "compression" and "memory"."""

import gzip
from pathlib import Path

import brotli

from .endpoints import ENDPOINTS, fill, headers_for, route_exists

COMPRESSED_ENDPOINTS = (
    "agent_list",
    "featured",
    "stats",
    "agent_detail",
    "search",
    "page_home",
    "page_agent",
)


def _size(server, path, headers, encoding):
    status, response_headers, body = server.get(path, {**headers, "Accept-Encoding": encoding})
    return status, response_headers.get("content-encoding", "identity"), len(body)


def compression(*, fx, server, slug) -> dict:
    """Bytes on the wire for the same response with identity, gzip and brotli accepted."""
    rows = []
    for endpoint in ENDPOINTS:
        if endpoint.key not in COMPRESSED_ENDPOINTS:
            continue
        path = fill(endpoint.ours, fx, slug)
        if not route_exists(path):
            rows.append({"key": endpoint.key, "not_measured": f"{path} does not exist yet"})
            continue
        headers = headers_for(endpoint, fx)
        server.get(path, headers)  # warm
        status, _, raw = _size(server, path, headers, "identity")
        if status != 200:
            rows.append({"key": endpoint.key, "not_measured": f"{path} answered {status}"})
            continue
        row = {"key": endpoint.key, "title": endpoint.title, "path": path, "identity_bytes": raw}
        for name, accept in (("gzip", "gzip"), ("brotli", "br")):
            _, encoding, size = _size(server, path, headers, accept)
            row[f"{name}_encoding"] = encoding
            row[f"{name}_bytes"] = size
            row[f"{name}_saving"] = round(1 - size / raw, 4) if encoding != "identity" else None
        if row["gzip_saving"] is None or row["brotli_saving"] is None:
            # The server sent it uncompressed: show what the codecs would give, labelled.
            body = server.get(path, {**headers, "Accept-Encoding": "identity"})[2]
            row["offline_gzip6_saving"] = round(1 - len(gzip.compress(body, 6)) / len(body), 4)
            row["offline_brotli5_saving"] = round(
                1 - len(brotli.compress(body, quality=5)) / len(body), 4
            )
        rows.append(row)
    return {"rows": rows}


def _status_kib(pid: int) -> dict:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            values[key] = int(rest.split()[0])
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                values["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return values


def memory(*, server, after: str) -> dict:
    """RSS (and PSS: shared pages split between the workers) of each gunicorn worker."""
    workers = []
    for pid in server.worker_pids():
        try:
            kib = _status_kib(pid)
        except OSError:
            continue  # a worker recycled (max_requests) in between
        workers.append({"pid": pid, **{f"{k}_mb": round(v / 1024, 1) for k, v in kib.items()}})
    master = _status_kib(server.process.pid)
    rss = [w["VmRSS_mb"] for w in workers]
    return {
        "after": after,
        "workers": workers,
        "max_rss_mb": max(rss) if rss else None,
        "mean_rss_mb": round(sum(rss) / len(rss), 1) if rss else None,
        "master_rss_mb": round(master["VmRSS"] / 1024, 1),
    }
