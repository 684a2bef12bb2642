"""Printing results: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, markup: bool = False) -> None:
    """A table; cells are plain text unless `markup` (then the caller escapes data parts)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = ("" if v is None else str(v) for v in row)
        table.add_row(*(c if markup else escape(c) for c in cells))
    _console().print(table)


def print_kv(title: str, pairs: Sequence[tuple[str, Any]]) -> None:
    print_table(title, ["field", "value"], [(k, v) for k, v in pairs])


def console_print(message: str) -> None:
    _console().print(message)


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)
