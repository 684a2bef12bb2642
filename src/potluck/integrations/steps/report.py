"""What a step raises: a failed check (a verdict on the data) or a failed step (worth a retry)."""

from __future__ import annotations

from typing import Any

from potluck.definitions.errors import PotluckError


class StepError(PotluckError):
    """A step could not finish (a view failed to materialize, an alert was not delivered); a rerun may succeed.

    `summary` holds what the step did before and around the failure.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class CheckFailed(StepError):
    """A check ran and its verdict is negative (missing or stale data, online values that differ, drift).

    Running it again gives the same verdict until the data changes, so orchestrators do not retry it.
    """


def bullet_list(title: str, lines: list[str], limit: int = 20) -> str:
    """A report: a title line and one indented line per problem (the first `limit`, then how many more)."""
    shown = [f"  - {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... and {len(lines) - limit} more")
    return "\n".join([title, *shown])
