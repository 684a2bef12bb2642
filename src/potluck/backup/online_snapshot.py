"""Online snapshots: every stored row (and tile record) of the online views, as Parquet chunks.

`take` scans each view in key order (`SupportsScan`) and writes `chunk_rows` rows per file:
`<view folder>/rows-000000.parquet` (`entity_key`, `event_ts`, `created_ts`, `value`: the stored
bytes and times as they are) and `tiles-000000.parquet` (`entity_key`, `version`, `blob`) for
aggregation views. A chunk is written to a temporary name, renamed, then recorded in the manifest:
a snapshot killed at any point and run again continues after its last recorded chunk.

`restore` writes every chunk back through the store's newest-wins path (a row newer than the
snapshot's stays), or with `overwrite` empties each view first so the result is the snapshot's
state exactly. Its progress is kept in `restore-progress.json` beside the manifest, so a restore
killed midway continues where it stopped (re-writing a chunk is harmless: newest-wins).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.backup.manifest import (
    MANIFEST,
    RESTORE_PROGRESS,
    Chunk,
    Manifest,
    Part,
    ViewEntry,
    folder_name,
    load,
    read_json,
    save,
    sha256_file,
    shape_of,
    write_json,
)
from potluck.definitions import FeatureView, OnDemandFeatureView
from potluck.definitions.errors import BackupError, NotFoundError, suggestion
from potluck.online.protocol import OnlineView, SupportsScan
from potluck.online.rows import EncodedRows

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.store import FeatureStore

DEFAULT_CHUNK_ROWS = 100_000
OnChunk = Callable[[str, str, int], None]  # (view, part, rows) after each chunk


def _utcnow() -> str:
    return datetime.now(UTC).isoformat()


def online_views(store: FeatureStore, names: Sequence[str] | None = None) -> list[OnlineView]:
    """The store's online views (feature views served online, on-demand views stored at write time), by name."""
    from potluck.retrieval.plans import any_online_view

    store.refresh_registry()
    snapshot = store.registry_snapshot()
    found: dict[str, OnlineView] = {}
    for view in snapshot.feature_views().values():
        if isinstance(view, FeatureView) and view.online:
            found[view.name] = any_online_view(view, store.project)
    for odfv in snapshot.of_kind(OnDemandFeatureView.kind).values():
        if isinstance(odfv, OnDemandFeatureView) and odfv.write_to_online_store:
            found[odfv.name] = any_online_view(odfv, store.project)
    if names is None:
        return [found[n] for n in sorted(found)]
    out = []
    for name in names:
        if name not in found:
            lead = f"'{name}' is not an online view of project '{store.project}'."
            hint = suggestion(name, list(found)) if found else "It has none."
            raise NotFoundError(f"{lead} {hint}", lead=lead, name=name, kind="feature_view", candidates=list(found))
        out.append(found[name])
    return out


def scanner(store: FeatureStore) -> Any:
    """The store's online store, if it can list its rows (`SupportsScan`); else an error naming its type."""
    online = store._online
    if not isinstance(online, SupportsScan):
        raise BackupError(
            f"online_store type '{store.config.online_store.type}' cannot list its rows, so it has no snapshots; "
            "snapshot the store it serves from directly (sqlite, redis, postgres, dynamodb)"
        )
    return online


# ------------------------------------------------------------------------------------ Parquet files


def _rows_table(rows: EncodedRows) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {"entity_key": rows.keys, "event_ts": rows.event_us, "created_ts": rows.created_us, "value": rows.blobs}
    )


def _encoded(table: pa.Table) -> EncodedRows:
    return EncodedRows(*(table.column(c).combine_chunks() for c in ("entity_key", "event_ts", "created_ts", "value")))


def _write_chunk(path: Path, table: pa.Table) -> str:
    """Write `table` to `path` (a temporary name renamed into place); returns the file's SHA-256."""
    import os

    import pyarrow.parquet as pq

    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial, compression="zstd")
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, path)
    return sha256_file(path)


def _read_chunk(path: Path, chunk: Chunk) -> pa.Table:
    import pyarrow.parquet as pq

    if not path.exists():
        raise BackupError(f"{path} is missing; the snapshot is incomplete")
    if sha256_file(path) != chunk.sha256:
        raise BackupError(f"{path} does not match its checksum in {MANIFEST}; the snapshot is damaged")
    table = pq.read_table(path)
    if table.num_rows != chunk.rows:
        raise BackupError(f"{path} holds {table.num_rows} rows, {MANIFEST} says {chunk.rows}; the snapshot is damaged")
    return table


