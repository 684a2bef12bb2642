"""The remote online store maps a feature server's failures to Potluck's errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from potluck.definitions.errors import BackendUnavailableError, NotFoundError, RetrievalError
from potluck.definitions.field import Field
from potluck.online.protocol import OnlineView, ReadRequest
from potluck.online.remote import RemoteOnlineStore, RemoteOnlineStoreConfig
from potluck.types import Int64
from remote_support import build_contract_repo, serve_repo
from tests_support import free_port


def _view(name: str) -> OnlineView:
    from datetime import timedelta

    key = (Field(name="user_id", dtype=Int64),)
    return OnlineView("contract", name, ("user_id",), key, (Field(name="v", dtype=Int64),), timedelta(0))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = build_contract_repo(tmp_path_factory.mktemp("remote-errors"))
    with serve_repo(root) as served:
        yield served


def test_an_unreachable_server_is_backend_unavailable() -> None:
    store = RemoteOnlineStore(RemoteOnlineStoreConfig(type="remote", path=f"http://127.0.0.1:{free_port()}"))
    view = _view("users")
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        store.read([ReadRequest(view, [view.key_encoder.encode((1,))])])
    store.close()


def test_a_view_the_server_lacks_is_not_found(url: str) -> None:
    store = RemoteOnlineStore(RemoteOnlineStoreConfig(type="remote", path=url))
    view = _view("nowhere")
    with pytest.raises(NotFoundError, match="feature view 'nowhere'"):
        store.read([ReadRequest(view, [view.key_encoder.encode((1,))])])
    store.close()


def test_rows_the_server_refuses_are_retrieval_errors(url: str) -> None:
    import pyarrow as pa

    store = RemoteOnlineStore(RemoteOnlineStoreConfig(type="remote", path=url))
    view = OnlineView("contract", "users", ("user_id",), (Field(name="user_id", dtype=Int64),), (), _view("x").ttl)
    rows = pa.table({"user_id": [1], "event_timestamp": pa.array([0], pa.timestamp("s", tz="UTC"))})
    with pytest.raises(RetrievalError, match="'v'"):
        store.write(view, rows.append_column("v", pa.array(["not a number"])))
    store.close()


def test_large_writes_are_split_to_the_servers_limits(url: str) -> None:
    import pyarrow as pa

    store = RemoteOnlineStore(RemoteOnlineStoreConfig(type="remote", path=url, write_batch_size=100_000))
    view = _view("large_batch")
    n = 30_000  # over the server's 10000 rows and 1 MiB per request
    rows = pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "v": pa.array(range(n), pa.int64()),
            "event_timestamp": pa.array([1] * n, pa.timestamp("s", tz="UTC")),
        }
    )
    assert store.write(view, rows) == n
    (result,) = store.read([ReadRequest(view, [view.key_encoder.encode((i,)) for i in (0, n - 1)])])
    assert result.rows == [[0], [n - 1]]
    store.close()
