"""Compression of dynamic responses: brotli when the client accepts it, gzip otherwise.

Sits right below WhiteNoiseMiddleware, so static files (compressed by collectstatic) never get
here. Text-like bodies of MIN_SIZE bytes or more are compressed when that makes them smaller;
a strong ETag gets the coding as a suffix. Against BREACH, a response carrying a CSRF token or
answering a session gets padded gzip, never brotli. docs/compression.md has the reasoning.
"""

import gzip
import re

import brotli
from django.conf import settings
from django.utils.cache import patch_vary_headers
from django.utils.text import compress_string

MIN_SIZE = 1024  # the report's threshold: below 1 KB the header overhead eats the gain
# Dynamic responses are compressed on every request, cached copies once when stored
# (aios.response_cache). On a 20-card listing (10.6 KB of JSON) brotli 5 gives 2,086 bytes in
# 0.51 ms and needs ~1 MB; 8 gives 2,079 bytes in 0.67 ms and needs ~7 MB, which each of a
# worker's threads then keeps resident; 11 takes ~25 ms: too much for a miss. Stored copies
# use 5 too; gzip, cheap in memory, gets its best level for them.
BROTLI_QUALITY = 5
GZIP_LEVEL = 6
STORED_GZIP_LEVEL = 9
BREACH_PADDING_BYTES = 100  # as Django's GZipMiddleware

_COMPRESSIBLE = re.compile(
    r"^(text/|application/(json|javascript|xml|xhtml\+xml|[\w.+-]+\+json|[\w.+-]+\+xml)|"
    r"image/svg\+xml)",
    re.IGNORECASE,
)
_CODING = re.compile(r"^\s*([\w*-]+)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def accepted_codings(accept_encoding: str) -> dict[str, float]:
    """`Accept-Encoding` as {coding: q}; a coding with q=0 is refused."""
    codings = {}
    for part in accept_encoding.split(","):
        match = _CODING.match(part)
        if not match:
            continue
        try:
            q = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        codings[match.group(1).lower()] = q
    return codings


def choose_coding(accept_encoding: str, *, allow_brotli: bool = True) -> str | None:
    """ "br", "gzip" or None for this `Accept-Encoding`; brotli wins a tie."""
    codings = accepted_codings(accept_encoding)
    star = codings.get("*", 0.0)
    candidates = (["br"] if allow_brotli else []) + ["gzip"]
    best, best_q = None, 0.0
    for coding in candidates:
        q = codings.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    return best


def is_compressible_type(content_type: str) -> bool:
    return bool(_COMPRESSIBLE.match(content_type))


def is_compressible(response) -> bool:
    return is_compressible_type(response.get("Content-Type", ""))


def carries_secrets(request, response) -> bool:
    """Whether BREACH padding applies: a CSRF token on the page or a signed-in browser."""
    return (
        settings.CSRF_COOKIE_NAME in response.cookies
        or settings.SESSION_COOKIE_NAME in request.COOKIES
    )


def compress(body: bytes, coding: str, *, stored: bool = False, pad: bool = False) -> bytes:
    if coding == "br":
        return brotli.compress(body, quality=BROTLI_QUALITY)
    if pad:
        return compress_string(body, max_random_bytes=BREACH_PADDING_BYTES)
    return gzip.compress(body, compresslevel=STORED_GZIP_LEVEL if stored else GZIP_LEVEL, mtime=0)


def etag_for_coding(etag: str, coding: str | None) -> str:
    if not coding or not etag.endswith('"'):
        return etag
    return f'{etag[:-1]}-{coding}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    for coding in ("-br", "-gzip"):
        if tag.endswith(coding):
            return tag[: -len(coding)]
    return tag


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match's weak comparison, blind to the coding suffix."""
    if not if_none_match or not etag:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in if_none_match.split(","))


class CompressionMiddleware:
    """Brotli or gzip for non-streaming dynamic responses of MIN_SIZE bytes or more."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.streaming  # FileResponse and friends: whitenoise's job, or not text
            or response.has_header("Content-Encoding")  # e.g. a cached, precompressed body
            or response.status_code in (204, 304)
            or len(response.content) < MIN_SIZE
            or not is_compressible(response)
        ):
            return response
        patch_vary_headers(response, ("Accept-Encoding",))
        pad = carries_secrets(request, response)
        coding = choose_coding(request.META.get("HTTP_ACCEPT_ENCODING", ""), allow_brotli=not pad)
        if coding is None:
            return response
        compressed = compress(response.content, coding, pad=pad)
        if len(compressed) >= len(response.content):
            return response
        response.content = compressed
        response.headers["Content-Length"] = str(len(compressed))
        response.headers["Content-Encoding"] = coding
        if etag := response.get("ETag"):
            response.headers["ETag"] = etag_for_coding(etag, coding)
        return response
