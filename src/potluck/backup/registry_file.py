"""One project's registry as a file: every row the registry database keeps for it, as JSON lines.

The file (docs/operations.md, "Backup and restore"):

- line 1, the header: `{"format": "potluck.registry-export", "format_version": 1, "project": ...,
  "registry_version": ..., "sections": [...]}`;
- one line per row: `{"section": NAME, "row": {column: value}}`, sections in a fixed order, rows in
  each section's key order (tables whose rows have a local serial id keep their order, not the id);
  a text column holding canonical JSON (object specs, versions) is written as that JSON value;
- the last line: `{"end": {"records": N, "sha256": HEX}}`, the digest of every line before it.

Export reads every table in one transaction (PostgreSQL: repeatable read) and writes a temporary
file renamed into place. Import checks the whole file first (format, digest), then writes every row
in one transaction: it lands completely or not at all. Export, import into an empty registry and
export again gives the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from potluck.definitions.base import canonical_json
from potluck.definitions.errors import BackupError
from potluck.monitoring.state import schema as monitor_schema
from potluck.online.sql import quote_ident
from potluck.registry.baselines import BASELINES, RUNS
from potluck.registry.dbapi import Cursor, Database, Timeouts, dialect_of
from potluck.registry.pending import TABLE as PENDING_TABLE
from potluck.registry.sql import schema as registry_schema
from potluck.registry.versions import TABLE as VERSIONS_TABLE
from potluck.server.auth.storage import schema as server_schema

FORMAT = "potluck.registry-export"
FORMAT_VERSION = 1
_FETCH = 1000


@dataclass(frozen=True)
class Section:
    """One table of the registry database, as a section of the file."""

    name: str
    table: str
    order: tuple[str, ...]
    serial: bool = False  # its `id` is a serial local to the database: left out, the row order kept
    optional: bool = False  # only with include_api_keys


SECTIONS = (
    Section("meta", "potluck_registry_meta", ("project",)),
    Section("objects", "potluck_registry_objects", ("kind", "name")),
    Section("feature_view_versions", VERSIONS_TABLE, ("feature_view", "version_number")),
    Section("history", "potluck_registry_history", ("id",), serial=True),
    Section("materializations", "potluck_materializations", ("id",), serial=True),
    Section("online_pending", PENDING_TABLE, ("id",), serial=True),
    Section("baselines", BASELINES, ("name", "version")),
    Section("monitoring_runs", RUNS, ("id",), serial=True),
    Section("alert_state", "potluck_alert_state", ("channel", "alert_key")),
    Section("drift_results", "potluck_drift_results", ("feature_view", "feature")),
    Section("materialization_failures", "potluck_materialization_failures", ("feature_view",)),
    Section("audit_log", "potluck_audit_log", ("id",), serial=True),
    Section("api_keys", "potluck_api_keys", ("id",), optional=True),
)
_BY_NAME = {s.name: s for s in SECTIONS}


@dataclass
class Summary:
    """What an export wrote or an import read: rows per section, the registry version."""

    project: str
    registry_version: int
    counts: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)  # import --force: rows removed first
    source_project: str = ""

    @property
    def records(self) -> int:
        return sum(self.counts.values())


def full_schema(url: str) -> list[str]:
    """Every table the registry database can hold (definitions, monitoring, the server's)."""
    dialect = dialect_of(url)
    return [*registry_schema(dialect), *monitor_schema(), *server_schema(dialect)]


def _line(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _out(value: Any) -> Any:
    """A column value for the file: canonical JSON text as the JSON value itself, anything else as is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, dict | list) and canonical_json(parsed) == value:
            return parsed
    return value


def _in(value: Any) -> Any:
    """A value from the file for its column: a JSON object or list becomes its canonical text again."""
    return canonical_json(value) if isinstance(value, dict | list) else value


def _exists(cur: Cursor, dialect: str, table: str) -> bool:
    if dialect == "sqlite":
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    else:
        cur.execute("SELECT 1 WHERE to_regclass(?) IS NOT NULL", (table,))
    return cur.fetchone() is not None


def _columns(cur: Cursor, table: str) -> list[str]:
    cur.execute(f"SELECT * FROM {_quote(table)} WHERE 1 = 0")
    cur.fetchall()
    return cur.column_names()


_quote = quote_ident


# ---------------------------------------------------------------------------------------- export


def export_registry(
    url: str, project: str, path: str | Path, *, timeouts: Timeouts | None = None, include_api_keys: bool = False
) -> Summary:
    """Write project `project` of the registry at `url` to `path` (replaced only once complete)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    db = Database(url, timeouts)  # no schema: an export creates nothing, a missing table is empty
    try:
        with open(partial, "wb") as out:
            summary = _export(db, project, out, include_api_keys)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        db.close()
    return summary


def _export(db: Database, project: str, out: IO[bytes], include_api_keys: bool) -> Summary:
    digest = hashlib.sha256()

    def write(obj: Any) -> None:
        data = _line(obj)
        digest.update(data)
        out.write(data)

    sections = [s for s in SECTIONS if include_api_keys or not s.optional]
    with db.transaction() as cur:
        if db.dialect == "postgres":
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        version = _version(cur, db.dialect, project)
        if version is None:
            raise BackupError(f"{db.name} holds no project '{project}' (nothing was applied to it); nothing to export")
        summary = Summary(project, version)
        write(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "project": project,
                "registry_version": version,
                "sections": [s.name for s in sections],
            }
        )
        for section in sections:
            count = 0
            for row in _rows(cur, db.dialect, section, project):
                write({"section": section.name, "row": row})
                count += 1
            summary.counts[section.name] = count
        out.write(_line({"end": {"records": summary.records, "sha256": digest.hexdigest()}}))
    return summary


def _version(cur: Cursor, dialect: str, project: str) -> int | None:
    if not _exists(cur, dialect, "potluck_registry_meta"):
        return None
    cur.execute("SELECT version FROM potluck_registry_meta WHERE project = ?", (project,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def _rows(cur: Cursor, dialect: str, section: Section, project: str) -> Iterator[dict[str, Any]]:
    if not _exists(cur, dialect, section.table):
        return
    order = ", ".join(_quote(c) for c in section.order)
    cur.execute(f"SELECT * FROM {_quote(section.table)} WHERE project = ? ORDER BY {order}", (project,))
    names = cur.column_names()
    skip = {"project", *(("id",) if section.serial else ())}
    while True:
        batch = cur.fetchmany(_FETCH)
        if not batch:
            return
        for values in batch:
            yield {n: _out(v) for n, v in zip(names, values, strict=True) if n not in skip}


# ---------------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class _Header:
    project: str
    registry_version: int
    sections: tuple[str, ...]


def read_header(path: str | Path) -> _Header:
    """The file's header, checked: its format and version, and that every section is known."""
    with open(path, "rb") as f:
        first = f.readline()
    return _header(Path(path), first)


def _header(path: Path, line: bytes) -> _Header:
    try:
        head = json.loads(line)
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise BackupError(f"{path} is not a registry export (its first line is not a '{FORMAT}' header)")
    version = head.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupError(
            f"{path} has format_version {version!r}; this Potluck reads up to {FORMAT_VERSION}: upgrade Potluck"
        )
    unknown = [s for s in head.get("sections", []) if s not in _BY_NAME]
    if unknown:
        raise BackupError(f"{path}: unknown section(s) {', '.join(map(str, unknown))}")
    return _Header(str(head["project"]), int(head["registry_version"]), tuple(head["sections"]))


def _records(path: Path) -> Iterator[tuple[Section, dict[str, Any]]]:
    """Every row of the file, after its header; the digest and count are checked at the end."""
    digest = hashlib.sha256()
    count = 0
    with open(path, "rb") as f:
        first = f.readline()
        header = _header(path, first)
        digest.update(first)
        number = 1
        for line in f:
            number += 1
            try:
                record = json.loads(line)
            except ValueError as err:
                raise BackupError(f"{path}, line {number}: not JSON ({err}); the file is damaged") from None
            if isinstance(record, dict) and "end" in record:
                end = record["end"]
                if end.get("records") != count or end.get("sha256") != digest.hexdigest():
                    raise BackupError(
                        f"{path}: the file is damaged (its end line does not match the {count} records before it)"
                    )
                if f.readline():
                    raise BackupError(f"{path}, line {number + 1}: data after the end line; the file is damaged")
                return
            section = _BY_NAME.get(str(record.get("section"))) if isinstance(record, dict) else None
            if section is None or section.name not in header.sections or not isinstance(record.get("row"), dict):
                raise BackupError(f"{path}, line {number}: not a row of a known section; the file is damaged")
            digest.update(line)
            count += 1
            yield section, record["row"]
    raise BackupError(f"{path} ends before its end line: the export is incomplete (truncated)")


def import_registry(
    url: str,
    project: str,
    path: str | Path,
    *,
    timeouts: Timeouts | None = None,
    allow_other_project: bool = False,
    force: bool = False,
) -> Summary:
    """Load a registry export into project `project` of the registry at `url`, in one transaction.

    Refuses a file of another project unless `allow_other_project` (its rows then become this
    project's), and a registry that already holds rows of `project` unless `force` (they are then
    replaced; `Summary.replaced` says how many of each). The registry version becomes the file's,
    or the next one when the registry's counter is already there (it never moves back: online
    generations are registry versions).
    """
    source = Path(path)
    header = read_header(source)
    if header.project != project and not allow_other_project:
        raise BackupError(
            f"{source} is an export of project '{header.project}', not of '{project}' (this repository's); "
            "pass --allow-other-project to import it as this project"
        )
    for _ in _records(source):  # the whole file is checked before anything is written
        pass
    db = Database(url, timeouts, full_schema(url))
    summary = Summary(project, header.registry_version, source_project=header.project)
    try:
        with db.transaction(write=True) as cur:
            existing = _present(cur, project, header.sections)
            if existing and not force:
                shown = ", ".join(f"{n} {name}" for name, n in existing.items())
                raise BackupError(
                    f"the registry of project '{project}' is not empty ({shown}); import into an empty registry, "
                    "or pass --force to replace all of it"
                )
            for name in existing:
                cur.execute(f"DELETE FROM {_quote(_BY_NAME[name].table)} WHERE project = ?", (project,))
            summary.replaced = existing
            columns: dict[str, set[str]] = {}
            for section, row in _records(source):
                if section.name not in columns:
                    columns[section.name] = set(_columns(cur, section.table))
                    summary.counts[section.name] = 0
                _insert(cur, section, row, project, columns[section.name], summary)
                summary.counts[section.name] += 1
    finally:
        db.close()
    return summary


def _present(cur: Cursor, project: str, in_file: tuple[str, ...]) -> dict[str, int]:
    """Rows of `project` per section (the version counter left by a teardown does not count).

    API keys count only when the file has them: an import without them leaves the keys alone.
    """
    found = {}
    for section in SECTIONS:
        if section.name == "meta" or (section.optional and section.name not in in_file):
            continue
        cur.execute(f"SELECT count(*) FROM {_quote(section.table)} WHERE project = ?", (project,))
        row = cur.fetchone()
        if row and int(row[0]):
            found[section.name] = int(row[0])
    return found


def _insert(
    cur: Cursor, section: Section, row: dict[str, Any], project: str, known: set[str], summary: Summary
) -> None:
    unknown = sorted(set(row) - known)
    if unknown or "project" in row or (section.serial and "id" in row):
        shown = ", ".join(unknown) or "project/id"
        raise BackupError(f"section '{section.name}': column(s) {shown} are not columns of {section.table}")
    values = {k: _in(v) for k, v in row.items()}
    if section.name == "meta":
        _meta(cur, project, values, summary)
        return
    names = ["project", *values]
    marks = ", ".join("?" * len(names))
    cur.execute(
        f"INSERT INTO {_quote(section.table)} ({', '.join(_quote(n) for n in names)}) VALUES ({marks})",
        [project, *values.values()],
    )


def _meta(cur: Cursor, project: str, values: dict[str, Any], summary: Summary) -> None:
    """The version counter: the file's, or one past the registry's when it already reached it."""
    cur.execute("SELECT version FROM potluck_registry_meta WHERE project = ?", (project,))
    row = cur.fetchone()
    wanted = int(values["version"])
    if row is None:
        cur.execute(
            "INSERT INTO potluck_registry_meta (project, version, updated_at) VALUES (?, ?, ?)",
            (project, wanted, values["updated_at"]),
        )
        return
    version = wanted if int(row[0]) < wanted else int(row[0]) + 1
    summary.registry_version = version
    cur.execute(
        "UPDATE potluck_registry_meta SET version = ?, updated_at = ? WHERE project = ?",
        (version, values["updated_at"], project),
    )
