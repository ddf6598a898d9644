"""Redis-stream EventLog adapter: explicit `seq-0` stream ids, one Lua script call per append."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, WatchError

from shared.eventlog.auth import ProducerKeys
from shared.eventlog.effects import Effect
from shared.eventlog.entry import (
    GENESIS_HASH,
    Content,
    Entry,
    NewEntry,
    content_digest,
    encode_content,
    entry_of,
)
from shared.eventlog.lease import LeaseLost
from shared.eventlog.port import DuplicateAppend, LogCorrupt, LogFenced
from shared.eventlog.redis_wire import RedisPyWire, RespWire, Row, Wire, script_command
from shared.eventlog.verify import ChainVerifier
from shared.keys import Keys
from shared.resp import Command, RespClient

__all__ = [
    "NO_BELLS",
    "OLD_FORMAT",
    "Bells",
    "Effect",
    "RedisEventLog",
    "decode_stream_entry",
    "encode_entry",
]

_decoder = msgspec.msgpack.Decoder(Content)

# redis-py 8 gives every connection a 5 s socket timeout; a longer XREAD BLOCK would trip it.
_MAX_BLOCK_MS = 1000
# KEYS: the log, the positions hash, the writer's lease (the positions hash again for a writer without
# one), then the bells to ring (ARGV[5] of them), then the index streams of the batch's indexed types
# (ARGV[7] of them), then one key per effect.
# ARGV: producer, position ("" for none), the head seq the writer expects ("" for any), the entry count
# n, the bell count b, the writer's lease value ("" for none), the index count x, then the x indexed
# types (in the order of their keys), then (type, encoded content, content sha256 hex) per entry, then
# the effects to run once the batch has landed, each as (argument count, the batch's entry it reports,
# 1-based, or 0, command, arguments) on its own key. The script seals: it takes the head's seq and link
# and chains each entry on (link_hash in entry.py), so writers never race for the head. Replies {'OK',
# first seq, link before it, then each entry's link}, {'DUP', stored position}, {'FENCED', head seq},
# {'LEASE', holder}, {'BADHEAD', head id} or {'BADINDEX', index key}.
_APPEND_LUA = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local seq, link = 0, string.rep('0', 40)
if last then
  seq, link = tonumber(string.match(last[1], '^(%d+)%-0$')), nil
  for i = 1, #last[2], 2 do
    if last[2][i] == 'h' then link = last[2][i + 1] end
  end
  if seq == nil or link == nil or #link ~= 40 then return {'BADHEAD', last[1]} end
end
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= seq then return {'FENCED', string.format('%d', seq)} end
-- A second copy of the writer, or a first one that stalled past its lease: refused, not written beside.
if ARGV[6] ~= '' then
  local holder = redis.call('GET', KEYS[3])
  if holder ~= ARGV[6] then return {'LEASE', holder or ''} end
end
-- Lua compares strings with strcoll and Redis takes LC_COLLATE from its environment; positions
-- must order bytewise, as Python's str comparison does.
local function sorts_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
if ARGV[2] ~= '' then
  local stored = redis.call('HGET', KEYS[2], ARGV[1])
  if stored and not sorts_after(ARGV[2], stored) then return {'DUP', stored} end
end
local n, b, x = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
-- An index stream holds a copy of each entry of its type under the same id (a reader in another
-- partition follows it instead of the whole log). Checked before anything is written: Redis does not
-- undo a script's writes when a later call fails, and a log entry without its copy must not happen.
local index = {}
for j = 1, x do
  local newest = redis.call('XREVRANGE', KEYS[3 + b + j], '+', '-', 'COUNT', 1)[1]
  if newest and tonumber(string.match(newest[1], '^(%d+)%-')) > seq then
    return {'BADINDEX', KEYS[3 + b + j]}
  end
  index[ARGV[7 + j]] = 3 + b + j
end
local reply = {'OK', string.format('%d', seq + 1), link}
local id = ''
for i = 8 + x, 7 + x + 3 * n, 3 do
  seq = seq + 1
  local text = string.format('%d', seq)
  local prev = link
  link = redis.sha1hex(prev .. ':' .. text .. ':' .. ARGV[i + 2])
  id = text .. '-0'
  redis.call('XADD', KEYS[1], id, 't', ARGV[i], 'e', ARGV[i + 1], 'p', prev, 'h', link)
  if index[ARGV[i]] then
    redis.call('XADD', KEYS[index[ARGV[i]]], id, 't', ARGV[i], 'e', ARGV[i + 1], 'p', prev, 'h', link)
  end
  reply[#reply + 1] = link
end
-- Wake-up bells: a reader blocks on its bell stream, not on the log, so entries of types it only folds
-- do not wake it; the writer names the bells its batch's types ring.
for k = 4, 3 + b do
  redis.call('XADD', KEYS[k], 'MAXLEN', '1', '*', 's', id)
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
-- The writer's own effects, atomic with its append (intake: the batch's reject reports and XACK;
-- matching: the reports of its events). An effect that reports entry `at` of the batch is completed with
-- that entry's seq, which only the script knows: the first NUL byte of each argument (JSON never holds
-- one) becomes it.
local first = tonumber(reply[2])
local i, k = 8 + x + 3 * n, 4 + b + x
while i <= #ARGV do
  local count, at = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if at == 0 then
    redis.call(ARGV[i + 2], KEYS[k], unpack(ARGV, i + 3, i + 2 + count))
  else
    local text, args = string.format('%d', first + at - 1), {}
    for a = i + 3, i + 2 + count do args[#args + 1] = (string.gsub(ARGV[a], '%z', text, 1)) end
    redis.call(ARGV[i + 2], KEYS[k], unpack(args))
  end
  i, k = i + 3 + count, k + 1
end
return reply
"""


