"""Comparing benchmark outputs with a reference: historical Parquet results and online read dumps."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

REL_TOL = 1e-6


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compare_historical(reference: Path, candidate: Path, features: list[tuple[str, str]]) -> dict[str, Any]:
    """Match rows on `row_id`; count missing/extra rows and feature cells that differ.

    Cells are equal when both are null, or both non-null and equal (floats within a relative
    tolerance of 1e-6; numbers compared as DOUBLE so an Int64 returned as float still matches).
    """
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW r AS SELECT * FROM read_parquet({_lit(str(reference))})")
    con.execute(f"CREATE VIEW c AS SELECT * FROM read_parquet({_lit(str(candidate))}, file_row_number = true)")
    cand_cols = {row[0] for row in con.execute("DESCRIBE c").fetchall()}
    rows_ref = con.execute("SELECT count(*) FROM r").fetchone()[0]
    rows_cand, distinct_cand, in_order = con.execute(
        "SELECT count(*), count(DISTINCT row_id), coalesce(bool_and(row_id = file_row_number), true) FROM c"
    ).fetchone()
    missing = con.execute("SELECT count(*) FROM r ANTI JOIN c USING (row_id)").fetchone()[0]
    extra = con.execute("SELECT count(*) FROM c ANTI JOIN r USING (row_id)").fetchone()[0]
    per_column: dict[str, int] = {}
    absent = [n for n, _ in features if n not in cand_cols]
    checks = []
    for name, kind in features:
        if name in absent:
            continue
        a, b = f"r.{_q(name)}", f"c.{_q(name)}"
        if kind == "String":
            same = f"{a}::VARCHAR IS NOT DISTINCT FROM {b}::VARCHAR"
        else:
            same = (
                f"(({a} IS NULL AND {b} IS NULL) OR ({a} IS NOT NULL AND {b} IS NOT NULL AND "
                f"abs({a}::DOUBLE - {b}::DOUBLE) <= {REL_TOL} * greatest(1.0, abs({a}::DOUBLE))))"
            )
        checks.append(f"count(*) FILTER (WHERE NOT ({same})) AS {_q(name)}")
    matched = 0
    if checks:
        row = con.execute(f"SELECT count(*), {', '.join(checks)} FROM r JOIN c USING (row_id)").fetchone()
        matched = row[0]
        names = [n for n, _ in features if n not in absent]
        per_column = {n: v for n, v in zip(names, row[1:], strict=True) if v}
    cells = sum(per_column.values())
    return {
        "rows_reference": rows_ref,
        "rows": rows_cand,
        "rows_matched": matched,
        "missing_rows": missing,
        "extra_rows": extra,
        "duplicate_row_ids": rows_cand - distinct_cand,
        "in_input_order": bool(in_order),
        "mismatching_cells": cells,
        "mismatching_cells_fraction": round(cells / max(1, matched * len(features)), 6),
        "mismatches_by_column": per_column,
        "missing_columns": absent,
        "equal": rows_ref == rows_cand and missing == 0 and extra == 0 and cells == 0 and not absent,
    }


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        try:
            fa, fb = float(a), float(b)
        except (TypeError, ValueError):
            return False
        return math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=REL_TOL)
    return bool(a == b)


def compare_online(reference: Path, candidate: Path, names: list[str]) -> dict[str, Any]:
    """Compare two `to_dict()` dumps feature by feature, position by position."""
    ref = json.loads(reference.read_text())
    cand = json.loads(candidate.read_text())
    per_column: dict[str, int] = {}
    missing = [n for n in names if n not in cand]
    rows = len(next(iter(ref.values()), []))
    for n in names:
        if n in missing or n not in ref:
            continue
        bad = sum(1 for x, y in zip(ref[n], cand[n], strict=False) if not _same(x, y))
        bad += abs(len(ref[n]) - len(cand[n]))
        if bad:
            per_column[n] = bad
    nulls = sum(1 for n in names if n in cand for v in cand[n] if v is None)
    return {
        "rows": rows,
        "mismatching_cells": sum(per_column.values()),
        "mismatches_by_column": per_column,
        "missing_columns": missing,
        "null_cells": nulls,
        "equal": not per_column and not missing,
    }
