"""Materialization runs as monitoring sees them: each view's outcome recorded, failures alerted.

Called by the materialization runner after each view (SDK, CLI and the server's /materialize alike).
A failed view is recorded (the server exports it) and, with `monitoring.alerts` channels, alerted;
the view's next successful run clears the record and resolves the alert. Nothing here may fail or
hide the run's own outcome: problems are logged as warnings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from potluck.monitoring.alerts.model import Alert, Scope

if TYPE_CHECKING:
    from potluck.monitoring.alerts.config import AlertsConfig
    from potluck.monitoring.state import MonitorState

log = logging.getLogger("potluck.monitoring")
RULE = "materialization_failed"


def failure_alert(project: str, view: str, error: BaseException) -> Alert:
    message = f"{type(error).__name__}: {error}"
    return Alert(
        project,
        "materialization",
        view,
        None,
        RULE,
        f"materialization of {view} failed: {message[:500]}",
        {"error": message[:2000]},
    )


class MaterializationWatch:
    """`watch(view, error)` after each view's run; `error` None means it succeeded."""

    def __init__(self, state: MonitorState, project: str, alerts: AlertsConfig) -> None:
        self.state = state
        self.project = project
        self.alerts = alerts

    def __call__(self, view: str, error: BaseException | None) -> None:
        message = None if error is None else f"{type(error).__name__}: {error}"
        try:
            self.state.record_materialization([view], message)
        except Exception as err:
            log.warning("could not record the materialization outcome of %s: %s", view, err)
        if not self.alerts.channels:
            return
        from potluck.monitoring.alerts.notify import deliver

        current = [] if error is None else [failure_alert(self.project, view, error)]
        scope = Scope.of("materialization", [view])
        try:
            report = deliver(self.alerts, self.project, current, scope, self.state)
        except Exception as err:
            log.warning("materialization alerts for %s not delivered: %s", view, err)
            return
        for channel in report.channels:
            if not channel.ok:
                log.warning("materialization alert for %s: %s", view, channel.describe())
