"""Feast 0.67's CLI spellings on `potluck`: each option parses and has its effect on a real repository."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from repo_helpers import make_repo

from potluck import FeatureStore
from tests_support import free_port, run_cli, self_signed, wait_healthy

TTL_HOURS = 24 * 366 * 30  # the rows of 2024 stay fresh online
START, END = "2023-12-31T00:00:00", "2024-01-02T00:00:00"
SECOND_VIEW = {
    "more.py": """
    from datetime import timedelta

    from potluck import FeatureView, Field
    from potluck.types import Int64
    from features import driver, source

    driver_trips = FeatureView(
        name="driver_trips", entities=[driver], ttl=timedelta(hours=24),
        schema=[Field(name="trips", dtype=Int64)], source=source,
    )
    """
}

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def repo(tmp_path: Path, capsys: Capsys) -> Path:
    root = make_repo(tmp_path / "repo", ttl_hours=TTL_HOURS, extra_files=SECOND_VIEW)
    code, _, err = run_cli(capsys, "-c", str(root), "apply", "-y")
    assert code == 0, err
    return root


def cli(capsys: Capsys, repo: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "-c", str(repo), *args)


def ok(capsys: Capsys, repo: Path, *args: str) -> str:
    code, out, err = cli(capsys, repo, *args)
    assert code == 0, err
    return out


def intervals(capsys: Capsys, repo: Path) -> list[dict[str, str]]:
    return json.loads(ok(capsys, repo, "materialization", "show", "-o", "json"))  # type: ignore[no-any-return]


# -- one function per option: run it, then check what it did -------------------------------------


def online_short_options(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", START, END, "--no-progress")
    out = ok(
        capsys,
        repo,
        "get-online-features",
        "-f",
        "driver_stats:trips",
        "-e",
        "driver_id=1",
        "-e",
        "driver_id=2",
        "-o",
        "json",
    )
    assert json.loads(out)["values"]["trips"] == [3, 2]
    out = ok(
        capsys,
        repo,
        "get-online-features",
        "--features",
        "driver_stats:city",
        "--entities",
        "driver_id=2",
        "-o",
        "json",
    )
    assert json.loads(out)["values"]["city"] == ["b"]


def historical_dataframe(capsys: Capsys, repo: Path) -> None:
    rows = json.dumps(
        [{"event_timestamp": "2024-01-01T00:30:00", "driver_id": 1}, {"event_timestamp": END, "driver_id": 1}]
    )
    out = ok(capsys, repo, "get-historical-features", "-d", rows, "-f", "driver_stats:trips")
    assert [r["trips"] for r in json.loads(out)] == [1, 3]
    out = ok(capsys, repo, "get-historical-features", "--dataframe", rows, "--features", "driver_stats:conv_rate")
    assert [r["conv_rate"] for r in json.loads(out)] == [0.1, 0.3]


def historical_date_range(capsys: Capsys, repo: Path) -> None:
    out = ok(
        capsys,
        repo,
        "get-historical-features",
        "-s",
        "2024-01-01 00:00:00",
        "-e",
        "2024-01-01 00:30:00",
        "-f",
        "driver_stats:trips",
    )
    assert sorted((r["driver_id"], r["trips"]) for r in json.loads(out)) == [(1, 1), (2, 2)]
    out = ok(
        capsys,
        repo,
        "get-historical-features",
        "--start-date",
        "2024-01-01T00:30:00",
        "--end-date",
        END,
        "-f",
        "driver_stats:trips",
    )
    assert [(r["driver_id"], r["trips"]) for r in json.loads(out)] == [(1, 3)]  # driver 2 has no row in the range
    code, _, err = cli(capsys, repo, "get-historical-features", "-s", START, "-d", "[]", "-f", "driver_stats:trips")
    assert code == 2
    assert "--start-date" in err


def materialize_disable_event_timestamp(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", "--disable-event-timestamp", "--no-progress")
    assert {(i["view"], i["start"]) for i in intervals(capsys, repo)} == {
        ("driver_stats", "1970-01-01T00:00:00+00:00"),
        ("driver_trips", "1970-01-01T00:00:00+00:00"),
    }
    code, _, err = cli(capsys, repo, "materialize", START, END, "--disable-event-timestamp")
    assert code == 2
    assert "not both" in err
    code, _, err = cli(capsys, repo, "materialize")
    assert code == 2
    assert "--disable-event-timestamp" in err


def materialize_version(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", START, END, "-v", "driver_stats", "--version", "latest", "--no-progress")
    assert [i["view"] for i in intervals(capsys, repo)] == ["driver_stats"]
    ok(capsys, repo, "materialize", START, END, "-v", "driver_stats", "--version", "v0", "--no-progress")
    code, _, err = cli(capsys, repo, "materialize", START, END, "-v", "driver_stats", "--version", "v7")
    assert code == 2
    assert "current version v0" in err
    code, _, err = cli(capsys, repo, "materialize", START, END, "-v", "driver_stats", "--version", "seven")
    assert code == 2
    assert "'latest' or 'vN'" in err
    code, _, err = cli(capsys, repo, "materialize-incremental", END, "--version", "latest")
    assert code == 2
    assert "exactly one feature view" in err


def incremental_verbose(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", START, "2024-01-01T00:30:00", "-v", "driver_stats", "--no-progress")
    out = ok(
        capsys, repo, "materialize-incremental", END, "--verbose", "--feature-views", "driver_stats", "--no-progress"
    )
    line = next(line for line in out.splitlines() if line.startswith("driver_stats:"))
    assert "interval 2024-01-01T00:30:00+00:00 .. 2024-01-02T00:00:00+00:00" in line
    assert "read 1 rows" in line
    assert "wrote 1 rows" in line
    assert "rows read" in out  # the table's extra column
    quiet = ok(capsys, repo, "materialize-incremental", END, "--feature-views", "driver_stats", "--no-progress")
    assert "rows read" not in quiet
    assert "driver_stats:" not in quiet


def feature_views_alias(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize-incremental", END, "--feature-views", "driver_trips", "--no-progress")
    assert [i["view"] for i in intervals(capsys, repo)] == ["driver_trips"]
    ok(capsys, repo, "materialize", START, END, "--feature-views", "driver_stats", "--no-progress")
    assert sorted(i["view"] for i in intervals(capsys, repo)) == ["driver_stats", "driver_trips"]


def apply_options(capsys: Capsys, repo: Path) -> None:
    (repo / "extra.py").write_text(
        "from potluck import Entity, ValueType\nrider = Entity(name='rider', join_keys=['rider_id'], "
        "value_type=ValueType.INT64)\n"
    )
    code, _out, err = cli(
        capsys, repo, "apply", "-y", "--skip-source-validation", "--skip-feature-view-validation", "--no-progress"
    )
    assert code == 0, err
    assert "--skip-source-validation has no effect" in err
    assert "--skip-feature-view-validation has no effect" in err
    assert "rider" in ok(capsys, repo, "entities", "list")
    assert "No changes" in ok(capsys, repo, "apply", "-y", "--no-promote")
    code, _, err = cli(capsys, repo, "plan", "--skip-source-validation")
    assert code == 0
    assert "has no effect" in err


def versions(capsys: Capsys, repo: Path, view: str) -> list[tuple[str, bool]]:
    listed = json.loads(ok(capsys, repo, "feature-views", "list-versions", view, "-o", "json"))
    return [(v["version"], v["current"]) for v in listed]


def apply_no_promote_and_list_versions(capsys: Capsys, repo: Path) -> None:
    more = repo / "more.py"
    more.write_text(more.read_text().replace("timedelta(hours=24)", "timedelta(hours=48)"))
    out = ok(capsys, repo, "apply", "-y", "--no-promote")
    assert "Feature view 'driver_trips': recorded v1 (not promoted; v0 stays current)" in out
    assert versions(capsys, repo, "driver_trips") == [("v0", True), ("v1", False)]
    described = json.loads(ok(capsys, repo, "feature-views", "describe", "driver_trips", "-o", "json"))
    assert (described["current_version_number"], described["ttl_seconds"]) == (0, 86400)
    table = ok(capsys, repo, "feature-views", "list-versions", "driver_trips")
    assert "v1" in table
    assert "not promoted" not in ok(capsys, repo, "apply", "-y")  # promotes v1, records nothing new
    assert versions(capsys, repo, "driver_trips") == [("v0", False), ("v1", True)]
    dump = json.loads(ok(capsys, repo, "registry-dump"))
    trips = next(v for v in dump["objects"]["feature_view"] if v["name"] == "driver_trips")
    assert trips["current_version_number"] == 1
    code, _, err = cli(capsys, repo, "feature-views", "list-versions", "driver_trip")
    assert code != 0
    assert "driver_trips" in err


def tags_filters(capsys: Capsys, repo: Path) -> None:
    listings = {
        "feature-views": ["driver_stats"],
        "entities": [],
        "feature-services": [],
        "data-sources": [],
    }
    for group, tagged in listings.items():
        every = [o["name"] for o in json.loads(ok(capsys, repo, group, "list", "-o", "json"))]
        assert every, group
        for spelling in ("team:core", "team=core", "'team:core'"):
            found = [o["name"] for o in json.loads(ok(capsys, repo, group, "list", "--tags", spelling, "-o", "json"))]
            assert found == tagged, (group, spelling)
        both = ok(capsys, repo, group, "list", "--tags", "team:core, owner:x", "-o", "json")
        assert json.loads(both) == [], group
    projects = json.loads(ok(capsys, repo, "projects", "list", "--tags", "team:core", "-o", "json"))
    assert projects == []
    code, _, err = cli(capsys, repo, "entities", "list", "--tags", "team")
    assert code == 2
    assert "key:value" in err


def init_options(capsys: Capsys, repo: Path) -> None:
    base = repo.parent
    code, _, err = run_cli(capsys, "init", str(base / "empty"), "-m")
    assert code == 0, err
    assert (base / "empty" / "feature_store.yaml").is_file()
    assert not (base / "empty" / "data" / "labels.parquet").exists()
    code, _, err = run_cli(capsys, "init", str(base / "demo"), "--template", "local")
    assert code == 0, err
    assert (base / "demo" / "data" / "user_stats.parquet").is_file()
    code, _, err = run_cli(capsys, "init", "named_project", "--repo-path", str(base / "elsewhere"), "-t", "minimal")
    assert code == 0, err
    assert FeatureStore(repo_path=base / "elsewhere").project == "named_project"
    code, _, err = run_cli(capsys, "init", str(base / "cloud"), "-t", "aws")
    assert code == 1
    assert "unknown template 'aws'" in err
    assert "local, minimal" in err
    assert not (base / "cloud").exists()


def registry_dump_alias(capsys: Capsys, repo: Path) -> None:
    assert json.loads(ok(capsys, repo, "registry-dump")) == json.loads(ok(capsys, repo, "registry", "dump"))


def features_list(capsys: Capsys, repo: Path) -> None:
    listed = json.loads(ok(capsys, repo, "features", "list", "--output", "json"))
    assert {"feature_name": "trips", "feature_view": "driver_trips", "dtype": "Int64"} in listed
    assert len(listed) == 4
    described = json.loads(ok(capsys, repo, "features", "describe", "trips"))
    assert sorted(d["feature_view"] for d in described) == ["driver_stats", "driver_trips"]


def projects_list(capsys: Capsys, repo: Path) -> None:
    assert [p["name"] for p in json.loads(ok(capsys, repo, "projects", "list", "-o", "json"))] == ["test_project"]


def delete_object(capsys: Capsys, repo: Path) -> None:
    code, _, err = cli(capsys, repo, "delete", "driver_stats")
    assert code == 1
    assert "feature service 'driver_service'" in err
    assert "Deleted FeatureService 'driver_service'" in ok(capsys, repo, "delete", "driver_service")
    ok(capsys, repo, "delete", "driver_stats")
    remaining = json.loads(ok(capsys, repo, "registry-dump"))["objects"]["feature_view"]
    assert [v["name"] for v in remaining] == ["driver_trips"]
    code, _, err = cli(capsys, repo, "delete", "driver_trip")
    assert code == 1
    assert "Did you mean 'driver_trips'" in err


def yaml_path_environment(capsys: Capsys, repo: Path) -> None:
    other = repo / "conf" / "other.yaml"
    other.parent.mkdir()
    other.write_text((repo / "feature_store.yaml").read_text().replace("test_project", "other_project"))
    for name in ("FEAST_FS_YAML_FILE_PATH", "POTLUCK_FS_YAML_FILE_PATH"):
        with pytest.MonkeyPatch.context() as env:
            env.setenv(name, str(other))
            assert json.loads(ok(capsys, repo, "projects", "list", "-o", "json"))[0]["name"] == "other_project"
    out = ok(capsys, repo, "-f", str(other), "projects", "list", "-o", "json")
    assert json.loads(out)[0]["name"] == "other_project"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FEATURE_REPO_DIR_ENV_VAR", str(repo))
        code, out, err = run_cli(capsys, "projects", "list", "-o", "json")
        assert code == 0, err
        assert json.loads(out)[0]["name"] == "test_project"


CASES: list[Callable[[Capsys, Path], None]] = [
    online_short_options,
    historical_dataframe,
    historical_date_range,
    materialize_disable_event_timestamp,
    materialize_version,
    incremental_verbose,
    feature_views_alias,
    apply_options,
    apply_no_promote_and_list_versions,
    tags_filters,
    init_options,
    registry_dump_alias,
    features_list,
    projects_list,
    delete_object,
    yaml_path_environment,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_feast_option(case: Callable[[Capsys, Path], None], repo: Path, capsys: Capsys) -> None:
    case(capsys, repo)


def test_log_level(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "potluck.cli", "-c", str(root), *args, "projects", "list"],
            capture_output=True,
            text=True,
            check=False,
        )

    assert "potluck.cli INFO" in run("--log-level", "info").stderr
    assert "potluck.cli INFO" in run("--log-level", "DEBUG").stderr
    assert "potluck.cli" not in run("--log-level", "warning").stderr
    assert "potluck.cli" not in run().stderr
    bad = run("--log-level", "loud")
    assert bad.returncode == 2
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in bad.stderr


# -- Feast's own command tree -------------------------------------------------------------------

DUMP_FEAST_CLI = """
import json, click
from feast.cli.cli import cli

