"""Tests that drive Feast 0.67's own code and documented requests against a Potluck server."""

from __future__ import annotations

import sys
from pathlib import Path

# the repositories of the end-to-end tests (integration_support) serve here too
sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
