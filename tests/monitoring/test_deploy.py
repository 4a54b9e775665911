"""deploy/: Prometheus config, alert rules and the Grafana dashboard stay valid and true."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django_prometheus.middleware import Metrics
from prometheus_client import REGISTRY

import aios.monitoring.metrics  # noqa: F401  (registers the app's metrics)
from aios.monitoring import redisinfo

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "aios.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (.ci/run does)"
)

PROMQL_WORDS = {"by", "without", "and", "or", "unless", "offset", "on", "ignoring", "bool"}
PROMQL_WORDS |= {"group_left", "group_right", "inf", "nan"}


def _promtool(*args):
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_alert_rules_pass_promtool_check():
    assert "SUCCESS" in _promtool("check", "rules", "rules.yml")


@needs_promtool
def test_alerts_fire_on_their_causes_and_only_then():
    assert "SUCCESS" in _promtool("test", "rules", "rules.test.yml")


@needs_promtool
def test_prometheus_config_is_valid():
    assert "SUCCESS" in _promtool("check", "config", "--syntax-only", "prometheus.yml")


def _rules():
    return yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]


def test_every_alert_the_operators_asked_for_is_there():
    alerts = {r["alert"]: r for g in _rules() for r in g["rules"] if "alert" in r}
    assert {
        "AiosResponseTimeP95High",
        "AiosResponseTimeP99High",
        "AiosErrorRateHigh",
        "AiosCacheHitRateLow",
        "AiosDatabasePoolWaiters",
        "AiosSlowQueriesRising",
    } <= set(alerts)
    assert alerts["AiosDatabasePoolWaiters"]["for"] == "1m"


def exported_names() -> set[str]:
    """Every sample name the app can expose on /metrics."""
    Metrics.get_instance()  # django-prometheus's request metrics
    names = set(redisinfo.NAMES) | {"up"}  # `up` is Prometheus's own
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    words = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {w for w in words if w.lower() not in PROMQL_WORDS}


def test_metric_name_extraction_finds_metrics_and_skips_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le, view) (rate(a_bucket{view="x"}[5m])))'
        " / on (view) b_total offset 5m > 0.2 and c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_every_rule_reads_metrics_the_app_exports():
    recorded = {r["record"] for g in _rules() for r in g["rules"] if "record" in r}
    known = exported_names() | recorded
    for group in _rules():
        for rule in group["rules"]:
            missing = metric_names(rule["expr"]) - known
            assert not missing, f"{rule.get('alert') or rule.get('record')}: {missing}"


def test_dashboard_panels_chart_metrics_the_app_exports():
    dashboard = json.loads(DASHBOARD.read_text())
    recorded = {r["record"] for g in _rules() for r in g["rules"] if "record" in r}
    known = exported_names() | recorded
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    charted = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= known, (panel["title"], names - known)
            charted |= names
    # The panels the alerts are about are all there.
    assert {
        "aios:http_request_duration_seconds:p95_5m",
        "aios:http_request_duration_seconds:p99_5m",
        "aios:http_errors:ratio_rate5m",
        "aios:cache_hits:ratio_rate5m",
        "aios_db_pool_requests_waiting",
        "aios_db_slow_queries_total",
    } <= charted


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    grafana = ROOT / "deploy" / "grafana" / "provisioning"
    source = yaml.safe_load((grafana / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["uid"] == "prometheus"
    provider = yaml.safe_load((grafana / "dashboards" / "aios.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_compose_monitoring_profile_runs_prometheus_and_grafana_with_these_files():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert "profiles" not in services["web"]  # the app itself runs without the profile
