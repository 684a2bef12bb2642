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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from potluck.aggregation.partials import EMPTY, LastKey, Partial, finalize_columns, merge
from potluck.aggregation.tile_record import ROW_FLOAT, ROW_INT

# Tile blocks of one (hop, column), one per key: numeric rows, generic partials by tile, or none.
BlockOf = np.ndarray | dict[int, Partial] | None
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
    key: list[LastKey | None]

    @staticmethod
    def empty(n: int) -> Merged:
        return Merged([0] * n, [0] * n, [0.0] * n, [0.0] * n, [None] * n, [None] * n, [None] * n, [None] * n)

    def partial(self, i: int) -> Partial:
        if not self.count[i]:
            return EMPTY
        return Partial(
            self.count[i], self.total[i], self.mean[i], self.m2[i], self.min[i], self.max[i], self.last[i], self.key[i]
        )

    def put(self, i: int, p: Partial) -> None:
        self.count[i], self.total[i], self.mean[i], self.m2[i] = p.count, p.total, p.mean, p.m2
        self.min[i], self.max[i], self.last[i], self.key[i] = p.min, p.max, p.last, p.last_key

    def finalize(self, function: str) -> list[Any]:
        return finalize_columns(function, self.count, self.total, self.m2, self.min, self.max, self.last)


def merge_window(blocks: Sequence[BlockOf], first: int, last: int) -> Merged:
    """The partial of tiles `first..last` (inclusive) of each key's block."""
    out = Merged.empty(len(blocks))
    for dtype in (ROW_FLOAT, ROW_INT):
        which = [i for i, b in enumerate(blocks) if isinstance(b, np.ndarray) and b.dtype == dtype]
        if which:
            _reduce(out, which, [blocks[i] for i in which], first, last)  # type: ignore[misc]
    for i, b in enumerate(blocks):
        if isinstance(b, dict):
            p = EMPTY
            for k in sorted(b):
                if first <= k <= last:
                    p = merge(p, b[k])
            out.put(i, p)
    return out


def _reduce(out: Merged, which: list[int], blocks: list[np.ndarray], first: int, last: int) -> None:
    rows = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    k = rows["k"]
    inside = (k >= first) & (k <= last)
    seg = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])[inside]
    g = rows[inside]
    if not len(g):
        return
    sizes = np.bincount(seg, minlength=len(blocks))
    present = np.flatnonzero(sizes)
    ends = np.cumsum(sizes)[present]
    starts = ends - sizes[present]
    count = g["count"]
    n = np.add.reduceat(count, starts)
    totals = g["total"]
    if totals.dtype.kind == "i" and float(np.abs(totals.astype(np.float64)).max()) * float(sizes.max()) >= _SAFE:
        total: list[Any] = [sum(totals[s:e].tolist()) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    else:
        total = np.add.reduceat(totals, starts).tolist()
    means = g["mean"]
    mean = np.add.reduceat(count * means, starts) / n
    deviation = means - np.repeat(mean, sizes[present])
    m2 = np.add.reduceat(g["m2"], starts) + np.add.reduceat(count * deviation * deviation, starts)
    lo = np.minimum.reduceat(g["min"], starts).tolist()
    hi = np.maximum.reduceat(g["max"], starts).tolist()
    tail = g[ends - 1].tolist()  # each key's latest tile holds its last event
    for i, c, t, mu, v, a, b, row in zip(
        present.tolist(), n.tolist(), total, mean.tolist(), m2.tolist(), lo, hi, tail, strict=True
    ):
        at = which[i]
        out.count[at], out.total[at], out.mean[at], out.m2[at], out.min[at], out.max[at] = c, t, mu, v, a, b
        out.last[at] = row[7]
        out.key[at] = LastKey(row[8], None if row[10] == 1 else row[9], row[11])
