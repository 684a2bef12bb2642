"""A sensor that waits until a view's materialization watermark is fresh."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from potluck.integrations.airflow.task import duration, open_store
from potluck.integrations.steps import freshness_status


class PotluckFreshnessSensor(BaseSensorOperator):  # type: ignore[misc]
    """Pokes until feature view `view` (a name, several, or every online view by default) was materialized
    less than `max_staleness` ago (without it: each view's own limit, from its `potluck.max_staleness` tag or
    `monitoring.freshness`). Its XCom is each view's freshness."""

    template_fields: Sequence[str] = ("repo_path", "fs_yaml_file", "view")

    def __init__(
        self,
        *,
        view: str | Sequence[str] | None = None,
        max_staleness: timedelta | str | None = None,
        repo_path: str | None = None,
        fs_yaml_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.view = view
        self.max_staleness = duration(max_staleness, f"{type(self).__name__} max_staleness")
        self.repo_path = repo_path
        self.fs_yaml_file = fs_yaml_file

    def poke(self, context: Any) -> PokeReturnValue:
        store = open_store(self.task_id, self.repo_path, self.fs_yaml_file)
        try:
            views = [self.view] if isinstance(self.view, str) else self.view
            found = freshness_status(store, views, self.max_staleness)
        finally:
            store.close()
        for s in found:
            self.log.info("feature view '%s': %s", s.view, s.to_json())
        waiting = [s.view for s in found if s.stale]
        if waiting:
            self.log.info("waiting for %s to be materialized", ", ".join(waiting))
        return PokeReturnValue(is_done=not waiting, xcom_value={"views": [s.to_json() for s in found]})
