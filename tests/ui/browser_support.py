"""Debian's Chromium as Playwright launches it (never a browser Playwright downloads)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")  # `make test-tools` installs it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
            lambda r: (
                "ERR_ABORTED" not in str(r.failure) and self.found.append(f"request failed: {r.url} ({r.failure})")
            ),
        )
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and r.status not in self.allowed_statuses
                and self.found.append(f"HTTP {r.status}: {r.url}")
            ),
        )
        return page

    def _allowed(self, console_text: str) -> bool:
        """Chromium logs every 4xx answer to the console too; those of allowed statuses are no error."""
        status = re.search(r"the server responded with a status of (\d+)", console_text)
        return status is not None and int(status.group(1)) in self.allowed_statuses

    def check(self) -> None:
        assert self.found == [], "\n".join(self.found)
