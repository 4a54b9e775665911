"""values() rows to response dicts: the lean read paths.

Each function writes exactly what its serializer in serializers.py writes for the same data
(same keys, order and values; `tests/marketplace/test_api_lean.py` pins it), from the rows of
the QuerySet shapes `card_rows()`, `detail_rows()`, `rows()`: no model instances, no per-field
serializer calls. The serializers stay the schema's description of these responses.
Measured with the compiled statements (docs/lean-responses.md): agent list 0.11x -> 0.15x the
floor, detail 0.10-0.12x -> 0.22x.
"""

from django.urls import reverse

from aios.renderers import lean_datetimes, lean_float
from marketplace.managers import AUTHOR_VALUES, REVIEW_VALUES
from marketplace.models import RATINGS, Agent

_ICON_STORAGE = Agent._meta.get_field("icon").storage
# Stand-ins that the <int:pk> and <slug:slug> converters accept and no path contains.
_MARKERS = {"pk": "4611686018427387904", "slug": "0aios-marker0"}


def _around(name: str, kwarg: str) -> tuple[str, str]:
    """The path of `name` before and after its one argument."""
    marker = _MARKERS[kwarg]
    head, tail = reverse(name, kwargs={kwarg: marker}).split(marker)
    return head, tail


class Render:
    """What every row of one response shares: its absolute URL templates and datetime format."""

    __slots__ = ("api_head", "api_tail", "dt", "web_head", "web_tail")

    def __init__(self, request):
        # Card URLs as head + value + tail, made once per response (bench.inprocess -n 100: agent
        # list 0.062x the floor; 0.053x with reverse() and build_absolute_uri() per card).
        api_head, self.api_tail = _around("api:agent-detail", "pk")
        self.api_head = request.build_absolute_uri(api_head)
        self.web_head, self.web_tail = _around("agent-detail", "slug")
        self.dt = lean_datetimes()


def card(row, render: Render, prefix: str = "") -> dict:
    """AgentCardSerializer's card from a card_rows() row, its columns named `prefix` + name
    (an installation's row: agent__)."""
    pk, slug, icon = row[f"{prefix}id"], row[f"{prefix}slug"], row[f"{prefix}icon"]
    dt = render.dt
    return {
        "id": pk,
        "slug": slug,
        "name": row[f"{prefix}name"],
        "tagline": row[f"{prefix}tagline"],
        "icon": _ICON_STORAGE.url(icon) if icon else None,
        "category": {
            "slug": row[f"{prefix}category__slug"],
            "name": row[f"{prefix}category__name"],
        },
        "publisher": {
            "slug": row[f"{prefix}publisher__slug"],
            "name": row[f"{prefix}publisher__name"],
            "verified": row[f"{prefix}publisher__verified"],
        },
        "rating_average": lean_float(row[f"{prefix}rating_average"]),
        "rating_count": row[f"{prefix}rating_count"],
        "install_count": row[f"{prefix}install_count"],
        "is_featured": row[f"{prefix}is_featured"],
        "created_at": dt(row[f"{prefix}created_at"]),
        "updated_at": dt(row[f"{prefix}updated_at"]),
        "url": f"{render.api_head}{pk}{render.api_tail}",
        "web_url": f"{render.web_head}{slug}{render.web_tail}",
    }


def cards(rows, request) -> list[dict]:
    """AgentCardSerializer(rows, many=True).data, from card_rows()."""
    render = Render(request)
    return [card(row, render) for row in rows]


def search_results(rows, request) -> list[dict]:
    """SearchResultSerializer(rows, many=True).data, from card_rows("score")."""
    render = Render(request)
    results = []
    for row in rows:
        result = card(row, render)
        result["score"] = lean_float(row["score"])
        results.append(result)
    return results


def installations(rows, request) -> list[dict]:
    """InstallationSerializer(rows, many=True).data, from Installation card_rows()."""
    render = Render(request)
    dt = render.dt
    return [
        {
            "id": row["id"],
            "agent": card(row, render, "agent__"),
            "installed_at": dt(row["installed_at"]),
        }
        for row in rows
    ]


def installation(installation, row, request) -> dict:
    """InstallationSerializer(installation).data, its agent from card_rows()."""
    render = Render(request)
    return {
        "id": installation.pk,
        "agent": card(row, render),
        "installed_at": render.dt(installation.installed_at),
    }


def _review(row, dt) -> dict:
    """ReviewSerializer(review).data, from ReviewQuerySet.rows()."""
    first, last = row["user__first_name"], row["user__last_name"]
    username = row["user__username"]
    return {
        "id": row["id"],
        "agent": row["agent_id"],
        "rating": row["rating"],
        "title": row["title"],
        "body": row["body"],
        # AuthorSerializer: User.get_full_name() or the username.
        "author": {"username": username, "name": f"{first} {last}".strip() or username},
        "created_at": dt(row["created_at"]),
        "updated_at": dt(row["updated_at"]),
    }


def created_review(review, user) -> dict:
    """ReviewSerializer(review).data for a review `user` just wrote (no read back)."""
    row = {name: getattr(review, name) for name in REVIEW_VALUES}
    row.update({name: getattr(user, name.removeprefix("user__")) for name in AUTHOR_VALUES})
    return _review(row, lean_datetimes())


def reviews(rows) -> list[dict]:
    """ReviewSerializer(rows, many=True).data, from ReviewQuerySet.rows()."""
    dt = lean_datetimes()
    return [_review(row, dt) for row in rows]


def own_review(row, dt) -> dict:
    """MyReviewSerializer(review).data, from ReviewQuerySet.own_rows()."""
    return {
        "id": row["id"],
        "rating": row["rating"],
        "title": row["title"],
        "body": row["body"],
        "is_hidden": row["is_hidden"],
        "created_at": dt(row["created_at"]),
        "updated_at": dt(row["updated_at"]),
    }


def detail(row, request, *, reviews, mine) -> dict:
    """AgentDetailSerializer(agent).data, from detail_rows(), the latest reviews' rows() and
    the viewer's own_rows() (None: anonymous; [] or [row]: signed in)."""
    render = Render(request)
    dt = render.dt
    data = card(row, render)
    published = row["published_at"]
    data.update(
        {
            "description": row["description"],
            "version": row["version"],
            "homepage_url": row["homepage_url"],
            "source_url": row["source_url"],
            "tags": row["tags"],
            "published_at": dt(published) if published else None,
            "rating_distribution": {str(rating): row[f"ratings_{rating}"] for rating in RATINGS},
            "recent_reviews": [_review(review, dt) for review in reviews],
            "is_installed": None if mine is None else bool(row["viewer_installed"]),
            "my_review": own_review(mine[0], dt) if mine else None,
        }
    )
    return data
