"""Online cleanups that an apply owes the online store, kept durably in the registry database.

When an apply deletes a feature view, or gives it a new online generation (recreated, reshaped,
turned online or offline), the rows of the old generation must go. The apply records one row per
old generation here in the same transaction as the registry change, then drops the rows; a drop
that fails (the online store is down) stays recorded and the next apply finishes it. Rows of an
old generation are never read meanwhile: readers look up the current generation's namespace only
(docs/adr/0006-online-generations.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from potluck.definitions import FeatureView, OnDemandFeatureView
from potluck.definitions.base import canonical_json
from potluck.definitions.feature_view import ONLINE_GENERATION
from potluck.registry.dbapi import Cursor, Database

TABLE = "potluck_online_pending"


def pending_online_ddl(dialect: str) -> str:
    """The table of owed drops (part of the registry schema, created with it when missing)."""
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        id {serial},
        project VARCHAR(255) NOT NULL,
        feature_view VARCHAR(255) NOT NULL,
        generation BIGINT NOT NULL,
        spec TEXT NOT NULL,
        recorded_at VARCHAR(40) NOT NULL)"""


@dataclass(frozen=True)
class PendingDrop:
    """The rows of one old generation of a feature view, still to be removed from the online store."""

    id: int
    view: FeatureView | OnDemandFeatureView  # as registered then, with that generation


_Drops = list[PendingDrop]
_Messages = list[str]


class PendingOnlineChanges:
    """The pending online drops of one project."""

    def __init__(self, database: Database, project: str) -> None:
        self.project = project
        self._db = database  # the registry's own database (its connections and timeouts)

    def record(self, cur: Cursor, drops: Sequence[FeatureView | OnDemandFeatureView], resets: list[str]) -> None:
        """Inside the registry commit: owe a drop of each view in `drops`, restart the watermarks of `resets`.

        A restarted watermark means the view's recorded materialization intervals are removed:
        the new generation holds no rows, so nothing may say it is fresh.
        """
        for name in resets:
            cur.execute(
                "DELETE FROM potluck_materializations WHERE project = ? AND feature_view = ?", (self.project, name)
            )
        if not drops:
            return
        now = datetime.now(UTC).isoformat()
        for view in drops:
            spec = view.to_spec()
            spec[ONLINE_GENERATION] = view.online_generation
            cur.execute(
                f"INSERT INTO {TABLE} (project, feature_view, generation, spec, recorded_at) VALUES (?, ?, ?, ?, ?)",
                (self.project, view.name, view.online_generation, canonical_json(spec), now),
            )

    def _exists(self, cur: Cursor) -> bool:
        if self._db.dialect == "sqlite":
            cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,))
        else:
            cur.execute("SELECT 1 WHERE to_regclass(?) IS NOT NULL", (TABLE,))
        return cur.fetchone() is not None

    def list(self) -> list[PendingDrop]:
        """The drops still owed, oldest first (an empty list when none was ever recorded)."""
        return self.read()[0]

    def read(self) -> tuple[_Drops, _Messages]:
        """The drops still owed, oldest first, and a message naming each recorded row that cannot be read.

        A row that cannot be decoded (edited by hand, say) stays recorded and is skipped: the
        others are still done, and its rows are never served (they belong to an old generation).
        """
        with self._db.transaction() as cur:
            if not self._exists(cur):
                return [], []
            cur.execute(
                f"SELECT id, feature_view, generation, spec FROM {TABLE} WHERE project = ? ORDER BY id",
                (self.project,),
            )
            rows = cur.fetchall()
        drops: _Drops = []
        problems: _Messages = []
        for row_id, name, generation, spec in rows:
            try:
                decoded = json.loads(spec)
                kind = OnDemandFeatureView if "udf" in decoded else FeatureView  # stored on-demand views have one
                drops.append(PendingDrop(int(row_id), kind.from_spec(decoded)))
            except Exception as err:  # any decoding failure: name the row, go on
                problems.append(
                    f"pending online drop of feature view '{name}' generation {generation} "
                    f"({TABLE} row id={row_id}) cannot be read ({type(err).__name__}: {err}); it is skipped "
                    "and its rows are never served; delete that row once they are removed"
                )
        return drops, problems

    def done(self, drop: PendingDrop) -> None:
        with self._db.transaction(write=True) as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE id = ?", (drop.id,))

    def clear(self) -> None:
        """Forget every pending drop of the project (after a teardown removed its online data)."""
        with self._db.transaction(write=True) as cur:
            if self._exists(cur):
                cur.execute(f"DELETE FROM {TABLE} WHERE project = ?", (self.project,))

    def close(self) -> None:
        self._db.close()
