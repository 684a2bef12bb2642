"""The offline log of a stream source: its consumed events appended to its batch source folder,
each committed event exactly once.

Each batch's good rows of one partition are one Parquet file named by the partition and the
batch's first offset in it (`stream-<partition>-<offset:020d>.parquet`), written under a temporary
name and renamed, so a batch replayed after a crash rewrites the same file. Files a run wrote but
never committed are removed before the partition is written again: the first batch of a partition
after (re)connecting deletes its files whose first offset is at or after the batch's first offset
(they hold uncommitted events, which this batch and the next ones write again).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from potluck.definitions import DataSource, FeatureView
from potluck.definitions.errors import ConfigError
from potluck.definitions.sources import batch_file_source
from potluck.offline.duckdb_sources import is_directory_source, is_glob
from potluck.offline.protocol import SupportsAppend
from potluck.retrieval.plans import source_table
from potluck.streaming.decode import PARTITION_COLUMN
from potluck.streaming.push import offline_rows, to_columns

if TYPE_CHECKING:
    import pyarrow as pa

_LOG_FILE = re.compile(r"^stream-(?P<partition>.+)-(?P<offset>\d{20})\.parquet$")


def log_file_name(partition: str, first_offset: int) -> str:
    """The file holding a batch's rows of `partition` that starts at `first_offset`."""
    return f"stream-{quote(partition, safe='')}-{first_offset:020d}.parquet"


def log_files(folder: str, partition: str) -> dict[int, str]:
    """The log files of `partition` in `folder`, by first offset."""
    safe = quote(partition, safe="")
    out: dict[int, str] = {}
    if not os.path.isdir(folder):
        return out
    for entry in os.scandir(folder):
        found = _LOG_FILE.match(entry.name)
        if found and found.group("partition") == safe:
            out[int(found.group("offset"))] = entry.path
    return out


class OfflineLog:
    """Appends the consumed events of one stream source to its batch source folder."""

    def __init__(self, source: DataSource, views: Sequence[FeatureView], repo_path: str, offline: object) -> None:
        if not isinstance(offline, SupportsAppend):
            raise ConfigError(
                f"stream source '{source.name}': the offline store cannot append rows; set stream.offline: false"
            )
        self.source = source
        self.views = list(views)
        self.repo_path = repo_path
        self.offline = offline
        self.table = source_table(self.views[0], repo_path)
        batch = batch_file_source(source)
        if is_glob(self.table.path) or not is_directory_source(self.table):
            raise ConfigError(
                f"stream source '{source.name}': its batch_source '{batch.name}' is the file '{batch.path}'; the "
                "offline log appends one file per batch, so give it a folder (FileSource(path='data/<name>/')) "
                "or set stream.offline: false in feature_store.yaml"
            )
        self.folder = self.table.path
        self._written: dict[str, int] = {}  # partition -> first offset of the last file written this session

    def reset(self) -> None:
        """Forget what this session wrote: after a reconnect, delivery resumes at the committed positions."""
        self._written.clear()

    def write(self, decoded: pa.Table, prepared: Sequence[pa.Table], first: Mapping[str, int]) -> int:
        """Append the batch's good rows (`decoded` and each view's `prepare_rows` of it), one file per
        partition; `first` is the batch's first offset per partition (good or bad). Returns the rows written."""
        import pyarrow.compute as pc

        for partition, offset in first.items():
            last = self._written.get(partition)
            if last is None or offset <= last:  # a new session or a rewind: drop what was never committed
                for start, path in log_files(self.folder, partition).items():
                    if start >= offset:
                        Path(path).unlink(missing_ok=True)
            self._written[partition] = offset
        if decoded.num_rows == 0:
            return 0
        rows = offline_rows(
            self.source, list(zip(self.views, prepared, strict=True)), to_columns(decoded), self.repo_path
        )
        partitions = decoded.column(PARTITION_COLUMN)
        for partition in first:
            mask = pc.equal(partitions, partition)
            part = rows.filter(mask)
            if part.num_rows:
                self.offline.append(self.table, part, part_name=log_file_name(partition, first[partition]))
        return int(rows.num_rows)
