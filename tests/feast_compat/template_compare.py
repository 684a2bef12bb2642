"""Feast's `feast init` repository run on Feast 0.67 and on Potluck, and every comparison of the two.

One home for the runs and the checks, used by tests/feast_compat/test_feast_init_repository.py and by
benchmarks/feast_template_compare.py. Feast always runs in its own interpreter (a subprocess); this
module only reads what it printed or wrote. Every check ends as a `Check`: `equal` (Potluck's answer
is Feast's), `rule` (Feast is known to be wrong here, so Potluck's answer was checked against the
documented rule instead, and passed) or `FAILED`.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from template_strip import missing_kinds, strip_file, to_potluck, to_potluck_script

HERE = Path(__file__).parent
WORKFLOW = HERE / "workflow.py"
ENTITY_COLUMNS = frozenset({"driver_id", "event_timestamp", "label", "val_to_add", "val_to_add_2"})
ODFV_OUTPUTS = frozenset({"conv_rate_plus_val1", "conv_rate_plus_val2"})
# The on-demand views read whole source views; Feast returns the source features nobody asked for too.
ODFV_SOURCE_FEATURES = frozenset(
    {"conv_rate", "acc_rate", "avg_daily_trips", "driver_metadata", "driver_config", "driver_profile"}
)
STATUS_RANK = {"PRESENT": 0, "NULL_VALUE": 1, "OUTSIDE_MAX_AGE": 2, "NOT_FOUND": 3}
# Printed `pandas` frames show every column (the scripts are unchanged; only the display is widened).
WIDE_DISPLAY = "import pandas\n" + "".join(
    f"pandas.set_option({name!r}, {value})\n"
    for name, value in (("display.max_columns", None), ("display.width", 100000), ("display.max_colwidth", None))
)


class StepFailed(RuntimeError):
    """A command of the comparison failed; the message holds its output."""


@dataclass(frozen=True)
class Check:
    object: str
    check: str
    status: str  # "equal" | "rule" | "FAILED"
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "FAILED"


@dataclass(frozen=True)
class Layout:
    base: Path
    template: Path  # Feast's repository as generated (its data stays untouched)
    feast_repo: Path  # workflow.py on Feast
    potluck_repo: Path  # workflow.py on Potluck
    feast_script_repo: Path  # the template's test_workflow.py on Feast, the template as generated
    potluck_script_repo: Path  # the same on Potluck, imports and CLI name changed
    labels: bool  # the label view is kept (Potluck exports LabelView)


def feast_env(feast_venv: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FEAST_USAGE": "False", "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1", **extra}


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, check=False, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise StepFailed(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def build(base: Path, feast_venv: Path) -> Layout:
    """`feast init` in `base`, then one copy of the repository per run."""
    run([str(feast_venv / "bin" / "feast"), "init", "demo"], cwd=base, env=feast_env(feast_venv))
    template = base / "demo" / "feature_repo"
    shutil.rmtree(template / "__pycache__", ignore_errors=True)
    kinds = missing_kinds()
    layout = Layout(
        base, template, base / "feast_repo", base / "potluck_repo", base / "feast_script", base / "potluck_script",
        "LabelView" not in kinds,
    )  # fmt: skip
    for repo in (layout.feast_repo, layout.potluck_repo, layout.feast_script_repo, layout.potluck_script_repo):
        shutil.copytree(template, repo)
    for repo in (layout.feast_repo, layout.potluck_repo):
        (repo / "test_workflow.py").unlink()
    for repo in (layout.feast_repo, layout.potluck_repo, layout.potluck_script_repo):
        strip_file(repo / "feature_definitions.py", kinds)
    for repo in (layout.potluck_repo, layout.potluck_script_repo):
        definitions = repo / "feature_definitions.py"
        definitions.write_text(to_potluck(definitions.read_text()))
    script = layout.potluck_script_repo / "test_workflow.py"
    script.write_text(to_potluck_script(script.read_text()))
    (base / "potluck_workflow.py").write_text(to_potluck(WORKFLOW.read_text()))
    (base / "display").mkdir()
    (base / "display" / "sitecustomize.py").write_text(WIDE_DISPLAY)
    return layout


def run_workflows(layout: Layout, feast_venv: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """workflow.py on both; returns (Feast's results, Potluck's results)."""
    env = feast_env(feast_venv)
    flag = ["--labels"] if layout.labels else []
    base = layout.base
    run([str(feast_venv / "bin" / "feast"), "apply"], cwd=layout.feast_repo, env=env)
    run(
        [str(feast_venv / "bin" / "python"), str(WORKFLOW), ".", str(base / "feast.json"), *flag],
        layout.feast_repo,
        env,
    )
    run([sys.executable, "-m", "potluck.cli", "apply"], cwd=layout.potluck_repo, env=env)
    run(
        [sys.executable, str(base / "potluck_workflow.py"), ".", str(base / "potluck.json"), *flag],
        layout.potluck_repo,
        env,
    )
    return json.loads((base / "feast.json").read_text()), json.loads((base / "potluck.json").read_text())


def run_template_scripts(layout: Layout, feast_venv: Path) -> tuple[str, str, pd.Timestamp]:
    """The template's own test_workflow.py on both (each with its CLI first on PATH); returns both stdouts."""
    started = pd.Timestamp.now(tz="UTC").floor("s")
    display = str(layout.base / "display")
    outputs = []
    for repo, bin_dir in (
        (layout.feast_script_repo, feast_venv / "bin"),
        (layout.potluck_script_repo, Path(sys.executable).parent),
    ):
        env = feast_env(feast_venv, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=display)
        result = run([str(bin_dir / "python"), "test_workflow.py"], cwd=repo, env=env)
        if "Traceback" in result.stderr:
            raise StepFailed(f"test_workflow.py in {repo} printed a traceback:\n{result.stderr[-4000:]}")
        outputs.append(result.stdout)
    return outputs[0], outputs[1], started


