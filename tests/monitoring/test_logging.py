import io
import json
import logging
import re

import pytest
from django.test import Client

pytestmark = pytest.mark.urls("tests.monitoring.urls")


@pytest.fixture
def console():
    """What the configured console handler writes (JSON lines), for the test's duration."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(old)


def test_a_sane_incoming_request_id_is_echoed(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="3f2c9a6e-trace.42")
    assert response["X-Request-ID"] == "3f2c9a6e-trace.42"


@pytest.mark.parametrize("given", ["", "short", "x" * 200, "bad id with spaces", "<script>1"])
def test_an_insane_request_id_is_replaced_by_a_generated_one(client, given):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_every_request_gets_its_own_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    assert client.get("/healthz")["X-Request-ID"] != first


def test_log_records_of_a_request_are_json_with_its_request_id(console):
    client = Client(raise_request_exception=False)
    response = client.get("/_test/boom", HTTP_X_REQUEST_ID="req-logs-0001")
    assert response.status_code == 500
    records = [r for r in console() if r["logger"] == "django.request"]
    assert records, "Django logs the 500"
    assert records[0]["request_id"] == "req-logs-0001"
    assert records[0]["view"] == "test-boom"
    assert records[0]["level"] == "ERROR"
    assert "RuntimeError" in records[0]["exc_info"]


def test_records_outside_a_request_carry_no_request_id(client, console):
    client.get("/healthz", HTTP_X_REQUEST_ID="req-logs-0002")
    logging.getLogger("aios.test").warning("after the request")
    [record] = [r for r in console() if r["logger"] == "aios.test"]
    assert record["request_id"] == "-"
    assert record["message"] == "after the request"
