import re

import pytest
import redis
from django.conf import settings as django_settings


def _value(body: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else None


@pytest.mark.redis
def test_metrics_report_redis_memory_and_keys(client):
    client_ = redis.Redis.from_url(django_settings.REDIS_URL)
    client_.set("aios-test:redisinfo", "1")
    body = client.get("/metrics").content.decode()
    assert _value(body, "aios_redis_up") == 1
    assert _value(body, "aios_redis_used_memory_bytes") > 0
    # The monitoring window writes keys every second, so DBSIZE moves a little meanwhile.
    assert _value(body, "aios_redis_keys") >= 1
    assert abs(_value(body, "aios_redis_keys") - client_.dbsize()) <= 5


def test_redis_metrics_are_absent_without_redis(client, settings):
    settings.REDIS_URL = ""
    body = client.get("/metrics").content.decode()
    assert "aios_redis_" not in body


def test_an_unreachable_redis_reports_down_and_no_figures(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = client.get("/metrics").content.decode()
    assert _value(body, "aios_redis_up") == 0
    assert _value(body, "aios_redis_used_memory_bytes") is None
