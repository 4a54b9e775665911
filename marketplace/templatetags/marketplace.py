"""Template helpers: safe Markdown, agent icons, star ratings, cursor links."""

import markdown as md
import nh3
from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from marketplace import icons

register = template.Library()

# What a description or knowledge entry may contain once rendered: text structure, links
# and code. No images (tracking pixels), no raw HTML, no attributes but href/title.
MARKDOWN_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h2",
    "h3",
    "h4",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> str:
    """Markdown to HTML that can be shown as is: sanitised by nh3 after rendering."""
    html = md.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"])
    return nh3.clean(
        html,
        tags=MARKDOWN_TAGS,
        attributes=MARKDOWN_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer ugc",
    )


@register.filter(name="markdown")
def markdown_filter(text):
    return mark_safe(render_markdown(text))  # noqa: S308 - nh3 has removed anything unsafe


@register.filter
def web_url(value):
    """The URL if it is http(s), else "": a stored javascript: or data: URL never becomes a link."""
    url = str(value or "").strip()
    return url if url.lower().startswith(("https://", "http://")) else ""


@register.simple_tag
def agent_icon(agent, size=64, lazy=True):
    """The agent's icon at `size` CSS px (2x in srcset), or its initials badge without one."""
    name = agent.icon.name if agent.icon else ""
    if not name:
        return format_html(
            '<span class="icon icon-{} hue-{}" aria-hidden="true">{}</span>',
            size,
            icons.hue_index(agent.slug),
            icons.initials(agent.name),
        )
    double = size * 2 if size * 2 in icons.SIZES else size
    return format_html(
        '<img class="icon icon-{}" src="{}" srcset="{} 1x, {} 2x" width="{}" height="{}" '
        'alt="" decoding="async"{}>',
        size,
        icons.variant_url(name, size),
        icons.variant_url(name, size),
        icons.variant_url(name, double),
        size,
        size,
        mark_safe(' loading="lazy"') if lazy else "",
    )


@register.simple_tag
def stars(value):
    """A rating as five stars for the eye and a number for screen readers."""
    value = float(value or 0)
    full = round(value)
    return format_html(
        '<span class="stars" aria-hidden="true">{}<span class="stars-off">{}</span></span>'
        '<span class="visually-hidden">{} out of 5 stars</span>',
        "★" * full,
        "★" * (5 - full),
        f"{value:.1f}",
    )


@register.filter
def percent_of(part, whole):
    """`part` as a whole percentage of `whole` (0 when `whole` is 0), for bar widths."""
    try:
        return round(100 * int(part) / int(whole)) if int(whole) else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def gt(value, limit):
    """`value > limit` for ints, e.g. lazy-load every card after the first few."""
    try:
        return int(value) > int(limit or 0)
    except (TypeError, ValueError):
        return False


@register.simple_tag
def rating_columns(distribution, height=160, width=500):
    """Geometry of a 1..5 star column chart (SVG user units) from {"1": n, ..., "5": n}."""
    counts = [int(distribution.get(str(r), distribution.get(r, 0)) or 0) for r in range(1, 6)]
    top = max(counts) or 1
    total = sum(counts)
    slot = width / 5
    bar = slot * 0.6
    columns = []
    for stars_, count in zip(range(1, 6), counts, strict=True):
        h = round(height * count / top, 1)
        columns.append(
            {
                "stars": stars_,
                "count": count,
                "share": round(100 * count / total) if total else 0,
                "x": round(slot * (stars_ - 1) + (slot - bar) / 2, 1),
                "center": round(slot * (stars_ - 1) + slot / 2, 1),
                "y": round(height - h + 30, 1),
                "height": h,
                "width": round(bar, 1),
            }
        )
    return columns
