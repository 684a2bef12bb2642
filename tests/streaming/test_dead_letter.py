"""The dead-letter file: one Parquet file per partition of a batch, rewritten (not added) on replay."""

from __future__ import annotations

from pathlib import Path

import orjson
from decode_support import JSON_SOURCE, views

from potluck.streaming.dead_letter import DeadLetterFile, read_dead_letters
from potluck.streaming.decode import DeadLetter, Decoder
from potluck.streaming.sources import StreamMessage


def _batch() -> list[StreamMessage]:
    good = {"driver_id": 1, "rate_src": 0.5, "trips": 3, "ok": True, "name": "x", "ts": 1_700_000_000}
    return [
        StreamMessage("rides:0", 5, b"{oops", b"k1"),
        StreamMessage("rides:0", 6, orjson.dumps(good)),
        StreamMessage("rides:1", 9, None, b"k2"),
        StreamMessage("rides:0", 7, orjson.dumps({**good, "trips": "many"})),
    ]


def test_a_batch_writes_one_file_per_partition_and_a_replay_rewrites_them(tmp_path: Path) -> None:
    dead = Decoder(JSON_SOURCE, views(JSON_SOURCE)).decode(_batch()).dead
    letters = DeadLetterFile(tmp_path)
    first = letters.write(dead)
    files = sorted(p.name for p in (tmp_path / "rides").iterdir())
    assert files == [f"rides%3A0-{5:020d}.parquet", f"rides%3A1-{9:020d}.parquet"]
    assert first == str(tmp_path / "rides" / files[0])
    table = read_dead_letters(tmp_path)
    assert table.select(["source", "partition", "offset", "key", "value"]).to_pylist() == [
        {"source": "rides", "partition": "rides:0", "offset": 5, "key": b"k1", "value": b"{oops"},
        {"source": "rides", "partition": "rides:0", "offset": 7, "key": None, "value": _batch()[3].value},
        {"source": "rides", "partition": "rides:1", "offset": 9, "key": b"k2", "value": None},
    ]
    assert [r.split(" (")[0] for r in table.column("reason").to_pylist()] == [
        "not JSON",
        "field 'trips' is 'many', not an Int32",
        "a tombstone: the message has no value",
    ]
    assert table.column("dead_lettered_at").null_count == 0

    # The worker died before committing: the same batch comes again and is written again.
    letters.write(Decoder(JSON_SOURCE, views(JSON_SOURCE)).decode(_batch()).dead)
    assert sorted(p.name for p in (tmp_path / "rides").iterdir()) == files  # no temporary left behind
    assert read_dead_letters(tmp_path, "rides").num_rows == 3


def test_nothing_to_write_and_nothing_to_read(tmp_path: Path) -> None:
    assert DeadLetterFile(tmp_path).write([]) is None
    assert read_dead_letters(tmp_path).num_rows == 0
    assert read_dead_letters(tmp_path, "absent").column_names[-1] == "dead_lettered_at"


def test_partition_names_that_would_collide_get_their_own_files(tmp_path: Path) -> None:
    letters = [DeadLetter("s/x", p, 1, None, b"", "r") for p in ("a:b", "a_b", "a/b", "..")]
    DeadLetterFile(tmp_path).write(letters)
    table = read_dead_letters(tmp_path, "s/x")
    assert sorted(table.column("partition").to_pylist()) == sorted(["a:b", "a_b", "a/b", ".."])