# The first byte of a format-2 entry's content: a msgpack array of 7 (format 3 has 8, the tag added).
_FORMAT_2_CONTENT = b"\x97"
OLD_FORMAT = (
    "written in log format 2 (no producer tags; participant secrets in the clear); this version reads "
    "format 3 only (docs/operations.md, 'Log formats')"
)


def encode_entry(entry: Entry) -> dict[str, bytes]:
    """The stream fields of a sealed entry: `t` lets readers skip by type without decoding `e` (the
    content), `p` and `h` are the links in hex, as the append script writes them."""
    return {
        "t": entry.type.encode(),
        "e": encode_content(entry.content()),
        "p": entry.prev_hash.hex().encode(),
        "h": entry.hash.hex().encode(),
    }


def decode_stream_entry(stream_id: bytes, fields: Mapping[bytes, bytes]) -> Entry:
    """Decode one stream entry, or raise LogCorrupt naming the seq its stream id stands for."""
    id_text = stream_id.decode()
    seq_text, _, tail = id_text.partition("-")
    seq = int(seq_text)
    if b"h" not in fields:
        raise LogCorrupt(
            seq, f"no link at stream id {id_text} (damaged, or a log from before the script sealed)"
        )
    try:
        content = _decoder.decode(fields[b"e"])
        prev_hash, link = bytes.fromhex(fields[b"p"].decode()), bytes.fromhex(fields[b"h"].decode())
    except (KeyError, ValueError, msgspec.DecodeError) as exc:
        if fields.get(b"e", b"")[:1] == _FORMAT_2_CONTENT:
            raise LogCorrupt(seq, OLD_FORMAT) from exc
        raise LogCorrupt(seq, f"undecodable entry at stream id {id_text}: {exc}") from exc
    if tail != "0":
        raise LogCorrupt(seq, f"stream id {id_text} is not <seq>-0")
    if len(prev_hash) != len(GENESIS_HASH) or len(link) != len(GENESIS_HASH):
        raise LogCorrupt(seq, f"links of {len(prev_hash)} and {len(link)} bytes at stream id {id_text}")
    if fields.get(b"t") != content.type.encode():
        raise LogCorrupt(seq, f"type field {fields.get(b't')!r} disagrees with the entry's {content.type!r}")
    return entry_of(content, seq=seq, prev_hash=prev_hash, hash=link)


