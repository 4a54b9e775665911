"""JSON for the lean read paths: orjson, writing the same bytes as DRF's JSONRenderer.

Views that render plain rows (dicts of str, int, float, bool, None, datetimes, lists) use
`LeanJSONRenderer` instead of DRF's: same media type and headers, about a tenth of the encode
time. Three differences of orjson are closed here so the bytes stay DRF's:
- floats with 0 < |x| < 1e-4: orjson writes 0.00001 where json writes 1e-05; `lean_float`
  hands those over pre-encoded;
- U+2028 / U+2029: DRF escapes them (for JSONP-era clients); so does `render`;
- datetimes: DRF writes them in the current time zone ("Z" for UTC); `lean_datetimes()`
  passes them to orjson only when that zone is UTC, else it formats them as DRF does.
An indented rendering (the browsable API) and data holding types orjson does not know (an error's
lazy text, a Decimal) take DRF's own path.
"""

import orjson
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_UTC_Z
_DATETIME = serializers.DateTimeField(read_only=True)


class _ReprFloat(float):
    """A float that orjson hands to `_default`, which writes it as json does (1e-05)."""


def lean_float(value):
    """A float as DRF's FloatField renders it, ready for orjson."""
    if value is None:
        return None
    value = float(value)
    if value == 0.0 or not -1e-4 < value < 1e-4:
        return value
    return _ReprFloat(value)


def _same(value):
    return value


def _drf_datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


def lean_datetimes():
    """For this request: a function turning an aware datetime into what orjson should get to
    write DRF's DateTimeField output (the datetime itself when the current zone is UTC)."""
    return _same if timezone.get_current_timezone_name() == "UTC" else _drf_datetime


def _default(obj):
    if isinstance(obj, _ReprFloat):
        return orjson.Fragment(float.__repr__(obj).encode())
    raise TypeError(f"{type(obj).__name__} is not a lean JSON type")


class _Encoder(JSONEncoder):
    def default(self, obj):
        if hasattr(obj, "utcoffset"):  # a datetime as DRF's DateTimeField writes it
            return _drf_datetime(obj)
        return super().default(obj)


class LeanJSONRenderer(JSONRenderer):
    """DRF's JSONRenderer, encoding with orjson (see the module docstring)."""

    encoder_class = _Encoder

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:  # a type only DRF's encoder knows (lazy text, Decimal)
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body


def lean_renderers() -> list:
    """The configured renderer classes with DRF's JSONRenderer swapped for the lean one."""
    return [
        LeanJSONRenderer if renderer is JSONRenderer else renderer
        for renderer in api_settings.DEFAULT_RENDERER_CLASSES
    ]
