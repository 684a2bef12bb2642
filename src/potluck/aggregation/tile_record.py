"""The stored form of one entity's tile record (docs/semantics.md, "Online tiles").

A record keeps, per hop and aggregated column, a *block*: that column's tiles of that hop as one
array of fixed-size rows sorted by tile index, so a read maps the bytes into numpy arrays without
a Python object per tile (`potluck.aggregation.tile_columns` merges them), and a write re-encodes
only the blocks it changed. Blocks whose partials are all floats (or all 64-bit integers) use the
numeric row layout `ROW_FLOAT` (`ROW_INT`); any other block (text, bytes, booleans, times, sums
beyond 64 bits, mixed types) keeps each tile's encoded partial (`potluck.aggregation.partials`).

Layout (little endian), after a version byte:

    written        q     the time of the last write (microseconds)
    columns        H n, then n x (H len, utf-8)     names the blocks and slots below refer to by index
    hops           H n, then n x (q hop, H blocks, then blocks x block)
    block          H column, B kind, I rows, then rows x ROW_FLOAT / ROW_INT (kind 1 / 2) or
                   rows x (q index, I len, partial) (kind 0)
    base           slot
    pending        I n, then n x (q event time, slot)
    marks          I n, then n x (H len, utf-8, q applied-at)
    offsets        I n, then n x (H len, utf-8 partition, q offset)     (version 4 only)
    slot           H n, then n x (H column, I len, partial)

`pending` holds events that were in the future when written (one single-event partial per column);
they join their tiles once a write happens after their time, and reads at t count those <= t.
`offsets` holds, per stream partition, the highest offset whose event the record took (exactly-once
stream updates); unlike the marks they never expire. Version 3 records (no offsets) are read as
holding none, and written back as version 4. Version 2 records (one encoded partial per tile) are
not read: `potluck materialize` rebuilds them.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from potluck.aggregation.partials import LastKey, Partial, PartialDecodeError
from potluck.aggregation.partials import decode as decode_partial
from potluck.aggregation.partials import encode as encode_partial

VERSION = 4
READABLE = (3, 4)  # versions this code decodes
_B = struct.Struct("<B")
_H = struct.Struct("<H")
_I = struct.Struct("<I")
_Q = struct.Struct("<q")
_HBI = struct.Struct("<HBI")
_QI = struct.Struct("<qI")
_HI = struct.Struct("<HI")
_QH = struct.Struct("<qH")
_BQH = struct.Struct("<BqH")

_LAST = [("ev", "<i8"), ("cr", "<i8"), ("flag", "u1"), ("arr", "<i8")]  # flag: 1 no created time, 2 with one
ROW_FLOAT = np.dtype(
    [("k", "<i8"), ("count", "<i8"), ("total", "<f8"), ("mean", "<f8"), ("m2", "<f8"),
     ("min", "<f8"), ("max", "<f8"), ("last", "<f8"), *_LAST]
)  # fmt: skip
ROW_INT = np.dtype(
    [("k", "<i8"), ("count", "<i8"), ("total", "<i8"), ("mean", "<f8"), ("m2", "<f8"),
     ("min", "<i8"), ("max", "<i8"), ("last", "<i8"), *_LAST]
)  # fmt: skip
GENERIC, FLOAT, INT = 0, 1, 2
_DTYPES = {FLOAT: ROW_FLOAT, INT: ROW_INT}
_I64 = (-(2**63), 2**63)
# The same rows as `struct` formats (packed, like the dtypes), for the few rows a write touches.
_ROW_OF = {FLOAT: struct.Struct("<qqddddddqqBq"), INT: struct.Struct("<qqqddqqqqqBq")}
_KEY_OF = {kind: struct.Struct(f"<q{row.size - 8}x") for kind, row in _ROW_OF.items()}
assert all(row.size == _DTYPES[kind].itemsize for kind, row in _ROW_OF.items())


class TileRecordError(ValueError):
    """Stored bytes that are not a tile record this version reads."""


def _kind(p: Partial) -> int:
    total, lo, hi, last = p.total, p.min, p.max, p.last
    if type(total) is float and type(lo) is float and type(hi) is float and type(last) is float:
        return FLOAT
    if all(type(v) is int and _I64[0] <= v < _I64[1] for v in (total, lo, hi, last)):
        return INT
    return GENERIC


def _row(k: int, p: Partial) -> tuple[Any, ...]:
    key = p.last_key
    assert key is not None
    flag = 1 if key.created_ts is None else 2
    return (
        k,
        p.count,
        p.total,
        p.mean,
        p.m2,
        p.min,
        p.max,
        p.last,
        key.event_ts,
        key.created_ts or 0,
        flag,
        key.arrival,
    )


def partial_of_row(row: tuple[Any, ...]) -> Partial:
    """The partial of one numeric row (`row` as `ndarray.item()` or `tolist()` gives it)."""
    _, count, total, mean, m2, lo, hi, last, ev, cr, flag, arrival = row
    return Partial(count, total, mean, m2, lo, hi, last, LastKey(ev, None if flag == 1 else cr, arrival))


class Block:
    """One column's tiles of one hop: numeric rows (kind FLOAT / INT), or partials (GENERIC).

    A numeric block is kept as its stored bytes (`raw`, rows sorted by tile index) and only the
    rows a write reads or changes are unpacked: a write splices its new rows between slices of the
    old bytes when the block is encoded (one `struct` pack per changed tile, no numpy on these
    small arrays). Writes go to `updates` until then."""

    __slots__ = ("_keys", "items", "kind", "raw", "updates")

    def __init__(self, kind: int = GENERIC, raw: bytes | None = None, items: dict[int, Partial] | None = None):
        self.kind = kind
        self.raw = raw  # numeric rows as stored (kind FLOAT / INT)
        self.items = items  # tile -> partial (kind GENERIC)
        self.updates: dict[int, Partial] = {}
        self._keys: list[int] | None = None  # the tile indexes of `raw`, once needed

    @staticmethod
    def of(partials: dict[int, Partial]) -> Block:
        block = Block(kind=GENERIC, items={})
        for k, p in partials.items():
            block.put(k, p)
        return block

    def keys(self) -> list[int]:
        """The tile indexes of the stored rows (numeric blocks), ascending."""
        keys = self._keys
        if keys is None:
            keys = self._keys = [k for (k,) in _KEY_OF[self.kind].iter_unpack(self.raw)] if self.raw else []
        return keys

    def partials(self) -> dict[int, Partial]:
        """Every tile, by index (ascending)."""
        out: dict[int, Partial] = {}
        if self.raw is not None:
            out = {row[0]: partial_of_row(row) for row in _ROW_OF[self.kind].iter_unpack(self.raw)}
        elif self.items is not None:
            out = dict(self.items)
        out.update(self.updates)
        return dict(sorted(out.items()))

    def __len__(self) -> int:
        self._settle()
        return len(self.raw) // _ROW_OF[self.kind].size if self.raw is not None else len(self.items or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Block) and self.partials() == other.partials()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Block({self.partials()!r})"

    def get(self, k: int) -> Partial | None:
        p = self.updates.get(k)
        if p is not None:
            return p
        if self.raw is not None:
            keys = self.keys()
            i = bisect_left(keys, k)
            if i < len(keys) and keys[i] == k:
                row = _ROW_OF[self.kind]
                return partial_of_row(row.unpack_from(self.raw, i * row.size))
            return None
        return None if self.items is None else self.items.get(k)

    def put(self, k: int, p: Partial) -> None:
        if p.count:
            self.updates[k] = p

    def drop_before(self, first: int) -> list[Partial]:
        """Drop the tiles before `first`; returns them."""
        dropped: dict[int, Partial] = {}
        if self.raw is not None:
            keys = self.keys()
            if keys and keys[0] < first:
                end = bisect_left(keys, first)
                row = _ROW_OF[self.kind]
                dropped = {r[0]: partial_of_row(r) for r in row.iter_unpack(self.raw[: end * row.size])}
                self.raw, self._keys = self.raw[end * row.size :], keys[end:]
        elif self.items and min(self.items) < first:
            dropped = {k: p for k, p in self.items.items() if k < first}
            self.items = {k: p for k, p in self.items.items() if k >= first}
        if self.updates and min(self.updates) < first:
            dropped.update((k, p) for k, p in self.updates.items() if k < first)  # an update replaces its tile
            self.updates = {k: p for k, p in self.updates.items() if k >= first}
        return list(dropped.values())

    def _settle(self) -> None:
        """Fold the updates into the rows (or items), choosing the layout the partials allow."""
        if not self.updates:
            return
        if len(self.updates) == 1:
            kinds = {_kind(next(iter(self.updates.values())))}
        else:
            kinds = {_kind(p) for p in self.updates.values()}
        if self.raw:
            kinds.add(self.kind)
        elif self.items:
            kinds.add(GENERIC)
        if len(kinds) == 1 and GENERIC not in kinds:
            kind = kinds.pop()
            if not self.raw:
                self.raw, self._keys = b"", []
            self.kind, self.items = kind, None
            self._splice()
        else:
            self.kind, self.raw, self.items, self._keys = GENERIC, None, self.partials(), None
        self.updates = {}

    def _splice(self) -> None:
        """The stored rows with the updates' rows put in place (replacing or inserted in order)."""
        row = _ROW_OF[self.kind]
        size, pack = row.size, row.pack
        raw, keys = self.raw or b"", self.keys()
        pieces: list[bytes] = []
        new_keys: list[int] = []
        at = 0  # the next old row to copy
        for k in sorted(self.updates):
            i = bisect_left(keys, k, at)
            if i > at:
                pieces.append(raw[at * size : i * size])
                new_keys += keys[at:i]
            pieces.append(pack(*_row(k, self.updates[k])))
            new_keys.append(k)
            at = i + 1 if i < len(keys) and keys[i] == k else i
        if at < len(keys):
            pieces.append(raw[at * size :])
            new_keys += keys[at:]
        self.raw, self._keys = b"".join(pieces), new_keys

    def encode(self, out: bytearray, column: int) -> None:
        self._settle()
        if self.raw is not None:
            out += _HBI.pack(column, self.kind, len(self.raw) // _ROW_OF[self.kind].size)
            out += self.raw
            return
        items = self.items or {}
        out += _HBI.pack(column, GENERIC, len(items))
        for k, p in items.items():
            blob = encode_partial(p)
            out += _QI.pack(k, len(blob))
            out += blob


Slot = dict[str, Partial]  # column -> partial


@dataclass
class TileRecord:
    written: int = 0
    marks: dict[str, int] = field(default_factory=dict)
    base: Slot = field(default_factory=dict)
    tiles: dict[int, dict[str, Block]] = field(default_factory=dict)  # hop -> column -> block
    pending: list[tuple[int, Slot]] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)  # stream partition -> highest offset taken

    def block(self, hop: int, column: str) -> Block:
        cols = self.tiles.setdefault(hop, {})
        found = cols.get(column)
        if found is None:
            found = cols[column] = Block()
        return found

    def expanded(self) -> dict[int, dict[int, Slot]]:
        """hop -> tile index -> column -> partial (for inspection)."""
        out: dict[int, dict[int, Slot]] = {}
        for hop, cols in self.tiles.items():
            tiles: dict[int, Slot] = {}
            for col, block in cols.items():
                for k, p in block.partials().items():
                    tiles.setdefault(k, {})[col] = p
            out[hop] = dict(sorted(tiles.items()))
        return out