def walk(cmd, path, out):
    out[" ".join(path)] = [
        {"opts": list(p.opts) + list(p.secondary_opts), "argument": isinstance(p, click.Argument)} for p in cmd.params
    ]
    for name, sub in getattr(cmd, "commands", {}).items():
        walk(sub, path + [name], out)
    return out

print(json.dumps(walk(cli, [], {})))
"""

# Feast verbs Potluck implements: every one must exist here with every Feast option.
FEAST_VERBS = {
    "",
    "apply",
    "plan",
    "teardown",
    "version",
    "init",
    "delete",
    "registry-dump",
    "materialize",
    "materialize-incremental",
    "get-online-features",
    "get-historical-features",
    "serve",
    "entities list",
    "entities describe",
    "feature-views list",
    "feature-views describe",
    "feature-services list",
    "feature-services describe",
    "data-sources list",
    "data-sources describe",
    "features list",
    "features describe",
    "projects list",
}
# (verb, option): why Potluck leaves it out.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def potluck_tree() -> dict[str, list[dict[str, object]]]:
    import click

    from potluck.cli import commands  # noqa: F401  (registers the commands)
    from potluck.cli.main import cli as root

    out: dict[str, list[dict[str, object]]] = {}

    def walk(cmd: click.Command, path: list[str]) -> None:
        out[" ".join(path)] = [
            {"opts": [*p.opts, *p.secondary_opts], "argument": isinstance(p, click.Argument)} for p in cmd.params
        ]
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return out


def test_every_feast_option_of_implemented_verbs(feast_python: Path, tmp_path: Path) -> None:
    from feast_support import run_feast

    feast = json.loads(run_feast(feast_python, DUMP_FEAST_CLI, cwd=tmp_path).stdout)
    ours = potluck_tree()
    assert set(feast) >= FEAST_VERBS, sorted(FEAST_VERBS - set(feast))
    missing = []
    for verb in sorted(FEAST_VERBS):
        assert verb in ours, f"`potluck {verb}` is missing"
        our_opts = {o for p in ours[verb] for o in p["opts"]}  # type: ignore[attr-defined]
        for param in feast[verb]:
            if param["argument"]:
                continue
            for opt in param["opts"]:
                if opt not in our_opts and (verb, opt) not in EXCEPTIONS:
                    missing.append(f"potluck {verb} {opt}")
        feast_args = sum(p["argument"] for p in feast[verb])
        our_args = sum(bool(p["argument"]) for p in ours[verb])
        assert our_args == feast_args, f"`potluck {verb}` takes {our_args} arguments, Feast's {feast_args}"
    assert not missing, missing
    # One parameter per Feast option: short and long spellings of one Feast option are one option here.
    for verb in FEAST_VERBS:
        for param in feast[verb]:
            if len(param["opts"]) > 1 and not param["argument"]:
                holders = [p for p in ours[verb] if set(param["opts"]) <= set(p["opts"])]  # type: ignore[arg-type]
                assert holders, f"potluck {verb}: {param['opts']} are not spellings of one option"


def test_serve_help_keeps_long_help_and_h_is_host(capsys: Capsys) -> None:
    code, out, _ = run_cli(capsys, "serve", "--help")
    assert code == 0
    assert "-h, --host" in out
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "serve" in out
    code, out, _ = run_cli(capsys, "-h")
    assert code == 0
    assert "serve" in out


# -- `serve` with Feast's options: the real server process -----------------------------------------


class Server:
    """`potluck serve ARGS` in its own process; its output is read once it has stopped."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "potluck.cli", "-c", str(repo), "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self, http: httpx.Client) -> None:
        wait_healthy(http, self.proc)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out


