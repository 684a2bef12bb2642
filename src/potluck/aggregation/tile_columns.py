"""Merging the tiles of one window for many keys at once, over the numeric blocks of their records
(`potluck.aggregation.tile_record`): the partials of a window, field by field, as slice reductions.

The result equals merging the same tiles one by one with `potluck.aggregation.partials.merge`
(the definition; floats up to rounding): counts and sums add up; the mean and M2 combine by the
many-way form of Chan et al.'s formula (`M2 = sum(M2_i) + sum(n_i * (mean_i - mean)^2)`); min and
max reduce; and `last` is the last event of the window's latest non-empty tile, because a hop's
tiles split events by event time. Blocks that are not numeric (and whatever a window adds beyond
its tiles: future events now due, the lifetime base) go through `partials.merge`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from potluck.aggregation.partials import ALL_FIELDS, EMPTY, LastKey, Partial, finalize_columns, merge
from potluck.aggregation.tile_record import Rows

# Tile blocks of one (hop, column), one per key: numeric rows, generic partials by tile, or none.
BlockOf = Rows | dict[int, Partial] | None
_SAFE = 2.0**62  # an int64 sum whose bound stays below this cannot overflow


@dataclass
class Merged:
    """The merged partial of each key, field by field (`count` 0: empty, other fields unset)."""

    count: list[int]
    total: list[Any]
    mean: list[float]
    m2: list[float]
    min: list[Any]
    max: list[Any]
    last: list[Any]
    key: list[tuple[Any, ...] | LastKey | None]  # a numeric row (its last-event fields) or the key

    @staticmethod
    def empty(n: int) -> Merged:
        return Merged([0] * n, [0] * n, [0.0] * n, [0.0] * n, [None] * n, [None] * n, [None] * n, [None] * n)

    def partial(self, i: int) -> Partial:
        if not self.count[i]:
            return EMPTY
        key = self.key[i]
        if isinstance(key, tuple):
            key = LastKey(key[8], None if key[10] == 1 else key[9], key[11])
        return Partial(
            self.count[i], self.total[i], self.mean[i], self.m2[i], self.min[i], self.max[i], self.last[i], key
        )

    def put(self, i: int, p: Partial) -> None:
        self.count[i], self.total[i], self.mean[i], self.m2[i] = p.count, p.total, p.mean, p.m2
        self.min[i], self.max[i], self.last[i], self.key[i] = p.min, p.max, p.last, p.last_key

    def finalize(self, function: str) -> list[Any]:
        return finalize_columns(function, self.count, self.total, self.m2, self.min, self.max, self.last)


def merge_window(blocks: Sequence[BlockOf], first: int, last: int) -> Merged:
    """The partial of tiles `first..last` (inclusive) of each key's block."""
    return KeyTiles(blocks).merge(first, last)


class KeyTiles:
    """The blocks of one (hop, column) for many keys, joined once for every window read from them."""

    def __init__(self, blocks: Sequence[BlockOf]) -> None:
        self.n = len(blocks)
        self.generic = [(i, b) for i, b in enumerate(blocks) if isinstance(b, dict)]
        by_dtype: dict[np.dtype[Any], list[int]] = {}
        for i, b in enumerate(blocks):
            if isinstance(b, Rows) and b.count:
                by_dtype.setdefault(b.dtype, []).append(i)
        self.groups = [_Joined(which, [blocks[i] for i in which]) for which in by_dtype.values()]  # type: ignore[misc]

    def merge(self, first: int, last: int, fields: frozenset[str] = ALL_FIELDS) -> Merged:
        """The merged partials of tiles `first..last`; of the numeric blocks only `count` and `fields`
        (`partials.FIELDS_READ`) are merged, the others keep their empty values."""
        out = Merged.empty(self.n)
        for i, b in self.generic:
            p = EMPTY
            for k in sorted(b):
                if first <= k <= last:
                    p = merge(p, b[k])
            out.put(i, p)
        for group in self.groups:
            group.reduce(out, first, last, fields)
        return out


_SPAN = 1 << 40  # the tile indices of one key within this span share one sorted search