def encode(record: TileRecord) -> bytes:
    names: dict[str, int] = {}
    body = bytearray()
    hops = []
    for hop, cols in record.tiles.items():
        kept = [(c, b) for c, b in cols.items() if len(b)]
        if kept:
            hops.append((hop, kept))
    body += _H.pack(len(hops))
    for hop, kept in hops:
        body += _QH.pack(hop, len(kept))
        for name, block in kept:
            c = names.get(name)
            if c is None:
                c = names[name] = len(names)
            block.encode(body, c)
    _encode_slot(body, record.base, names)
    body += _I.pack(len(record.pending))
    for ts, s in record.pending:
        body += _Q.pack(ts)
        _encode_slot(body, s, names)
    for texts in (record.marks, record.offsets):  # each: I n, then n x (H len, utf-8, q)
        body += _I.pack(len(texts))
        for text, value in texts.items():
            raw = text.encode("utf-8")
            body += _H.pack(len(raw))
            body += raw
            body += _Q.pack(value)
    out = bytearray(_BQH.pack(VERSION, record.written, len(names)))
    for name in names:
        raw = name.encode("utf-8")
        out += _H.pack(len(raw))
        out += raw
    out += body
    return bytes(out)


def _encode_slot(body: bytearray, s: Slot, names: dict[str, int]) -> None:
    body += _H.pack(len(s))
    for name, p in s.items():
        c = names.get(name)
        if c is None:
            c = names[name] = len(names)
        blob = encode_partial(p)
        body += _HI.pack(c, len(blob))
        body += blob


