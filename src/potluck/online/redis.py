"""Redis online store (single server, Redis Cluster, or a primary watched by Redis Sentinel).

One string key per (view, entity): ``<key_prefix><project>:<view>:{<hex entity key>}`` holding
``<event_us>,<created_us>;<row blob>``. The hash tag makes every view of one entity live in one
cluster slot. Newest-wins is a server-side Lua script, loaded once and called by EVALSHA for
many rows at a time, batched in a pipeline.

With Sentinel every new connection asks the sentinels for the current primary, and a primary
that was demoted (READONLY) or went away drops the connection; writes then retry for up to
`failover_wait_seconds` (each is idempotent: newest-wins and tile compare-and-set), reads fail
at once (503) until the sentinels name the new primary.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from potluck.definitions.errors import BackendUnavailableError, ConfigError, MissingExtraError
from potluck.online.arrow_util import as_numpy, bin_scalar, concat_range, fill_null, from_numpy, hex_binary, join_rows
from potluck.online.protocol import OnlineView, ReadRequest, ReadResult, TileRecord, TileWrite
from potluck.online.redis_async import AsyncRedisReader, AsyncRedisSettings
from potluck.online.redis_connection import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_SOCKET_TIMEOUT,
    parse_connection_string,
)
from potluck.online.redis_connection import count_option as _count
from potluck.online.redis_connection import seconds_option as _seconds
from potluck.online.redis_connection import truthy as _truthy
from potluck.online.rows import EncodedRows, encode_rows, newest_per_key

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.online.redis_config import RedisOnlineStoreConfig
    from potluck.repo.config import RepoConfig

T = TypeVar("T")
WRITE_CHUNK_ROWS = 50_000
ROWS_PER_SCRIPT_CALL = 1_000
SCAN_COUNT = 10_000

# KEYS: one per row; ARGV[1]: expiry in seconds (0: none); ARGV[i + 1]: the value for KEYS[i],
# "<event_us>,<created_us or empty>;<blob>". Writes the value unless the stored one is newer.
# Times are compared as decimal text, exactly: Lua numbers are doubles, which cannot tell apart
# microsecond times past 2^53 (the year 2255).
NEWEST_WINS_LUA = """
local function cmp(a, b)
  local na, nb = string.byte(a, 1) == 45, string.byte(b, 1) == 45
  if na ~= nb then
    return na and -1 or 1
  end
  local r = 0
  if #a ~= #b then
    r = #a < #b and -1 or 1
  else
    for i = 1, #a do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then
        r = x < y and -1 or 1
        break
      end
    end
  end
  if na then
    r = -r
  end
  return r
end
local ttl = tonumber(ARGV[1])
local written = 0
for i = 1, #KEYS do
  local new = ARGV[i + 1]
  local take = true
  local cur = redis.call('GET', KEYS[i])
  if cur then
    local nc = string.find(new, ',', 1, true)
    local ns = string.find(new, ';', nc, true)
    local oc = string.find(cur, ',', 1, true)
    local os = string.find(cur, ';', oc, true)
    local order = cmp(string.sub(new, 1, nc - 1), string.sub(cur, 1, oc - 1))
    if order < 0 then
      take = false
    elseif order == 0 then
      local ncr = string.sub(new, nc + 1, ns - 1)
      local ocr = string.sub(cur, oc + 1, os - 1)
      if ncr == '' then
        take = (ocr == '')
      elseif ocr ~= '' then
        take = cmp(ncr, ocr) >= 0
      end
    end
  end
  if take then
    if ttl > 0 then
      redis.call('SET', KEYS[i], new, 'EX', ttl)
    else
      redis.call('SET', KEYS[i], new)
    end
    written = written + 1
  end
