"""The mergeable partial aggregate of one column over a set of events (a tile), and its encoding.

A `Partial` holds what every function needs, so one partial per (key, tile, column) serves every
aggregation of that column:

- `count` of non-null values, and their `total` (a Python int for integer columns, so sums stay
  exact; a float otherwise);
- `mean` and `m2` (the sum of squared deviations from the mean), merged by Chan et al.'s
  pairwise formula. Sum and sum of squares would be cheaper to merge but lose every digit of a
  variance that is small next to the mean (values near 1e9 differing by 1), where DuckDB's
  `var_samp` (also Welford/Chan) does not; this keeps online and offline within 1e-9;
- `min` and `max`;
- `last`: the value of the latest event, with its sort key (event time, created time, arrival
  order), ties broken by created time (null first), then arrival.

Null values are skipped by every function, so an event with a null value changes nothing.
Finalizing follows DESIGN section 2: `count` of an empty partial is 0, every other function null;
`variance` and `stddev` (sample, ddof = 1) are null below 2 values; `mean` is `total / count`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from potluck.aggregation.rule import canonical_function

Scalar = int | float | str | bytes | bool | datetime


@dataclass(frozen=True, slots=True)
class LastKey:
    """The order of events for `last`: event time, created time (None first), arrival (microseconds, ints)."""

    event_ts: int
    created_ts: int | None
    arrival: int

    def _tuple(self) -> tuple[int, bool, int, int]:
        return (self.event_ts, self.created_ts is not None, self.created_ts or 0, self.arrival)

    def __lt__(self, other: LastKey) -> bool:
        return self._tuple() < other._tuple()


@dataclass(frozen=True, slots=True)
class Partial:
    count: int = 0
    total: int | float = 0
    mean: float = 0.0
    m2: float = 0.0
    min: Scalar | None = None
    max: Scalar | None = None
    last: Scalar | None = None
    last_key: LastKey | None = field(default=None)

    @staticmethod
    def of(value: Scalar | None, key: LastKey) -> Partial:
        """The partial of one event (empty when the value is null)."""
        if value is None:
            return EMPTY
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return Partial(
            count=1,
            total=value if numeric else 0,  # type: ignore[arg-type]
            mean=float(value) if numeric else 0.0,  # type: ignore[arg-type]
            m2=0.0,
            min=value,
            max=value,
            last=value,
            last_key=key,
        )

    def add(self, value: Scalar | None, key: LastKey) -> Partial:
        return merge(self, Partial.of(value, key))

    def finalize(self, function: str) -> Any:
        return finalize_columns(function, [self.count], [self.total], [self.m2], [self.min], [self.max], [self.last])[0]


def finalize_columns(
    function: str,
    count: Sequence[int],
    total: Sequence[int | float],
    m2: Sequence[float],
    lo: Sequence[Scalar | None],
    hi: Sequence[Scalar | None],
    last: Sequence[Scalar | None],
) -> list[Any]:
    """The value of `function` for each of many partials given field by field (the one home of finalizing)."""
    fn = canonical_function(function)
    if fn == "count":
        return list(count)
    if fn == "sum":
        return [t if n else None for n, t in zip(count, total, strict=True)]
    if fn == "mean":
        return [t / n if n else None for n, t in zip(count, total, strict=True)]
    if fn in ("variance", "stddev"):
        root = fn == "stddev"
        out: list[Any] = []
        for n, m in zip(count, m2, strict=True):
            if n < 2:
                out.append(None)
            else:
                variance = max(m, 0.0) / (n - 1)
                out.append(math.sqrt(variance) if root else variance)
        return out
    values = lo if fn == "min" else hi if fn == "max" else last
    return [v if n else None for n, v in zip(count, values, strict=True)]


EMPTY = Partial()

# The fields of a partial each function's finalizing reads beyond `count` (`finalize_columns`);
# `m2` needs `mean` to be merged.
FIELDS_READ: dict[str, frozenset[str]] = {
    "count": frozenset(),
    "sum": frozenset({"total"}),
    "mean": frozenset({"total"}),
    "variance": frozenset({"m2"}),
    "stddev": frozenset({"m2"}),
    "min": frozenset({"min"}),
    "max": frozenset({"max"}),
    "last": frozenset({"last"}),
}
ALL_FIELDS = frozenset({"total", "m2", "min", "max", "last"})


def merge(a: Partial, b: Partial) -> Partial:
    """The partial of the union of two disjoint event sets (associative and commutative)."""
    if b.count == 0:
        return a
    if a.count == 0:
        return b
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / n)
    m2 = a.m2 + b.m2 + delta * delta * (a.count * b.count / n)
    later = b if (a.last_key is None or (b.last_key is not None and a.last_key < b.last_key)) else a
    return Partial(
        count=n,
        total=a.total + b.total,
        mean=mean,
        m2=m2,
        min=b.min if _less(b.min, a.min) else a.min,
        max=b.max if _less(a.max, b.max) else a.max,
        last=later.last,
        last_key=later.last_key,
    )


def merge_all(partials: list[Partial]) -> Partial:
    out = EMPTY
    for p in partials:
        out = merge(out, p)
    return out


def _less(x: Scalar | None, y: Scalar | None) -> bool:
    if x is None or y is None:
        return False
    return x < y  # type: ignore[operator]


# Encoding: a version byte, then the fields; every scalar carries a one-byte type tag.
VERSION = 1
_NONE, _INT, _FLOAT, _STR, _BYTES, _BOOL, _TIME = range(7)
_Q = struct.Struct("<q")
_D = struct.Struct("<d")
_HEAD = struct.Struct("<Bqdd")  # version, count, mean, m2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PartialDecodeError(ValueError):
    """Stored bytes that are not a partial aggregate of a known version."""


def _put(out: bytearray, value: Scalar | None) -> None:
    if value is None:
        out.append(_NONE)
    elif isinstance(value, bool):
        out += bytes((_BOOL, int(value)))
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            out.append(_INT)
            out += _Q.pack(value)
        else:  # a sum of int64 values beyond 64 bits: kept exact as text
            data = str(value).encode()
            out.append(_STR + 0x80)
            out += struct.pack("<I", len(data)) + data
    elif isinstance(value, float):
        out.append(_FLOAT)
        out += _D.pack(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out.append(_STR)
        out += struct.pack("<I", len(data)) + data
    elif isinstance(value, bytes):
        out.append(_BYTES)
        out += struct.pack("<I", len(value)) + value
    elif isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        out.append(_TIME)
        out += _Q.pack((aware - _EPOCH) // timedelta(microseconds=1))
    else:
        raise TypeError(f"cannot encode a {type(value).__name__} in a partial aggregate")


def _get(data: bytes, pos: int) -> tuple[Scalar | None, int]:
    tag = data[pos]
    pos += 1
    if tag == _NONE:
        return None, pos
    if tag == _BOOL:
        return bool(data[pos]), pos + 1
    if tag == _INT:
        return _Q.unpack_from(data, pos)[0], pos + 8
    if tag == _FLOAT:
        return _D.unpack_from(data, pos)[0], pos + 8
    if tag == _TIME:
        return _EPOCH + timedelta(microseconds=_Q.unpack_from(data, pos)[0]), pos + 8
    if tag in (_STR, _BYTES, _STR + 0x80):
        (size,) = struct.unpack_from("<I", data, pos)
        raw = bytes(data[pos + 4 : pos + 4 + size])
        if len(raw) != size:
            raise PartialDecodeError("truncated partial aggregate")
        pos += 4 + size
        if tag == _BYTES:
            return raw, pos
        text = raw.decode("utf-8")
        return (int(text) if tag != _STR else text), pos
    raise PartialDecodeError(f"unknown value tag {tag} in a partial aggregate")


def encode(p: Partial) -> bytes:
    out = bytearray(_HEAD.pack(VERSION, p.count, p.mean, p.m2))
    for value in (p.total, p.min, p.max, p.last):
        _put(out, value)
    key = p.last_key
    if key is None:
        out.append(0)
    else:
        out.append(1 if key.created_ts is None else 2)
        out += _Q.pack(key.event_ts) + _Q.pack(key.created_ts or 0) + _Q.pack(key.arrival)
    return bytes(out)


def decode(data: bytes) -> Partial:
    try:
        version, count, mean, m2 = _HEAD.unpack_from(data, 0)
        if version != VERSION:
            raise PartialDecodeError(f"partial aggregate version {version} is not known (this version reads {VERSION})")
        pos = _HEAD.size
        values: list[Scalar | None] = []
        for _ in range(4):
            value, pos = _get(data, pos)
            values.append(value)
        flag = data[pos]
        pos += 1
        key = None
        if flag:
            event_ts, created, arrival = struct.unpack_from("<qqq", data, pos)
            pos += 24
            key = LastKey(event_ts, None if flag == 1 else created, arrival)
        if pos != len(data):
            raise PartialDecodeError("trailing bytes after a partial aggregate")
    except (struct.error, IndexError, UnicodeDecodeError) as err:
        raise PartialDecodeError(f"malformed partial aggregate ({err})") from None
    total = values[0]
    if not isinstance(total, (int, float)):
        raise PartialDecodeError("malformed partial aggregate (its total is not a number)")
    return Partial(count, total, mean, m2, values[1], values[2], values[3], key)


__all__ = [
    "EMPTY",
    "LastKey",
    "Partial",
    "PartialDecodeError",
    "decode",
    "encode",
    "finalize_columns",
    "merge",
    "merge_all",
]
