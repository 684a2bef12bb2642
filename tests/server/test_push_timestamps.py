"""POST /push over a real store: every RFC 3339 form and epoch seconds accepted, the rest a 422."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from potluck import Client, FeatureStore
from potluck.server import ServerSettings, create_app
from potluck.server.store_backend import StoreBackend
from push_support import build_push_repo, row
from tests_support import serve


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = FeatureStore(repo_path=build_push_repo(tmp_path_factory.mktemp("push")))
    store.apply()
    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client
    store.close()


def _push(http: httpx.Client, df: dict[str, Any]) -> httpx.Response:
    return http.post("/push", json={"push_source_name": "rider_live", "df": df, "to": "online_and_offline"})


def _read(http: httpx.Client, rider: int) -> tuple[Any, str]:
    reply = http.post(
        "/get-online-features", json={"features": ["rider_live:speed"], "entities": {"rider_id": [rider]}}
    )
    assert reply.status_code == 200, reply.text
    column = reply.json()["results"][1]
    return column["values"][0], column["event_timestamps"][0]


@pytest.mark.parametrize(
    ("rider", "stamp", "served"),
    [
        (1, "2026-11-01T00:00:00.5Z", "2026-11-01T00:00:00.500000Z"),
        (2, "2022-05-13 10:59:42+00:00", "2022-05-13T10:59:42Z"),
        (3, "2026-11-01", "2026-11-01T00:00:00Z"),
        (4, 1793491200, "2026-11-01T00:00:00Z"),
        (5, "2026-11-01T01:00:00+01:00", "2026-11-01T00:00:00Z"),
    ],
)
def test_rfc3339_forms_and_epoch_seconds_are_accepted(http: httpx.Client, rider: int, stamp: Any, served: str) -> None:
    reply = _push(http, row(rider_id=rider, event_timestamp=stamp))
    assert reply.status_code == 200, reply.text
    assert _read(http, rider) == (1.5, served)


@pytest.mark.parametrize(
    ("column", "value", "row_text"),
    [
        ("event_timestamp", "yesterday", "'yesterday'"),
        ("event_timestamp", "20000-01-01T00:00:00Z", "'20000-01-01T00:00:00Z'"),
        ("event_timestamp", 10**15, str(10**15)),
        ("rider_id", 2**70, str(2**70)),
        ("speed", True, "True"),
        ("active", 1, "1"),
        ("zone", {"a": 1}, "{'a': 1}"),
        ("zone", ["a"], "['a']"),
    ],
)
def test_bad_values_are_422_naming_column_and_row(http: httpx.Client, column: str, value: Any, row_text: str) -> None:
    df = row(rider_id=[10, 11], event_timestamp=["2026-11-01"] * 2, speed=[1.0, 2.0], trips=[1, 2],
             active=[True, False], zone=["a", "b"])  # fmt: skip
    df[column] = [df[column][0], value]
    reply = _push(http, df)
    assert reply.status_code == 422, reply.text
    message = reply.json()["error"]["message"]
    assert f"column '{column}' row 1: {row_text}" in message


def test_non_finite_floats_are_served_as_strings_and_decoded_by_the_client(http: httpx.Client) -> None:
    riders = [20, 21, 22, 23, 24]
    df = row(rider_id=riders, event_timestamp=["2026-11-01"] * 5, speed=["NaN", "Infinity", "-Infinity", None, 2.5],
             trips=[1] * 5, active=[True] * 5, zone=["a"] * 5)  # fmt: skip
    reply = _push(http, df)
    assert reply.status_code == 200, reply.text
    body = {"features": ["rider_live:speed"], "entities": {"rider_id": [*riders, 99]}}
    column = http.post("/get-online-features", json=body).json()["results"][1]
    assert column["values"] == ["NaN", "Infinity", "-Infinity", None, 2.5, None]
    assert column["statuses"] == ["PRESENT"] * 5 + ["NOT_FOUND"]
    with Client(str(http.base_url)) as client:
        speeds = client.get_online_features(["rider_live:speed"], {"rider_id": riders}).to_dict()["speed"]
    assert math.isnan(speeds[0])
    assert speeds[1:] == [math.inf, -math.inf, None, 2.5]


def test_online_body_writes_non_finite_floats_as_feast_does() -> None:
    import orjson

    from potluck.server.backend import OnlineResult
    from potluck.server.serialize import online_body

    values = [[1, 2], [math.nan, None], [[1.0, math.inf], None], ["NaN", "x"], [1e308, 1e308]]
    result = OnlineResult(["k", "f", "l", "s", "big"], values, [["PRESENT"] * 2] * 5, [[None, None]] * 5)
    served = [c["values"] for c in orjson.loads(online_body(result))["results"]]
    assert served == [[1, 2], ["NaN", None], [[1.0, "Infinity"], None], ["NaN", "x"], [1e308, 1e308]]


def test_float_arrays_take_non_finite_strings_and_name_the_bad_row(tmp_path: Path) -> None:
    from push_support import FEATURES_PY

    root = build_push_repo(tmp_path)
    features = FEATURES_PY.replace("Bool, Float64", "Array, Bool, Float64").replace(
        'Field(name="zone", dtype=String),',
        'Field(name="zone", dtype=String), Field(name="speeds", dtype=Array(Float64)),',
    )
    (root / "features.py").write_text(features)
    store = FeatureStore(repo_path=root)
    store.apply()
    app = create_app(StoreBackend(store), ServerSettings(auth="off"))
    riders = [30, 31, 32]
    speeds = [["NaN", 1.0], ["Infinity", None], None]
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        reply = _push(http, row(rider_id=riders, event_timestamp=["2026-11-01"] * 3, speed=[1.0] * 3, trips=[1] * 3,
                                active=[True] * 3, zone=["a"] * 3, speeds=speeds))  # fmt: skip
        assert reply.status_code == 200, reply.text
        body = {"features": ["rider_live:speeds"], "entities": {"rider_id": riders}}
        column = http.post("/get-online-features", json=body).json()["results"][1]
        assert column["values"] == [["NaN", 1.0], ["Infinity", None], None]
        assert column["statuses"] == ["PRESENT"] * 3
        with Client(url) as client:
            got = client.get_online_features(["rider_live:speeds"], {"rider_id": riders}).to_dict()["speeds"]
        assert math.isnan(got[0][0])
        assert got[0][1] == 1.0
        assert got[1:] == [[math.inf, None], None]

        bad = _push(http, row(speeds=[["nan"]]))
        assert bad.status_code == 422
        assert "column 'speeds' row 0" in bad.json()["error"]["message"]
        bad = _push(http, row(rider_id=[1, 2], event_timestamp=["2026-11-01"] * 2, speed=[1.0] * 2, trips=[1] * 2,
                              active=[True] * 2, zone=["a"] * 2, speeds=[[1.0], [True]]))  # fmt: skip
        assert bad.status_code == 422
        assert "column 'speeds' row 1" in bad.json()["error"]["message"]
    store.close()
