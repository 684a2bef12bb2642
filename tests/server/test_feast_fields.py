"""Every field of Feast's request bodies is accepted (used, or accepted with no effect); unknown ones are not."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import Running

ONLINE = "/get-online-features"


def _ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_feature_view_metadata_only_when_asked(running: Running) -> None:
    body = {"features": ["driver_stats:trips", "driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    plain = _ok(running.post(ONLINE, {**body, "include_feature_view_version_metadata": False}, running.keys.reader))
    assert plain["metadata"] == {"feature_names": ["driver_id", "trips", "conv_rate"]}
    asked = _ok(running.post(ONLINE, {**body, "include_feature_view_version_metadata": True}, running.keys.reader))
    assert asked["metadata"] == {
        "feature_names": ["driver_id", "trips", "conv_rate"],
        "feature_view_metadata": [{"name": "driver_stats"}],
    }
    assert asked["results"] == plain["results"]


@pytest.mark.parametrize("to", ["online", "ONLINE", "online_and_offline", "ONLINE_AND_OFFLINE"])
def test_push_takes_feast_fields_and_both_spellings_of_to(running: Running, to: str) -> None:
    body = {
        "push_source_name": "driver_push",
        "df": {"driver_id": [1001], "trips": [4]},
        "to": to,
        "allow_registry_cache": False,
        "transform_on_write": False,
    }
    assert _ok(running.post("/push", body, running.keys.writer)) == {"status": "ok", "rows": 1}


def test_write_to_online_store_takes_feasts_body(running: Running) -> None:
    body = {
        "feature_view_name": "driver_stats",
        "df": {"driver_id": [1003], "conv_rate": [0.25], "trips": [9]},
        "allow_registry_cache": False,
        "transform_on_write": True,
    }
    assert _ok(running.post("/write-to-online-store", body, running.keys.writer)) == {"status": "ok", "rows": 1}
    read = _ok(
        running.post(
            ONLINE, {"features": ["driver_stats:trips"], "entities": {"driver_id": [1003]}}, running.keys.reader
        )
    )
    assert read["results"][1]["values"] == [9]


def test_write_to_online_store_needs_the_writer_role_and_a_known_view(running: Running) -> None:
    body = {"feature_view_name": "driver_stats", "df": {"driver_id": [1]}}
    r = running.post("/write-to-online-store", body, running.keys.reader)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "role 'writer' required for POST /write-to-online-store"
    r = running.post("/write-to-online-store", {**body, "feature_view_name": "nope"}, running.keys.writer)
    assert r.status_code == 404
    assert "nope" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/materialize",
            {
                "start_ts": "2024-01-01T00:00:00",
                "end_ts": "2024-01-02T00:00:00",
                "feature_views": None,
                "disable_event_timestamp": False,
                "full_feature_names": True,
                "version": "latest",
            },
        ),
        ("/materialize", {"start_ts": None, "end_ts": None, "disable_event_timestamp": True}),
        (
            "/materialize-incremental",
            {"end_ts": "2024-01-02T00:00:00", "feature_views": None, "full_feature_names": True},
        ),
    ],
)
def test_materialize_takes_what_feasts_client_sends(running: Running, path: str, body: dict[str, Any]) -> None:
    assert _ok(running.post(path, body, running.keys.admin)) == {"status": "ok", "feature_views": None}


def test_disable_event_timestamp_materializes_everything_up_to_now(running: Running) -> None:
    running.backend.materialized.clear()
    _ok(
        running.post(
            "/materialize", {"disable_event_timestamp": True, "feature_views": ["driver_stats"]}, running.keys.admin
        )
    )
    ((kind, start, end, views),) = running.backend.materialized
    assert (kind, start.isoformat(), views) == ("full", "1970-01-01T00:00:00+00:00", ["driver_stats"])
    assert end.year >= 2025


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/write-to-online-store",
            {"feature_view_name": "driver_stats", "df": {"driver_id": [1]}, "bogus": 1},
            "bogus",
        ),
        ("/push", {"push_source_name": "driver_push", "df": {"driver_id": [1]}, "mode": "online"}, "mode"),
        ("/materialize", {"disable_event_timestamp": True, "force": True}, "force"),
        ("/materialize", {"start_ts": "2024-01-01T00:00:00"}, "(body)"),
        ("/materialize", {"disable_event_timestamp": True, "version": "v2"}, "version"),
        ("/push", {"push_source_name": "driver_push", "df": {"driver_id": [1]}, "to": "both"}, "to"),
    ],
)
def test_unknown_fields_and_values_are_422_naming_them(
    running: Running, path: str, body: dict[str, Any], field: str
) -> None:
    r = running.post(path, body, running.keys.admin)
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]]


def test_write_to_online_store_checks_scopes_as_push_does(running: Running) -> None:
    body = {"feature_view_name": "merchant", "df": {"merchant_id": ["m9"], "rating": [1.0]}}
    r = running.post("/write-to-online-store", body, running.keys.scoped_tag)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "key not allowed to write feature view 'merchant'"
    body = {"feature_view_name": "driver_stats", "df": {"driver_id": [1004], "trips": [1]}}
    assert _ok(running.post("/write-to-online-store", body, running.keys.scoped_tag))["rows"] == 1
