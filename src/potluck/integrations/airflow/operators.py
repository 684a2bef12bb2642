"""Operators: materialize, validate the sources, validate the online store, monitor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator

from potluck.integrations import steps
from potluck.integrations.airflow.task import duration, interval_of, open_store, run_step

_TEMPLATED = ("repo_path", "fs_yaml_file", "views")


class _PotluckOperator(BaseOperator):  # type: ignore[misc]
    template_fields: Sequence[str] = _TEMPLATED

    def __init__(
        self,
        *,
        repo_path: str | None = None,
        views: Sequence[str] | None = None,
        fs_yaml_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repo_path = repo_path
        self.views = views
        self.fs_yaml_file = fs_yaml_file

    def _views(self) -> list[str] | None:
        if self.views is None:
            return None
        return [self.views] if isinstance(self.views, str) else list(self.views)

    def execute(self, context: Any) -> dict[str, Any]:
        store = open_store(self.task_id, self.repo_path, self.fs_yaml_file)
        try:
            return run_step(self, context, lambda: self.step(store, interval_of(context)))
        finally:
            store.close()

    def step(self, store: Any, interval: steps.Interval) -> dict[str, Any]:
        raise NotImplementedError


class PotluckMaterializeOperator(_PotluckOperator):
    """Materialize the run's data interval, view by view (every online view by default).

    `incremental=True`: `materialize_incremental(data_interval_end)`, from each view's watermark (for
    scheduled runs in order); `incremental=False`: `materialize(data_interval_start, data_interval_end)`
    (for backfills and reruns of an old interval). `lookback` re-reads that much before the watermark.
    """

    def __init__(
        self,
        *,
        incremental: bool = True,
        lookback: timedelta | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.incremental = incremental
        self.lookback = duration(lookback, f"{type(self).__name__} lookback") or timedelta(0)

    def step(self, store: Any, interval: steps.Interval) -> dict[str, Any]:
        return steps.materialize_interval(
            store, interval, self._views(), incremental=self.incremental, lookback=self.lookback
        )


class PotluckValidateSourcesOperator(_PotluckOperator):
    """Fail (without retries) unless every view's source exists, matches its definition, and holds at least
    `min_rows` rows (an int, or per view a mapping) with an event time in the data interval (or in
    `[end - window, end)` when `window` is given)."""

    def __init__(
        self,
        *,
        min_rows: int | Mapping[str, int] = 1,
        window: timedelta | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_rows = min_rows
        self.window = duration(window, f"{type(self).__name__} window")

    def step(self, store: Any, interval: steps.Interval) -> dict[str, Any]:
        return steps.validate_sources(store, interval, self._views(), min_rows=self.min_rows, window=self.window)


class PotluckValidateOnlineOperator(_PotluckOperator):
    """Fail (without retries) when sampled online values differ from the offline result: `sample` keys per
    view (seeded) from the interval's offline rows; floats match within `tolerance` (relative) or
    `abs_tolerance`; up to `max_mismatch_rate` of the values may differ."""

    def __init__(
        self,
        *,
        sample: int = 100,
        seed: int = 0,
        tolerance: float = 1e-6,
        abs_tolerance: float = 1e-9,
        max_mismatch_rate: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sample = sample
        self.seed = seed
        self.tolerance = tolerance
        self.abs_tolerance = abs_tolerance
        self.max_mismatch_rate = max_mismatch_rate

    def step(self, store: Any, interval: steps.Interval) -> dict[str, Any]:
        return steps.validate_online(
            store,
            interval,
            self._views(),
            sample=self.sample,
            seed=self.seed,
            rel_tolerance=self.tolerance,
            abs_tolerance=self.abs_tolerance,
            max_mismatch_rate=self.max_mismatch_rate,
        )


class PotluckMonitorOperator(_PotluckOperator):
    """`potluck monitor run` over the data interval: drift against the baselines (all saved ones unless
    `baselines` names some) and each view's staleness (limit: `max_staleness` for views without their own),
    alerts sent to the configured channels. Drift or staleness fails the task (without retries) unless
    `fail_on_drift=False`; an undelivered alert fails it with retries."""

    template_fields: Sequence[str] = (*_TEMPLATED, "baselines")

    def __init__(
        self,
        *,
        baselines: Sequence[str] = (),
        max_staleness: timedelta | str | None = None,
        fail_on_drift: bool = True,
        send_alerts: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.baselines = baselines
        self.max_staleness = duration(max_staleness, f"{type(self).__name__} max_staleness")
        self.fail_on_drift = fail_on_drift
        self.send_alerts = send_alerts

    def step(self, store: Any, interval: steps.Interval) -> dict[str, Any]:
        return steps.monitor_step(
            store,
            None if interval.empty else interval,
            baselines=list(self.baselines),
            views=self._views() or (),
            max_staleness=self.max_staleness,
            fail_on_drift=self.fail_on_drift,
            send_alerts=self.send_alerts,
        )