# ------------------------------------------------------------------------------------ snapshot


@dataclass(frozen=True)
class ViewCount:
    view: str
    rows: int
    tiles: int


def take(
    store: FeatureStore,
    folder: str | Path,
    names: Sequence[str] | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: OnChunk | None = None,
) -> Manifest:
    """Snapshot the online views (or those named) into `folder`; continues an unfinished snapshot there."""
    root = Path(folder)
    online = scanner(store)
    views = {v.name: v for v in online_views(store, names)}
    manifest = _resume_or_start(store, root, views, chunk_rows)
    for entry in manifest.views:
        view = views[entry.name]
        if view.generation != entry.generation or shape_of(view) != entry.shape:
            raise BackupError(
                f"feature view '{entry.name}' was redefined since the snapshot in {root} began "
                f"(generation {entry.generation} -> {view.generation}); snapshot into a new folder"
            )
        (root / entry.folder).mkdir(parents=True, exist_ok=True)
        for part_name, part in entry.parts.items():
            if part.done:
                continue
            scan = online.scan_rows if part_name == "rows" else online.scan_tiles
            for chunk in scan(view, part.after(), manifest.chunk_rows):
                table = _rows_table(chunk) if part_name == "rows" else chunk
                file = f"{part_name}-{len(part.chunks):06d}.parquet"
                digest = _write_chunk(root / entry.folder / file, table)
                last = table.column("entity_key")[-1].as_py()
                part.chunks.append(Chunk(file, table.num_rows, digest, last.hex()))
                save(root, manifest)
                if on_chunk is not None:
                    on_chunk(entry.name, part_name, table.num_rows)
            part.done = True
            save(root, manifest)
    manifest.finished_at = _utcnow()
    save(root, manifest)
    return manifest


def _resume_or_start(store: FeatureStore, root: Path, views: dict[str, OnlineView], chunk_rows: int) -> Manifest:
    found = load(root) if root.exists() else None
    if found is None:
        if root.exists() and any(root.iterdir()):
            raise BackupError(f"{root} is not empty and holds no snapshot; snapshot into a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(
            project=store.project,
            registry_version=store.registry_snapshot().version,
            online_store=store.config.online_store.type,
            started_at=_utcnow(),
            chunk_rows=chunk_rows,
            views=[
                ViewEntry(
                    name,
                    folder_name(i, name),
                    view.generation,
                    shape_of(view),
                    {"rows": Part(), **({"tiles": Part()} if view.tiles is not None else {})},
                )
                for i, (name, view) in enumerate(views.items())
            ],
        )
        save(root, manifest)
        return manifest
    if found.complete:
        raise BackupError(
            f"{root} already holds a complete snapshot (taken {found.finished_at}); snapshot into a new folder"
        )
    if found.project != store.project:
        raise BackupError(f"{root} holds an unfinished snapshot of project '{found.project}', not '{store.project}'")
    if [e.name for e in found.views] != list(views):
        shown = ", ".join(e.name for e in found.views)
        raise BackupError(
            f"{root} holds an unfinished snapshot of the view(s) {shown}; rerun with the same --view options "
            "to finish it, or snapshot into a new folder"
        )
    return found


# ------------------------------------------------------------------------------------ restore


@dataclass
class RestoreResult:
    views: list[ViewCount]
    resumed: bool


