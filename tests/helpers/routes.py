"""Every route of the URLconf, with its parameters filled from seeded objects.

The fault walks and the authorization matrix build their URL lists from here, so a page or
endpoint added later is covered without touching the tests; a parameter nobody knows how to
fill fails loudly (`UnknownParameter`) instead of being skipped.
"""

import re
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver

# "<int:pk>" / "<slug>" in path() routes, "(?P<pk>[^/.]+)" in re_path() / DRF router routes.
PATH_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
REGEX_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)")


class UnknownParameter(LookupError):
    pass


@dataclass(frozen=True)
class Route:
    pattern: str  # "api/v1/agents/<int:pk>/"
    name: str | None
    callback: object

    @property
    def params(self) -> list[str]:
        without_groups = REGEX_PARAM.sub("", self.pattern)
        return REGEX_PARAM.findall(self.pattern) + PATH_PARAM.findall(without_groups)

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith("api/")

    @property
    def is_admin(self) -> bool:
        return self.pattern.startswith("admin/")

    @property
    def model_admin(self):
        return getattr(self.callback, "model_admin", None)

    def fill(self, values: dict) -> str:
        """The concrete path, taking each parameter from `values` (name -> str)."""
        for param in self.params:
            if param not in values:
                raise UnknownParameter(f"{self.pattern}: no value for {param!r}")
        path = REGEX_PARAM.sub(lambda m: str(values[m.group(1)]), self.pattern)
        path = PATH_PARAM.sub(lambda m: str(values[m.group(1)]), path)
        return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield Route(prefix + str(pattern.pattern), pattern.name, pattern.callback)


def all_routes(urlconf=None) -> list[Route]:
    """Every URL pattern of the project, in URLconf order, without format-suffix duplicates."""
    routes = []
    for route in _walk(get_resolver(urlconf).url_patterns):
        if "format" in route.params or "(?P<format>" in route.pattern:
            continue  # DRF's .json suffix twins of routes already listed
        routes.append(route)
    return routes


def values_for(route: Route, seed) -> dict:
    """Parameter values for `route` from the seeded objects (the owner's where it matters)."""
    values = {
        "slug": seed.agent.slug,
        "uidb64": "MQ",  # an invalid reset link: the page answers it
        "token": "set-password",
        "name": "missing.webp",  # media/icons/<path:name>
    }
    if route.is_admin:
        # admin/r/<content_type_id>/<object_id>/ ("view on site") goes to the agent's page.
        values["content_type_id"] = ContentType.objects.get_for_model(seed.agent).pk
        values["object_id"] = values["id"] = seed.agent.pk
        model_admin = route.model_admin
        if model_admin is not None:
            first = model_admin.model._default_manager.order_by("pk").first()
            values["object_id"] = values["id"] = first.pk if first is not None else 0
        values["app_label"] = "marketplace"
        values["url"] = "no-such-page/"  # the admin catch-all
    elif "knowledge" in route.pattern:
        values["pk"] = seed.entry.pk
    else:
        values["pk"] = seed.agent.pk
    return values


def concrete_urls(seed, *, include_admin: bool = True) -> list[tuple[Route, str]]:
    urls = []
    for route in all_routes():
        if route.is_admin and not include_admin:
            continue
        if route.pattern.startswith("faults/"):
            continue
        urls.append((route, route.fill(values_for(route, seed))))
    return urls
