"""Finding the definition objects of a feature repository (a folder of Python files)."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potluck.definitions import Definition
from potluck.definitions.errors import RepositoryError
from potluck.definitions.on_demand import REPO_MODULE_PREFIX

IGNORE_FILE = ".potluckignore"
_ALWAYS_SKIPPED = {"__pycache__", "node_modules", "site-packages", "venv", "env"}


@dataclass
class RepoContents:
    """The definitions found in a repository, with the file each came from."""

    objects: list[Definition] = field(default_factory=list)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> file

    def where(self, obj: Definition) -> str:
        return self.origin.get((obj.kind, obj.name), "<sdk>")


def _ignore_patterns(repo: Path) -> list[str]:
    path = repo / IGNORE_FILE
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern + "/*"):
            return True
        if "/" not in pattern and any(fnmatch.fnmatch(p, pattern) for p in parts):
            return True
    return False


def python_files(repo: Path) -> list[Path]:
    """The repository's Python files, skipping hidden folders, virtualenvs and `.potluckignore`."""
    patterns = _ignore_patterns(repo)
    found = []
    for dirpath, dirnames, filenames in os.walk(repo):
        base = Path(dirpath)
        rel_dir = base.relative_to(repo).as_posix()
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _ALWAYS_SKIPPED
            and not (base / d / "pyvenv.cfg").exists()
            and not _ignored(f"{rel_dir}/{d}".lstrip("./") if rel_dir != "." else d, patterns)
        )
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir != "." else name
            if name.endswith(".py") and not name.startswith(".") and not _ignored(rel, patterns):
                found.append(base / name)
    return found


def import_file(path: Path, repo: Path) -> dict[str, object]:
    """Import one repository file (under a private module name) and return its namespace."""
    rel = path.relative_to(repo).with_suffix("").as_posix().replace("/", ".")
    module_name = f"{REPO_MODULE_PREFIX}{abs(hash(str(repo)))}.{rel}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RepositoryError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    shadowed = _set_aside_foreign_modules(repo)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # a user's file: report where it failed, not a deep traceback
        # SystemExit included: a file that exits at import must not end plan/apply as a success
        line = ""
        tb = err.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = f", line {tb.tb_lineno}"
            tb = tb.tb_next
        what = (
            f"exits at import (SystemExit: {err.code!r}); a repository file must only define objects"
            if isinstance(err, SystemExit)
            else f"{type(err).__name__}: {err}"
        )
        raise RepositoryError(f"{path.relative_to(repo)}{line}: {what}") from err
    finally:
        sys.modules.pop(module_name, None)
        sys.modules.update(shadowed)
    return vars(module)


def load_repository(repo_path: str | Path) -> RepoContents:
    """Import every Python file of the repository and collect its definition objects."""
    repo = Path(repo_path).resolve()
    contents = RepoContents()
    seen: dict[tuple[str, str], Definition] = {}
    added_path = str(repo) not in sys.path
    if added_path:
        sys.path.insert(0, str(repo))
    try:
        for path in python_files(repo):
            rel = path.relative_to(repo).as_posix()
            for value in import_file(path, repo).values():
                if not isinstance(value, Definition):
                    continue
                key = (value.kind, value.name)
                if key in seen:
                    if seen[key] == value:
                        continue  # the same object imported into another file
                    raise RepositoryError(
                        f"{rel}: {type(value).__name__} '{value.name}' is defined twice with different "
                        f"content (also in {contents.origin[key]}); names must be unique per kind"
                    )
                seen[key] = value
                contents.objects.append(value)
                contents.origin[key] = rel
    finally:
        if added_path:
            sys.path.remove(str(repo))
    return contents


def _set_aside_foreign_modules(repo: Path) -> dict[str, Any]:
    """Take out of `sys.modules`, for an import, modules named like this repository's top-level files
    or folders but loaded from elsewhere (another repository loaded earlier in the process), so that
    a file's `import features` finds this repository's `features.py`; they are put back afterwards."""
    try:
        names = {n.removesuffix(".py") for n in os.listdir(repo)}
    except OSError:
        return {}
    shadowed: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        top = name.split(".", 1)[0]
        if top not in names or module is None:
            continue
        origin = getattr(module, "__file__", None)
        if origin is None or Path(origin).resolve().is_relative_to(repo):
            continue
        shadowed[name] = sys.modules.pop(name)
    return shadowed
