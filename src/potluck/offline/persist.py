"""`RetrievalJob.persist`: a job's result written to a saved dataset's storage, whole or not at all.

The result is written to a hidden temporary file beside the target, synced, then renamed over it:
a reader (or a `kill -9` halfway) never leaves a half-written file under the target's name.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from potluck.definitions.errors import DatasetExistsError, PotluckError
from potluck.definitions.saved_dataset import SavedDatasetFileStorage


def storage_path(storage: Any, repo_path: str | os.PathLike[str] | None) -> Path:
    """The file of `storage`; a relative path is taken relative to `repo_path` (else the working folder)."""
    if not isinstance(storage, SavedDatasetFileStorage):
        raise PotluckError(
            f"storage {storage!r} is not supported: use SavedDatasetFileStorage(path=...) "
            "from potluck.saved_dataset (Parquet files)"
        )
    path = Path(storage.path).expanduser()
    if not path.is_absolute() and repo_path is not None:
        path = Path(repo_path) / path
    return path


def persist(job: Any, storage: Any, allow_overwrite: bool = False) -> Path:
    """Write `job`'s result to `storage`'s Parquet file; returns the file. An existing file is an
    error unless `allow_overwrite`."""
    metadata = getattr(job, "metadata", None)
    target = storage_path(storage, getattr(metadata, "repo_path", None))
    if target.is_dir():
        raise PotluckError(f"saved dataset storage path '{target}' is a folder; give the path of a Parquet file")
    if target.exists() and not allow_overwrite:
        raise DatasetExistsError(
            f"saved dataset storage file '{target}' already exists; pass allow_overwrite=True to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        job.to_parquet(str(temporary))
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


class SavedFileJob:
    """A saved dataset's Parquet file as a retrieval job (what `SavedDataset.to_df()` reads)."""

    def __init__(self, path: Path, metadata: Any = None) -> None:
        self.path = path
        self.metadata = metadata

    def _check(self) -> None:
        if not self.path.is_file():
            raise PotluckError(f"the saved dataset file '{self.path}' does not exist (moved or deleted?)")

    def to_arrow(self) -> Any:
        import pyarrow.parquet as pq

        self._check()
        return pq.read_table(self.path)

    def to_arrow_batches(self, batch_rows: int = 65_536) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._check()
        parquet = pq.ParquetFile(self.path)
        return pa.RecordBatchReader.from_batches(parquet.schema_arrow, parquet.iter_batches(batch_size=batch_rows))

    def to_df(self) -> Any:
        return self.to_arrow().to_pandas()

    def to_parquet(self, path: str) -> None:
        import shutil

        self._check()
        shutil.copyfile(self.path, path)

    def to_sql(self) -> str:
        quoted = str(self.path).replace("'", "''")
        return f"SELECT * FROM read_parquet('{quoted}')"

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        persist(self, storage, allow_overwrite)
