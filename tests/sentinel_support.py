"""A private Redis Sentinel deployment: a primary, a replica and three sentinels on loopback ports.

Every process is a real `redis-server` (the sentinels with `--sentinel`), started with nothing
kept on disk, each with its own config file under `workdir`; `stop()` ends them all.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from tests_support import free_port, start_redis_server

MASTER = "m"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _client(port: int) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)


def _wait(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as err:
            last = err
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout:g} s (last error: {last!r})")


class SentinelGroup:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.data: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: list[subprocess.Popen[bytes]] = []

    # -------------------------------------------------------------- lifecycle

    def start(self) -> SentinelGroup:
        try:
            first, second = self.data_ports
            self._start_data(first)
            self._start_data(second, "--replicaof", "127.0.0.1", str(first))
            _wait(lambda: self.role(second) == "slave" and self._link_up(second), "the replica did not sync")
            for port in self.sentinel_ports:
                conf = self.workdir / f"sentinel-{port}.conf"
                conf.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\nsentinel resolve-hostnames no\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {first} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                )
                self.sentinels.append(start_redis_server(port, self.workdir, "--sentinel", config=conf))
            _wait(self._sentinels_agree, "the sentinels did not find each other and the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_data(self, port: int, *extra: str) -> None:
        folder = self.workdir / f"data-{port}"
        folder.mkdir(exist_ok=True)
        self.data[port] = start_redis_server(port, folder, *extra)

    def stop(self) -> None:
        for proc in [*self.sentinels, *self.data.values()]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.sentinels, *self.data.values()]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    # -------------------------------------------------------------- state

    @property
    def sentinel_hosts(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.sentinel_ports]

    def role(self, port: int) -> str:
        with _client(port) as client:
            return str(client.info("replication")["role"])

    def _link_up(self, port: int) -> bool:
        with _client(port) as client:
            return client.info("replication").get("master_link_status") == "up"

    def named_primary(self, sentinel_port: int | None = None) -> int:
        with _client(sentinel_port or self.sentinel_ports[0]) as client:
            _, port = client.sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def primary(self) -> int:
        """The data port every sentinel names and that answers as a master."""
        ports = {self.named_primary(p) for p in self.sentinel_ports}
        assert len(ports) == 1, f"the sentinels disagree: {ports}"
        port = ports.pop()
        assert self.role(port) == "master"
        return port

    def replica(self) -> int:
        return next(p for p in self.data_ports if p != self.primary())

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            with _client(port) as client:
                state = client.sentinel_master(MASTER)
            if state["num-other-sentinels"] != 2 or state["num-slaves"] != 1:
                return False
        return True

    # -------------------------------------------------------------- faults

    def kill_primary(self) -> int:
        """SIGKILL the primary; returns its port."""
        port = self.primary()
        proc = self.data[port]
        proc.kill()
        proc.wait(10)
        return port

    def wait_failover(self, old: int, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a primary other than `old` and it answers as a master."""

        def moved() -> bool:
            ports = {self.named_primary(p) for p in self.sentinel_ports}
            return len(ports) == 1 and old not in ports and self.role(ports.pop()) == "master"

        _wait(moved, "no new primary was elected", timeout)
        return self.primary()

    def restart_as_replica(self, port: int, timeout: float = 30.0) -> None:
        """Start the old primary again (empty, as killed) and wait until the sentinels made it a synced replica."""
        self._start_data(port)
        _wait(lambda: self.role(port) == "slave" and self._link_up(port), "the old primary did not rejoin", timeout)

        def counted() -> bool:
            for sentinel in self.sentinel_ports:
                with _client(sentinel) as client:
                    replicas = client.sentinel_slaves(MASTER)
                if not any(int(r["port"]) == port and not r["is_sdown"] for r in replicas):
                    return False
            return True

        _wait(counted, "the sentinels do not see the rejoined replica", timeout)