# ---------------------------------------------------------------- decoding


# What a read needs of a record: the write time, each hop's blocks (rows, or generic tile -> partial),
# the lifetime base and the future events; the marks are skipped.
class Rows:
    """A numeric block as stored: its row layout, its bytes and how many rows they hold."""

    __slots__ = ("count", "data", "dtype")

    def __init__(self, dtype: np.dtype[Any], data: bytes | memoryview, count: int) -> None:
        self.dtype, self.data, self.count = dtype, data, count

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=self.dtype, count=self.count)


Blocks = dict[int, dict[str, "Rows | dict[int, Partial]"]]


@dataclass
class RecordView:
    written: int
    tiles: Blocks
    base: Slot
    pending: list[tuple[int, Slot]]
    end: int  # where the marks start


def written_at(blob: bytes) -> int:
    """The time of the record's last write, without decoding the rest."""
    _check_version(blob)
    return int(_Q.unpack_from(blob, 1)[0])


def _check_version(blob: bytes) -> None:
    version = blob[0] if blob else None
    if version not in READABLE:
        raise TileRecordError(
            f"tile record version {version} is not known (this version reads {', '.join(map(str, READABLE))}); "
            "run `potluck materialize` for the view to rebuild its tiles"
        )


def view(blob: bytes) -> RecordView:
    """The parts of a record a read needs (numeric blocks as read-only arrays over `blob`)."""
    _check_version(blob)
    parts: RecordView = _checked(_view, blob, memoryview(blob))  # numeric blocks: views into the record
    return parts


