"""`redis_type: redis_sentinel`: Feast's form and Potluck's, credentials kept apart, errors that name the key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from potluck.definitions.errors import BackendUnavailableError, ConfigError
from potluck.online.protocol import OnlineView, ReadRequest
from potluck.online.redis import RedisOnlineStore
from potluck.repo.config import RedisOnlineStoreConfig, load_config
from tests_support import free_port


def _config(tmp_path: Path, section: str) -> Any:
    (tmp_path / "feature_store.yaml").write_text("project: p\nonline_store:\n  type: redis\n" + section)
    return load_config(tmp_path).online_store


def test_feasts_form_lists_the_sentinels_in_the_connection_string(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "  redis_type: redis_sentinel\n  sentinel_master: orders\n"
        "  connection_string: 's1.example:26380,s2.example,password=pw,db=2'\n",
    )
    assert config.sentinel_nodes() == [("s1.example", 26380), ("s2.example", 26379)]
    store = RedisOnlineStore(config)  # nothing is connected yet
    try:
        data = store.client.connection_pool.connection_kwargs
        assert (data["password"], data["db"], store.client.connection_pool.service_name) == ("pw", 2, "orders")
        sentinels = store._sentinel.sentinels
        assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26380, 26379]
        assert all(s.connection_pool.connection_kwargs.get("password") is None for s in sentinels)
        settings = store._async_settings
        assert settings is not None
        assert (settings.sentinels, settings.sentinel_master, settings.password) == (
            (("s1.example", 26380), ("s2.example", 26379)),
            "orders",
            "pw",
        )
    finally:
        store.close()


def test_sentinel_hosts_and_their_own_credentials(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "  redis_type: redis_sentinel\n  sentinel_hosts: ['127.0.0.1:5000', '[::1]:5001']\n"
        "  password: data-pw\n  sentinel_password: sentinel-pw\n  sentinel_username: watcher\n",
    )
    store = RedisOnlineStore(config)
    try:
        assert store.client.connection_pool.connection_kwargs["password"] == "data-pw"
        own = [s.connection_pool.connection_kwargs for s in store._sentinel.sentinels]
        assert [(k["host"], k["port"], k["username"], k["password"]) for k in own] == [
            ("127.0.0.1", 5000, "watcher", "sentinel-pw"),
            ("::1", 5001, "watcher", "sentinel-pw"),
        ]
        assert config.sentinel_master == "mymaster"  # Feast's default
    finally:
        store.close()


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("  sentinel_hosts: ['h:1']\n", ("sentinel_hosts", "redis_sentinel")),
        ("  redis_type: redis_sentinel\n  sentinel_hosts: []\n", ("sentinel_hosts", "host:port")),
        ("  redis_type: redis_sentinel\n  sentinel_hosts: ['h:port']\n", ("sentinel_hosts", "bad port")),
        ("  redis_type: redis_cluster\n  wait_for_replicas: 1\n", ("wait_for_replicas", "redis_cluster")),
        ("  redis_type: sentinel\n", ("redis_type", "redis_sentinel")),
    ],
)
def test_bad_sentinel_settings_name_the_key(tmp_path: Path, section: str, words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, section)
    for word in words:
        assert word in str(info.value)


def test_no_sentinel_answering_is_unavailable_at_once_naming_the_master() -> None:
    from datetime import timedelta

    from potluck.definitions.field import Field
    from potluck.types import Int64

    view = OnlineView("p", "v", ("k",), (Field(name="k", dtype=Int64),), (Field(name="x", dtype=Int64),), timedelta(0))
    hosts = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]  # nothing listens there
    config = RedisOnlineStoreConfig(
        type="redis", redis_type="redis_sentinel", sentinel_master="m", sentinel_hosts=hosts, failover_wait_seconds=0.3
    )
    store = RedisOnlineStore(config)
    request = [ReadRequest(view, [b"\x01"])]
    try:
        for call in (lambda: store.read(request), lambda: asyncio.run(store.read_async(request))):
            with pytest.raises(BackendUnavailableError) as info:
                call()
            assert "'m'" in str(info.value)
            assert hosts[0] in str(info.value)
        with pytest.raises(BackendUnavailableError):
            store.write(view, _rows())
    finally:
        store.close()


def _rows() -> Any:
    from datetime import UTC, datetime

    import pyarrow as pa

    stamp = pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    return pa.table({"k": [1], "x": [2], "event_timestamp": stamp, "created_timestamp": stamp})
