"""A view's batch source as a Spark relation, with the physical position the tie-break relies on.

Parquet `FileSource`s are read as the DuckDB store reads them: the same sorted file list
(`duckdb_sources.source_files`), and a row's position is (file index in that list, row index in
the file), so remaining ties of event and created time go to the same row on both engines.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from potluck.definitions.errors import RetrievalError
from potluck.offline.duckdb_sources import source_files
from potluck.offline.protocol import ViewQuery
from potluck.offline.sql import SPARK, SourceInput, Sql

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

POSITION = "__potluck_position"
_counter = itertools.count()


def readable(view: ViewQuery) -> bool:
    """Whether the engine can read the view's source (Parquet files)."""
    return view.source.file_format == "parquet"


def source_input(session: SparkSession, view: ViewQuery) -> SourceInput | None:
    """The source as a temporary view of `session` (None when it holds no file yet)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    if not readable(view):
        raise RetrievalError(
            f"feature view '{view.view_name}': the Spark engine reads Parquet sources; source '{view.source.name}' "
            f"is {view.source.file_format}"
        )
    files = source_files(view.source, view.view_name, allow_empty_directory=True)
    if not files:
        return None
    try:
        frame = session.read.parquet(*files)
        listed = frame.inputFiles()
    except Exception as err:
        raise RetrievalError(
            f"feature view '{view.view_name}': source '{view.source.name}' ({view.source.path}) could not be read "
            f"by Spark: {_first_line(err)}"
        ) from None
    if POSITION in frame.columns:
        raise RetrievalError(
            f"feature view '{view.view_name}': source '{view.source.name}' has a column '{POSITION}', "
            "a name the engine reserves; rename it"
        )
    index = {path: i for i, path in enumerate(files)}
    keys, positions = [], []
    for uri in listed:
        parts = urlsplit(uri)
        local = unquote(parts.path)
        if local not in index:
            raise RetrievalError(
                f"feature view '{view.view_name}': Spark lists file '{uri}' that is not among the source's files"
            )
        keys.append(f"{parts.scheme}:{parts.path}")  # how `_metadata.file_path` spells it
        positions.append(index[local])
    file_index = F.element_at(F.map_from_arrays(F.lit(keys), F.lit(positions)), F.col("_metadata.file_path"))
    position = F.coalesce(file_index, F.lit(len(files))).cast("bigint") * F.lit(2**40) + F.col("_metadata.row_index")
    name = f"__potluck_src_{next(_counter)}"
    frame.select("*", position.alias(POSITION)).createOrReplaceTempView(name)
    types = {f.name: f.dataType for f in frame.schema.fields}
    ts = view.source.timestamp_column
    created = view.source.created_timestamp_column
    missing = [
        c for c in {ts, created, *(view.source.columns.get(k, k) for k in view.join_keys)} if c and c not in types
    ]
    missing += [view.source.columns.get(f.name, f.name) for f in view.features]
    missing = sorted({c for c in missing if c not in types})
    if missing:
        raise RetrievalError(
            f"feature view '{view.view_name}': source '{view.source.name}' ({view.source.path}) lacks column(s) "
            f"{', '.join(repr(c) for c in missing)}"
        )
    return SourceInput(
        relation=Sql(SPARK.quote(name)),
        ordinal=SPARK.quote(POSITION),
        timestamp_is_utc_naive=isinstance(types[ts], TimestampType),
        created_is_utc_naive=bool(created) and isinstance(types[created], TimestampType),
        timestamp_type=types[ts].simpleString(),
        created_type=types[created].simpleString() if created else "",
        ordinal_is_stable=True,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
