"""What `make run` on a fresh clone relies on: directories, gunicorn's state, fast static, docs.

.ci/smoke runs the real thing (a fresh copy of the tree, `make run`, the pages answer 200);
these pin the pieces one by one.
"""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from gunicorn.config import Config

ROOT = Path(settings.BASE_DIR)
STORAGE = "aios.storage.MinifiedStaticFilesStorage"


# --- Directories ----------------------------------------------------------------------------
def _settings_in_fresh_process(var_dir: Path, **env) -> dict:
    """Import the settings (not under pytest) with AIOS_VAR_DIR missing, connect, report."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "from django.db import connection; connection.ensure_connection();"
        "print(json.dumps({'cache': s.CACHES['default']['BACKEND']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "aios.settings",
            "AIOS_VAR_DIR": str(var_dir),
            "LOG_FORMAT": "plain",
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_settings_create_the_var_dir_sqlite_and_the_file_cache_need(tmp_path):
    var = tmp_path / "fresh" / "var"
    knobs = _settings_in_fresh_process(var)
    assert knobs["cache"].endswith("FileBasedCache")
    for child in ("cache", "media", "staticfiles", "monitoring"):
        assert (var / child).is_dir(), child
    assert (var / "db.sqlite3").is_file()  # the connection could create it


def test_settings_create_the_sqlite_directory_with_redis_as_the_cache(tmp_path):
    # REDIS_URL alone: nothing touches the file cache's directory first (the failure).
    var = tmp_path / "var"
    knobs = _settings_in_fresh_process(var, REDIS_URL="redis://127.0.0.1:1/0")
    assert knobs["cache"].endswith("ResilientRedisCache")
    assert (var / "db.sqlite3").is_file()
    assert not (var / "cache").exists()


# --- gunicorn -------------------------------------------------------------------------------
def _gunicorn_config(monkeypatch, tmp_path, var_dir) -> Config:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    if var_dir is None:
        monkeypatch.delenv("AIOS_VAR_DIR", raising=False)
    else:
        monkeypatch.setenv("AIOS_VAR_DIR", str(var_dir))
    config = Config()
    for name, value in runpy.run_path(str(ROOT / "aios" / "gunicorn.conf.py")).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_gunicorn_control_socket_lives_in_the_var_dir(monkeypatch, tmp_path):
    config = _gunicorn_config(monkeypatch, tmp_path, tmp_path / "state")
    assert config.control_socket == str(tmp_path / "state" / "gunicorn.ctl")
    assert not config.control_socket_disable


def test_gunicorn_control_socket_defaults_to_the_checkouts_var(monkeypatch, tmp_path):
    config = _gunicorn_config(monkeypatch, tmp_path, None)
    assert config.control_socket == str(ROOT / "var" / "gunicorn.ctl")
    assert not config.control_socket.startswith(os.path.expanduser("~") + "/.gunicorn")
