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

from potluck.definitions.errors import NotFoundError, PotluckError
from potluck.streaming.sources import ConsumerOptions, StreamUnavailableError, is_stream_source, read_lag

if TYPE_CHECKING:
    from potluck.definitions import DataSource, FeatureView
    from potluck.store import FeatureStore


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a view's stream source: messages after the group's committed position.

    `lag` is None and `error` says why when the source could not be read (the others still are).
    """

    view: str
    source: str
    partition: str | None
    lag: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        row: dict[str, object] = {
            "view": self.view,
            "source": self.source,
            "partition": self.partition,
            "lag": self.lag,
        }
        if self.error is not None:
            row["error"] = self.error
        return row


def consumer_group(store: FeatureStore) -> str:
    """The group the stream worker of this repository commits in (feature_store.yaml `stream.consumer_group`)."""
    configured = getattr(getattr(store.config, "stream", None), "consumer_group", None)
    return str(configured) if configured else f"potluck-{store.project}"


def stream_views(store: FeatureStore, views: Sequence[str] | None = None) -> list[FeatureView]:
    """The views fed by a stream source the worker consumes; `views` selects some by name (in that order)."""
    candidates = [*store.list_feature_views(), *store.list_stream_feature_views()]
    streamed = {v.name: v for v in candidates if is_stream_source(v.source)}
    if not views:
        return [streamed[name] for name in sorted(streamed)]
    chosen: list[FeatureView] = []
    for name in dict.fromkeys(views):
        if name in streamed:
            chosen.append(streamed[name])
        elif any(v.name == name for v in candidates):
            raise PotluckError(f"feature view '{name}' is not fed by a stream source; stream views: {_names(streamed)}")
        else:
            raise NotFoundError(f"feature view '{name}' not found; stream views: {_names(streamed)}")
    return chosen


def stream_status(
    store: FeatureStore, views: Sequence[str] | None = None, group: str | None = None
) -> list[PartitionLag]:
    """Lag per view, source and partition of the worker's consumer group (`group`, default from the config)."""
    options = ConsumerOptions(
        group=group or consumer_group(store),
        consumer_name=f"potluck-status-{socket.gethostname()}-{os.getpid()}",
    )
    by_source: dict[str, dict[str, int] | str] = {}
    rows: list[PartitionLag] = []
    for view in stream_views(store, views):
        source: DataSource = view.source
        if source.name not in by_source:
            try:
                by_source[source.name] = read_lag(source, options)
            except StreamUnavailableError as err:
                by_source[source.name] = str(err) or type(err).__name__
        lag = by_source[source.name]
        if isinstance(lag, str):
            rows.append(PartitionLag(view.name, source.name, None, None, lag))
        else:
            rows += [PartitionLag(view.name, source.name, p, n) for p, n in sorted(lag.items())]
    return rows


def _names(views: dict[str, FeatureView]) -> str:
    return ", ".join(sorted(views)) or "(none)"
