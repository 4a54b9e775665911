"""collectstatic output: minified, hashed, pre-compressed, and served as immutable for a year."""

import hashlib
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from whitenoise.middleware import WhiteNoiseMiddleware

from aios.storage import minify

SOURCE = Path(settings.BASE_DIR) / "static"
STORAGE = "aios.storage.MinifiedStaticFilesStorage"


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("staticfiles")
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": STORAGE}}
    # The project's own files only: compressing the admin's and Swagger's takes a minute.
    own_only = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    with override_settings(STATIC_ROOT=root, STORAGES=storages, STATICFILES_FINDERS=own_only):
        call_command("collectstatic", interactive=False, verbosity=0)
    manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
    return root, manifest, storages


@pytest.mark.parametrize("name", ["css/site.css", "js/site.js"])
def test_own_css_and_js_are_minified_hashed_and_compressed(collected, name):
    root, manifest, _ = collected
    hashed = manifest[name]
    assert hashed != name and hashed.rsplit(".", 2)[1].isalnum()  # name.<hash>.ext
    source = (SOURCE / name).read_text()
    output = (root / hashed).read_text()

    assert output == minify(name, source)
    assert len(output) < 0.85 * len(source)
    assert "/*" not in output and "\n  " not in output
    # Django hashes the source file; minifying is deterministic, so the name still changes
    # exactly when the served bytes do.
    assert hashed.split(".")[-2] == hashlib.md5(source.encode()).hexdigest()[:12]  # noqa: S324
    assert (root / f"{hashed}.gz").stat().st_size < len(output)
    assert (root / f"{hashed}.br").stat().st_size < len(output)


def test_minified_css_keeps_the_rules(collected):
    root, manifest, _ = collected
    output = (root / manifest["css/site.css"]).read_text()
    assert ".card-title a::after{" in output
    assert "@media (min-width:56rem)" in output or "@media(min-width:56rem)" in output


def test_third_party_assets_are_left_as_their_authors_built_them():
    text = "/* keep */\nbody {\n  color: red;\n}\n"
    assert minify("admin/css/base.css", text) == text
    assert minify("css/site.css", text) == "body{color:red}"


def _get(storages, root, url):
    with override_settings(STATIC_ROOT=root, STORAGES=storages, DEBUG=False):
        middleware = WhiteNoiseMiddleware(get_response=lambda request: None)
        request = RequestFactory().get(url, HTTP_ACCEPT_ENCODING="br, gzip")
        return middleware(request)


def test_hashed_files_are_cached_for_a_year_as_immutable(collected):
    root, manifest, storages = collected
    response = _get(storages, root, f"/static/{manifest['css/site.css']}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=31536000, public, immutable"
    assert response["Content-Encoding"] == "br"


def test_unhashed_names_are_not_immutable(collected):
    root, _, storages = collected
    response = _get(storages, root, "/static/css/site.css")
    assert response.status_code == 200
    assert "immutable" not in response["Cache-Control"]


@pytest.mark.django_db
def test_pages_link_the_hashed_names(collected, client):
    root, manifest, storages = collected
    with override_settings(STATIC_ROOT=root, STORAGES=storages):
        html = client.get("/").content.decode()
    assert f'href="/static/{manifest["css/site.css"]}"' in html
    assert f'src="/static/{manifest["js/site.js"]}" defer' in html
