"""Browser tests: Playwright on the system's Chromium (tests/helpers/browser.py).

Where no Chromium is installed, every test marked `browser` is skipped with the reason.
"""

from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers.browser import CHROMIUM
from tests.helpers.browser import browser_type_launch_args as browser_type_launch_args

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(
        reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def screenshot(page):
    """screenshot("name"): a full-page PNG of the current page under test-artifacts/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path