def _checked(parse: Any, blob: bytes, *args: Any) -> Any:
    try:
        return parse(blob, *args)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, PartialDecodeError) as err:
        if isinstance(err, TileRecordError):
            raise
        raise TileRecordError(f"malformed tile record ({err})") from None


def _text(data: bytes, pos: int) -> tuple[str, int]:
    (size,) = _H.unpack_from(data, pos)
    pos += 2
    end = pos + size
    if end > len(data):
        raise TileRecordError("truncated tile record")
    return data[pos:end].decode("utf-8"), end


def _blob(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    raw = data[pos : pos + size]
    if len(raw) != size:
        raise TileRecordError("truncated tile record")
    return raw, pos + size


def _slot(data: bytes, pos: int, names: list[str]) -> tuple[Slot, int]:
    (n,) = _H.unpack_from(data, pos)
    pos += 2
    out: Slot = {}
    for _ in range(n):
        c, size = _HI.unpack_from(data, pos)
        raw, pos = _blob(data, pos + 6, size)
        out[names[c]] = decode_partial(raw)
    return out, pos


def _view(data: bytes, buffer: bytes | memoryview) -> RecordView:
    """The record's parts; numeric blocks are slices of `buffer` (`data` or a view of it)."""
    written, n = _QH.unpack_from(data, 1)
    pos = 11
    names: list[str] = []
    for _ in range(n):
        name, pos = _text(data, pos)
        names.append(name)
    tiles: Blocks = {}
    (n_hops,) = _H.unpack_from(data, pos)
    pos += 2
    size = len(data)
    for _ in range(n_hops):
        hop, n_blocks = _QH.unpack_from(data, pos)
        pos += 10
        cols: dict[str, Rows | dict[int, Partial]] = tiles.setdefault(hop, {})
        for _ in range(n_blocks):
            c, kind, rows = _HBI.unpack_from(data, pos)
            pos += 7
            dtype = _DTYPES.get(kind)
            if dtype is not None:
                end = pos + rows * dtype.itemsize
                if end > size:
                    raise TileRecordError("truncated tile record")
                cols[names[c]] = Rows(dtype, buffer[pos:end], rows)
                pos = end
            elif kind == GENERIC:
                items: dict[int, Partial] = {}
                for _ in range(rows):
                    k, length = _QI.unpack_from(data, pos)
                    raw, pos = _blob(data, pos + 12, length)
                    items[k] = decode_partial(raw)
                cols[names[c]] = items
            else:
                raise TileRecordError(f"unknown block kind {kind} in a tile record")
    base: Slot = {}
    if data[pos] or data[pos + 1]:
        base, pos = _slot(data, pos, names)
    else:
        pos += 2
    pending: list[tuple[int, Slot]] = []
    (n,) = _I.unpack_from(data, pos)
    pos += 4
    for _ in range(n):
        (ts,) = _Q.unpack_from(data, pos)
        s, pos = _slot(data, pos + 8, names)
        pending.append((ts, s))
    return RecordView(written, tiles, base, pending, pos)


def decode(blob: bytes | None) -> TileRecord:
    """The record stored as `blob` (an empty record for None)."""
    if blob is None:
        return TileRecord()
    _check_version(blob)
    record: TileRecord = _checked(_decode, blob)
    return record


def _decode(blob: bytes) -> TileRecord:
    parts = _view(blob, blob)  # numeric blocks as bytes: a write splices them
    record = TileRecord(written=parts.written, base=parts.base, pending=parts.pending)
    for hop, cols in parts.tiles.items():
        record.tiles[hop] = {
            c: Block(kind=GENERIC, items=b) if isinstance(b, dict) else Block(kind=_kind_of(b), raw=bytes(b.data))
            for c, b in cols.items()
        }
    pos = parts.end
    for texts in (record.marks, record.offsets) if blob[0] >= 4 else (record.marks,):
        (n,) = _I.unpack_from(blob, pos)
        pos += 4
        for _ in range(n):
            text, pos = _text(blob, pos)
            (texts[text],) = _Q.unpack_from(blob, pos)
            pos += 8
    if pos != len(blob):
        raise TileRecordError("trailing bytes after a tile record")
    return record


def _kind_of(rows: Rows) -> int:
    return FLOAT if rows.dtype is ROW_FLOAT else INT