end
return written
"""
# KEYS[1]: a tile record (hash of version `v` and blob `b`); ARGV: expected version (0: absent),
# new blob, expiry in seconds (0: none). Compare-and-set: 1 when written, 0 when the version moved.
TILE_CAS_LUA = """
local v = redis.call('HGET', KEYS[1], 'v')
local cur = v and tonumber(v) or 0
if cur ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', cur + 1, 'b', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return 1
"""
# KEYS[1]: a tile record; ARGV: version, blob, expiry in seconds (0: none). Stored only where none is (a restore).
TILE_PUT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
"""
# Every tile record of a read in one command (a single server; a cluster pipelines HMGET per key).
# KEYS: tile records; ARGV: expiry in seconds (0: none), then per key its expected version and blob.
# `TILE_CAS_LUA` for many keys in one call (one key slot: a single node only); one 0/1 per key.
TILE_CAS_MANY_LUA = """
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HGET', key, 'v')
  local cur = v and tonumber(v) or 0
  if cur ~= tonumber(ARGV[2 * i]) then
    out[i] = 0
  else
    redis.call('HSET', key, 'v', cur + 1, 'b', ARGV[2 * i + 1])
    if ttl > 0 then
      redis.call('EXPIRE', key, ttl)
    else
      redis.call('PERSIST', key)
    end
    out[i] = 1
  end
end
return out
"""
TILE_READ_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local r = redis.call('HMGET', key, 'v', 'b')
  out[i] = {r[1] or false, r[2] or false}
