"""DynamoDB online store: one table per view, keyed by the shared binary entity key.

An item holds a row as `entity_key` (B, the partition key), `event_ts` and `created_ts` (N,
microseconds since the epoch; `created_ts` absent when null) and `value` (B, the row blob every
store writes). An aggregation view's tile record lives in the same kind of item as `tile_version`
(N), `tile_blob` (B) and `tile_expires_at` (N, epoch seconds: the table's TTL attribute).

Newest wins as one conditional UpdateItem per row. BatchWriteItem cannot carry a condition, and a
TransactWriteItems is cancelled whole when any of its conditions fails (an older row is routine
here, not an error), costs twice the write units and takes at most 100 items; so the rows of a
batch, one per key, go out as single conditional writes, `max_write_workers` in flight, after one
BatchGetItem per 100 keys has left out the rows already stored or older than the stored ones (a
replay costs reads only). A failed condition means the stored row is newer: skipped. Reads are BatchGetItem calls of at most
`batch_size` (<= 100, DynamoDB's limit) distinct keys over all requested views, several in flight;
the keys DynamoDB leaves unprocessed (a response over 16 MB, throttling) are asked for again, with
exponential backoff when a call made no progress. The view's ttl is applied by the reader, as for
every store.

Snapshots (`SupportsScan`): a Scan is unordered and cannot start after a key, so a listing first
scans the view's keys alone (the only part held in memory: a few dozen bytes per key), sorts them,
and reads the items back by BatchGetItem, `chunk_rows` keys per chunk, with consistent reads. A
listing after a key keeps only the keys after it, so a resumed snapshot holds what is left. Keeping
whole items sorted would hold the table in memory; one Scan per chunk, each keeping its smallest
keys, would read the table once per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from potluck.definitions.errors import BackendUnavailableError, MissingExtraError, PotluckError, RetrievalError
from potluck.online.dynamodb_config import table_name
from potluck.online.keys import decode_key
from potluck.online.protocol import OnlineView, ReadRequest, ReadResult, TileRecord, TileWrite
from potluck.online.rows import EncodedRows, encode_rows, newest_per_key

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.online.dynamodb_config import DynamoDBOnlineStoreConfig
    from potluck.repo.config import RepoConfig

T = TypeVar("T")
WRITE_CHUNK_ROWS = 50_000
# DynamoDB's limits (moto does not enforce them all).
MAX_ITEM_BYTES = 400 * 1024  # attribute names and values of one item
MAX_KEY_BYTES = 2048  # a binary partition key
NUMBER_BYTES = 21  # an upper bound of the stored size of an int64 number
NO_PROGRESS_RETRIES = 8  # BatchGetItem rounds that returned nothing before giving up

KEY, EVENT, CREATED, VALUE = "entity_key", "event_ts", "created_ts", "value"
TILE_VERSION, TILE_BLOB, TILE_EXPIRES = "tile_version", "tile_blob", "tile_expires_at"
ROW_OVERHEAD = len(KEY) + len(EVENT) + len(CREATED) + len(VALUE) + 2 * NUMBER_BYTES
TILE_OVERHEAD = len(KEY) + len(TILE_VERSION) + len(TILE_BLOB) + len(TILE_EXPIRES) + 2 * NUMBER_BYTES

# `value` is a reserved word of DynamoDB's expressions: always written as #v.
_NAMES = {"#v": VALUE}
_ROW_PROJECTION = f"{KEY}, {EVENT}, #v"
_TILE_PROJECTION = f"{KEY}, {TILE_VERSION}, {TILE_BLOB}"
_STORED_PROJECTION = f"{KEY}, {EVENT}, {CREATED}, #v"
# The stored row is replaced when absent, older, or of the same event time and an older-or-equal
# created time (a null created time is the oldest): the rule of docs/semantics.md.
_NEWER = (
    f"attribute_not_exists({EVENT}) OR {EVENT} < :e OR "
    f"({EVENT} = :e AND (attribute_not_exists({CREATED}) OR {CREATED} <= :c))"
)
_NEWER_NULL_CREATED = (
    f"attribute_not_exists({EVENT}) OR {EVENT} < :e OR ({EVENT} = :e AND attribute_not_exists({CREATED}))"
)
_SET = f"SET {EVENT} = :e, {CREATED} = :c, #v = :v"
_SET_NULL_CREATED = f"SET {EVENT} = :e, #v = :v REMOVE {CREATED}"
_UNAVAILABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
}


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class DynamoDBOnlineStore:
    """Online store in Amazon DynamoDB (tested against the moto emulator, docs/online-stores.md)."""

    def __init__(self, config: DynamoDBOnlineStoreConfig, repo_config: RepoConfig | None = None) -> None:
        try:
            import boto3
            import botocore.config
            import botocore.exceptions
        except ImportError:
            raise MissingExtraError("boto3", "dynamodb") from None
        self._config = config
        self._errors = botocore.exceptions
        retries: dict[str, Any] = {}
        if config.total_max_retry_attempts is not None:
            retries["total_max_attempts"] = config.total_max_retry_attempts
        if config.retry_mode is not None:
            retries["mode"] = config.retry_mode
        client_config = botocore.config.Config(
            max_pool_connections=max(config.max_pool_connections, config.max_read_workers + config.max_write_workers),
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            retries=retries,
        )
        # A session of our own: boto3's default session is not safe to share between threads.
        self._client = boto3.session.Session().client(
            "dynamodb", region_name=config.region, endpoint_url=config.endpoint_url, config=client_config
        )
        self._where = config.endpoint_url or f"region {config.region}"
        self._tables: dict[str, str] = {}
        self._ready: set[str] = set()
        self._lock = threading.Lock()
        self._read_pool: ThreadPoolExecutor | None = None
        self._write_pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------ calls

    def table(self, view: OnlineView) -> str:
        """The DynamoDB table holding `view` (see `table_name_template`)."""
        name = self._tables.get(view.storage_name)
        if name is None:
            name = table_name(self._config.table_name_template, view)
            self._tables[view.storage_name] = name
        return name

    def _call(self, op: str, table: str, expected: frozenset[str] = frozenset(), **kwargs: Any) -> dict[str, Any]:
        """One API call; errors become Potluck's, except the ClientError codes in `expected`."""
        try:
            response: dict[str, Any] = getattr(self._client, op)(**kwargs)
            return response
        except self._errors.ClientError as err:
            code = _code(err)
            if code in expected:
                raise
            message = err.response.get("Error", {}).get("Message", str(err))
            text = f"DynamoDB {op} on table '{table}' at {self._where} failed: {code}: {message}"
            if code in _UNAVAILABLE:
                raise BackendUnavailableError(text) from err
            raise PotluckError(text) from err
        except self._errors.NoCredentialsError as err:
            raise BackendUnavailableError(
                f"DynamoDB at {self._where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE) or an instance role"
            ) from err
        except self._errors.BotoCoreError as err:
            raise BackendUnavailableError(
                f"DynamoDB at {self._where} is unavailable ({op} on '{table}'): {err}"
            ) from err

    def _status(self, table: str) -> str | None:
        """The table's status (ACTIVE, CREATING, ...), None when there is no such table."""
        try:
            answer = self._call("describe_table", table, frozenset({"ResourceNotFoundException"}), TableName=table)
        except self._errors.ClientError:
            return None
        return str(answer["Table"]["TableStatus"])

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        with self._lock:
            if kind == "read":
                if self._read_pool is None:
                    self._read_pool = ThreadPoolExecutor(self._config.max_read_workers, "potluck-dynamodb-read")
                return self._read_pool
            if self._write_pool is None:
                self._write_pool = ThreadPoolExecutor(self._config.max_write_workers, "potluck-dynamodb-write")
            return self._write_pool

    def _fan_out(self, kind: str, fn: Callable[[list[Any]], T], parts: list[list[Any]]) -> list[T]:
        """`fn` over each part, in the pool of `kind`; every part finishes before an error is raised."""
        if len(parts) == 1:
            return [fn(parts[0])]
        pool = self._pool(kind)
        futures = [pool.submit(fn, part) for part in parts]
        wait(futures)
        return [f.result() for f in futures]

    # ------------------------------------------------------------ tables

    def create(self, views: Sequence[OnlineView]) -> None:
        for view in views:
            self._ensure(self.table(view))

    def _ensure(self, table: str) -> None:
        """Create the table unless it exists, and wait until it is ACTIVE."""
        if table in self._ready:
            return
        deadline = time.monotonic() + self._config.table_ready_timeout_seconds
        delay = 0.05
        created = False
        while True:
            status = self._status(table)
            if status in ("ACTIVE", "UPDATING"):
                break
            if status is None:
                created = self._create_table(table) or created
                continue
            if time.monotonic() > deadline:
                raise BackendUnavailableError(
                    f"DynamoDB table '{table}' at {self._where} is {status}, not ACTIVE, after "
                    f"{self._config.table_ready_timeout_seconds:g} s (online_store.table_ready_timeout_seconds)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        if created:
            self._enable_expiry(table)
        self._ready.add(table)

    def _create_table(self, table: str) -> bool:
        """True if this call created it; False if another writer is creating (or deleting) it."""
        extra: dict[str, Any] = {}
        if self._config.tags:
            extra["Tags"] = [{"Key": k, "Value": v} for k, v in self._config.tags.items()]
        try:
            self._call(
                "create_table",
                table,
                frozenset({"ResourceInUseException"}),
                TableName=table,
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "B"}],
                BillingMode="PAY_PER_REQUEST",
                **extra,
            )
        except self._errors.ClientError:
            time.sleep(0.05)
            return False
        return True

    def _enable_expiry(self, table: str) -> None:
        """Tile records not written for their longest window expire (rows carry no expiry attribute)."""
        with contextlib.suppress(self._errors.ClientError):  # ValidationException: already enabled
            self._call(
                "update_time_to_live",
                table,
                frozenset({"ValidationException"}),
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TILE_EXPIRES},
            )

    def teardown(self, views: Sequence[OnlineView]) -> None:
        for view in views:
            table = self.table(view)
            self._ready.discard(table)
            self._drop(table)

    def _drop(self, table: str) -> None:
        """Delete the table and wait until it is gone (a table being created is deleted once ACTIVE)."""
        deadline = time.monotonic() + self._config.table_ready_timeout_seconds
        delay = 0.05
        expected = frozenset({"ResourceNotFoundException", "ResourceInUseException"})
        while True:
            try:
                self._call("delete_table", table, expected, TableName=table)
            except self._errors.ClientError as err:
                if _code(err) == "ResourceNotFoundException":
                    return
            if self._status(table) is None:
                return
            if time.monotonic() > deadline:
                raise BackendUnavailableError(
                    f"DynamoDB table '{table}' at {self._where} is still there "
                    f"{self._config.table_ready_timeout_seconds:g} s after its deletion was asked"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------ rows

    def write(self, view: OnlineView, rows: pa.Table) -> int:
        table = self.table(view)
        self._ensure(table)
        written = 0
        for start in range(0, max(rows.num_rows, 1), WRITE_CHUNK_ROWS):
            enc = encode_rows(view, rows.slice(start, WRITE_CHUNK_ROWS))
            self._write_encoded(view, table, enc, start)
            written += len(enc)
        return written

    def write_stored(self, view: OnlineView, rows: EncodedRows) -> int:
        """Write stored rows back as they are (a restore), through the same newest-wins writes."""
        table = self.table(view)
        self._ensure(table)
        for start in range(0, len(rows), WRITE_CHUNK_ROWS):
            part = EncodedRows(*(a.slice(start, WRITE_CHUNK_ROWS) for a in _columns(rows)))
            self._write_encoded(view, table, part, start)
        return len(rows)

    def _write_encoded(self, view: OnlineView, table: str, enc: EncodedRows, first_row: int) -> None:
        if not len(enc):
            return
        newest = newest_per_key(enc)
        _check_sizes(view, newest.keys, newest.blobs, ROW_OVERHEAD, first_row)
        batch = self._unless_stored(view, table, list(zip(*newest.python(), strict=True)))
        if batch:
            self._fan_out("write", lambda part: self._put_rows(table, part), _slices(batch, self._write_workers(batch)))

    def _unless_stored(
        self, view: OnlineView, table: str, batch: list[tuple[bytes, int, int | None, bytes]]
    ) -> list[tuple[bytes, int, int | None, bytes]]:
        """The rows whose write could change the table: a stored row that is newer, or the same row
        (times and blob), makes the write a no-op, found by one read per 100 keys instead of a
        write each (a failed conditional write still costs a write unit). The writes that remain
        are conditional all the same, so a concurrent writer is never overtaken."""
        found = self._batch_get(
            [table], [ReadRequest(view, [row[0] for row in batch])], _STORED_PROJECTION, _NAMES
        ).get(table, {})
        if not found:
            return batch
        keep = []
        for row in batch:
            item = found.get(row[0])
            if item is None or EVENT not in item:
                keep.append(row)
                continue
            stored = (int(item[EVENT]["N"]), int(item[CREATED]["N"]) if CREATED in item else None)
            if _newer_or_same(stored, row[1], row[2], bytes(item[VALUE]["B"]) == row[3]):
                continue
            keep.append(row)
        return keep

    def _write_workers(self, items: Sequence[Any]) -> int:
        return max(1, min(self._config.max_write_workers, len(items)))

    def _put_rows(self, table: str, rows: list[tuple[bytes, int, int | None, bytes]]) -> None:
        failed = frozenset({"ConditionalCheckFailedException"})
        for key, event, created, blob in rows:
            values: dict[str, Any] = {":e": {"N": str(event)}, ":v": {"B": blob}}
            if created is None:
                update, condition = _SET_NULL_CREATED, _NEWER_NULL_CREATED
            else:
                values[":c"] = {"N": str(created)}
                update, condition = _SET, _NEWER
            # A failed condition: the stored row is newer, this write is older; not an error.
            with contextlib.suppress(self._errors.ClientError):
                self._call(
                    "update_item",
                    table,
                    failed,
                    TableName=table,
                    Key={KEY: {"B": key}},
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues=values,
                )

    def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        if not requests:
            return []
        tables = [self.table(req.view) for req in requests]
        found = self._batch_get(tables, requests, _ROW_PROJECTION, _NAMES)
        results: list[ReadResult] = []
        for table, req in zip(tables, requests, strict=True):
            hits = found.get(table, {})
            decode = req.view.row_codec.decode
            rows: list[list[Any] | None] = []
            stamps: list[int | None] = []
            for key in req.keys:
                item = hits.get(key)
                values = None if item is None or EVENT not in item else decode(item[VALUE]["B"])
                rows.append(values)
                stamps.append(None if values is None or item is None else int(item[EVENT]["N"]))
            results.append(ReadResult(rows, stamps))
        return results

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        """As `read`, in a worker thread: the event loop never waits on DynamoDB."""
        return await asyncio.to_thread(self.read, requests)

    def _batch_get(
        self,
        tables: list[str],
        requests: Sequence[ReadRequest],
        projection: str,
        names: dict[str, str] | None,
        consistent: bool | None = None,
    ) -> dict[str, dict[bytes, dict[str, Any]]]:
        """The items of every distinct (table, key), `batch_size` keys per BatchGetItem call."""
        wanted: dict[tuple[str, bytes], None] = {}
        for table, req in zip(tables, requests, strict=True):
            wanted.update(dict.fromkeys((table, k) for k in req.keys))
        pairs = list(wanted)
        size = self._config.batch_size
        chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        found: dict[str, dict[bytes, dict[str, Any]]] = {}
        if not chunks:
            return found
        workers = min(self._config.max_read_workers, len(chunks))
        groups = _slices(chunks, workers)

        def run(group: list[list[tuple[str, bytes]]]) -> list[dict[str, dict[bytes, dict[str, Any]]]]:
            return [self._get_chunk(chunk, projection, names, consistent) for chunk in group]

        for part in self._fan_out("read", run, groups):
            for answer in part:
                for table, items in answer.items():
                    found.setdefault(table, {}).update(items)
        return found

    def _get_chunk(
        self,
        pairs: list[tuple[str, bytes]],
        projection: str,
        names: dict[str, str] | None,
        consistent: bool | None = None,
    ) -> dict[str, dict[bytes, dict[str, Any]]]:
        """One BatchGetItem of at most 100 keys, asked again for its unprocessed keys."""
        by_table: dict[str, list[bytes]] = {}
        for table, key in pairs:
            by_table.setdefault(table, []).append(key)
        strong = self._config.consistent_reads if consistent is None else consistent
        spec: dict[str, Any] = {"ProjectionExpression": projection, "ConsistentRead": strong}
        if names:
            spec["ExpressionAttributeNames"] = names
        request = {t: {**spec, "Keys": [{KEY: {"B": k}} for k in keys]} for t, keys in by_table.items()}
        out: dict[str, dict[bytes, dict[str, Any]]] = {t: {} for t in by_table}
        idle = 0
        what = ", ".join(f"'{t}'" for t in by_table)
        while request:
            try:
                answer = self._call(
                    "batch_get_item", what, frozenset({"ResourceNotFoundException"}), RequestItems=request
                )
            except self._errors.ClientError:
                if len(request) == 1:
                    return out  # the view's table does not exist (yet): its keys are not found
                for table in list(request):  # some table is missing: ask each table alone
                    keys = [bytes(k[KEY]["B"]) for k in request[table]["Keys"]]
                    out[table].update(self._get_chunk([(table, k) for k in keys], projection, names, consistent)[table])
                return out
            got = 0
            for table, items in answer.get("Responses", {}).items():
                got += len(items)
                for item in items:
                    out[table][bytes(item[KEY]["B"])] = item
            left = answer.get("UnprocessedKeys") or {}
            request = {t: {**spec, "Keys": u["Keys"]} for t, u in left.items() if u.get("Keys")}
            if request and not got:
                idle += 1
                if idle > NO_PROGRESS_RETRIES:
                    raise BackendUnavailableError(
                        f"DynamoDB at {self._where} left keys of {what} unprocessed {idle} times in a row "
                        "(throttled); try again later or raise the tables' capacity"
                    )
                time.sleep(min(0.05 * 2 ** (idle - 1), 2.0) * (0.5 + random.random() / 2))
        return out

    # ------------------------------------------------------------ tiles

    def read_tiles(self, requests: Sequence[ReadRequest]) -> list[list[TileRecord | None]]:
        if not requests:
            return []
        tables = [self.table(req.view) for req in requests]
        found = self._batch_get(tables, requests, _TILE_PROJECTION, None)
        out: list[list[TileRecord | None]] = []
        for table, req in zip(tables, requests, strict=True):
            hits = found.get(table, {})
            records: list[TileRecord | None] = []
            for key in req.keys:
                item = hits.get(key)
                if item is None or TILE_VERSION not in item:
                    records.append(None)
                else:
                    records.append(TileRecord(int(item[TILE_VERSION]["N"]), bytes(item[TILE_BLOB]["B"])))
            out.append(records)
        return out

    def write_tiles(self, view: OnlineView, writes: Sequence[TileWrite], ttl_seconds: int) -> list[bool]:
        if not writes:
            return []
        import pyarrow as pa

        table = self.table(view)
        _check_sizes(
            view,
            pa.array([w.key for w in writes], pa.binary()),
            pa.array([w.blob for w in writes], pa.binary()),
            TILE_OVERHEAD,
            0,
        )
        self._ensure(table)
        expires = int(time.time()) + ttl_seconds if ttl_seconds > 0 else None
        indexed = list(enumerate(writes))

        def run(part: list[tuple[int, TileWrite]]) -> list[tuple[int, bool]]:
            return [(i, self._put_tile(table, w, expires)) for i, w in part]

        applied = [False] * len(writes)
        for part in self._fan_out("write", run, _slices(indexed, self._write_workers(indexed))):
            for i, ok in part:
                applied[i] = ok
        return applied

    def _put_tile(self, table: str, w: TileWrite, expires: int | None, version: int | None = None) -> bool:
        """Compare-and-set one record to `version` (the next one unless given: a restore keeps its own)."""
        values: dict[str, Any] = {":n": {"N": str(w.expected + 1 if version is None else version)}, ":b": {"B": w.blob}}
        update = f"SET {TILE_VERSION} = :n, {TILE_BLOB} = :b"
        if expires is not None:
            values[":x"] = {"N": str(expires)}
            update += f", {TILE_EXPIRES} = :x"
        if w.expected == 0:
            condition = f"attribute_not_exists({TILE_VERSION})"
        else:
            values[":old"] = {"N": str(w.expected)}
            condition = f"{TILE_VERSION} = :old"
        try:
            self._call(
                "update_item",
                table,
                frozenset({"ConditionalCheckFailedException"}),
                TableName=table,
                Key={KEY: {"B": w.key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except self._errors.ClientError:
            return False  # changed since it was read: the caller reads again
        return True

    # ------------------------------------------------------------ backups (SupportsScan)

    def _scan_keys(self, table: str, marker: str, after: bytes | None, page_items: int) -> pa.Array:
        """The keys of the items holding `marker` (a row or a tile record), after `after`, in byte order.

        Scan has no order: the table is scanned once, keys only (projected), in pages of `page_items`
        items or 1 MB; the keys are gathered into one Arrow array (their bytes and an offset each, no
        other attribute) and sorted. Binary keys compare byte by byte, unsigned, in Python and Arrow.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        request: dict[str, Any] = {
            "TableName": table,
            "ProjectionExpression": KEY,
            "FilterExpression": f"attribute_exists({marker})",
            "ConsistentRead": True,
            "Limit": page_items,
        }
        floor = None if after is None else pa.scalar(after, pa.large_binary())
        parts: list[pa.Array] = []
        missing = frozenset({"ResourceNotFoundException"})
        while True:
            try:
                page = self._call("scan", table, missing if not parts else frozenset(), **request)
            except self._errors.ClientError:
                return pa.array([], pa.large_binary())  # the view's table does not exist: nothing stored
            keys = pa.array([bytes(item[KEY]["B"]) for item in page.get("Items", [])], pa.large_binary())
            parts.append(keys if floor is None else keys.filter(pc.greater(keys, floor)))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        found = pa.concat_arrays(parts)
        return found.take(pc.sort_indices(found))

    def _scan_items(
        self,
        view: OnlineView,
        marker: str,
        projection: str,
        names: dict[str, str] | None,
        after: bytes | None,
        chunk_rows: int,
    ) -> Iterator[list[dict[str, Any]]]:
        """The items of `_scan_keys`, `chunk_rows` keys at a time, read back by BatchGetItem (consistent reads).

        An item removed (or its record) since the keys were listed is left out of its chunk.
        """
        table = self.table(view)
        keys = self._scan_keys(table, marker, after, chunk_rows)
        for start in range(0, len(keys), chunk_rows):
            chunk = keys.slice(start, chunk_rows).to_pylist()
            found = self._batch_get([table], [ReadRequest(view, chunk)], projection, names, True).get(table, {})
            items = [item for item in (found.get(k) for k in chunk) if item is not None and marker in item]
            if items:
                yield items

    def scan_rows(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[EncodedRows]:
        import pyarrow as pa

        for items in self._scan_items(view, EVENT, _STORED_PROJECTION, _NAMES, after, chunk_rows):
            yield EncodedRows(
                pa.array([bytes(i[KEY]["B"]) for i in items], pa.binary()),
                pa.array([int(i[EVENT]["N"]) for i in items], pa.int64()),
                pa.array([int(i[CREATED]["N"]) if CREATED in i else None for i in items], pa.int64()),
                pa.array([bytes(i[VALUE]["B"]) for i in items], pa.binary()),
            )

    def scan_tiles(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[pa.Table]:
        from potluck.online.sql import tile_table

        for items in self._scan_items(view, TILE_VERSION, _TILE_PROJECTION, None, after, chunk_rows):
            yield tile_table(
                [bytes(i[KEY]["B"]) for i in items],
                [int(i[TILE_VERSION]["N"]) for i in items],
                [bytes(i[TILE_BLOB]["B"]) for i in items],
            )

    def put_tiles(self, view: OnlineView, tiles: pa.Table, ttl_seconds: int) -> int:
        """Store each record (its own version) where the key has none: one conditional write each."""
        if not tiles.num_rows:
            return 0
        table = self.table(view)
        keys = tiles.column("entity_key").combine_chunks()
        blobs = tiles.column("blob").combine_chunks()
        _check_sizes(view, keys, blobs, TILE_OVERHEAD, 0)
        self._ensure(table)
        expires = int(time.time()) + ttl_seconds if ttl_seconds > 0 else None
        records = list(zip(keys.to_pylist(), tiles.column("version").to_pylist(), blobs.to_pylist(), strict=True))

        def run(part: list[tuple[bytes, int, bytes]]) -> int:
            return sum(self._put_tile(table, TileWrite(k, 0, b), expires, v) for k, v, b in part)

        return sum(self._fan_out("write", run, _slices(records, self._write_workers(records))))

    def close(self) -> None:
        with self._lock:
            pools, self._read_pool, self._write_pool = (self._read_pool, self._write_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)
        self._client.close()


def _newer_or_same(stored: tuple[int, int | None], event: int, created: int | None, same_value: bool) -> bool:
    """Whether the stored (event, created) makes writing this row a no-op (null created: the oldest)."""
    low = -(2**63) - 1
    old = (stored[0], low if stored[1] is None else stored[1])
    new = (event, low if created is None else created)
    return old > new or (old == new and same_value)


def _columns(rows: EncodedRows) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    return rows.keys, rows.event_us, rows.created_us, rows.blobs


def _slices(items: list[T], parts: int) -> list[list[T]]:
    """`items` cut into `parts` contiguous slices of near-equal length (none empty)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out: list[list[T]] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _check_sizes(view: OnlineView, keys: pa.Array, blobs: pa.Array, overhead: int, first_row: int) -> None:
    """Refuse, before anything is written, a key or an item over DynamoDB's limits."""
    import pyarrow.compute as pc

    key_len = pc.binary_length(keys)
    item_len = pc.add(pc.add(key_len, pc.binary_length(blobs)), overhead)
    for lengths, limit, what in (
        (key_len, MAX_KEY_BYTES, "its entity key is {n} bytes, over DynamoDB's partition key limit of 2048 bytes"),
        (item_len, MAX_ITEM_BYTES, "it encodes to {n} bytes, over DynamoDB's item limit of 400 KB"),
    ):
        over = pc.greater(lengths, limit)
        if pc.any(over).as_py():
            i = int(pc.index(over, True).as_py())
            entity = decode_key(keys[i].as_py())
            raise RetrievalError(
                f"rows written to online view '{view.name}': the row of entity {entity} cannot be stored in "
                f"DynamoDB: {what.format(n=lengths[i].as_py())}; rows from {first_row} on were not written"
            )
