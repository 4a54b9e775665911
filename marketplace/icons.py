"""Agent icons: WebP in a few sizes, named after the stored icon, plus generated demo icons.

`Agent.icon` holds the name of a square WebP master (`icons/<kind>/<...>-<hash>.webp`). Its
sizes sit beside it as `<stem>-<size>.webp`, so a template derives every URL from the name
alone, without a query or a stat. Names carry a hash of what went into the image, so a
changed icon gets a new name and every icon URL can be cached as immutable.

Serving: icons live in the default storage (MEDIA_ROOT) and `marketplace.views.icon_file`
serves them with a one-year immutable Cache-Control, DEBUG or not (whitenoise only knows the
files that existed when the process started; icons are written at run time).
"""

import hashlib
import io
import os
import zlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont, ImageOps

SIZES = (64, 128, 256)
MASTER_SIZE = 256
WEBP_QUALITY = 82
ICON_DIR = "icons"
GENERATOR_VERSION = "1"  # bump to regenerate every demo icon under new names

# Calm, saturated backgrounds that keep white initials above 4.5:1 contrast.
PALETTE = (
    "#3b5bdb",
    "#0b7285",
    "#2b8a3e",
    "#5f3dc4",
    "#a61e4d",
    "#c2255c",
    "#1864ab",
    "#862e9c",
    "#d9480f",
    "#364fc7",
    "#087f5b",
    "#495057",
)


def variant_name(icon_name: str, size: int) -> str:
    stem, _ = os.path.splitext(icon_name)
    return f"{stem}-{size}.webp"


def variant_url(icon_name: str, size: int) -> str:
    return default_storage.url(variant_name(icon_name, size))


def hue_index(key: str) -> int:
    """A stable palette slot for `key` (a slug): the same agent always gets the same colour."""
    return zlib.crc32(key.encode("utf-8")) % len(PALETTE)


def initials(name: str) -> str:
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].title()
    return (words[0][0] + words[1][0]).upper()


def _webp_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    # method=4 (the default effort): 6 saves ~2% of bytes at ~80x the encoding time.
    image.save(buf, "WEBP", quality=WEBP_QUALITY, method=4)
    return buf.getvalue()


def _write(name: str, data: bytes, storage) -> None:
    # Names are content-addressed, so an existing file already holds these bytes.
    if not storage.exists(name):
        storage.save(name, ContentFile(data))


def store_icon(image: Image.Image, name: str, storage=default_storage) -> str:
    """Store `image` cropped square as the WebP master `name` and its sizes; returns `name`."""
    square = ImageOps.fit(image.convert("RGBA"), (MASTER_SIZE, MASTER_SIZE), Image.LANCZOS)
    _write(name, _webp_bytes(square), storage)
    for size in SIZES:
        resized = square if size == MASTER_SIZE else square.resize((size, size), Image.LANCZOS)
        _write(variant_name(name, size), _webp_bytes(resized), storage)
    return name


def store_upload(fileobj, storage=default_storage) -> str:
    """Store an uploaded image (any format Pillow reads) as an icon; returns the icon name."""
    data = fileobj.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    digest = hashlib.sha256(data).hexdigest()[:16]
    return store_icon(image, f"{ICON_DIR}/up/{digest}.webp", storage)


def generated_name(*, slug: str, name: str) -> str:
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{slug}:{name}".encode()).hexdigest()[:10]
    return f"{ICON_DIR}/gen/{slug}-{digest}.webp"


def draw_icon(*, slug: str, name: str) -> Image.Image:
    """A rounded square in the agent's colour with its initials: same input, same pixels."""
    scale = 2  # drawn at twice the size and scaled down for smooth edges
    side = MASTER_SIZE * scale
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, side - 1, side - 1), radius=side // 5, fill=255)
    image = Image.new("RGBA", (side, side), PALETTE[hue_index(slug)])
    # A soft lighter disc in one corner gives the flat square some depth.
    glow = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse(
        (side // 3, -side // 2, side * 3 // 2, side // 2), fill=(255, 255, 255, 36)
    )
    image = Image.alpha_composite(image, glow)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=side * 2 // 5)  # Pillow's bundled font: same everywhere
    draw.text(
        (side / 2, side / 2),
        initials(name),
        font=font,
        fill="#ffffff",
        anchor="mm",
        stroke_width=side // 96,
        stroke_fill="#ffffff",
    )
    image.putalpha(mask)
    return image.resize((MASTER_SIZE, MASTER_SIZE), Image.LANCZOS)


def generate_icon(*, slug: str, name: str, storage=default_storage) -> str:
    """Generate (or reuse) the demo icon of an agent; returns its icon name."""
    icon_name = generated_name(slug=slug, name=name)
    if storage.exists(icon_name):
        return icon_name
    return store_icon(draw_icon(slug=slug, name=name), icon_name, storage)


def generate_demo_icons(*, limit: int = 200, storage=default_storage) -> int:
    """Give generated icons to about `limit` agents: the first ones the home page shelves and
    the browse sorts show (featured, top rated, most installed, newest).

    The others keep the CSS initials badge the templates draw for an agent without an icon,
    which keeps seeding at bench scale fast. Returns how many agents got a new icon.
    """
    from . import caching
    from .models import Agent

    listed = Agent.objects.listed()
    per_list = max(limit // 4, 1)
    firsts = (
        listed.featured().ordered("-rating"),
        listed.ordered("-rating"),
        listed.ordered("-installs"),
        listed.ordered("-created"),
    )
    ids = {pk for qs in firsts for pk in qs.values_list("pk", flat=True)[:per_list]}
    agents = Agent.objects.filter(pk__in=ids).order_by("pk").only("pk", "slug", "name", "icon")
    changed = []
    for agent in agents:
        icon_name = generate_icon(slug=agent.slug, name=agent.name, storage=storage)
        if agent.icon.name != icon_name:
            agent.icon = icon_name
            changed.append(agent)
    with transaction.atomic():
        # bulk_update(): the icon is no counter and no service owns it; it fires no signals,
        # so the caches are told below.
        Agent.objects.bulk_update(changed, ["icon"], batch_size=500)
        caching.forget_on_commit(agent_ids=[a.pk for a in changed])
    return len(changed)
