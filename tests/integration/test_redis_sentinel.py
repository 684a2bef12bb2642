"""Redis Sentinel failover under load: the primary is SIGKILLed while the store and the server work.

Real processes: a primary, a replica and three sentinels (down-after 1000 ms), private loopback
ports. Two failovers: the first primary is killed, restarted (the sentinels make it a replica of
the new one), then the new primary is killed. Asserted: behaviour (only 503s with Retry-After
during the switch, never a 500; /ready not ready while no primary answers; recovery without a
restart; acknowledged writes readable). The figures (error window, time to recovery) are printed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration_support import END, build_repo

from potluck import FeatureStore
from potluck.definitions.errors import BackendUnavailableError
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from sentinel_support import SentinelGroup
from tests_support import serve

pytestmark = pytest.mark.redis

READ = {"features": ["driver_stats:trips", "driver_live:lat"], "entities": {"driver_id": [1, 2, 3]}}
KEYS = 20  # entities the writers cycle through
WRITER_KEY = {"plain": 100_000, "acked": 200_000}  # each writer's own key range
BASE = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Log:
    """(monotonic time, ok, detail) of every call of one kind, and the slowest call."""

    calls: list[tuple[float, bool, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    slowest: float = 0.0

    def add(self, started: float, ok: bool, detail: str = "") -> None:
        now = time.monotonic()
        with self.lock:
            self.calls.append((now, ok, detail))
            self.slowest = max(self.slowest, now - started)

    def since(self, start: float) -> list[tuple[float, bool, str]]:
        with self.lock:
            return [c for c in self.calls if c[0] >= start]


def window(calls: list[tuple[float, bool, str]], start: float) -> tuple[int, float, float]:
    """Failed calls, their window (first to last failure) and the time from `start` to the first success after."""
    failed = [t for t, ok, _ in calls if not ok]
    if not failed:
        return 0, 0.0, 0.0
    after = [t for t, ok, _ in calls if ok and t > failed[-1]]
    return len(failed), failed[-1] - failed[0], (after[0] if after else float("nan")) - start


class Load:
    """Threads that write and read through FeatureStores and call the server, until stopped."""

    def __init__(self, stores: dict[str, FeatureStore], url: str) -> None:
        self.stores = stores
        self.url = url
        self.stop = threading.Event()
        self.http = Log()
        self.ready = Log()
        self.reads = Log()
        self.writes = {name: Log() for name in stores}
        self.acked: dict[str, dict[int, int]] = {name: {} for name in stores}  # key -> newest acknowledged value
        self.bad: list[str] = []  # answers that are neither 200 nor a 503 with Retry-After
        self._threads = [threading.Thread(target=self._http, daemon=True) for _ in range(4)]
        self._threads.append(threading.Thread(target=self._ready, daemon=True))
        self._threads.append(threading.Thread(target=self._reader, daemon=True))
        self._threads += [threading.Thread(target=self._writer, args=(n,), daemon=True) for n in stores]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)

    def _check(self, log: Log, started: float, response: httpx.Response) -> None:
        if response.status_code == 200:
            log.add(started, True)
            return
        log.add(started, False, str(response.status_code))
        body = response.json()["error"]
        if response.status_code != 503 or not response.headers.get("retry-after") or not body["retryable"]:
            self.bad.append(f"{response.status_code} {response.headers} {body}")

    def _http(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    self._check(self.http, started, http.post("/get-online-features", json=READ))
                except httpx.HTTPError as err:
                    self.bad.append(repr(err))

    def _ready(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.wait(0.05):
                started = time.monotonic()
                self._check(self.ready, started, http.get("/ready"))

    def _reader(self) -> None:
        """Reads through the store in this process (blocking client), as an SDK user would."""
        store = self.stores["plain"]
        rows = [{"driver_id": WRITER_KEY["plain"] + k} for k in range(KEYS)]
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                store.get_online_features(["driver_live:lat", "driver_stats:trips"], rows)
            except BackendUnavailableError:
                self.reads.add(started, False)
            except Exception as err:
                self.bad.append(f"read: {err!r}")
            else:
                self.reads.add(started, True)
            time.sleep(0.005)

    def _writer(self, name: str) -> None:
        store, first = self.stores[name], WRITER_KEY[name]
        i = 0
        while not self.stop.is_set():
            i += 1
            key = first + i % KEYS
            row = {
                "driver_id": [key],
                "lat": [float(i)],
                "status": ["x"],
                "event_timestamp": [BASE + timedelta(microseconds=i)],
            }
            started = time.monotonic()
            try:
                store.write_to_online_store("driver_live", row)
            except BackendUnavailableError as err:
                self.writes[name].add(started, False, str(err))
            except Exception as err:
                self.bad.append(f"write: {err!r}")
            else:
                self.writes[name].add(started, True)
                self.acked[name][key] = i
            time.sleep(0.002)


def _wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _recovered(log: Log, since: float) -> bool:
    """At least 20 successes in a row after `since`."""
    calls = log.since(since)
    return len(calls) >= 20 and all(ok for _, ok, _ in calls[-20:])


def _lost(store: FeatureStore, acked: dict[int, int]) -> list[int]:
    """Keys whose stored value is older than the newest acknowledged write."""
    keys = sorted(acked)
    values = store.get_online_features(["driver_live:lat"], [{"driver_id": k} for k in keys]).to_dict()["lat"]
    return [k for k, v in zip(keys, values, strict=True) if v is None or v < acked[k]]


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path / "sentinel")
    group.workdir.mkdir()
    group.start()
    try:
        yield group
    finally:
        group.stop()


def _repo(root: Path, group: SentinelGroup) -> Path:
    build_repo(root, "redis")
    yaml_file = root / "feature_store.yaml"
    text = yaml_file.read_text()
    start = text.index("online_store:")
    hosts = "".join(f"\n    - {h}" for h in group.sentinel_hosts)
    yaml_file.write_text(
        text[:start] + "online_store:\n  type: redis\n  redis_type: redis_sentinel\n  sentinel_master: m\n"
        f"  sentinel_hosts:{hosts}\n"
    )
    return root


def test_primary_killed_twice_under_load(tmp_path: Path, sentinels: SentinelGroup) -> None:
    root = _repo(tmp_path / "repo", sentinels)
    store = FeatureStore(repo_path=root)
    store.apply()
    store.materialize(END - timedelta(days=60), END, ["driver_stats"])
    online = store.config.online_store
    # The second writer has every write confirmed by the replica (WAIT 1) before it is acknowledged.
    acked_store = FeatureStore(
        config=store.config.model_copy(
            update={"online_store": online.model_copy(update={"wait_for_replicas": 1, "wait_timeout_ms": 300})}
        )
    )
    app = create_app(StoreBackend(store), ServerSettings(auth="off", backend_timeout_seconds=2.0))
    figures: list[str] = []
    try:
        with serve(app) as url, Load({"plain": store, "acked": acked_store}, url) as load:
            _wait_until(lambda: _recovered(load.http, 0) and _recovered(load.writes["acked"], 0), "no load")
            old = 0
            for round_ in (1, 2):
                if round_ == 2:
                    started = time.monotonic()
                    sentinels.restart_as_replica(old)
                    figures.append(f"old primary rejoined as a replica after {time.monotonic() - started:.1f} s")
                    _wait_until(lambda: _recovered(load.writes["acked"], time.monotonic() - 1), "WAIT 1 writes")
                killed = time.monotonic()
                old = sentinels.kill_primary()
                new = sentinels.wait_failover(old)
                elected = time.monotonic() - killed
                _wait_until(
                    lambda t=killed: all(_recovered(log, t) for log in (load.http, load.reads, load.writes["plain"])),
                    "the store and the server did not recover after the failover",
                )
                time.sleep(0.5)
                http = load.http.since(killed)
                failed, span, recovery = window(http, killed)
                ready = load.ready.since(killed)
                r_failed, r_span, r_recovery = window(ready, killed)
                s_failed, s_span, s_recovery = window(load.reads.since(killed), killed)
                w_failed = window(load.writes["plain"].since(killed), killed)[0]
                figures.append(
                    f"failover {round_}: primary {old} -> {new} elected after {elected:.2f} s; "
                    f"HTTP reads: {failed} of {len(http)} answered 503 over {span:.2f} s, first 200 after "
                    f"{recovery:.2f} s, slowest answer {load.http.slowest:.2f} s; /ready: {r_failed} of "
                    f"{len(ready)} not ready over {r_span:.2f} s, ready after {r_recovery:.2f} s; store reads: "
                    f"{s_failed} of {len(load.reads.since(killed))} failed over {s_span:.2f} s, back after "
                    f"{s_recovery:.2f} s, slowest {load.reads.slowest:.2f} s; store writes (retrying): {w_failed} "
                    f"failed, longest write {load.writes['plain'].slowest:.2f} s"
                )
                for log in (load.http, load.reads, load.writes["plain"]):
                    log.slowest = 0.0
                assert not load.bad, load.bad[:5]
                assert r_failed > 0, "/ready never said not ready while no primary answered"
                # the kill was seen: the figures are about a real switch
                assert failed > 0
                assert s_failed > 0
                assert [d for _, ok, d in http if not ok] == ["503"] * failed
        assert not load.bad, load.bad[:5]
        # Every write the WAIT 1 writer saw acknowledged is on the new primary.
        assert load.acked["acked"]
        assert _lost(store, load.acked["acked"]) == []
        lost = _lost(store, load.acked["plain"])
        figures.append(f"writes without WAIT: {len(lost)} of {len(load.acked['plain'])} keys lost their newest write")
        print("\n" + "\n".join(figures))
        acked_failed = sum(1 for _, ok, _ in load.writes["acked"].calls if not ok)
        print(f"WAIT 1 writer: {acked_failed} writes refused while the primary had no replica")
    finally:
        acked_store.close()
        store.close()
