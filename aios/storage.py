"""Static files: whitenoise's hashed, compressed storage, with the site's own CSS and JS minified.

collectstatic copies each file through `_save`, so the hashed copy and its .gz and .br
variants hold the minified text. The hash in the name is Django's, of the source file: the
minifier is deterministic, so the name changes exactly when the served bytes do.
"""

import os

import rcssmin
import rjsmin
from django.core.files.base import ContentFile
from whitenoise.storage import CompressedManifestStaticFilesStorage

ONE_YEAR = 365 * 24 * 60 * 60
MINIFIERS = {".css": rcssmin.cssmin, ".js": rjsmin.jsmin}
# Only the project's own assets: third-party ones (the admin's) ship as their authors built them.
OWN_PREFIXES = ("css/", "js/")


def minify(name: str, text: str) -> str:
    """`text` minified if `name` is one of the project's CSS or JS files, else unchanged."""
    minifier = MINIFIERS.get(os.path.splitext(name)[1])
    if minifier is None or not name.startswith(OWN_PREFIXES):
        return text
    return minifier(text)


class MinifiedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def _save(self, name, content):
        if os.path.splitext(name)[1] in MINIFIERS and name.startswith(OWN_PREFIXES):
            content.seek(0)
            text = content.read()
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            content = ContentFile(minify(name, text).encode("utf-8"))
        return super()._save(name, content)


def static_cache_headers(headers, path, url):
    """WHITENOISE_ADD_HEADERS_FUNCTION: hashed files are cached for a year, not whitenoise's ten.

    A year is the longest lifetime HTTP caches and CDNs are asked to honour (RFC 9111 advice).
    """
    if "immutable" in headers.get("Cache-Control", ""):
        headers["Cache-Control"] = f"max-age={ONE_YEAR}, public, immutable"