# --- comparing values -------------------------------------------------------------------------------------------


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _object_of(key: str) -> str:
    if "label" in key:
        return "driver_quality_labels"
    if "driver_activity" in key:
        return "driver_activity_" + key.split("driver_activity_")[1][:2]
    if "fresh" in key or "after_push" in key:
        return "transformed_conv_rate_fresh"
    return "transformed_conv_rate"


def compare_online(key: str, feast: dict[str, Any], potluck: dict[str, Any]) -> Check:
    obj, what = _object_of(key), key.replace("_", " ")
    if close(potluck, feast):
        return Check(obj, what, "equal")
    if feast.keys() != potluck.keys():
        return Check(obj, what, "FAILED", f"columns: Potluck {sorted(potluck)}, Feast {sorted(feast)}")
    differing = [c for c in feast if not close(potluck[c], feast[c])]
    keys = feast.get("driver_id", [])
    if (
        differing == ["driver_id"]
        and keys == [str(k) for k in potluck["driver_id"]]
        and all(isinstance(k, int) for k in potluck["driver_id"])
    ):
        return Check(
            obj, what, "rule", "Feast returns the label view's join keys as strings; Potluck echoes the requested ints"
        )
    return Check(obj, what, "FAILED", "; ".join(f"{c}: Potluck {potluck[c]} Feast {feast[c]}" for c in differing))


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["driver_id"], row["event_timestamp"], row.get("label"), row.get("val_to_add"))


def compare_frame(key: str, feast: dict[str, Any], potluck: dict[str, Any]) -> Check:
    """Historical rows: Feast's rows equal Potluck's; where Feast drops rows or adds columns, the rule decides."""
    obj, what = _object_of(key), key.replace("_", " ")
    notes = []
    if len(potluck["rows"]) != potluck["entity_rows"]:
        return Check(
            obj,
            what,
            "FAILED",
            f"Potluck returned {len(potluck['rows'])} rows for {potluck['entity_rows']} entity rows",
        )
    p_cols, f_cols = potluck["columns"], feast["columns"]
    extra = {c.split("__")[-1] for c in set(f_cols) - set(p_cols)}
    if not set(p_cols) <= set(f_cols) or not extra <= ODFV_SOURCE_FEATURES:
        return Check(obj, what, "FAILED", f"columns: Potluck {p_cols}, Feast {f_cols}")
    if extra:
        notes.append(
            f"Feast adds the on-demand view's unrequested source features {sorted(extra)} (#4479); Potluck returns only what was asked"
        )
    by_key = {_row_key(r): r for r in potluck["rows"]}
    if len(by_key) != len(potluck["rows"]):
        return Check(obj, what, "FAILED", "Potluck rows are not unique by entity row")
    for row in feast["rows"]:
        mine = by_key.pop(_row_key(row), None)
        if mine is None or not close(mine, {c: row[c] for c in p_cols}):
            return Check(obj, what, "FAILED", f"row {_row_key(row)}: Potluck {mine}, Feast {row}")
    if by_key:  # rows Feast dropped: they must be the ones with no feature row in the ttl window (all features null)
        unmatched = [r for r in by_key.values() if any(v is not None for c, v in r.items() if c not in ENTITY_COLUMNS)]
        if unmatched:
            return Check(obj, what, "FAILED", f"Feast lacks rows that have values in Potluck: {unmatched[:2]}")
        notes.append(
            f"Feast's file store drops {len(by_key)} entity rows without a match; Potluck keeps them with nulls"
        )
    return Check(obj, what, "rule" if notes else "equal", "; ".join(notes))


