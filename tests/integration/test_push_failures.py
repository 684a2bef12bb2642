"""A push to online and offline with the online store down leaves nothing behind, offline included."""

from __future__ import annotations

from pathlib import Path

import pytest

from potluck import FeatureStore
from potluck.definitions.errors import BackendUnavailableError
from push_support import build_push_repo, row
from tests_support import free_port, start_redis_server


@pytest.mark.redis
def test_a_failed_online_write_appends_no_offline_file(tmp_path: Path) -> None:
    port = free_port()
    redis = start_redis_server(port, tmp_path)
    yaml = f"online_store:\n  type: redis\n  connection_string: 127.0.0.1:{port},socket_connect_timeout=1\n"
    store = FeatureStore(repo_path=build_push_repo(tmp_path / "repo", yaml))
    live = tmp_path / "repo" / "data" / "live"
    try:
        store.apply()
        redis.kill()
        redis.wait()
        for _ in range(3):
            with pytest.raises(BackendUnavailableError):
                store.push("rider_live", row(), to="online_and_offline")
        assert list(live.iterdir()) == []
        redis = start_redis_server(port, tmp_path)
        assert store.push("rider_live", row(), to="online_and_offline") == 1
        assert len(list(live.iterdir())) == 1
        assert store.get_online_features(["rider_live:speed"], {"rider_id": [7]}).to_dict()["speed"] == [1.5]
    finally:
        store.close()
        redis.kill()
        redis.wait()
