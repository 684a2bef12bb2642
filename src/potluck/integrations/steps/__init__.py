"""The steps of a feature pipeline, for orchestrators: each takes a store and an interval and returns a
JSON-ready summary; a failed check raises `CheckFailed` carrying the summary and a report.

Every step is idempotent and safe to retry: materialization writes newest-wins and records an
interval only after its writes are durable, and the checks only read (the monitor step's recorded
drift results and alerts are keyed, so a rerun replaces them instead of adding to them).
"""

from potluck.integrations.steps.freshness import freshness_status
from potluck.integrations.steps.interval import Interval
from potluck.integrations.steps.materialize import materialize_interval
from potluck.integrations.steps.monitor import monitor_step
from potluck.integrations.steps.online import sample_keys, validate_online
from potluck.integrations.steps.report import CheckFailed, StepError
from potluck.integrations.steps.sources import validate_sources

__all__ = [
    "CheckFailed",
    "Interval",
    "StepError",
    "freshness_status",
    "materialize_interval",
    "monitor_step",
    "sample_keys",
    "validate_online",
    "validate_sources",
]
