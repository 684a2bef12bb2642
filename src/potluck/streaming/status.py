"""`potluck stream status`: how far each stream view's consumer group is behind, per partition.

Lag is read without joining the group (`potluck.streaming.sources.read_lag`), so a running
worker is neither rebalanced nor slowed. A source shared by several views is read once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from potluck.streaming.sources import ConsumerOptions, StreamUnavailableError, read_lag
from potluck.streaming.worker import select_views

if TYPE_CHECKING:
    from potluck.repo.config import StreamConfig
    from potluck.store import FeatureStore


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a view's stream source: messages after the group's committed position.

    When the source could not be read, `partition` and `lag` are None and `error` says why.
    """

    view: str
    source: str
    partition: str | None
    lag: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        row: dict[str, object] = {"view": self.view, "source": self.source, "partition": self.partition}
        row["lag"] = self.lag
        if self.error is not None:
            row["error"] = self.error
        return row


def lag_options(config: StreamConfig, project: str, source: str, group: str | None = None) -> ConsumerOptions:
    """How to read a source's lag: the worker's group and client settings, under a name of its own."""
    own = config.sources.get(source)
    return ConsumerOptions(
        group=group or config.group(project),
        consumer_name=f"potluck-status-{socket.gethostname()}-{os.getpid()}",
        auto_offset_reset=own.auto_offset_reset if own and own.auto_offset_reset else config.auto_offset_reset,
        settings={**config.settings, **(own.settings if own else {})},
    )


def stream_status(
    store: FeatureStore, views: Sequence[str] | None = None, group: str | None = None
) -> list[PartitionLag]:
    """Lag per view, source and partition of the worker's consumer group (`group`: another one).

    `views` selects views by name (each must read a stream source); default: every stream view.
    """
    store.refresh_registry()
    chosen = sorted(select_views(store.registry_snapshot().feature_views(), views), key=lambda v: v.name)
    by_source: dict[str, dict[str, int] | str] = {}
    rows: list[PartitionLag] = []
    for view in chosen:
        source = view.source
        if source.name not in by_source:
            try:
                options = lag_options(store.config.stream, store.project, source.name, group)
                by_source[source.name] = read_lag(source, options)
            except StreamUnavailableError as err:
                by_source[source.name] = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        lag = by_source[source.name]
        if isinstance(lag, str):
            rows.append(PartitionLag(view.name, source.name, None, None, lag))
        else:
            rows += [PartitionLag(view.name, source.name, p, n) for p, n in sorted(lag.items())]
    return rows
