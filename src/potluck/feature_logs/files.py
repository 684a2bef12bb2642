"""A service's log files on disk: found by log date (for statistics), removed by age (retention).

Files sit in `__log_date=YYYY-MM-DD` folders under the destination (then any `partition_by`
folders). Hidden names (`.` prefix: files being written) are never listed nor counted.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from potluck.feature_logs.spec import LOG_DATE

_PREFIX = LOG_DATE + "="


def _partition_date(folder: Path) -> date | None:
    if not folder.name.startswith(_PREFIX):
        return None
    try:
        return date.fromisoformat(folder.name[len(_PREFIX) :])
    except ValueError:
        return None


def date_folders(path: Path) -> list[tuple[date, Path]]:
    """The log-date folders under `path`, oldest first."""
    if not path.is_dir():
        return []
    found = [(d, p) for p in path.iterdir() if p.is_dir() and (d := _partition_date(p)) is not None]
    return sorted(found)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if p.is_file() and not p.name.startswith("."))


def log_files(path: Path, start: datetime | None = None, end: datetime | None = None) -> list[Path]:
    """The log files under `path` whose log date can hold a log time in [start, end] (UTC)."""
    first = start.date() if start is not None else None
    last = end.date() if end is not None else None
    files: list[Path] = []
    for day, folder in date_folders(path):
        if (first is None or day >= first) and (last is None or day <= last):
            files += _visible(folder)
    return files


@dataclass(frozen=True)
class Pruned:
    """One log-date folder removed (or that would be, on a dry run)."""

    service: str
    folder: Path
    log_date: date
    files: int
    bytes: int


def prune(service: str, path: Path, older_than: timedelta, now: datetime, *, dry_run: bool = False) -> list[Pruned]:
    """Remove the log-date folders of `service` whose whole day is older than `now - older_than`."""
    cutoff = now - older_than
    removed: list[Pruned] = []
    for day, folder in date_folders(path):
        day_end = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(days=1)
        if day_end > cutoff:
            break  # folders are sorted by date: the rest are younger
        files = [p for p in folder.rglob("*") if p.is_file()]
        removed.append(Pruned(service, folder, day, len(files), sum(p.stat().st_size for p in files)))
        if not dry_run:
            shutil.rmtree(folder)
    return removed
