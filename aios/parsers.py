"""Request parsers for the API (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

Not in aios.security: settings import that module, and DRF must not load before settings do.
"""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering JSON nested past Python's recursion limit with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # json's C scanner gives up around depth 10,000
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
