"""The web UI's browser tests: Debian's Chromium driven by Playwright, one browser per module.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`make test-tools` installs
it). Missing, the tests fail when CI=true and skip otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser_support import CHROMIUM, CHROMIUM_ARGS, Problems


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the browser tests are required)")
    pytest.skip(message)


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is started,
# and later modules on the same test worker call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing; install it with `make test-tools` (Debian's chromium package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing; install the dev extra: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ui_support import build_demo

    return build_demo(tmp_path_factory.mktemp("ui") / "demo")


@pytest.fixture(scope="session")
def ui_url(demo_repo: Path) -> Iterator[str]:
    """The demo's UI on loopback without authentication (the default there)."""
    from ui_support import ui_server

    with ui_server(demo_repo) as url:
        yield url


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def page(browser: Any, problems: Problems) -> Iterator[Any]:
    """A page in a fresh browser context (own cookies), watched for problems."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        yield problems.watch(context.new_page())
    finally:
        context.close()