def restore(
    store: FeatureStore,
    folder: str | Path,
    names: Sequence[str] | None = None,
    *,
    overwrite: bool = False,
    allow_other_project: bool = False,
    on_chunk: OnChunk | None = None,
) -> RestoreResult:
    """Write a complete snapshot back into the online store (see the module docstring)."""
    root = Path(folder)
    manifest = load(root) if root.exists() else None
    if manifest is None:
        raise BackupError(f"{root} holds no online snapshot ({MANIFEST} is missing)")
    if not manifest.complete:
        raise BackupError(f"the snapshot in {root} is unfinished; finish it first: potluck online snapshot {root}")
    if manifest.project != store.project and not allow_other_project:
        raise BackupError(
            f"the snapshot in {root} is of project '{manifest.project}', not of '{store.project}' (this "
            "repository's); pass --allow-other-project to restore it into this project"
        )
    online = scanner(store)
    entries = manifest.views if names is None else [_entry(manifest, root, n) for n in names]
    targets = _targets(store, entries)
    progress = _Progress.open(root, _target_id(store), overwrite)
    counts = []
    for entry in entries:
        view = targets[entry.name]
        if overwrite and entry.name not in progress.cleared:
            online.teardown([view])
            progress.cleared.append(entry.name)
            progress.save()
        online.create([view])
        tiles = 0
        for part_name, part in entry.parts.items():
            done = progress.done.setdefault(entry.name, {}).get(part_name, 0)
            for i, chunk in enumerate(part.chunks):
                if i < done:
                    continue
                table = _read_chunk(root / entry.folder / chunk.file, chunk)
                if part_name == "rows":
                    online.write_stored(view, _encoded(table))
                else:
                    tiles += _put_tiles(online, view, table)
                progress.done[entry.name][part_name] = i + 1
                progress.save()
                if on_chunk is not None:
                    on_chunk(entry.name, part_name, chunk.rows)
        counts.append(ViewCount(entry.name, entry.parts["rows"].rows, tiles))
    progress.finish()
    return RestoreResult(counts, progress.resumed)


def _entry(manifest: Manifest, root: Path, name: str) -> ViewEntry:
    try:
        return manifest.view(name)
    except KeyError:
        shown = ", ".join(e.name for e in manifest.views)
        raise BackupError(f"the snapshot in {root} has no view '{name}' (it has {shown})") from None


def _targets(store: FeatureStore, entries: Sequence[ViewEntry]) -> dict[str, OnlineView]:
    """The registered online view of each snapshot view; same shape required (stored bytes depend on it)."""
    current = {v.name: v for v in online_views(store)}
    out = {}
    for entry in entries:
        view = current.get(entry.name)
        if view is None:
            raise BackupError(
                f"view '{entry.name}' of the snapshot is not an online view of project '{store.project}'; "
                "apply the definitions first (potluck apply), or leave it out with --view"
            )
        if shape_of(view) != entry.shape:
            raise BackupError(
                f"view '{entry.name}' is registered with other keys, features or aggregations than in the snapshot; "
                "its stored rows cannot be read by this definition. Apply the definition the snapshot was taken "
                "with, or leave the view out with --view"
            )
        out[entry.name] = view
    return out


def _put_tiles(online: Any, view: OnlineView, table: pa.Table) -> int:
    """Tile records where none is stored; the view's backfill watermark record never expires."""
    import pyarrow.compute as pc

    from potluck.aggregation.online_tiles import WATERMARK_KEY

    assert view.tiles is not None
    is_mark = pc.equal(table.column("entity_key"), WATERMARK_KEY)
    marks, records = table.filter(is_mark), table.filter(pc.invert(is_mark))
    stored = int(online.put_tiles(view, records, view.tiles.ttl_seconds)) if records.num_rows else 0
    return stored + (int(online.put_tiles(view, marks, 0)) if marks.num_rows else 0)


def _target_id(store: FeatureStore) -> str:
    """Which online store a restore writes to (its project and configuration)."""
    section = store.config.online_store.model_dump(mode="json")
    body = json.dumps({"project": store.project, "online_store": section}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass
class _Progress:
    """A restore's progress: views emptied (overwrite) and chunks written per view and part."""

    path: Path
    target: str
    overwrite: bool
    cleared: list[str]
    done: dict[str, dict[str, int]]
    resumed: bool = False

    @staticmethod
    def open(root: Path, target: str, overwrite: bool) -> _Progress:
        path = root / RESTORE_PROGRESS
        if path.exists():
            data = read_json(path)
            if data.get("target") == target and data.get("overwrite") == overwrite:
                return _Progress(path, target, overwrite, list(data["cleared"]), dict(data["done"]), resumed=True)
        progress = _Progress(path, target, overwrite, [], {})
        progress.save()
        return progress

    def save(self) -> None:
        write_json(
            self.path, {"target": self.target, "overwrite": self.overwrite, "cleared": self.cleared, "done": self.done}
        )

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def iter_rows(folder: str | Path, view: str) -> Iterator[pa.Table]:
    """The snapshot's row chunks of `view`, checked against the manifest (for inspection and tests)."""
    root = Path(folder)
    manifest = load(root)
    if manifest is None:
        raise BackupError(f"{root} holds no online snapshot ({MANIFEST} is missing)")
    entry = _entry(manifest, root, view)
    for chunk in entry.parts["rows"].chunks:
        yield _read_chunk(root / entry.folder / chunk.file, chunk)
