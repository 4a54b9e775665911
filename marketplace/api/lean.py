"""values() rows to response dicts: the lean read paths.

Each function writes exactly what its serializer in serializers.py writes for the same data
(same keys, order and values; `tests/marketplace/test_api_lean.py` pins it), from the rows of
the QuerySet shapes `card_rows()`, `detail_rows()`, `rows()`: no model instances, no per-field
serializer calls. The serializers stay the schema's description of these responses.
"""

from django.urls import get_script_prefix

from aios.renderers import lean_datetimes, lean_float
from marketplace.managers import AUTHOR_VALUES, CARD_VALUES, REVIEW_VALUES
from marketplace.models import RATINGS, Agent

from .serializers import _URL_MARKERS, _url_template

_ICON_STORAGE = Agent._meta.get_field("icon").storage


class Render:
    """What every row of one response shares: its absolute URL templates and datetime format."""

    __slots__ = ("api_head", "api_tail", "dt", "web_head", "web_tail")

    def __init__(self, request):
        prefix = get_script_prefix()
        marker = _URL_MARKERS["pk"]
        # Absolute once per response: build_absolute_uri per card was a tenth of a listing.
        api = request.build_absolute_uri(
            _url_template("api:agent-detail", "pk", prefix).format(marker)
        )
        self.api_head, self.api_tail = api.split(marker)
        web = _url_template("agent-detail", "slug", prefix).format(_URL_MARKERS["slug"])
        self.web_head, self.web_tail = web.split(_URL_MARKERS["slug"])
        self.dt = lean_datetimes()


def _card_function(prefix: str):
    """card(row, render) for rows whose card columns carry `prefix` (installations: agent__)."""
    keys = {name: f"{prefix}{name}" for name in CARD_VALUES}
    (
        k_id,
        k_slug,
        k_name,
        k_tagline,
        k_icon,
        k_rating,
        k_rcount,
        k_icount,
        k_featured,
        k_created,
        k_updated,
        k_cslug,
        k_cname,
        k_pslug,
        k_pname,
        k_pverified,
    ) = keys.values()
    storage_url = _ICON_STORAGE.url

    def card(row, render: Render) -> dict:
        pk, slug, icon, dt = row[k_id], row[k_slug], row[k_icon], render.dt
        return {
            "id": pk,
            "slug": slug,
            "name": row[k_name],
            "tagline": row[k_tagline],
            "icon": storage_url(icon) if icon else None,
            "category": {"slug": row[k_cslug], "name": row[k_cname]},
            "publisher": {
                "slug": row[k_pslug],
                "name": row[k_pname],
                "verified": row[k_pverified],
            },
            "rating_average": lean_float(row[k_rating]),
            "rating_count": row[k_rcount],
            "install_count": row[k_icount],
            "is_featured": row[k_featured],
            "created_at": dt(row[k_created]),
            "updated_at": dt(row[k_updated]),
            "url": f"{render.api_head}{pk}{render.api_tail}",
            "web_url": f"{render.web_head}{slug}{render.web_tail}",
        }

    return card


card = _card_function("")
installed_card = _card_function("agent__")


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
            "agent": installed_card(row, render),
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
