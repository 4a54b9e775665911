import uuid

import pytest
from prometheus_client import REGISTRY

from aios.monitoring import reporter, window


@pytest.fixture
def fresh_window(settings, tmp_path):
    """An empty rolling window of its own (a new directory or Redis key prefix)."""
    reporter.ensure_started()  # as the first request of a worker does
    window.flush()  # what earlier tests left pending goes to their window, not this one
    settings.MONITORING_DIR = str(tmp_path / "window")
    settings.MONITORING_KEY_PREFIX = f"aios-test:{uuid.uuid4().hex}"
    window.recorder.take()
    yield
    window.recorder.take()


@pytest.fixture
def sample():
    """The current value of a metric in this process (0.0 when never observed)."""

    def read(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return read