def reference_historical(stats: pd.DataFrame, rows: list[dict[str, Any]], ttl: timedelta) -> list[Check]:
    """Potluck's training rows against a brute-force point-in-time join of the template's own data."""
    failures = []
    for row in rows:
        t = pd.Timestamp(row["event_timestamp"])
        window = stats[
            (stats["driver_id"] == row["driver_id"])
            & (stats["event_timestamp"] <= t)
            & (stats["event_timestamp"] >= t - ttl)
        ]
        best = window.sort_values(["event_timestamp", "created"]).tail(1)
        conv = None if best.empty else float(best["conv_rate"].iloc[0])
        want = {
            "conv_rate": conv,
            "conv_rate_plus_val1": None if conv is None else conv + row["val_to_add"],
            "conv_rate_plus_val2": None if conv is None else conv + row["val_to_add_2"],
        }
        if not close({k: row[k] for k in want}, want):
            failures.append(f"{row['driver_id']}@{row['event_timestamp']}: {row} != {want}")
    status = "FAILED" if failures else "equal"
    return [
        Check(
            "transformed_conv_rate", "historical vs a brute-force point-in-time join", status, "; ".join(failures[:3])
        )
    ]


def compare_workflow(feast: dict[str, Any], potluck: dict[str, Any], template: Path) -> list[Check]:
    checks = []
    for key in sorted(feast.keys() | potluck.keys()):
        if key not in feast or key not in potluck:
            checks.append(
                Check(_object_of(key), key, "FAILED", f"only {'Feast' if key in feast else 'Potluck'} ran it")
            )
        elif key.startswith("historical"):
            checks.append(compare_frame(key, feast[key], potluck[key]))
        else:
            checks.append(compare_online(key, feast[key], potluck[key]))
    stats = pd.read_parquet(template / "data" / "driver_stats.parquet")
    checks += reference_historical(stats, potluck["historical"]["rows"], timedelta(days=1))
    return checks


# --- the template's test_workflow.py stdout -----------------------------------------------------------------------

NOT_DATA = ("apply", "teardown", "Load features")  # sections that print CLI or progress output


