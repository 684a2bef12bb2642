"""`potluck.client.Client` against the real server."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from server_support import Running, free_port

from potluck.client import (
    AuthenticationFailed,
    Client,
    FeatureServerError,
    InvalidRequest,
    OnlineResponse,
    PermissionDenied,
    ServiceUnavailable,
)
from potluck.definitions.errors import BackendUnavailableError, PotluckError


def test_rows_and_columns_give_the_same_answer(running: Running) -> None:
    with Client(running.url, api_key=running.keys.reader) as client:
        by_rows = client.get_online_features(
            features=["driver_stats:conv_rate", "driver_stats:trips"],
            entity_rows=[{"driver_id": 1001}, {"driver_id": 404}],
        )
        by_cols = client.get_online_features(
            features=["driver_stats:conv_rate", "driver_stats:trips"], entities={"driver_id": [1001, 404]}
        )
    assert isinstance(by_rows, OnlineResponse)
    assert (
        by_rows.to_dict()
        == by_cols.to_dict()
        == {
            "driver_id": [1001, 404],
            "conv_rate": [0.5, None],
            "trips": [10, None],
        }
    )
    assert by_rows.statuses()["trips"] == ["PRESENT", "NOT_FOUND"]
    with_ts = by_rows.to_dict(include_event_timestamps=True)
    assert with_ts["trips__ts"] == [1704067200, 0]  # seconds since the epoch, as Feast's to_dict
    assert list(by_rows.to_df().columns) == ["driver_id", "conv_rate", "trips"]


def test_feature_service(running: Running) -> None:
    with Client(running.url, api_key=running.keys.reader) as client:
        out = client.get_online_features(
            feature_service="driver_service", entity_rows=[{"driver_id": 1002}], full_feature_names=True
        ).to_dict()
    assert out == {"driver_id": [1002], "driver_stats__conv_rate": [0.7], "driver_stats__trips": [3]}


def test_push_dataframe_and_dict(running: Running) -> None:
    df = pd.DataFrame(
        {
            "driver_id": [5001, 5002],
            "conv_rate": [0.1, float("nan")],
            "trips": [7, 8],
            "event_timestamp": pd.to_datetime(["2024-03-01T00:00:00Z", "2024-03-01T01:00:00Z"]),
        }
    )
    with Client(running.url, api_key=running.keys.writer) as client:
        assert client.push("driver_push", df) == 2
        assert client.push("driver_push", {"driver_id": [5003], "trips": [1]}, to="online_and_offline") == 1
        out = client.get_online_features(
            features=["driver_stats:conv_rate"], entities={"driver_id": [5001, 5002, 5003]}
        )
    assert out.to_dict()["conv_rate"] == [0.1, None, None]


def test_materialize_needs_admin(running: Running) -> None:
    with Client(running.url, api_key=running.keys.admin) as admin:
        admin.materialize(date(2024, 1, 1), date(2024, 1, 2), ["merchant"])
        admin.materialize_incremental(date(2024, 1, 3))
    with Client(running.url, api_key=running.keys.reader) as reader, pytest.raises(PermissionDenied) as info:
        reader.materialize_incremental(date(2024, 1, 3))
    assert info.value.status == 403
    assert info.value.code == "forbidden"
    assert "role 'admin' required" in info.value.message


def test_errors_carry_code_and_message(fresh: Running) -> None:
    with Client(fresh.url, api_key="pk_bad_key") as bad, pytest.raises(AuthenticationFailed) as auth:
        bad.get_online_features(features=["driver_stats:trips"], entity_rows=[{"driver_id": 1}])
    assert auth.value.code == "unauthenticated"
    assert isinstance(auth.value, PotluckError)
    with Client(fresh.url, api_key=fresh.keys.reader) as client:
        with pytest.raises(InvalidRequest) as missing:
            client.get_online_features(features=["driver_stats:nope"], entity_rows=[{"driver_id": 1}])
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        with pytest.raises(InvalidRequest) as too_many:
            client.get_online_features(features=["driver_stats:trips"], entities={"driver_id": list(range(51))})
        assert too_many.value.status == 413
        fresh.backend.fail_with = BackendUnavailableError("down")
        with pytest.raises(ServiceUnavailable) as down:
            client.get_online_features(features=["driver_stats:trips"], entity_rows=[{"driver_id": 1}])
        assert down.value.retryable
        fresh.backend.fail_with = None
        assert client.health()
    with pytest.raises(ValueError, match="exactly one"):
        Client(fresh.url).get_online_features(entity_rows=[])


def test_unreachable_server() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2) as client, pytest.raises(ServiceUnavailable) as info:
        client.get_online_features(features=["a:b"], entity_rows=[{"id": 1}])
    assert info.value.code == "unreachable"
    assert isinstance(info.value, FeatureServerError)