class _Joined:
    """Numeric blocks of one layout, joined (keys in order, each key's rows sorted by tile)."""

    def __init__(self, which: list[int], blocks: list[Rows]) -> None:
        self.which = which
        dtype = blocks[0].dtype
        self.rows = blocks[0].array() if len(blocks) == 1 else np.frombuffer(b"".join([b.data for b in blocks]), dtype)
        self.single = len(blocks) == 1
        k = self.rows["k"]
        self.composite: np.ndarray | None = None
        self._total_bound: float | None = None
        self._fields: dict[str, list[Any]] = {}
        if self.single:
            self.low, self.high = int(k[0]), int(k[-1])  # a block's rows are sorted by tile
            self.longest = blocks[0].count
            return
        self.lens = np.array([b.count for b in blocks], dtype=np.int64)
        self.offsets = np.cumsum(self.lens) - self.lens
        self.longest = int(self.lens.max())
        self.low, self.high = int(k.min()), int(k.max())
        if self.high - self.low < _SPAN:
            seg = np.repeat(np.arange(len(blocks), dtype=np.int64), self.lens)
            self.composite = seg * _SPAN + (k - self.low)

    @property
    def total_bound(self) -> float:
        """A bound of any key's sum of integer totals (0 for floats)."""
        if self._total_bound is None:
            totals = self.rows["total"]
            bound = 0.0
            if totals.dtype.kind == "i":
                bound = float(np.abs(totals.astype(np.float64)).max()) * float(self.longest)
            self._total_bound = bound
        return self._total_bound

    def bounds(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Each key's rows of tiles `first..last`, as `[start, end)` into the joined rows."""
        k = self.rows["k"]
        first, last = max(first, self.low), min(last, self.high)
        if first > last:
            return self.offsets, self.offsets
        if self.composite is not None:
            keys = np.arange(len(self.lens), dtype=np.int64) * _SPAN
            starts = np.searchsorted(self.composite, keys + (first - self.low), side="left")
            return starts, np.searchsorted(self.composite, keys + (last - self.low), side="right")
        bounds = [  # indices too far apart to pack: one search per key
            (o + int(np.searchsorted(k[o : o + n], first)), o + int(np.searchsorted(k[o : o + n], last, side="right")))
            for o, n in zip(self.offsets.tolist(), self.lens.tolist(), strict=True)
        ]
        return np.array([b[0] for b in bounds], dtype=np.int64), np.array([b[1] for b in bounds], dtype=np.int64)

    def reduce(self, out: Merged, first: int, last: int, fields: frozenset[str]) -> None:
        if self.single:
            first, last = max(first, self.low), min(last, self.high)
            if first <= last:
                k = self._field("k")
                start, end = bisect_left(k, first), bisect_right(k, last)
                if end > start:
                    self._reduce_one(out, start, end, fields)
            return
        starts, ends = self.bounds(first, last)
        present = np.flatnonzero(ends > starts)
        if not len(present):
            return
        rows = self.rows
        starts, ends = starts[present], ends[present]
        idx = np.empty(2 * len(starts), dtype=np.int64)  # reduceat over [start, end) pairs: even results
        idx[0::2], idx[1::2] = starts, ends
        if idx[-1] == len(rows):
            idx = idx[:-1]  # the last range then runs to the end

        def sums(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
            return ufunc.reduceat(values, idx)[0::2]

        count = rows["count"]
        n = sums(np.add, count)
        got: dict[str, list[Any]] = {"count": n.tolist()}
        if "total" in fields:
            totals = rows["total"]
            if self.total_bound >= _SAFE:  # int64 sums that could overflow: added as Python ints
                got["total"] = [sum(totals[s:e].tolist()) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
            else:
                got["total"] = sums(np.add, totals).tolist()
        if "m2" in fields:
            means = rows["mean"]
            mean = sums(np.add, count * means) / n
            per_key = np.zeros(len(self.lens))
            per_key[present] = mean
            deviation = means - np.repeat(per_key, self.lens)
            got["mean"] = mean.tolist()
            got["m2"] = (sums(np.add, rows["m2"]) + sums(np.add, count * deviation * deviation)).tolist()
        if "min" in fields:
            got["min"] = sums(np.minimum, rows["min"]).tolist()
        if "max" in fields:
            got["max"] = sums(np.maximum, rows["max"]).tolist()
        if "last" in fields:
            tail = rows[ends - 1].tolist()  # each key's latest tile holds its last event
            got["last"], got["key"] = [row[7] for row in tail], tail
        at = [self.which[i] for i in present.tolist()]
        for name, values in got.items():
            column: list[Any] = getattr(out, name)
            if len(at) == len(column):  # every key has tiles in the window
                setattr(out, name, values)
                continue
            for i, v in zip(at, values, strict=True):
                column[i] = v

    def _field(self, name: str) -> list[Any]:
        """One field of a single key's rows as Python values (kept for the other windows)."""
        values = self._fields.get(name)
        if values is None:
            values = self._fields[name] = self.rows[name].tolist()
        return values

    def _reduce_one(self, out: Merged, start: int, end: int, fields: frozenset[str]) -> None:
        """The same reductions for a single key's rows `[start, end)`, in Python: a few numpy calls
        cost more than the sums of one key's tiles (and integer totals stay exact ints)."""
        counts = self._field("count")[start:end]
        i = self.which[0]
        n = out.count[i] = sum(counts)
        if "total" in fields:
            out.total[i] = sum(self._field("total")[start:end])
        if "m2" in fields:
            means = self._field("mean")[start:end]
            mean = sum([c * m for c, m in zip(counts, means, strict=True)]) / n
            out.mean[i] = mean
            deviations = sum([c * (m - mean) * (m - mean) for c, m in zip(counts, means, strict=True)])
            out.m2[i] = sum(self._field("m2")[start:end]) + deviations
        if "min" in fields:
            out.min[i] = min(self._field("min")[start:end])
        if "max" in fields:
            out.max[i] = max(self._field("max")[start:end])
        if "last" in fields:
            tail = self.rows[end - 1].item()  # the latest tile holds the last event
            out.last[i], out.key[i] = tail[7], tail
