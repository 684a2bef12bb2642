"""What monitoring remembers between runs, in the registry database (SQLite or PostgreSQL).

- `potluck_alert_state`: per channel, the alerts whose firing message reached it. The next run
  sends only what changed: alerts that start firing, and resolves for those that stopped. A failed
  delivery records nothing, so the next run tries again.
- `potluck_drift_results`: per feature, its metrics and verdict in the latest `monitor run` that
  checked its view; the feature server exports them as gauges.
- `potluck_skew_reports`: per feature service, its latest training-serving skew report (JSON),
  shown by the web UI. (Drift over time is the run history of the baselines' table.)
- `potluck_materialization_failures`: per view, its last failed materialization run, removed by the
  next successful one; the feature server exports it for the materialization-failure alert rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from potluck.monitoring.alerts.model import Alert, AlertKind
from potluck.monitoring.gauges import DriftGauge
from potluck.registry.dbapi import Database, Timeouts

_MAX_ERROR_CHARS = 2000


def schema() -> list[str]:
    return [
        """CREATE TABLE IF NOT EXISTS potluck_alert_state (
            project VARCHAR(255) NOT NULL,
            channel VARCHAR(100) NOT NULL,
            alert_key VARCHAR(255) NOT NULL,
            kind VARCHAR(32) NOT NULL,
            feature_view VARCHAR(255) NOT NULL,
            feature VARCHAR(255),
            rule VARCHAR(64) NOT NULL,
            fired_at VARCHAR(40) NOT NULL,
            PRIMARY KEY (project, channel, alert_key))""",
        """CREATE TABLE IF NOT EXISTS potluck_materialization_failures (
            project VARCHAR(255) NOT NULL,
            feature_view VARCHAR(255) NOT NULL,
            failed_at VARCHAR(40) NOT NULL,
            error TEXT NOT NULL,
            PRIMARY KEY (project, feature_view))""",
        """CREATE TABLE IF NOT EXISTS potluck_drift_results (
            project VARCHAR(255) NOT NULL,
            feature_view VARCHAR(255) NOT NULL,
            feature VARCHAR(255) NOT NULL,
            drift INTEGER NOT NULL,
            psi DOUBLE PRECISION,
            ks_statistic DOUBLE PRECISION,
            ks_p_value DOUBLE PRECISION,
            js_distance DOUBLE PRECISION,
            checked_at VARCHAR(40) NOT NULL,
            PRIMARY KEY (project, feature_view, feature))""",
        """CREATE TABLE IF NOT EXISTS potluck_skew_reports (
            project VARCHAR(255) NOT NULL,
            feature_service VARCHAR(255) NOT NULL,
            checked_at VARCHAR(40) NOT NULL,
            report TEXT NOT NULL,
            PRIMARY KEY (project, feature_service))""",
    ]


@dataclass(frozen=True)
class MaterializationFailure:
    feature_view: str
    failed_at: datetime
    error: str


class MonitorState:
    """One project's monitoring state in the registry database. Thread-safe."""

    def __init__(self, url: str, project: str, timeouts: Timeouts | None = None) -> None:
        self.db = Database(url, timeouts, schema())
        self.project = project

    def close(self) -> None:
        self.db.close()

    def teardown(self) -> None:
        """Forget everything of this project (alert state, drift results, failures)."""
        with self.db.transaction(write=True) as cur:
            for table in (
                "potluck_alert_state",
                "potluck_drift_results",
                "potluck_materialization_failures",
                "potluck_skew_reports",
            ):
                cur.execute(f"DELETE FROM {table} WHERE project = ?", (self.project,))

    # ------------------------------------------------------------ alerts

    def firing(self, channel: str) -> list[Alert]:
        """The alerts whose firing message reached `channel` and that have not been resolved there."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT kind, feature_view, feature, rule FROM potluck_alert_state "
                "WHERE project = ? AND channel = ? ORDER BY alert_key",
                (self.project, channel),
            )
            rows = cur.fetchall()
        return [Alert(self.project, cast(AlertKind, k), v, f, r) for k, v, f, r in rows]

    def record(self, channel: str, fired: list[Alert], resolved: list[Alert]) -> None:
        """`fired` reached `channel` as firing, `resolved` as resolved: one transaction."""
        now = datetime.now(UTC).isoformat()
        with self.db.transaction(write=True) as cur:
            for alert in resolved:
                cur.execute(
                    "DELETE FROM potluck_alert_state WHERE project = ? AND channel = ? AND alert_key = ?",
                    (self.project, channel, alert.key),
                )
            for alert in fired:  # an upsert: runs that overlap may record the same alert
                cur.execute(
                    "INSERT INTO potluck_alert_state "
                    "(project, channel, alert_key, kind, feature_view, feature, rule, fired_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (project, channel, alert_key) DO UPDATE SET fired_at = excluded.fired_at",
                    (self.project, channel, alert.key, alert.kind, alert.view, alert.feature, alert.rule, now),
                )

    # ------------------------------------------------------------ materialization failures

    def record_materialization(self, views: list[str], error: str | None) -> None:
        """A run over `views` failed with `error`, or (None) succeeded."""
        now = datetime.now(UTC).isoformat()
        with self.db.transaction(write=True) as cur:
            for view in views:
                if error is None:
                    cur.execute(
                        "DELETE FROM potluck_materialization_failures WHERE project = ? AND feature_view = ?",
                        (self.project, view),
                    )
                else:
                    cur.execute(
                        "INSERT INTO potluck_materialization_failures (project, feature_view, failed_at, error) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (project, feature_view) "
                        "DO UPDATE SET failed_at = excluded.failed_at, error = excluded.error",
                        (self.project, view, now, error[:_MAX_ERROR_CHARS]),
                    )

    def materialization_failures(self) -> list[MaterializationFailure]:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT feature_view, failed_at, error FROM potluck_materialization_failures "
                "WHERE project = ? ORDER BY feature_view",
                (self.project,),
            )
            rows = cur.fetchall()
        return [MaterializationFailure(v, datetime.fromisoformat(at), e) for v, at, e in rows]

    # ------------------------------------------------------------ skew reports

    def record_skew(self, feature_service: str, report: str, checked_at: datetime) -> None:
        """The latest skew report (JSON) of `feature_service`, replacing the one before."""
        at = checked_at.astimezone(UTC).isoformat()
        with self.db.transaction(write=True) as cur:
            cur.execute(
                "INSERT INTO potluck_skew_reports (project, feature_service, checked_at, report) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (project, feature_service) DO UPDATE SET checked_at = excluded.checked_at, "
                "report = excluded.report",
                (self.project, feature_service, at, report),
            )

    def skew_reports(self) -> dict[str, tuple[datetime, str]]:
        """Per feature service: when its latest skew report was made, and the report (JSON)."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT feature_service, checked_at, report FROM potluck_skew_reports WHERE project = ?",
                (self.project,),
            )
            rows = cur.fetchall()
        return {str(s): (datetime.fromisoformat(at), str(r)) for s, at, r in rows}

    # ------------------------------------------------------------ drift results

    def record_drift(self, views: list[str], results: list[DriftGauge], checked_at: datetime) -> None:
        """The latest results of `views`: replaces whatever an earlier run recorded for them."""
        at = checked_at.astimezone(UTC).isoformat()
        with self.db.transaction(write=True) as cur:
            for view in views:
                cur.execute(
                    "DELETE FROM potluck_drift_results WHERE project = ? AND feature_view = ?", (self.project, view)
                )
            for r in results:
                cur.execute(
                    "INSERT INTO potluck_drift_results (project, feature_view, feature, drift, psi, ks_statistic, "
                    "ks_p_value, js_distance, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.project,
                        r.view,
                        r.feature,
                        int(r.drift),
                        r.psi,
                        r.ks_statistic,
                        r.ks_p_value,
                        r.js_distance,
                        at,
                    ),
                )

    def drift_results(self) -> tuple[list[DriftGauge], dict[str, datetime]]:
        """The latest results per feature, and when each view was last checked."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT feature_view, feature, drift, psi, ks_statistic, ks_p_value, js_distance, checked_at "
                "FROM potluck_drift_results WHERE project = ? ORDER BY feature_view, feature",
                (self.project,),
            )
            rows = cur.fetchall()
        gauges = [DriftGauge(v, f, bool(d), psi, ks, p, js) for v, f, d, psi, ks, p, js, _ in rows]
        checked: dict[str, datetime] = {}
        for row in rows:
            at = datetime.fromisoformat(row[7])
            checked[row[0]] = max(at, checked.get(row[0], at))
        return gauges, checked