class _Batch:
    """A writer's entries encoded for the append script, and the sealed entries its reply makes."""

    def __init__(
        self, producer: str, entries: Sequence[NewEntry], logged_ns: int, producer_keys: ProducerKeys
    ) -> None:
        self.producer, self.entries = producer, entries
        self.contents = [producer_keys.content(new, producer, logged_ns) for new in entries]
        self.encoded = [encode_content(content) for content in self.contents]
        self.digests = [content_digest(encoded) for encoded in self.encoded]

    def script_call(
        self,
        keys: Keys,
        bells: Bells,
        position: str | None,
        expect_seq: int | None,
        effects: Sequence[Effect] = (),
        lease: tuple[str, str] | None = None,
    ) -> tuple[list[str], list[str | bytes | int]]:
        """The script's KEYS and ARGV for this batch (`bells`: the routes its types take)."""
        expected = "" if expect_seq is None else str(expect_seq)
        types = [new.type for new in self.entries]
        rung, indexed = bells.rung_by(types), bells.indexes_for(types)
        lease_key, lease_value = lease or (keys.positions, "")
        args: list[str | bytes | int] = [
            self.producer, position or "", expected, len(self.entries), len(rung), lease_value, len(indexed),
            *(entry_type for entry_type, _ in indexed),
        ]  # fmt: skip
        for new, encoded, digest in zip(self.entries, self.encoded, self.digests, strict=True):
            args += [new.type, encoded, digest]
        for effect in effects:
            args += [len(effect.args), effect.reports, effect.command, *effect.args]
        return [
            keys.log, keys.positions, lease_key, *rung, *(key for _, key in indexed),
            *(effect.key for effect in effects),
        ], args  # fmt: skip

    def sealed(self, reply: list[Any], expect_seq: int | None) -> list[Entry]:
        """The entries as the script sealed them, or the refusal raised."""
        status = reply[0]
        if status == b"DUP":
            raise DuplicateAppend(f"{self.producer} already appended position {reply[1].decode()!r}")
        if status == b"FENCED":
            raise LogFenced(f"expected head seq {expect_seq}, found {reply[1].decode()}")
        if status == b"LEASE":
            holder = reply[1].decode() or "nobody (it lapsed)"
            raise LeaseLost(f"{self.producer} may not append: its process's lease is held by {holder}")
        if status == b"BADINDEX":
            index = reply[1].decode()
            raise LogCorrupt(0, f"the index stream {index} is ahead of the log: nothing was written")
        if status == b"BADHEAD":
            head_id = reply[1].decode()
            why = f"the head at {head_id} has no chain link: see `greenex log repair-head`"
            raise LogCorrupt(int(head_id.partition("-")[0] or 0), why)
        seq, prev = int(reply[1]), bytes.fromhex(reply[2].decode())
        sealed: list[Entry] = []
        for content, hex_link in zip(self.contents, reply[3:], strict=True):
            link = bytes.fromhex(hex_link.decode())
            sealed.append(entry_of(content, seq=seq, prev_hash=prev, hash=link))
            seq, prev = seq + 1, link
        return sealed


class Bells:
    """Which readers an append wakes: each reader's bell rings for the entry types it answers. And which
    entry types are also copied, under the same id, to an index stream of their type (`log:index:<type>`),
    for a reader that wants that type alone (another partition's transfers process: it would otherwise
    read every entry of this log to find its debits).

    The routes are static (the system map gives every reader's types, services/system.py), so no
    registration lives in Redis and a writer knows every key its script touches before it runs.
    """

    def __init__(
        self, keys: Keys, readers: Mapping[str, Collection[str]], indexed: Collection[str] = ()
    ) -> None:
        by_type: dict[str, list[str]] = {}
        for reader, types in sorted(readers.items()):
            for entry_type in types:
                by_type.setdefault(entry_type, []).append(keys.bell(reader))
        self._by_type = {entry_type: tuple(bells) for entry_type, bells in by_type.items()}
        self._indexes = {entry_type: keys.index(entry_type) for entry_type in indexed}

    def rung_by(self, types: Iterable[str]) -> list[str]:
        """The bells a batch of entries of these types rings, each once, in a stable order."""
        return sorted({bell for entry_type in set(types) for bell in self._by_type.get(entry_type, ())})

    @property
    def indexes(self) -> Mapping[str, str]:
        """Indexed type -> its index stream."""
        return self._indexes

    def indexes_for(self, types: Iterable[str]) -> list[tuple[str, str]]:
        """(type, index stream) for each indexed type among these, in a stable order."""
        return sorted((t, self._indexes[t]) for t in set(types) if t in self._indexes)


