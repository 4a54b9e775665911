"""Filter values the API and the pages check the same way (README, "Filters").

A filter value that is malformed or names nothing that exists (a category or publisher slug)
is the client's mistake: the API answers 400 naming the field, a page answers 400
with the message next to its form. Free text (`q`, `tag`) names no vocabulary: a value nobody
used matches nothing, which is an empty list, not an error. Each check costs one indexed
lookup, and only when the filter is given.
"""

from django.core.exceptions import ValidationError
from django.core.validators import slug_re

from .models import Category, Publisher


# A field's validators all run, even after its format check failed: a value that is no slug
# (a NUL byte the database refuses) or no bigint has its error already and is not looked up.
def _is_slug(value) -> bool:
    return isinstance(value, str) and bool(slug_re.match(value))


def category_exists(slug: str) -> bool:
    return _is_slug(slug) and Category.objects.filter(slug=slug).exists()


def validate_category(slug: str) -> None:
    if _is_slug(slug) and not category_exists(slug):
        raise ValidationError(f"Unknown category “{slug}”.", code="unknown")


def validate_publisher(slug: str) -> None:
    if _is_slug(slug) and not Publisher.objects.filter(slug=slug).exists():
        raise ValidationError(f"Unknown publisher “{slug}”.", code="unknown")
