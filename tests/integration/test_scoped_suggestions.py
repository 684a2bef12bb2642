"""A credential scoped to some views is never told the names of the others (in not-found suggestions)."""

from __future__ import annotations

from pathlib import Path

import httpx
from integration_support import END, build_repo

from potluck import FeatureStore
from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables
from potluck.server.store_backend import StoreBackend
from tests_support import serve


def test_not_found_suggestions_are_scoped(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=build_repo(tmp_path / "repo", "sqlite"))
    store.apply()
    tables = ServerTables(store.config.registry_url, store.project)
    keys = ApiKeyStore(tables, AuditLog(tables), cache_seconds=0)
    scoped = keys.create("admin", "test", scopes=["feature_view:driver_live"])[1]
    unscoped = keys.create("admin", "test")[1]
    app = create_app(StoreBackend(store), ServerSettings(auth="on"), keys=keys)
    calls = [
        ("/get-online-features", {"features": ["driver_stat:trips"], "entities": {"driver_id": [1]}}),
        ("/get-online-features", {"feature_service": "driver_servic", "entities": {"driver_id": [1]}}),
        ("/push", {"push_source_name": "driver_liv", "df": {"driver_id": [1], "event_timestamp": [END.isoformat()]}}),
        ("/materialize-incremental", {"end_ts": END.isoformat(), "feature_views": ["driver_stat"]}),
    ]
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:

            def message(path: str, body: object, key: str) -> str:
                r = http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 404, (path, r.text)
                return str(r.json()["error"]["message"])

            for path, body in calls:
                seen = message(path, body, scoped)
                assert "driver_stats" not in seen, seen
                assert "driver_service" not in seen, seen
            assert "'driver_stats'" in message(*calls[0], unscoped)
            assert "'driver_service'" in message(*calls[1], unscoped)
            assert "Did you mean 'driver_live'?" in message(*calls[2], scoped)
    finally:
        tables.close()
        store.teardown()
        store.close()