def sections(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("--- "):
            current = found.setdefault(line.strip("- "), [])
        elif current is not None and line.strip():
            current.append(line)
    return found


def printed_values(lines: list[str]) -> dict[str, Any]:
    """The `key  :  value` lines of `fetch_online_features`, values parsed as Python literals."""
    values = {}
    for line in lines:
        match = re.fullmatch(r"(\w+)  :  (.*)", line)
        if match:
            values[match[1]] = ast.literal_eval(match[2])
    return values


def printed_frames(lines: list[str]) -> list[dict[str, list[str]]]:
    """Printed DataFrames as column -> cells (text as printed). Headers and cells are right-aligned, so a
    column ends where its header ends; the unnamed index comes first."""
    frames, i = [], 0
    while i < len(lines):
        ends = [m.end() for m in re.finditer(r"\S+", lines[i])]
        names = lines[i].split()
        rows, j = [], i + 1
        while j < len(lines) and re.match(r"\d+\s", lines[j]) and len(lines[j]) == len(lines[i]):
            starts = [0, *ends[:-1]]
            cells = [lines[j][a:b].strip() for a, b in zip(starts, ends, strict=True)]
            cells[0] = cells[0].split()[-1]  # the index shares the first slice
            rows.append(cells)
            j += 1
        if rows:
            frames.append({name: [r[k] for r in rows] for k, name in enumerate(names)})
            i = j
        else:
            i += 1
    return frames


def _both_now(a: str, b: str, started: pd.Timestamp) -> bool:
    """Cells the script fills with `datetime.now()`: both timestamps taken during the runs."""
    try:
        ta, tb = (pd.Timestamp(v) for v in (a, b))
    except ValueError:
        return False
    ta, tb = (t.tz_localize("UTC") if t.tzinfo is None else t for t in (ta, tb))
    return bool(ta >= started and tb >= started)


def compare_stdout(feast_text: str, potluck_text: str, started: pd.Timestamp) -> list[Check]:
    feast, potluck = sections(feast_text), sections(potluck_text)
    obj = "test_workflow.py"
    checks = [
        Check(
            obj,
            "same sections in the same order",
            "equal" if list(feast) == list(potluck) else "FAILED",
            f"{list(potluck)}",
        )
    ]
    for title in feast:
        if any(word in title for word in NOT_DATA) or title not in potluck:
            continue
        values_f, values_p = printed_values(feast[title]), printed_values(potluck[title])
        frames_f, frames_p = printed_frames(feast[title]), printed_frames(potluck[title])
        if not (values_f or frames_f) or len(frames_f) != len(frames_p):
            checks.append(
                Check(
                    obj,
                    title,
                    "FAILED",
                    f"nothing to compare or frames differ: {feast[title][:3]} / {potluck[title][:3]}",
                )
            )
            continue
        notes, failures = [], []
        if not close(values_p, values_f):
            failures.append(f"values: Potluck {values_p}, Feast {values_f}")
        for frame_f, frame_p in zip(frames_f, frames_p, strict=True):
            extra = set(frame_f) - set(frame_p)
            if set(frame_p) - set(frame_f) or not extra <= ODFV_SOURCE_FEATURES:
                failures.append(f"columns: Potluck {list(frame_p)}, Feast {list(frame_f)}")
                continue
            if extra:
                notes.append(f"Feast adds unrequested {sorted(extra)} (#4479)")
            for column, cells in frame_p.items():
                for mine, theirs in zip(cells, frame_f[column], strict=True):
                    if mine != theirs and not _both_now(mine, theirs, started):
                        failures.append(f"{column}: Potluck {mine!r}, Feast {theirs!r}")
        status = "FAILED" if failures else ("rule" if notes else "equal")
        checks.append(Check(obj, title, status, "; ".join(failures or notes)))
    return checks


# --- the servers ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> Iterator[str]:
    """Start a feature server on a free loopback port (`{port}` in `args`); stops its process group on exit."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [a.replace("{port}", str(port)) for a in args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StepFailed(f"{args[0]} serve did not start ({proc.poll()}):\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def server_requests(labels: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, path, body): reads with request data, feature services, a push, and the read that sees it."""
    request = {"driver_id": [1001, 1002, 999999], "val_to_add": [1, 2, 3], "val_to_add_2": [10, 20, 30]}
    features = [
        "driver_hourly_stats:conv_rate", "driver_hourly_stats:driver_profile", "driver_hourly_stats:driver_config",
        "transformed_conv_rate:conv_rate_plus_val1", "transformed_conv_rate:conv_rate_plus_val2",
    ]  # fmt: skip
    pushed = {
        "driver_id": [1003], "event_timestamp": ["2030-01-01T00:00:00+00:00"], "created": ["2030-01-01T00:00:00+00:00"],
        "conv_rate": [0.5], "acc_rate": [0.25], "avg_daily_trips": [7], "driver_metadata": [{"vehicle_type": "bike"}],
        "driver_config": ['{"max_distance_km": 5}'], "driver_profile": [{"name": "pushed", "age": "9"}],
    }  # fmt: skip
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("features", "/get-online-features", {"features": features, "entities": request}),
        (
            "features, full names",
            "/get-online-features",
            {"features": features, "entities": request, "full_feature_names": True},
        ),
    ]
    for service in ("driver_activity_v1", "driver_activity_v2", "driver_activity_v3"):
        requests.append((service, "/get-online-features", {"feature_service": service, "entities": request}))
    requests += [
        ("push", "/push", {"push_source_name": "driver_stats_push_source", "df": pushed, "to": "online"}),
        ("driver_activity_v3 after push", "/get-online-features",
         {"feature_service": "driver_activity_v3", "entities": {**request, "driver_id": [1003, 1001, 999999]}}),
    ]  # fmt: skip
    if labels:
        refs = [f"driver_quality_labels:{n}" for n in ("is_reliable", "quality_score", "reviewer_notes", "labeler")]
        requests.append(
            ("label view", "/get-online-features", {"features": refs, "entities": {"driver_id": [1001, 1002, 1005]}})
        )
    return requests


def ask(url: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[int, Any]]:
    answers = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for _, path, body in requests:
            response = http.post(path, json=body)
            answers.append((response.status_code, response.json() if response.content else None))
    return answers


