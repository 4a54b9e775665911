import io
from datetime import timedelta

import pytest
from django.core.files.storage import FileSystemStorage
from django.utils import timezone
from PIL import Image

from marketplace import icons
from marketplace.models import Agent
from tests.factories import AgentFactory


@pytest.fixture
def storage(tmp_path):
    return FileSystemStorage(location=tmp_path, base_url="/media/")


def test_drawn_icons_are_deterministic():
    first = icons.draw_icon(slug="translator-pro", name="Translator Pro")
    again = icons.draw_icon(slug="translator-pro", name="Translator Pro")
    other = icons.draw_icon(slug="code-helper", name="Code Helper")
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Translator Pro", "TP"), ("zen", "Ze"), ("code-review bot", "CR"), ("!!!", "?")],
)
def test_initials(name, expected):
    assert icons.initials(name) == expected


def test_generated_icon_is_stored_as_webp_in_every_size(storage, tmp_path):
    name = icons.generate_icon(slug="translator-pro", name="Translator Pro", storage=storage)
    assert name.startswith("icons/gen/translator-pro-") and name.endswith(".webp")
    for size in icons.SIZES:
        variant = icons.variant_name(name, size)
        assert variant == name.removesuffix(".webp") + f"-{size}.webp"
        with Image.open(tmp_path / variant) as image:
            assert (image.format, image.size) == ("WEBP", (size, size))
    # A renamed agent gets a new icon name, so cached URLs never show a stale picture.
    assert icons.generated_name(slug="translator-pro", name="Translator Max") != name


def test_uploads_are_content_addressed(storage):
    buf = io.BytesIO()
    Image.new("RGB", (40, 80), "#ff0000").save(buf, "PNG")
    first = icons.store_upload(io.BytesIO(buf.getvalue()), storage=storage)
    again = icons.store_upload(io.BytesIO(buf.getvalue()), storage=storage)
    assert first == again and first.startswith("icons/up/")


@pytest.mark.django_db
def test_demo_icons_go_to_the_agents_the_first_pages_show(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    now = timezone.now()
    AgentFactory.create_batch(6, rating_average=2.0, created_at=now - timedelta(days=30))
    best = AgentFactory(name="Best", rating_average=5.0, created_at=now - timedelta(days=30))
    newest = AgentFactory(name="Newest", rating_average=1.0, created_at=now)
    popular = AgentFactory(install_count=99, created_at=now - timedelta(days=30))

    assert icons.generate_demo_icons(limit=4) == 3  # one per list; no agent is featured
    with_icon = set(Agent.objects.exclude(icon="").values_list("pk", flat=True))
    assert with_icon == {best.pk, newest.pk, popular.pk}
    assert icons.generate_demo_icons(limit=4) == 0  # idempotent
