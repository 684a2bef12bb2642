"""The dead-letter file: messages the stream worker could not use, kept as Parquet with the reason.

One file per call and partition, in `<folder>/<source>/`, named by the partition and the first
offset of its letters (`<partition>-<offset:020d>.parquet`, the names percent-encoded): a batch
replayed after a crash rewrites the same file instead of adding one. Each file is written under a
temporary name, flushed to disk and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from potluck.streaming.decode import DeadLetter

if TYPE_CHECKING:
    import pyarrow as pa

SUFFIX = ".parquet"


def dead_letter_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("source", pa.string()),
            ("partition", pa.string()),
            ("offset", pa.int64()),
            ("key", pa.binary()),
            ("value", pa.binary()),
            ("reason", pa.string()),
            ("dead_lettered_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def _safe(name: str) -> str:
    """A name as one path segment: percent-encoded, a leading dot too (no '..', no hidden files)."""
    text = quote(name, safe="")
    return "%2E" + text[1:] if text.startswith(".") else text


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DeadLetterFile:
    """Writes dead letters under `folder`, one Parquet file per source and partition of a call."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path_for(self, source: str, partition: str, first_offset: int) -> Path:
        return self.folder / _safe(source) / f"{_safe(partition)}-{first_offset:020d}{SUFFIX}"

    def write(self, letters: Sequence[DeadLetter]) -> str | None:
        """Write the letters; returns the first file written (None when there were none)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        groups: dict[tuple[str, str], list[DeadLetter]] = {}
        for letter in letters:
            groups.setdefault((letter.source, letter.partition), []).append(letter)
        now = datetime.now(UTC)
        schema = dead_letter_schema()
        first: str | None = None
        for (source, partition), group in groups.items():
            path = self.path_for(source, partition, min(letter.offset for letter in group))
            path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.table(
                {
                    "source": [x.source for x in group],
                    "partition": [x.partition for x in group],
                    "offset": [x.offset for x in group],
                    "key": [x.key for x in group],
                    "value": [x.value for x in group],
                    "reason": [x.reason for x in group],
                    "dead_lettered_at": [now] * len(group),
                },
                schema=schema,
            )
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            try:
                with temporary.open("wb") as out:
                    pq.write_table(table, out)
                    out.flush()
                    os.fsync(out.fileno())
                temporary.replace(path)
            finally:
                temporary.unlink(missing_ok=True)
            _sync_folder(path.parent)
            first = first or str(path)
        return first


def read_dead_letters(folder: str | os.PathLike[str], source: str | None = None) -> pa.Table:
    """Every dead letter under `folder` (of one source when given), by source, partition and offset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(folder)
    folders = [root / _safe(source)] if source is not None else sorted(p for p in root.glob("*") if p.is_dir())
    files = [f for d in folders for f in sorted(d.glob(f"*{SUFFIX}"))]  # temporary names end in .tmp
    schema = dead_letter_schema()
    if not files:
        return schema.empty_table()
    table = pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
    return table.sort_by([("source", "ascending"), ("partition", "ascending"), ("offset", "ascending")])
