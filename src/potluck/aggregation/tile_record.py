"""The stored form of one entity's tile record (docs/semantics.md, "Online tiles").

A record holds encoded partial aggregates (`potluck.aggregation.partials`), kept as bytes in
memory too: a read decodes only the tiles its windows need, and a write re-encodes only the
tiles it changed. Layout (little endian), after a version byte:

    written        q     the time of the last write (microseconds)
    columns        H n, then n x (H len, utf-8)     names the partials below refer to by index
    marks          I n, then n x (H len, utf-8, q applied-at)
    base           H n, then n x (H column, I len, partial)
    hops           H n, then n x (q hop, I tiles, then tiles x (q index, slot))
    pending        I n, then n x (q event time, slot)
    slot           H n, then n x (H column, I len, partial)

`pending` holds events that were in the future when written (one single-event partial per column);
they join their tiles once a write happens after their time, and reads at t count those <= t.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

VERSION = 2
_B = struct.Struct("<B")
_H = struct.Struct("<H")
_I = struct.Struct("<I")
_Q = struct.Struct("<q")

# column -> encoded partial
Slot = dict[str, bytes]


class TileRecordError(ValueError):
    """Stored bytes that are not a tile record this version reads."""


@dataclass
class TileRecord:
    written: int = 0
    marks: dict[str, int] = field(default_factory=dict)
    base: Slot = field(default_factory=dict)
    tiles: dict[int, dict[int, Slot]] = field(default_factory=dict)  # hop -> tile index -> slot
    pending: list[tuple[int, Slot]] = field(default_factory=list)


def encode(record: TileRecord) -> bytes:
    names: dict[str, int] = {}

    def col(name: str) -> int:
        return names.setdefault(name, len(names))

    body = bytearray()

    def slot(s: Slot) -> None:
        body.extend(_H.pack(len(s)))
        for name, blob in s.items():
            body.extend(_H.pack(col(name)) + _I.pack(len(blob)))
            body.extend(blob)

    body.extend(_I.pack(len(record.marks)))
    for mark, at in record.marks.items():
        raw = mark.encode("utf-8")
        body.extend(_H.pack(len(raw)) + raw + _Q.pack(at))
    slot(record.base)
    body.extend(_H.pack(len(record.tiles)))
    for hop, tiles in record.tiles.items():
        body.extend(_Q.pack(hop) + _I.pack(len(tiles)))
        for k, s in tiles.items():
            body.extend(_Q.pack(k))
            slot(s)
    body.extend(_I.pack(len(record.pending)))
    for ts, s in record.pending:
        body.extend(_Q.pack(ts))
        slot(s)
    head = bytearray(_B.pack(VERSION) + _Q.pack(record.written) + _H.pack(len(names)))
    for name in names:
        raw = name.encode("utf-8")
        head.extend(_H.pack(len(raw)) + raw)
    return bytes(head + body)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, s: struct.Struct) -> int:
        (value,) = s.unpack_from(self.data, self.pos)
        self.pos += s.size
        return int(value)

    def raw(self, size: int) -> bytes:
        out = self.data[self.pos : self.pos + size]
        if len(out) != size:
            raise TileRecordError("truncated tile record")
        self.pos += size
        return out

    def text(self) -> str:
        return self.raw(self.take(_H)).decode("utf-8")


def decode(blob: bytes | None) -> TileRecord:
    """The record stored as `blob` (an empty record for None)."""
    if blob is None:
        return TileRecord()
    r = _Reader(blob)
    try:
        version = r.take(_B)
        if version != VERSION:
            raise TileRecordError(
                f"tile record version {version} is not known (this version reads {VERSION}); "
                "run `potluck materialize` for the view to rebuild its tiles"
            )
        record = TileRecord(written=r.take(_Q))
        names = [r.text() for _ in range(r.take(_H))]

        def slot() -> Slot:
            out: Slot = {}
            for _ in range(r.take(_H)):
                name = names[r.take(_H)]
                out[name] = r.raw(r.take(_I))
            return out

        for _ in range(r.take(_I)):
            mark = r.text()
            record.marks[mark] = r.take(_Q)
        record.base = slot()
        for _ in range(r.take(_H)):
            hop = r.take(_Q)
            record.tiles[hop] = {r.take(_Q): slot() for _ in range(r.take(_I))}
        for _ in range(r.take(_I)):
            ts = r.take(_Q)
            record.pending.append((ts, slot()))
        if r.pos != len(blob):
            raise TileRecordError("trailing bytes after a tile record")
    except (struct.error, IndexError, UnicodeDecodeError) as err:
        raise TileRecordError(f"malformed tile record ({err})") from None
    return record
