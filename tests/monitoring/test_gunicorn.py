"""Two real gunicorn workers: /metrics and the snapshot count what both of them served."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "gunicorn-test-token"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, headers=None, timeout=10):
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (http only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.monitoring.gunicorn_settings",
        "BIND": f"127.0.0.1:{port}",
        "API_WORKERS": "2",
        "API_THREADS": "1",
        "AIOS_VAR_DIR": str(tmp_path),
        "HOME": str(tmp_path / "home"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "MONITORING_DIR": str(tmp_path / "window"),
        "MONITORING_KEY_PREFIX": f"aios-test:{uuid.uuid4().hex}",
        "MONITORING_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESSLOG": str(tmp_path / "access.log"),
    }
    env.pop("AIOS_TESTING", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "aios/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if _get(f"{base}/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    yield base, tmp_path / "access.log"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def _count(body: str, view: str, status_class: str) -> float:
    pattern = (
        rf'^aios_http_request_duration_seconds_count\{{status_class="{status_class}",'
        rf'view="{view}"\}} (\S+)$'
    )
    match = re.search(pattern, body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_and_snapshot_add_up_both_workers(gunicorn):
    gunicorn, access_log = gunicorn
    # Concurrent 100 ms requests: while one worker sleeps, the other accepts.
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: _get(f"{gunicorn}/_test/sleep?ms=100"), range(36)))
        answers += list(pool.map(lambda _: _get(f"{gunicorn}/_test/sleep?status=503"), range(4)))
    assert [status for status, _, _ in answers].count(200) == 36
    pids = {headers["X-Worker-Pid"] for _, headers, _ in answers}
    assert len(pids) == 2, "both workers served"

    # Whichever worker answers the scrape, it reports both workers' requests.
    for _ in range(4):
        status, _, body = _get(f"{gunicorn}/metrics")
        assert status == 200
        text = body.decode()
        assert _count(text, "test-sleep", "2xx") == 36
        assert _count(text, "test-sleep", "5xx") == 4

    time.sleep(2.5)  # each worker's reporter flushes its window counts once a second
    status, _, body = _get(
        f"{gunicorn}/api/v1/monitoring/", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200
    snapshot = json.loads(body)
    assert snapshot["workers"] == 2
    figures = snapshot["metrics"]
    assert figures["request_count"] == 40
    assert figures["error_rate"] == 0.1
    assert figures["api_response_p50"] >= 100
    assert figures["memory_usage_mb"] > 10  # two Django processes

    # The access log carries the request id the app answered with.
    status, headers, _ = _get(f"{gunicorn}/healthz", headers={"X-Request-ID": "trace-0123456789"})
    assert headers["X-Request-ID"] == "trace-0123456789"
    time.sleep(0.5)
    assert 'GET /healthz HTTP/1.1" 200' in access_log.read_text()
    assert "rid=trace-0123456789" in access_log.read_text()

    # gunicornc's control socket is this run's, under AIOS_VAR_DIR, not in the home directory.
    assert (access_log.parent / "gunicorn.ctl").is_socket()
    assert not (access_log.parent / "home" / ".gunicorn").exists()
