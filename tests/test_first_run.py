"""What `make run` on a fresh clone relies on: directories, gunicorn's state, fast static, docs.

.ci/smoke runs the real thing (a fresh copy of the tree, `make run`, the pages answer 200);
these pin the pieces one by one.
"""

import gzip
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import brotli
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from gunicorn.config import Config

from aios import api_table, storage
from aios.storage import minify

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


# --- collectstatic only when needed ---------------------------------------------------------
@pytest.fixture
def static_tree(tmp_path):
    """A copy of static/ as the only source and an empty STATIC_ROOT, with the real storage."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "static", source)
    root = tmp_path / "collected"
    with override_settings(
        STATIC_ROOT=root,
        STATICFILES_DIRS=[source],
        STATICFILES_FINDERS=["django.contrib.staticfiles.finders.FileSystemFinder"],
        STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": STORAGE}},
    ):
        yield source, root


@pytest.fixture
def compressions(monkeypatch):
    """The names each compressor call was given, in order."""
    seen = []
    original = storage.SizedBrotliCompressor.compress

    def compress(self, path):
        seen.append(Path(path).name)
        return original(self, path)

    monkeypatch.setattr(storage.SizedBrotliCompressor, "compress", compress)
    return seen


def _collect(*args) -> str:
    out = io.StringIO()
    call_command("collectstatic_if_stale", "--noinput", *args, stdout=out)
    return out.getvalue()


def _manifest(root: Path) -> dict:
    return json.loads((root / "staticfiles.json").read_text())["paths"]


def test_collectstatic_runs_once_and_is_skipped_while_nothing_changed(static_tree, compressions):
    _, root = static_tree
    assert "collecting" in _collect()
    hashed = _manifest(root)["css/site.css"]
    assert (root / f"{hashed}.br").is_file()
    compressions.clear()

    assert "up to date" in _collect()
    assert compressions == []
    # A file gone from STATIC_ROOT is not up to date, whatever the fingerprint says.
    (root / hashed).unlink()
    assert "collecting" in _collect()
    assert (root / hashed).is_file()


def test_collectstatic_runs_again_when_a_source_changes(static_tree, compressions):
    source, root = static_tree
    _collect()
    before = _manifest(root)["css/site.css"]
    compressions.clear()

    css = source / "css" / "site.css"
    css.write_text(css.read_text() + "\n.first-run { color: red; }\n")
    later = css.stat().st_mtime + 5  # collectstatic compares modification times to the second
    os.utime(css, (later, later))
    assert "collecting" in _collect()

    after = _manifest(root)["css/site.css"]
    assert after != before
    served = minify("css/site.css", css.read_text())
    assert brotli.decompress((root / f"{after}.br").read_bytes()).decode() == served
    assert gzip.decompress((root / f"{after}.gz").read_bytes()).decode() == served
    assert brotli.decompress((root / "css/site.css.br").read_bytes()).decode() == served
    # Only the changed content was compressed again, once for the name and its hashed copy.
    assert len(compressions) == 1
    assert compressions[0] in {"site.css", Path(after).name}


def test_same_content_is_compressed_once_for_a_name_and_its_hashed_copy(static_tree, compressions):
    _, root = static_tree
    _collect()
    hashed = _manifest(root)["img/favicon.svg"]
    assert compressions.count("favicon.svg") + compressions.count(Path(hashed).name) == 1
    for suffix in (".br", ".gz"):
        assert (root / f"img/favicon.svg{suffix}").read_bytes() == (
            root / f"{hashed}{suffix}"
        ).read_bytes()


def test_forced_collectstatic_reuses_the_variants_of_unchanged_content(static_tree, compressions):
    _, root = static_tree
    _collect()
    compressions.clear()
    assert "collecting" in _collect("--force")
    assert compressions == []
    assert (root / _manifest(root)["js/site.js"]).with_suffix(".js.br").is_file()


def test_large_files_get_brotli_quality_9_small_ones_11():
    small = b"body { color: red; }\n" * 1000
    large = os.urandom(1024) * 400  # over BROTLI_BEST_MAX_BYTES
    assert len(large) > storage.BROTLI_BEST_MAX_BYTES
    compress = storage.SizedBrotliCompressor.compress_brotli
    assert compress(small) == brotli.compress(small, quality=11)
    assert compress(large) == brotli.compress(large, quality=9)


# --- The README's API table -----------------------------------------------------------------
def test_readme_lists_every_api_route_as_generated():
    readme = (ROOT / "README.md").read_text()
    assert api_table.readme_table(readme) == api_table.markdown(), (
        "README.md's API table is out of date: run `python manage.py api_table --write`"
    )


def test_every_api_route_in_the_url_conf_has_a_row():
    table = api_table.markdown()
    routes = api_table.api_routes()
    assert "/api/v1/agents/{pk}/install/" in routes
    assert len(routes) >= 15
    rows = {api_table.shape(path) for _, path, _, _ in api_table.rows()}
    for route in routes:
        assert api_table.shape(route) in rows, route
    assert "| POST | `/api/v1/agents/{id}/install/` | token or session |" in table
    assert "/api/v1/marketplace/agents/{id}/install/" not in table


def test_a_route_nobody_describes_is_an_error(monkeypatch):
    routes = [*api_table.api_routes(), "/api/v1/undocumented/"]
    monkeypatch.setattr(api_table, "api_routes", lambda: routes)
    with pytest.raises(LookupError, match="/api/v1/undocumented/"):
        api_table.rows()