NO_BELLS = Bells(Keys(), {})


class RedisEventLog:
    """The EventLog port over a Redis stream, with producer positions in a hash beside it.

    `producer_keys`: tags what this writer appends (shared/eventlog/auth.py); a reader needs none.
    `bells`: the readers this writer wakes (none: readers find its entries within their block_ms).
    `reader`: the bell this instance's follow() waits on; without one it blocks on the log itself.
    `stream`: read this stream instead of the log, an index of it (`Keys.index`): same ids, same entries.
    With `resp` the hot commands (append, read, follow) go through the lean client (shared/resp.py),
    whose connections the caller closes; without it everything goes through redis-py.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        clock: Callable[[], int] = time.time_ns,
        *,
        producer_keys: ProducerKeys | None = None,
        resp: RespClient | None = None,
        bells: Bells = NO_BELLS,
        reader: str | None = None,
        lease: tuple[str, str] | None = None,
        stream: str | None = None,
    ) -> None:
        self.redis = redis
        self.lease = lease  # (key, value): every append carries it, and is refused once it is not ours
        self.keys = keys
        self.key = stream or keys.log
        self.producer_keys = producer_keys
        self._clock = clock
        self._wire: Wire = RedisPyWire(redis) if resp is None else RespWire(resp)
        self._bells = bells
        self._bell = None if reader is None else keys.bell(reader)
        self._bell_seen = "0-0"
        self._behind = True  # the last read filled its page: read on without waiting for a bell

    def _signer(self) -> ProducerKeys:
        if self.producer_keys is None:
            raise PermissionError("this log handle holds no producer keys: it reads, it cannot append")
        return self.producer_keys

    async def append(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str | None = None,
        expect_seq: int | None = None,
        effects: Sequence[Effect] = (),
    ) -> list[Entry]:
        """The port's append; `effects`: commands Redis runs right after the batch lands, in the same
        script (atomic with it; not run if the append is refused)."""
        if position == "":
            raise ValueError("a position must be a non-empty string")
        if not entries and position is None and not effects:
            return []
        batch = _Batch(producer, entries, self._clock(), self._signer())
        keys, args = batch.script_call(self.keys, self._bells, position, expect_seq, effects, self.lease)
        reply = await self._wire.run_script(_APPEND_LUA, keys, args)
        return batch.sealed(reply, expect_seq)

    def append_command(
        self, producer: str, entries: Sequence[NewEntry], *, position: str, effects: Sequence[Effect] = ()
    ) -> tuple[Command, Callable[[list[Any]], list[Entry]]]:
        """append() as a command for the caller to send in a write of its own (EVALSHA: after a Redis
        restart it fails with NoScriptError, having done nothing, and append() is the way to retry),
        and the function that turns its reply into the sealed entries or raises the refusal."""
        batch = _Batch(producer, entries, self._clock(), self._signer())
        keys, args = batch.script_call(self.keys, self._bells, position, None, effects, self.lease)
        return script_command(_APPEND_LUA, keys, args), partial(batch.sealed, expect_seq=None)

    async def append_then_follow(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str,
        after_seq: int,
        limit: int,
        block_ms: int,
        effects: Sequence[Effect] = (),
    ) -> tuple[list[Entry], list[Entry]]:
        """append(), then follow(after_seq), in one write where it can: the append script, the wait on
        this reader's bell, the range. Without a bell (or with a backlog to read, or nothing to append)
        it is the two calls in turn."""
        if self._bell is None or self._behind or not entries:
            return await self._in_turn(producer, entries, position, after_seq, limit, block_ms, effects)
        batch = _Batch(producer, entries, self._clock(), self._signer())
        keys, args = batch.script_call(self.keys, self._bells, position, None, effects, self.lease)
        try:
            reply, bell_id, rows = await self._wire.append_then_ring(
                _APPEND_LUA,
                keys,
                args,
                (self._bell, self._bell_seen, max(1, min(block_ms, _MAX_BLOCK_MS))),
                (self.key, _first_id_after(after_seq), limit),
            )
        except NoScriptError:
            # Redis lost its script cache (a restart): nothing was appended; load it the plain way.
            return await self._in_turn(producer, entries, position, after_seq, limit, block_ms, effects)
        self._note_read(bell_id, rows, limit)
        following = [decode_stream_entry(stream_id, fields) for stream_id, fields in rows]
        return batch.sealed(reply, None), following

    async def _in_turn(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        position: str,
        after_seq: int,
        limit: int,
        block_ms: int,
        effects: Sequence[Effect],
    ) -> tuple[list[Entry], list[Entry]]:
        """append_then_follow as two calls in turn."""
        appended = await self.append(producer, entries, position=position, effects=effects)
        return appended, await self.follow(after_seq, limit, block_ms)

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        entries, fault = await self.read_checked(after_seq, limit)
        if fault is not None:
            raise fault
        return entries

    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        """The good entries after `after_seq`, and the fault that stopped the page early, if any."""
        rows = await self._wire.xrange(self.key, _first_id_after(after_seq), limit)
        good: list[Entry] = []
        for stream_id, fields in rows:
            try:
                good.append(decode_stream_entry(stream_id, fields))
            except LogCorrupt as fault:
                return good, fault
        return good, None

    async def follow(
        self, after_seq: int, limit: int = 1000, block_ms: int = 100, *, first: Sequence[Command] = ()
    ) -> list[Entry]:
        """Like read, waiting up to block_ms for entries; block_ms <= 0 never waits (unlike XREAD's 0).

        `first`: commands sent ahead of the read, in the same write with the lean client (a reader that
        writes after each batch saves a round trip); their error replies raise.
        """
        if block_ms <= 0:
            if first:
                await self._wire.execute(first)
            return await self.read(after_seq, limit)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        while True:
            wait_ms = max(1, min(_MAX_BLOCK_MS, round((deadline - loop.time()) * 1000)))
            rows = await self._wait_rows(max(after_seq, 0), limit, wait_ms, first)
            first = ()
            if rows:
                return [decode_stream_entry(stream_id, fields) for stream_id, fields in rows]
            if loop.time() >= deadline:
                return []

    async def _wait_rows(
        self, after_seq: int, limit: int, wait_ms: int, first: Sequence[Command]
    ) -> list[Row]:
        if self._bell is None:
            # XREAD returns ids strictly greater than the one given, so pass the last seen seq.
            return await self._wire.xread(self.key, f"{after_seq}-0", limit, wait_ms, first)
        start = _first_id_after(after_seq)
        bell_id: str | None = None
        if self._behind:  # a backlog (or a fresh start): no ring is owed for entries already there
            rows = await self._wire.xrange(self.key, start, limit, first)
        else:
            # One round trip: Redis runs the range only once the bell's XREAD returns, so the range holds
            # everything appended up to the ring; a ring after the bell id we saw returns at once.
            bell_id, rows = await self._wire.ring_then_range(
                self._bell, self._bell_seen, wait_ms, self.key, start, limit, first
            )
        self._note_read(bell_id, rows, limit)
        return rows

    def _note_read(self, bell_id: str | None, rows: list[Row], limit: int) -> None:
        """After a read: the newest ring it consumed, and whether it filled its page (a backlog to read on
        without waiting for a bell)."""
        if bell_id is not None:
            self._bell_seen = bell_id
        self._behind = len(rows) >= limit

    async def head(self) -> tuple[int, bytes]:
        return _head_of(await self._wire.last(self.key))

    async def position(self, producer: str) -> str:
        stored = cast(bytes | None, await self.redis.hget(self.keys.positions, producer))
        return "" if stored is None else stored.decode()

    async def import_entries(self, entries: Sequence[Entry]) -> None:
        """Load sealed entries after the current head, all or nothing, or raise LogCorrupt/LogFenced.

        Producer positions are not rebuilt: a position names a producer's input, which entries do not
        record, so producers resuming on an imported log must re-establish theirs. The index streams of
        this handle's routes (`bells`) get their copies in the same MULTI, as the append script gives them.
        """
        indexes = self._bells.indexes
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.key, *indexes.values())  # a concurrent append voids the transaction
            # Under WATCH, before MULTI, the pipeline runs commands at once and returns their replies.
            head_seq, head_hash = _head_of(cast(list[Row], await pipe.xrevrange(self.key, "+", "-", count=1)))
            verifier = ChainVerifier(start_seq=head_seq + 1, prev_hash=head_hash)
            for entry in entries:
                verifier.check(entry)
            for index in indexes.values():  # EXEC does not undo what ran before a failing command
                newest = cast(list[Row], await pipe.xrevrange(index, "+", "-", count=1))
                if newest and int(newest[0][0].partition(b"-")[0]) > head_seq:
                    raise LogCorrupt(head_seq + 1, f"the index stream {index} is ahead of the log")
            pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1
            for entry in entries:
                fields, at = encode_entry(entry), f"{entry.seq}-0"
                pipe.xadd(self.key, fields, id=at)  # type: ignore[arg-type]
                if entry.type in indexes:
                    pipe.xadd(indexes[entry.type], fields, id=at)  # type: ignore[arg-type]
            try:
                await pipe.execute()
            except WatchError as exc:
                raise LogFenced(f"{self.key} moved during the import; nothing was written") from exc

    async def rebuild_indexes(self, page: int = 5000) -> dict[str, int]:
        """Rebuild the index streams of this handle's routes from the entries the stream holds, in one
        MULTI under WATCH of the log (an append meanwhile voids it: LogFenced, run it again); the copies
        per index. For an index damaged or deleted (appends of its type refused: 'ahead of the log').
        Entries archived out of the stream are not copied: old debits, credited long ago."""
        indexes = self._bells.indexes
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.key)
            found: list[tuple[str, bytes, dict[bytes, bytes]]] = []
            after = 0
            while rows := cast(
                list[Row], await pipe.xrange(self.key, _first_id_after(after), "+", count=page)
            ):
                found += _index_rows(rows, indexes)
                after = int(rows[-1][0].partition(b"-")[0])
            pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1
            for key in indexes.values():
                pipe.delete(key)
            for key, stream_id, fields in found:
                pipe.xadd(key, fields, id=stream_id)  # type: ignore[arg-type]
            try:
                await pipe.execute()
            except WatchError as exc:
                raise LogFenced(
                    f"{self.key} moved during the rebuild; nothing was written: run it again"
                ) from exc
        return {key: sum(1 for k, _, _ in found if k == key) for key in indexes.values()}


def _index_rows(rows: list[Row], indexes: Mapping[str, str]) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
    """(index key, stream id, fields) of each row of an indexed type."""
    out = []
    for stream_id, fields in rows:
        key = indexes.get(fields.get(b"t", b"").decode())
        if key is not None:
            out.append((key, stream_id, dict(fields)))
    return out


def _first_id_after(seq: int) -> str:
    """The stream id of the entry after `seq` (XRANGE is inclusive)."""
    return f"{max(seq, 0) + 1}-0"


def _head_of(rows: list[Row]) -> tuple[int, bytes]:
    """(seq, hash) of an XREVRANGE COUNT 1 reply."""
    if not rows:
        return 0, GENESIS_HASH
    entry = decode_stream_entry(*rows[0])
    return entry.seq, entry.hash
