"""The web UI's browser tests: Debian's Chromium driven by Playwright, one browser for the session.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`make test-tools` installs
it). Missing, the tests fail when CI=true and skip otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser_support import CHROMIUM, CHROMIUM_ARGS


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the browser tests are required)")
    pytest.skip(message)


@pytest.fixture(scope="session")
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


@dataclass
class Problems:
    """What went wrong in a page while a test drove it: console errors, uncaught errors, failed requests."""

    allowed_statuses: set[int] = field(default_factory=set)
    found: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        page.on("console", lambda m: m.type == "error" and not self._allowed(m.text) and self.found.append(
            f"console: {m.text} ({m.location})"
        ))  # fmt: skip
        page.on("pageerror", lambda e: self.found.append(f"page error: {e}"))
        # ERR_ABORTED: the test moved on to the next page before a request (the icon) finished
        page.on(
            "requestfailed",
            lambda r: "ERR_ABORTED" not in str(r.failure) and self.found.append(f"request failed: {r.url} ({r.failure})"),
        )
        page.on(
            "response",
            lambda r: r.status >= 400
            and r.status not in self.allowed_statuses
            and self.found.append(f"HTTP {r.status}: {r.url}"),
        )
        return page

    def _allowed(self, console_text: str) -> bool:
        """Chromium logs every 4xx answer to the console too; those of allowed statuses are no error."""
        status = re.search(r"the server responded with a status of (\d+)", console_text)
        return status is not None and int(status.group(1)) in self.allowed_statuses

    def check(self) -> None:
        assert self.found == [], "\n".join(self.found)


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