def _raw_request(sock: socket.socket, path: str, body: dict[str, object] | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request on an open connection (kept alive); returns status and body."""
    payload = json.dumps(body).encode() if body is not None else b""
    method = "POST" if body is not None else "GET"
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    header, rest = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(header.split(b" ")[1]), rest


def test_serve_tls_workers_metrics_and_max_requests(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", ttl_hours=TTL_HOURS)
    FeatureStore(repo_path=root).apply()
    key_file, cert_file = self_signed(tmp_path)
    port = free_port()
    server = Server(
        root,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-t",
        "http",
        "-w",
        "2",
        "-k",
        str(key_file),
        "-c",
        str(cert_file),
        "-m",
        "--no-access-log",
        "--max-requests",
        "3",
        "--max-requests-jitter",
        "0",
    )
    trust = ssl.create_default_context(cafile=str(cert_file))
    try:
        with httpx.Client(base_url=f"https://localhost:{port}", verify=trust, timeout=10) as http:
            server.wait_healthy(http)
            assert http.get("/metrics").status_code == 200
        for _ in range(12):  # a fresh connection each; workers restart every 3 requests, the server stays up
            with httpx.Client(base_url=f"https://localhost:{port}", verify=trust, timeout=10) as http:
                server.wait_healthy(http)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=3)  # TLS only
    finally:
        out = server.stop()
    assert "on https://127.0.0.1:" in out
    assert "2 worker(s)" in out
    assert "/metrics on the server's own port" in out
    assert "Maximum request limit of 3 exceeded" in out
    assert len(set(re.findall(r"Started server process \[(\d+)\]", out))) >= 2, out  # two worker processes


def test_serve_registry_ttl_keep_alive_and_worker_connections(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", ttl_hours=TTL_HOURS)
    FeatureStore(repo_path=root).apply()
    port = free_port()
    server = Server(
        root,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-r",
        "3600",
        "--keep-alive-timeout",
        "3600",
        "--worker-connections",
        "2",
        "--max-requests",
        "1000",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            server.wait_healthy(http)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
            assert _raw_request(kept, "/health")[0] == 200
            with socket.create_connection(("127.0.0.1", port), timeout=10):  # a second, idle connection
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 503
            # A view applied after the server read the registry: unknown to it for the whole hour.
            (root / "later.py").write_text(SECOND_VIEW["more.py"].replace("    ", ""))
            FeatureStore(repo_path=root).apply()
            time.sleep(6.5)  # past uvicorn's default keep-alive (5 s) and the repository's registry cache (5 s)
            body = {"features": ["driver_trips:trips"], "entities": {"driver_id": [1]}}
            for _ in range(2):  # the first call after a cache expiry would start a refresh, the second see it
                status, reply = _raw_request(kept, "/get-online-features", body)
                assert 400 <= status < 500, reply
                assert b"driver_trips" in reply
                time.sleep(1)
    finally:
        out = server.stop()
    assert "--max-requests has no effect with one worker" in out


def test_serve_refuses_grpc(capsys: Capsys) -> None:
    code, _, err = run_cli(capsys, "serve", "-t", "grpc")
    assert code == 2
    assert "http only" in err
