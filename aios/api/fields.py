"""Reading API input: fields that refuse values of the wrong JSON type instead of coercing
them, serializers that refuse unknown keys, and `validated()`.

DRF turns `5` into "5" for a CharField and `true` into 1.0 for a FloatField. A client that
sends those has a bug the API should report (400), and the schema says so too. Numeric
strings stay accepted for numbers: query parameters are always strings.
"""

from collections.abc import Mapping

from django.db import models
from rest_framework import serializers

# validated(..., context=IGNORE_UNKNOWN) for query strings: unknown parameters stay ignored.
IGNORE_UNKNOWN = {"unknown_fields": "ignore"}


class _StrictText:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _StrictChoice:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class _StrictNumber:
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(_StrictText, serializers.CharField):
    pass


class SlugField(_StrictText, serializers.SlugField):
    pass


class URLField(_StrictText, serializers.URLField):
    pass


class ChoiceField(_StrictChoice, serializers.ChoiceField):
    pass


class RegexField(_StrictText, serializers.RegexField):
    pass


class BlankableURLField(URLField):
    """An optional URL. allow_blank makes the schema say `uri or ""`, which is what it holds."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 500)
        super().__init__(**kwargs)


class IntegerField(_StrictNumber, serializers.IntegerField):
    pass


class FloatField(_StrictNumber, serializers.FloatField):
    pass


class RejectUnknownFields:
    """A JSON body's keys the serializer does not know are a 400 naming each, not dropped: a
    typo (`titel`) or a field the client may not set (`owner`) must not pass silently.
    Read-only fields are known (a client may send back what it read) and stay ignored."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and self.context.get("unknown_fields") != "ignore":
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({str(k): ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


class StrictSerializer(RejectUnknownFields, serializers.Serializer):
    """The base of every serializer that reads a JSON body."""


class StrictModelSerializer(RejectUnknownFields, serializers.ModelSerializer):
    """A ModelSerializer for JSON bodies: unknown keys refused, generated text fields strict."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: CharField,
        models.TextField: CharField,
        models.SlugField: SlugField,
        models.URLField: URLField,
    }
    serializer_choice_field = ChoiceField


def validated(serializer_class, data, **kwargs) -> dict:
    """Validated input or a 400 with field errors. Query dicts are flattened to last values."""
    if hasattr(data, "dict"):
        data = data.dict()  # a plain dict: DRF reads a missing boolean in a QueryDict as False
        kwargs.setdefault("context", IGNORE_UNKNOWN)  # unknown JSON keys: 400
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