end
return out
"""
_SCRIPT_SHA = hashlib.sha1(NEWEST_WINS_LUA.encode("utf-8")).hexdigest()  # what SCRIPT LOAD answers


class RedisOnlineStore:
    """Online store in Redis or Redis Cluster."""

    def __init__(self, config: RedisOnlineStoreConfig, repo_config: RepoConfig | None = None) -> None:
        try:
            import redis
            import redis.cluster
            import redis.sentinel
        except ImportError:
            raise MissingExtraError("redis", "redis") from None
        self._redis = redis
        if "{" in config.key_prefix or "}" in config.key_prefix:
            raise ConfigError("online_store.key_prefix must not contain '{' or '}' (used for hash tags)")
        self.prefix = config.key_prefix.encode("utf-8")
        self.key_ttl = config.key_ttl_seconds or 0
        self.cluster = config.redis_type == "redis_cluster"
        nodes, options = parse_connection_string(config.connection_string)
        password = options.get("password", config.password)
        username = options.get("username", config.username)
        ssl = _truthy(options["ssl"]) if "ssl" in options else config.ssl
        common: dict[str, Any] = {
            "password": password,
            "username": username,
            "ssl": ssl,
            # Bounded waits: a frozen or unreachable server answers 503 within seconds, not minutes.
            "socket_connect_timeout": _seconds(options, "socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            "socket_timeout": _seconds(options, "socket_timeout", DEFAULT_SOCKET_TIMEOUT),
        }
        if ssl and config.ssl_ca_certs:
            common["ssl_ca_certs"] = config.ssl_ca_certs
        if "ssl_cert_reqs" in options:
            common["ssl_cert_reqs"] = options["ssl_cert_reqs"]
        db = int(options.get("db", config.db))
        self.sentinel = config.redis_type == "redis_sentinel"
        self.failover_wait = config.failover_wait_seconds if self.sentinel else 0.0
        self.wait_replicas = config.wait_for_replicas
        self.wait_timeout_ms = config.wait_timeout_ms
        self.client: Any
        self._sentinel: Any = None
        sentinels = config.sentinel_nodes() if self.sentinel else []
        if self.cluster:
            startup = [redis.cluster.ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
            try:
                self.client = redis.cluster.RedisCluster(startup_nodes=startup, **common)
            except redis.exceptions.RedisError as err:
                raise BackendUnavailableError(f"Redis Cluster at {config.connection_string}: {err}") from err
        else:
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            # redis-py's default retries a refused connection for about 4 s; one quick retry
            # covers a pooled connection that a restarted server closed, and a down server
            # answers 503 at once. A timeout is not retried: a frozen server would cost a second
            # full socket_timeout (and a push or /ready would outlast backend_timeout_seconds).
            # With Sentinel, that retry reconnects to the primary the sentinels name now.
            retry = Retry(
                ExponentialBackoff(cap=0.05, base=0.01),
                _count(options, "retries", DEFAULT_RETRIES),
                supported_errors=(redis.exceptions.ConnectionError,),
            )
            if self.sentinel:
                self._sentinel = _sentinel_client(redis, config, sentinels, common)
                self.client = self._sentinel.master_for(config.sentinel_master, db=db, retry=retry)
            else:
                host, port = nodes[0]
                self.client = redis.Redis(host=host, port=port, db=db, retry=retry, **common)
        self._where = (
            f"Sentinel master '{config.sentinel_master}' ({', '.join(f'{h}:{p}' for h, p in sentinels)})"
            if self.sentinel
            else config.connection_string.split(",")[0]
        )
        self._async_settings = (
            None
            if self.cluster
            else AsyncRedisSettings(
                host=nodes[0][0],
                port=nodes[0][1],
                db=db,
                username=username,
                password=password,
                ssl=ssl,
                ssl_ca_certs=config.ssl_ca_certs,
                ssl_verify=options.get("ssl_cert_reqs", "required").lower() != "none",
                connect_timeout=common["socket_connect_timeout"],
                timeout=common["socket_timeout"],
                sentinels=tuple(sentinels),
                sentinel_master=config.sentinel_master,
                sentinel_username=config.sentinel_username,
                sentinel_password=config.sentinel_password,
            )
        )
        self._async_reader: AsyncRedisReader | None = None

    # ------------------------------------------------------------ keys and errors

    def view_prefix(self, view: OnlineView) -> bytes:
        return self.prefix + view.storage_name.encode("utf-8") + b":"

    def redis_key(self, view: OnlineView, entity_key: bytes) -> bytes:
        return self.view_prefix(view) + b"{" + entity_key.hex().encode("ascii") + b"}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        exc = self._redis.exceptions
        try:
            yield
        except self._redis.sentinel.MasterNotFoundError as err:
            raise BackendUnavailableError(
                f"Redis at {self._where} is unavailable: no sentinel names a primary that is up "
                "(a failover under way, or the sentinels are unreachable)"
            ) from err
        except (
            exc.ConnectionError,
            exc.TimeoutError,
            exc.ClusterDownError,
            exc.BusyLoadingError,
            exc.ReadOnlyError,
        ) as err:
            raise BackendUnavailableError(f"Redis at {self._where} is unavailable: {err}") from err
        except exc.RedisClusterException as err:
            raise BackendUnavailableError(f"Redis Cluster at {self._where}: {err}") from err

    def _retrying(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried while the store is unavailable for up to `failover_wait` seconds (Sentinel only).

        Only for idempotent calls: a newest-wins write, a tile compare-and-set (a retry of one that
        was applied answers "version moved", which the caller re-reads), a teardown.
        """
        deadline = time.monotonic() + self.failover_wait
        pause = 0.05
        while True:
            try:
                return fn()
            except BackendUnavailableError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.5)

    def _script_sha(self) -> str:
        # The SHA1 of the script, computed here: a server that lacks the script answers NOSCRIPT
        # and `_write` loads it. (Loading it under a lock made every writer wait, one socket
        # timeout after another, behind one stuck on a frozen server.)
        return _SCRIPT_SHA

    # ------------------------------------------------------------ protocol

    def create(self, views: Sequence[OnlineView]) -> None:
        def load() -> None:
            with self._errors():
                self.client.script_load(NEWEST_WINS_LUA)

        self._retrying(load)

    def teardown(self, views: Sequence[OnlineView]) -> None:
        self._retrying(lambda: self._teardown(views))

    def _teardown(self, views: Sequence[OnlineView]) -> None:
        with self._errors():
            for view in views:
                pattern = _glob_escape(self.view_prefix(view)) + b"*"
                batch: list[bytes] = []
                for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                    batch.append(key)
                    if len(batch) >= 1000:
                        self._unlink(batch)
                        batch = []
                if batch:
                    self._unlink(batch)

    def _unlink(self, keys: list[bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.unlink(key)
        pipe.execute()

    def write(self, view: OnlineView, rows: pa.Table) -> int:
        written = 0
        for start in range(0, max(rows.num_rows, 1), WRITE_CHUNK_ROWS):
            written += self.write_stored(view, encode_rows(view, rows.slice(start, WRITE_CHUNK_ROWS)))
        return written

    def write_stored(self, view: OnlineView, rows: EncodedRows) -> int:
        """Write encoded rows through the newest-wins script."""
        import pyarrow as pa
        import pyarrow.compute as pc

        enc = newest_per_key(rows)
        if not len(enc):
            return 0
        prefix = bin_scalar(self.view_prefix(view) + b"{")
        values = join_rows(
            [
                pc.cast(enc.event_us, pa.string()).cast(pa.binary()),
                bin_scalar(b","),
                fill_null(pc.cast(enc.created_us, pa.string()).cast(pa.binary()), b""),
                bin_scalar(b";"),
                enc.blobs,
            ]
        )
        keys = join_rows([prefix, hex_binary(enc.keys), bin_scalar(b"}")])
        self._retrying(lambda: self._run_script_packed(keys, values))
        return len(enc)

    def _run_script_packed(self, keys: pa.Array, values: pa.Array) -> None:
        """EVALSHA calls packed straight from Arrow buffers into the wire protocol, pipelined.

        On a cluster, rows are grouped by slot (a script may only touch keys of one slot) and
        each node gets its groups in one pipelined send.
        """
        import pyarrow.compute as pc

        if self.cluster:
            slots = self._slots(keys)
            order = pc.sort_indices(slots)  # stable: rows of one key keep their order
            keys, values, slots = pc.take(keys, order), pc.take(values, order), pc.take(slots, order)
        key_bulk, value_bulk = _resp_bulk(keys), _resp_bulk(values)
        ttl = str(self.key_ttl).encode("ascii")
        ttl_arg = b"$%d\r\n%s\r\n" % (len(ttl), ttl)
        exc = self._redis.exceptions
        with self._errors():
            for attempt in range(3):
                sha = self._script_sha().encode("ascii")
                plan = self._plan(slots if self.cluster else None, len(keys))
                try:
                    for client, ranges in plan:
                        commands: list[bytes | memoryview] = []
                        for s, e in ranges:
                            count = str(e - s).encode("ascii")
                            commands.append(
                                b"*%d\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                                % (2 * (e - s) + 4, len(sha), sha, len(count), count)
                            )
                            commands += [
                                concat_range(key_bulk, s, e),
                                ttl_arg,
                                concat_range(value_bulk, s, e),
                            ]
                        if not self._send_all(client, commands, len(ranges)):
                            client.script_load(NEWEST_WINS_LUA)  # this node lost or never had it
                            raise _Retry
                    return
                except _Retry:
                    pass
                except exc.ResponseError as err:
                    if not self.cluster or not str(err).startswith(("MOVED", "ASK")) or attempt == 2:
                        raise
                    self.client.nodes_manager.initialize()  # slots moved: refresh, rewrite all
            raise BackendUnavailableError(f"Redis at {self._where}: the newest-wins script could not be run")

    def _slots(self, keys: pa.Array) -> pa.Array:
        import numpy as np
        from redis.crc import key_slot

        return from_numpy(np.array([key_slot(k) for k in keys.to_pylist()], dtype=np.int32))

    def _plan(self, slots: pa.Array | None, n: int) -> list[tuple[Any, list[tuple[int, int]]]]:
        """Which client runs which row ranges: chunks of one slot, at most ROWS_PER_SCRIPT_CALL rows."""
        if slots is None:
            return [
                (
                    self.client,
                    [(s, min(n, s + ROWS_PER_SCRIPT_CALL)) for s in range(0, n, ROWS_PER_SCRIPT_CALL)],
                )
            ]
        import numpy as np

        values = as_numpy(slots)
        bounds = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), n]
        per_node: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
        manager = self.client.nodes_manager
        for lo, hi in itertools.pairwise(bounds):
            node = manager.get_node_from_slot(int(values[lo]))
            entry = per_node.setdefault(node.name, (self.client.get_redis_connection(node), []))
            entry[1].extend((s, min(hi, s + ROWS_PER_SCRIPT_CALL)) for s in range(lo, hi, ROWS_PER_SCRIPT_CALL))
        return list(per_node.values())

    def _send_all(self, client: Any, commands: list[bytes | memoryview], calls: int) -> bool:
        """Send packed commands on one connection and read every reply; False if the script was missing."""
        exc = self._redis.exceptions
        pool = client.connection_pool
        conn = pool.get_connection()
        error: Exception | None = None
        missing = False
        acked = None
        wait = self._wait_args()
        if wait:
            commands = [*commands, *conn.pack_command(*wait)]
        try:
            conn.send_packed_command(commands)
            for _ in range(calls):
                try:
                    conn.read_response()
                except exc.NoScriptError:
                    missing = True
                except exc.ResponseError as err:
                    error = error or err
            if wait:
                acked = int(conn.read_response())
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        if error is not None:
            raise error
        if acked is not None and not missing:
            self._check_acked(acked)
        return not missing

    def _wait_args(self) -> tuple[Any, ...]:
        """WAIT numreplicas timeout, sent after a write when `wait_for_replicas` asks for it."""
        return ("WAIT", self.wait_replicas, self.wait_timeout_ms) if self.wait_replicas else ()

    def _check_acked(self, acked: int) -> None:
        if acked < self.wait_replicas:
            raise BackendUnavailableError(
                f"Redis at {self._where}: a write reached {acked} of the {self.wait_replicas} replicas "
                f"wait_for_replicas asks for within {self.wait_timeout_ms} ms (it is on the primary; "
                "retrying is safe)"
            )

    def _keys(self, requests: Sequence[ReadRequest]) -> list[bytes]:
        all_keys: list[bytes] = []
        for req in requests:
            prefix = self.view_prefix(req.view) + b"{"
            all_keys.extend([prefix + k.hex().encode("ascii") + b"}" for k in req.keys])
        return all_keys

    def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        all_keys = self._keys(requests)
        with self._errors():
            if not all_keys:
                raw: list[bytes | None] = []
            elif self.cluster:
                pipe = self.client.pipeline(transaction=False)
                for key in all_keys:
                    pipe.get(key)
                raw = pipe.execute()
            else:
                raw = self.client.mget(all_keys)
        return _decode(requests, raw)

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        """As `read`, without blocking the event loop (one pipelined connection per loop).

        Redis Cluster reads go through the blocking client (they fan out to several nodes), in a thread.
        """
        if self._async_settings is None:
            return await asyncio.to_thread(self.read, requests)
        all_keys = self._keys(requests)
        if not all_keys:
            return _decode(requests, [])
        reader = self._async_reader
        if reader is None:
            reader = self._async_reader = AsyncRedisReader(self._async_settings, self._where)
        return _decode(requests, await reader.mget(all_keys))

    # ------------------------------------------------------------ tiles

    def tile_key(self, view: OnlineView, entity_key: bytes) -> bytes:
        # Under the view's prefix (teardown's scan finds it); the hash tag keeps it in the entity's slot.
        return self.view_prefix(view) + b"#t{" + entity_key.hex().encode("ascii") + b"}"

    def read_tiles(self, requests: Sequence[ReadRequest]) -> list[list[TileRecord | None]]:
        keys = [self.tile_key(req.view, k) for req in requests for k in req.keys]
        with self._errors():
            if not keys:
                raw: list[Any] = []
            elif self.cluster:
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hmget(key, "v", "b")
                raw = pipe.execute()
            else:
                raw = self.client.eval(TILE_READ_LUA, len(keys), *keys)
        out: list[list[TileRecord | None]] = []
        pos = 0
        for req in requests:
            chunk = raw[pos : pos + len(req.keys)]
            pos += len(req.keys)
            out.append([None if v is None or b is None else TileRecord(int(v), bytes(b)) for v, b in chunk])
        return out

    def write_tiles(self, view: OnlineView, writes: Sequence[TileWrite], ttl_seconds: int) -> list[bool]:
        if not writes:
            return []
        return self._retrying(lambda: self._write_tiles(view, writes, ttl_seconds))

    def _write_tiles(self, view: OnlineView, writes: Sequence[TileWrite], ttl_seconds: int) -> list[bool]:
        with self._errors():
            ttl = max(0, int(ttl_seconds))
            wait = self._wait_args()
            if not self.cluster:  # one script call for every key, not one per key
                args: list[Any] = [ttl]
                for w in writes:
                    args += (w.expected, w.blob)
                keys = [self.tile_key(view, w.key) for w in writes]
                replies = list(self.client.eval(TILE_CAS_MANY_LUA, len(keys), *keys, *args))
                if wait:
                    replies.append(self.client.execute_command(*wait))
                return self._cas_replies(replies, wait)
            pipe = self.client.pipeline(transaction=False)
            for w in writes:
                # EVAL by command: a cluster pipeline routes it by its one key (it has no eval method).
                pipe.execute_command("EVAL", TILE_CAS_LUA, 1, self.tile_key(view, w.key), w.expected, w.blob, ttl)
            if wait:
                pipe.execute_command(*wait)
            replies = pipe.execute()
        return self._cas_replies(replies, wait)

    def _cas_replies(self, replies: list[Any], wait: tuple[Any, ...]) -> list[bool]:
        if wait:
            self._check_acked(int(replies.pop()))
        return [bool(r) for r in replies]

    # ------------------------------------------------------------ backups (SupportsScan)

    def _scan_keys(self, prefix: bytes, after: bytes | None) -> list[bytes]:
        """The entity keys stored under `prefix` + "{hex}", after `after`, in byte order.

        SCAN has no order: every key name of the view is collected (names only), then sorted.
        Lower-case hex sorts as the bytes it encodes.
        """
        found: set[bytes] = set()
        with self._errors():
            for name in self.client.scan_iter(match=_glob_escape(prefix) + b"{*", count=SCAN_COUNT):
                hexed = name[len(prefix) + 1 : -1]
                try:
                    found.add(bytes.fromhex(hexed.decode("ascii")))
                except ValueError:
                    continue
        keys = sorted(found)
        if after is not None:
            keys = keys[bisect.bisect_right(keys, after) :]
        return keys

    def scan_rows(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[EncodedRows]:
        import pyarrow as pa

        keys = self._scan_keys(self.view_prefix(view), after)
        for start in range(0, len(keys), chunk_rows):
            chunk = keys[start : start + chunk_rows]
            with self._errors():
                raw = self._get_many(self._keys([ReadRequest(view, chunk)]))
            kept, event, created, blobs = [], [], [], []
            for key, value in zip(chunk, raw, strict=True):
                if value is None:
                    continue  # expired or removed since the scan
                times, _, blob = value.partition(b";")
                ev, _, cr = times.partition(b",")
                kept.append(key)
                event.append(int(ev))
                created.append(int(cr) if cr else None)
                blobs.append(blob)
            if kept:
                yield EncodedRows(
                    pa.array(kept, pa.binary()),
                    pa.array(event, pa.int64()),
                    pa.array(created, pa.int64()),
                    pa.array(blobs, pa.binary()),
                )

    def _get_many(self, names: list[bytes]) -> list[bytes | None]:
        if not self.cluster:
            return list(self.client.mget(names))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.get(name)
        return list(pipe.execute())

    def scan_tiles(self, view: OnlineView, after: bytes | None, chunk_rows: int) -> Iterator[pa.Table]:
        from potluck.online.sql import tile_table

        keys = self._scan_keys(self.view_prefix(view) + b"#t", after)
        for start in range(0, len(keys), chunk_rows):
            chunk = keys[start : start + chunk_rows]
            records = self.read_tiles([ReadRequest(view, chunk)])[0]
            found = [(k, r) for k, r in zip(chunk, records, strict=True) if r is not None]
            if found:
                yield tile_table([k for k, _ in found], [r.version for _, r in found], [r.blob for _, r in found])

    def put_tiles(self, view: OnlineView, tiles: pa.Table, ttl_seconds: int) -> int:
        keys = tiles.column("entity_key").to_pylist()
        versions = tiles.column("version").to_pylist()
        blobs = tiles.column("blob").to_pylist()

        def put() -> int:
            with self._errors():
                pipe = self.client.pipeline(transaction=False)
                for key, version, blob in zip(keys, versions, blobs, strict=True):
                    pipe.execute_command(
                        "EVAL", TILE_PUT_LUA, 1, self.tile_key(view, key), version, blob, max(0, int(ttl_seconds))
                    )
                return sum(int(r) for r in pipe.execute())

        return self._retrying(put) if keys else 0

    def close(self) -> None:
        if self._async_reader is not None:
            self._async_reader.close()
        self.client.close()
        if self._sentinel is not None:
            self._sentinel.close()


def _sentinel_client(
    redis: Any, config: RedisOnlineStoreConfig, sentinels: list[tuple[str, int]], common: dict[str, Any]
) -> Any:
    """A `redis.sentinel.Sentinel` over `sentinels`: its own credentials, the data nodes' TLS and timeouts.

    A sentinel that does not answer is skipped at once (no retries): the next one is asked.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    own = {k: v for k, v in common.items() if k.startswith(("socket_", "ssl"))}
    own |= {"password": config.sentinel_password, "username": config.sentinel_username, "retry": Retry(NoBackoff(), 0)}
    return Sentinel(sentinels, sentinel_kwargs=own, **common)  # type: ignore[no-untyped-call]


def _decode(requests: Sequence[ReadRequest], raw: Sequence[bytes | None]) -> list[ReadResult]:
    """Stored values (`<event_us>,<created_us>;<row blob>`, in request order) as read results."""
    results: list[ReadResult] = []
    pos = 0
    for req in requests:
        decode = req.view.row_codec.decode
        rows: list[list[Any] | None] = []
        stamps: list[int | None] = []
        for value in raw[pos : pos + len(req.keys)]:
            if value is None:
                rows.append(None)
                stamps.append(None)
                continue
            cut = value.index(b";")
            decoded = decode(value[cut + 1 :])
            rows.append(decoded)
            stamps.append(None if decoded is None else int(value[: value.index(b",")]))
        pos += len(req.keys)
        results.append(ReadResult(rows, stamps))
    return results


def _glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for byte in raw:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)


class _Retry(Exception):
    pass


def _resp_bulk(col: pa.Array) -> pa.Array:
    """Each value as a RESP bulk string: `$<len>\\r\\n<bytes>\\r\\n`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.cast(pc.binary_length(col), pa.string()).cast(pa.binary())
    crlf = bin_scalar(b"\r\n")
    return join_rows([bin_scalar(b"$"), lengths, crlf, col, crlf])
