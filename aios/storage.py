"""Static files: whitenoise's hashed, compressed storage, with the site's own CSS and JS minified.

collectstatic copies each file through `_save`, so the hashed copy and its .gz and .br
variants hold the minified text. The hash in the name is Django's, of the source file: the
minifier is deterministic, so the name changes exactly when the served bytes do.

Compressing is most of collectstatic's time, so each distinct content is compressed once (a
file and its hashed copy share it) and not again while the variants an earlier run wrote for
the same content are still there. `source_fingerprint` lets `make static` skip collectstatic
altogether when nothing it reads has changed.
"""

import contextlib
import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path

import brotli
import rcssmin
import rjsmin
from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.files.base import ContentFile
from whitenoise.compress import Compressor
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


# Brotli's best quality costs about 40 times quality 9's time for 2-10 % fewer bytes: worth it
# for the site's own assets (all far below this), not for multi-megabyte source maps and API
# doc bundles, which took most of a 56 s first collectstatic at quality 11.
BROTLI_BEST_MAX_BYTES = 256 * 1024
# Written next to the manifest: what each file's variants were made from, and the fingerprint
# of the sources the last complete collectstatic read.
COMPRESSED_INDEX = "staticfiles.compressed.json"
FINGERPRINT_FILE = "staticfiles.fingerprint"
IGNORE_PATTERNS = ["CVS", ".*", "*~"]  # collectstatic's defaults


class SizedBrotliCompressor(Compressor):
    @staticmethod
    def compress_brotli(data):
        return brotli.compress(data, quality=11 if len(data) <= BROTLI_BEST_MAX_BYTES else 9)


def _digest(path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


class MinifiedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def _save(self, name, content):
        if os.path.splitext(name)[1] in MINIFIERS and name.startswith(OWN_PREFIXES):
            content.seek(0)
            text = content.read()
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            content = ContentFile(minify(name, text).encode("utf-8"))
        return super()._save(name, content)

    def create_compressor(self, **kwargs):
        return SizedBrotliCompressor(**kwargs)

    def compress_files(self, paths):
        """whitenoise's, compressing each distinct content once and only when it changed."""
        extensions = getattr(settings, "WHITENOISE_SKIP_COMPRESS_EXTENSIONS", None)
        compressor = self.create_compressor(extensions=extensions, quiet=True)
        index_path = Path(self.path(COMPRESSED_INDEX))
        try:
            previous = json.loads(index_path.read_text())
        except (OSError, ValueError):
            previous = {}
        index = {}  # name -> [content digest, suffixes of its variants]
        groups = {}  # content digest -> names still to compress
        for name in sorted(paths):
            if not compressor.should_compress(name):
                continue
            full = self.path(name)
            digest = _digest(full)
            done = previous.get(name)
            if done and done[0] == digest and all(os.path.exists(full + s) for s in done[1]):
                index[name] = done
                for suffix in done[1]:
                    yield name, name + suffix
                continue
            for suffix in (".br", ".gz"):  # else a stale one would be served for the new content
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(full + suffix)
            groups.setdefault(digest, []).append(name)

        with ThreadPoolExecutor() as executor:
            futures = {
                executor.submit(compressor.compress, self.path(names[0])): (digest, names)
                for digest, names in groups.items()
            }
            for future in as_completed(futures):
                digest, (first, *others) = futures[future]
                first_full = self.path(first)
                suffixes = [variant[len(first_full) :] for variant in future.result()]
                for name in (first, *others):
                    full = self.path(name)
                    for suffix in suffixes:
                        if name != first:
                            shutil.copyfile(first_full + suffix, full + suffix)
                            stat = os.stat(full)
                            os.utime(full + suffix, ns=(stat.st_atime_ns, stat.st_mtime_ns))
                        yield name, name + suffix
                    index[name] = [digest, suffixes]
        temporary = index_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(index, sort_keys=True))
        temporary.replace(index_path)


def source_fingerprint() -> str:
    """A digest of all collectstatic's output depends on: the name and bytes of every file
    the finders list, the storage and whitenoise settings, this module and its libraries."""
    digest = hashlib.sha256()
    for package in ("django", "whitenoise", "brotli", "rcssmin", "rjsmin"):
        digest.update(f"{package}=={metadata.version(package)}\n".encode())
    digest.update(Path(__file__).read_bytes())
    knobs = {
        "STATIC_URL": settings.STATIC_URL,
        "STATIC_ROOT": str(settings.STATIC_ROOT),
        "STORAGE": settings.STORAGES["staticfiles"],
        **{k: getattr(settings, k) for k in dir(settings) if k.startswith("WHITENOISE_")},
    }
    # A function setting by its name: its repr carries an address that changes every run.
    knobs = {k: getattr(v, "__qualname__", v) for k, v in knobs.items()}
    digest.update(json.dumps(knobs, sort_keys=True, default=repr).encode())
    sources = {}
    for finder in get_finders():
        for path, storage in finder.list(IGNORE_PATTERNS):
            name = os.path.join(getattr(storage, "prefix", None) or "", path)
            sources.setdefault(name, storage.path(path))  # collectstatic keeps the first, too
    for name in sorted(sources):
        digest.update(f"{name}\0{_digest(sources[name])}\n".encode())
    return digest.hexdigest()


def collected_is_current(fingerprint: str) -> bool:
    """True when STATIC_ROOT holds a complete collectstatic of sources with this fingerprint."""
    root = Path(settings.STATIC_ROOT)
    try:
        if (root / FINGERPRINT_FILE).read_text().strip() != fingerprint:
            return False
        manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
    except (OSError, ValueError, KeyError):
        return False
    return all((root / hashed).is_file() for hashed in manifest.values())


def record_fingerprint(fingerprint: str) -> None:
    (Path(settings.STATIC_ROOT) / FINGERPRINT_FILE).write_text(fingerprint + "\n")


def static_cache_headers(headers, path, url):
    """WHITENOISE_ADD_HEADERS_FUNCTION: hashed files are cached for a year, not whitenoise's ten.

    A year is the longest lifetime HTTP caches and CDNs are asked to honour (RFC 9111 advice).
    """
    if "immutable" in headers.get("Cache-Control", ""):
        headers["Cache-Control"] = f"max-age={ONE_YEAR}, public, immutable"
