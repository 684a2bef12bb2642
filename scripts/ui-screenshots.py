"""Screenshots of the web UI's main pages on the demo repository, for README.md and docs/ui.md.

    .venv/bin/python scripts/ui-screenshots.py [--out docs/images]

Builds the demo repository with monitoring data in a temporary folder (tests/ui/ui_support.py), serves
its UI on a free loopback port and saves 1366x900 PNGs with Debian's Chromium (/usr/bin/chromium,
`make test-tools`; Playwright never downloads a browser).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ui"))
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from ui_support import DRIFTED_VIEW, build_demo, ui_server  # noqa: E402

VIEWPORT = {"width": 1366, "height": 900}
# file name -> (address, the element to scroll into view first, or None for the top of the page)
PAGES = {
    "ui-overview.png": ("/", None),
    "ui-feature-view.png": (f"/feature-views/{DRIFTED_VIEW}", None),
    "ui-feature-view-statistics.png": (f"/feature-views/{DRIFTED_VIEW}", "#statistics"),
    "ui-feature-view-drift.png": (f"/feature-views/{DRIFTED_VIEW}", "#drift"),
    "ui-lineage.png": ("/lineage", None),
    "ui-feature-service.png": ("/feature-services/fraud_model_v2", "#skew"),
}
MAX_BYTES = 300 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: run `make test-tools` (as root) first")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = build_demo(Path(tmp) / "demo")
        with ui_server(repo) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                for name, (address, anchor) in PAGES.items():
                    response = page.goto(url + address, wait_until="networkidle")
                    if response is None or response.status != 200:
                        sys.exit(f"{address}: HTTP {None if response is None else response.status}")
                    if anchor is not None:  # the section's heading at the top of the window
                        page.locator(anchor).evaluate("e => e.scrollIntoView({block: 'start'})")
                    target = args.out / name
                    page.screenshot(path=str(target))
                    size = target.stat().st_size
                    print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: {size // 1024} KB")
                    if size > MAX_BYTES:
                        sys.exit(f"{target} is larger than {MAX_BYTES // 1024} KB")
            finally:
                browser.close()


if __name__ == "__main__":
    main()
