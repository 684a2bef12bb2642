"""The manifest of an online snapshot (`manifest.json`) and the restore's progress file.

The manifest names the project, the registry version the snapshot was taken at, and per view its
shape (a digest of what its stored bytes depend on: join keys, key and feature types, tile layout)
and the chunk files finished so far, each with its row count, SHA-256 and last key. It is rewritten
(a temporary file renamed into place) after every chunk, so an interrupted snapshot continues after
its last finished chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from potluck.definitions.errors import BackupError
from potluck.online.protocol import OnlineView

FORMAT = "potluck.online-snapshot"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RESTORE_PROGRESS = "restore-progress.json"
PARTS = ("rows", "tiles")


def shape_of(view: OnlineView) -> str:
    """A digest of what the view's stored bytes depend on; a restore needs the same shape."""
    shape: dict[str, Any] = {
        "join_keys": list(view.join_keys),
        "key_fields": [[f.name, f.dtype.name] for f in view.key_fields],
        "features": [[f.name, f.dtype.name] for f in view.features],
        "tiles": None if view.tiles is None else repr(view.tiles.aggregations),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Chunk:
    file: str
    rows: int
    sha256: str
    last_key: str  # hex


@dataclass
class Part:
    chunks: list[Chunk] = field(default_factory=list)
    done: bool = False

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    def after(self) -> bytes | None:
        """Where the scan continues: after the last key of the last finished chunk."""
        return bytes.fromhex(self.chunks[-1].last_key) if self.chunks else None


@dataclass
class ViewEntry:
    name: str
    folder: str
    generation: int
    shape: str
    parts: dict[str, Part]


@dataclass
class Manifest:
    project: str
    registry_version: int
    online_store: str
    started_at: str
    chunk_rows: int
    views: list[ViewEntry]
    finished_at: str | None = None

    @property
    def complete(self) -> bool:
        return self.finished_at is not None

    def view(self, name: str) -> ViewEntry:
        for entry in self.views:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for entry in body["views"]:
            for name, part in entry["parts"].items():
                part["rows"] = sum(c["rows"] for c in part["chunks"])
                entry["parts"][name] = part
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "complete": self.complete, **body}

    @staticmethod
    def from_json(path: Path, data: Any) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupError(f"{path} is not the manifest of an online snapshot")
        if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
            raise BackupError(
                f"{path} has format_version {data.get('format_version')!r}; this Potluck reads up to "
                f"{FORMAT_VERSION}: upgrade Potluck"
            )
        try:
            views = [
                ViewEntry(
                    v["name"],
                    v["folder"],
                    int(v["generation"]),
                    v["shape"],
                    {name: Part([Chunk(**c) for c in p["chunks"]], bool(p["done"])) for name, p in v["parts"].items()},
                )
                for v in data["views"]
            ]
            return Manifest(
                data["project"],
                int(data["registry_version"]),
                data["online_store"],
                data["started_at"],
                int(data["chunk_rows"]),
                views,
                data.get("finished_at"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise BackupError(f"{path} is damaged ({type(err).__name__}: {err})") from None


def folder_name(index: int, view: str) -> str:
    """The view's folder in the snapshot: its position and a file-system-safe form of its name."""
    return f"{index:03d}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", view)[:60]


def write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, flush it to disk, rename it into place."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise BackupError(f"{path} is not valid JSON ({err}); the snapshot folder is damaged") from None


def load(folder: Path) -> Manifest | None:
    path = folder / MANIFEST
    return Manifest.from_json(path, read_json(path)) if path.exists() else None


def save(folder: Path, manifest: Manifest) -> None:
    write_json(folder / MANIFEST, manifest.to_json())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
