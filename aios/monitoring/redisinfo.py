"""Redis memory and key counts, read when Prometheus scrapes (absent without Redis)."""

import redis
from prometheus_client.core import GaugeMetricFamily

from aios import redis_ha

NAMES = (
    "aios_redis_up",
    "aios_redis_used_memory_bytes",
    "aios_redis_maxmemory_bytes",
    "aios_redis_keys",
)


class RedisInfoCollector:
    """`INFO memory` and `DBSIZE` of the app's Redis database (the master, with Sentinel),
    with a 0.25 s budget."""

    def collect(self):
        up = GaugeMetricFamily("aios_redis_up", "1 when Redis answered the scrape's INFO.")
        try:
            client = redis_ha.client(socket_timeout=0.25, socket_connect_timeout=0.25)
            with client.pipeline(transaction=False) as pipe:
                memory, keys = pipe.info("memory").dbsize().execute()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "aios_redis_used_memory_bytes",
            "Memory Redis uses (INFO memory used_memory).",
            value=memory["used_memory"],
        )
        yield GaugeMetricFamily(
            "aios_redis_maxmemory_bytes",
            "Redis maxmemory (0: no limit).",
            value=memory.get("maxmemory", 0),
        )
        yield GaugeMetricFamily(
            "aios_redis_keys", "Keys in the app's Redis database (DBSIZE).", value=keys
        )


def collectors() -> list:
    return [RedisInfoCollector()] if redis_ha.configured() else []
