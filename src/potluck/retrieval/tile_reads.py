"""Online reads that mix feature rows and tiles: one store call for the rows of plain views, one
for the tile records of aggregation views (every window of every view at once), finalized at t."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from potluck.aggregation.online_tiles import read_many, seen
from potluck.online.protocol import OnlineStore, ReadRequest, ReadResult, TileRecord


def _split(requests: Sequence[ReadRequest]) -> tuple[list[int], list[int]]:
    plain = [i for i, r in enumerate(requests) if r.view.tiles is None]
    tiled = [i for i, r in enumerate(requests) if r.view.tiles is not None]
    return plain, tiled


def _finalize(req: ReadRequest, records: list[TileRecord | None], now_us: int) -> ReadResult:
    spec = req.view.tiles
    assert spec is not None
    live = [i for i, r in enumerate(records) if r is not None and seen(spec, r.blob, now_us)]
    rows: list[list[Any] | None] = [None] * len(records)
    stamps: list[int | None] = [None] * len(records)
    values = read_many(spec, [records[i].blob for i in live], now_us)  # type: ignore[union-attr]
    for i, row in zip(live, values, strict=True):
        rows[i] = row
        stamps[i] = now_us  # the values are as of the read time
    return ReadResult(rows, stamps)


def _merge(
    requests: Sequence[ReadRequest],
    plain: list[int],
    tiled: list[int],
    rows: list[ReadResult],
    records: list[list[TileRecord | None]],
    now_us: int,
) -> list[ReadResult]:
    out: list[ReadResult | None] = [None] * len(requests)
    for i, result in zip(plain, rows, strict=True):
        out[i] = result
    for i, recs in zip(tiled, records, strict=True):
        out[i] = _finalize(requests[i], recs, now_us)
    return [r for r in out if r is not None]


def read_all(store: OnlineStore, requests: Sequence[ReadRequest], now_us: int) -> list[ReadResult]:
    plain, tiled = _split(requests)
    if not tiled:
        return store.read(requests)
    from potluck.streaming.tile_feed import tiles_of

    rows = store.read([requests[i] for i in plain]) if plain else []
    records = tiles_of(store, requests[tiled[0]].view).read_tiles([requests[i] for i in tiled])
    return _merge(requests, plain, tiled, rows, records, now_us)


async def read_all_async(store: OnlineStore, requests: Sequence[ReadRequest], now_us: int) -> list[ReadResult]:
    plain, tiled = _split(requests)
    read_async = getattr(store, "read_async", None)
    if not tiled:
        return await read_async(requests) if read_async is not None else store.read(requests)
    from potluck.streaming.tile_feed import tiles_of

    tiles = tiles_of(store, requests[tiled[0]].view)
    tile_requests = [requests[i] for i in tiled]
    if read_async is None:
        return read_all(store, requests, now_us)
    rows = await read_async([requests[i] for i in plain]) if plain else []
    records = await asyncio.to_thread(tiles.read_tiles, tile_requests)
    return _merge(requests, plain, tiled, rows, records, now_us)
