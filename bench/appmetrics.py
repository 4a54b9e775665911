"""The app's own metrics (/metrics, issue 6): cache hits and misses over a run."""

import re

from django.urls import Resolver404, resolve


def _route_exists(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)")


def _metric_sums(text: str) -> dict[str, float]:
    sums = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and "cache" in match.group(1):
            try:
                value = float(match.group(3))
            except ValueError:
                continue
            sums[match.group(1)] = sums.get(match.group(1), 0.0) + value
    return sums


def metrics_text(server) -> str | None:
    if not _route_exists("/metrics"):
        return None
    status, _, body = server.get("/metrics")
    return body.decode(errors="replace") if status == 200 else None


def app_cache_counts(text: str) -> dict[tuple[str, str], float]:
    """{(namespace, hit|miss): count} from the app's aios_cache_requests_total."""
    counts = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) != "aios_cache_requests_total":
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        key = (labels.get("namespace", "?"), labels.get("result", "?"))
        counts[key] = counts.get(key, 0.0) + float(match.group(3))
    return counts


def hit_rate(before: str, after: str) -> dict | None:
    old, new = app_cache_counts(before), app_cache_counts(after)
    delta = {k: v - old.get(k, 0.0) for k, v in new.items()}
    if delta:
        hits = sum(v for (_, result), v in delta.items() if result == "hit")
        misses = sum(v for (_, result), v in delta.items() if result == "miss")
        per_namespace = {}
        for namespace in sorted({ns for ns, _ in delta}):
            h, m = delta.get((namespace, "hit"), 0.0), delta.get((namespace, "miss"), 0.0)
            if h + m:
                per_namespace[namespace] = {
                    "hits": h,
                    "misses": m,
                    "hit_rate": round(h / (h + m), 4),
                }
        if hits + misses > 0:
            return {
                "hit_rate": round(hits / (hits + misses), 4),
                "hits": hits,
                "misses": misses,
                "per_namespace": per_namespace,
                "source": "the app's metrics (/metrics, aios_cache_requests_total by namespace "
                "and result; deltas over the measured run)",
            }
    # Otherwise a hits/misses pair of counters, e.g. django-prometheus's cache metrics.
    old, new = _metric_sums(before), _metric_sums(after)
    delta = {k: new[k] - old.get(k, 0.0) for k in new}
    pairs = []
    for name in sorted(delta):
        if "hit" in name and "rate" not in name:
            miss = name.replace("hits", "misses").replace("hit", "miss")
            if miss in delta and miss != name:
                pairs.append((name, miss))
    if not pairs:
        return None
    hits_name, miss_name = pairs[0]
    hits, misses = delta[hits_name], delta[miss_name]
    if hits + misses <= 0:
        return None
    return {
        "hit_rate": round(hits / (hits + misses), 4),
        "hits": hits,
        "misses": misses,
        "source": f"app metrics (/metrics: {hits_name} / {miss_name}, deltas over the run)",
    }