def _columns(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))


def _same_json_text(a: Any, b: Any) -> bool:
    try:
        return bool(isinstance(a, str) and isinstance(b, str) and json.loads(a) == json.loads(b))
    except ValueError:
        return False


def compare_answer(what: str, feast: tuple[int, Any], potluck: tuple[int, Any]) -> Check:
    obj = f"server: {what}"
    (f_code, f_body), (p_code, p_body) = feast, potluck
    if f_code != p_code:
        return Check(obj, "status code", "FAILED", f"Potluck {p_code} {p_body}, Feast {f_code} {f_body}")
    if what == "push":
        shape = "equal" if f_body == p_body else "rule"
        return Check(
            obj,
            "200, then the read sees it",
            shape,
            "" if shape == "equal" else f"body: Feast {f_body!r}, Potluck {p_body!r}",
        )
    if p_body.keys() != f_body.keys():
        return Check(obj, "JSON shape", "FAILED", f"keys: Potluck {sorted(p_body)}, Feast {sorted(f_body)}")
    mine, theirs = _columns(p_body), _columns(f_body)
    if mine.keys() != theirs.keys():
        return Check(obj, "feature names", "FAILED", f"Potluck {list(mine)}, Feast {list(theirs)}")
    notes, failures = [], []
    if list(mine) != list(theirs):
        notes.append("Feast orders a view's features its own way; Potluck in request (service) order")
    for name, column in mine.items():
        other = theirs[name]
        if column.keys() != other.keys():
            failures.append(f"{name}: keys {sorted(column)} vs {sorted(other)}")
            continue
        if column["event_timestamps"] != other["event_timestamps"]:
            failures.append(f"{name}: event_timestamps {column['event_timestamps']} vs {other['event_timestamps']}")
        for i, (a, b) in enumerate(zip(column["values"], other["values"], strict=True)):
            if not close(a, b):
                if _same_json_text(a, b):
                    notes.append(f"{name}: the same JSON value, Potluck in canonical text")
                elif what == "label view" and name == "driver_id" and isinstance(a, int) and b == str(a):
                    notes.append("Feast answers the label view's join keys as strings; Potluck as requested")
                else:
                    failures.append(f"{name}[{i}]: Potluck {a!r}, Feast {b!r}")
        for i, (a, b) in enumerate(zip(column["statuses"], other["statuses"], strict=True)):
            if a == b:
                continue
            # Feast marks an on-demand output PRESENT even when its inputs were not found.
            inputs = [c["statuses"][i] for n, c in mine.items() if n.split("__")[-1] in ODFV_SOURCE_FEATURES]
            worst = max(inputs, key=STATUS_RANK.__getitem__) if inputs else "NULL_VALUE"
            if name.split("__")[-1] in ODFV_OUTPUTS and column["values"][i] is None and a == worst and a != "PRESENT":
                notes.append(f"{name}: Feast says PRESENT for a null output; Potluck gives its inputs' status {a}")
            else:
                failures.append(f"{name}[{i}] status: Potluck {a}, Feast {b}")
    status = "FAILED" if failures else ("rule" if notes else "equal")
    return Check(obj, "JSON shape and values", status, "; ".join(failures or sorted(set(notes))))


def compare_servers(layout: Layout, feast_venv: Path) -> list[Check]:
    """`feast serve` on Feast's copy and `potluck serve` on Potluck's (both after run_workflows), same requests."""
    requests = server_requests(layout.labels)
    env = feast_env(feast_venv)
    feast_cmd = [str(feast_venv / "bin" / "feast"), "serve", "-h", "127.0.0.1", "-p", "{port}", "--no-access-log"]
    potluck_cmd = [
        sys.executable,
        "-m",
        "potluck.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--no-access-log",
    ]
    with (
        serving(feast_cmd, layout.feast_repo, env) as feast_url,
        serving(potluck_cmd, layout.potluck_repo, env) as potluck_url,
    ):
        feast, potluck = ask(feast_url, requests), ask(potluck_url, requests)
    return [compare_answer(what, f, p) for (what, _, _), f, p in zip(requests, feast, potluck, strict=True)]


def table(checks: list[Check]) -> str:
    """A plain-text table: object, check, result, and why for every difference."""
    rows = [("object", "check", "result", "why")]
    rows += [
        (c.object, c.check, {"equal": "equal", "rule": "different, rule checked"}.get(c.status, "FAILED"), c.why)
        for c in checks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows)
