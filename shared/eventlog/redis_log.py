"""Redis-stream EventLog adapter: explicit `seq-0` stream ids, one Lua script call per append."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, WatchError

from shared.eventlog.entry import GENESIS_HASH, Entry, NewEntry, seal
from shared.eventlog.port import DuplicateAppend, LogCorrupt, LogFenced
from shared.eventlog.redis_wire import RedisPyWire, RespWire, Row, Wire, rows_of
from shared.eventlog.verify import ChainVerifier
from shared.resp import Command, RespClient

__all__ = ["RedisEventLog", "decode_stream_entry", "encode_entry"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)

# redis-py 8 gives every connection a 5 s socket timeout; a longer XREAD BLOCK would trip it.
_MAX_BLOCK_MS = 1000
# Each retry means another writer made progress, so this only trips on a bug or a broken server.
_MAX_ATTEMPTS = 10_000

# KEYS: stream, positions hash, optionally a bell to ring when the batch is refused (its writer waits on
# it in the same write: the ring ends that wait at once, so the retry is not held up).
# ARGV: head id the batch was sealed on ("" if empty), that head's hash, producer, position ("" for
# none), then (stream id, type, encoded entry) per entry.
_APPEND_LUA = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local head_id, head_e = '', ''
if last then
  head_id = last[1]
  for i = 1, #last[2], 2 do
    if last[2][i] == 'e' then head_e = last[2][i + 1] end
  end
end
-- An encoded Entry is an array ending in its 32-byte hash, so the tail of `e` is the head's hash:
-- comparing it too refuses a batch sealed on a different chain that happens to have the same seq.
if head_id ~= ARGV[1] or string.sub(head_e, -32) ~= ARGV[2] then
  if KEYS[3] then redis.call('XADD', KEYS[3], 'MAXLEN', '1', '*', 's', 'moved') end
  if last then return {'MOVED', last[1], last[2]} end
  return {'MOVED'}
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
if ARGV[4] ~= '' then
  local stored = redis.call('HGET', KEYS[2], ARGV[3])
  if stored and not sorts_after(ARGV[4], stored) then return {'DUP', stored} end
end
-- Wake-up bells: a reader that registered the types it reads (SADD <log>:wake:<type> <reader>) blocks on
-- its bell stream, not on the log, so entries it skips anyway do not wake it.
local readers_of, rung = {}, {}
for i = 5, #ARGV, 3 do
  redis.call('XADD', KEYS[1], ARGV[i], 't', ARGV[i + 1], 'e', ARGV[i + 2])
  local t = ARGV[i + 1]
  if readers_of[t] == nil then readers_of[t] = redis.call('SMEMBERS', KEYS[1] .. ':wake:' .. t) end
  for _, reader in ipairs(readers_of[t]) do rung[reader] = true end
end
for reader in pairs(rung) do
  redis.call('XADD', KEYS[1] .. ':bell:' .. reader, 'MAXLEN', '1', '*', 's', ARGV[#ARGV - 2])
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return {'OK'}
"""


def encode_entry(entry: Entry) -> dict[str, bytes]:
    """The stream fields of an entry: `t` lets readers skip by type without decoding `e`."""
    return {"t": entry.type.encode(), "e": _encoder.encode(entry)}


def decode_stream_entry(stream_id: bytes, fields: Mapping[bytes, bytes]) -> Entry:
    """Decode one stream entry, or raise LogCorrupt naming the seq its stream id stands for."""
    id_text = stream_id.decode()
    seq = int(id_text.partition("-")[0])
    try:
        entry = _decoder.decode(fields[b"e"])
    except (KeyError, msgspec.DecodeError) as exc:
        raise LogCorrupt(seq, f"undecodable entry at stream id {id_text}: {exc}") from exc
    if id_text != f"{entry.seq}-0":
        raise LogCorrupt(seq, f"stream id {id_text} holds an entry with seq {entry.seq}")
    if fields.get(b"t") != entry.type.encode():
        raise LogCorrupt(seq, f"type field {fields.get(b't')!r} disagrees with the entry's {entry.type!r}")
    return entry


def _head_id(seq: int) -> str:
    return "" if seq == 0 else f"{seq}-0"


class RedisEventLog:
    """The EventLog port over a Redis stream; producer positions live in the hash `{key}:positions`.

    With `resp` the hot commands (append, read, follow) go through the lean client (shared/resp.py),
    whose connections the caller closes; without it everything goes through redis-py.
    """

    def __init__(
        self,
        redis: Redis,
        key: str = "greenex:log",
        clock: Callable[[], int] = time.time_ns,
        *,
        resp: RespClient | None = None,
    ) -> None:
        self.redis = redis
        self.key = key
        self.positions_key = f"{key}:positions"
        self._clock = clock
        self._wire: Wire = RedisPyWire(redis) if resp is None else RespWire(resp)
        # The head this handle last saw: saves a read per append; the script refuses it when stale.
        self._head: tuple[int, bytes] | None = None
        # Set by wake_on: follow() then blocks on this reader's bell instead of on the log itself.
        self._bell: str | None = None
        self._bell_seen = "0-0"
        self._behind = True  # the last read filled its page: read on without waiting for a bell

    async def wake_on(self, reader: str, types: Collection[str]) -> None:
        """Register `reader` for the entry types it reads: appends of other types no longer wake its
        follow(). Registrations only add wake-ups (a stale one costs a spurious read, never a miss)."""
        await self._wire.execute([("SADD", f"{self.key}:wake:{t}", reader) for t in sorted(types)])
        self._bell, self._bell_seen, self._behind = f"{self.key}:bell:{reader}", "0-0", True

    async def append(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str | None = None,
        expect_seq: int | None = None,
    ) -> list[Entry]:
        if position == "":
            raise ValueError("a position must be a non-empty string")
        if not entries and position is None:
            return []
        head = self._head
        if head is None or (expect_seq is not None and head[0] != expect_seq):
            head = await self.head()  # a stale cache must not fence a writer whose expectation holds
        for _ in range(_MAX_ATTEMPTS):
            if expect_seq is not None and head[0] != expect_seq:
                raise LogFenced(f"expected head seq {expect_seq}, found {head[0]}")
            sealed = self._seal(producer, entries, head)
            reply = await self._run_script(producer, position, head, sealed)
            if reply[0] == b"OK":
                self._head = (sealed[-1].seq, sealed[-1].hash) if sealed else head
                return sealed
            if reply[0] == b"DUP":
                raise DuplicateAppend(f"{producer} already appended position {reply[1].decode()!r}")
            head = self._head = self._moved_head(reply)
        raise RuntimeError(f"append to {self.key} kept losing the race after {_MAX_ATTEMPTS} attempts")

    async def append_then_follow(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        *,
        position: str,
        after_seq: int,
        limit: int,
        block_ms: int,
    ) -> tuple[list[Entry], list[Entry]]:
        """append(), then follow(after_seq), in one write where it can: the append script, the wait on
        this reader's bell, the range. A refused append rings that bell, so the wait ends at once and the
        append is retried before returning. Needs wake_on(producer, ...) and a known head; otherwise (and
        with a backlog to read) it is the two calls in turn."""
        if self._bell != f"{self.key}:bell:{producer}" or self._head is None or self._behind or not entries:
            return await self._apart(producer, entries, position, after_seq, limit, block_ms)
        head = self._head
        sealed = self._seal(producer, entries, head)
        try:
            reply, bell_id, rows = await self._wire.append_then_ring(
                _APPEND_LUA,
                [self.key, self.positions_key, self._bell],
                self._script_args(producer, position, head, sealed),
                (self._bell, self._bell_seen, max(1, min(block_ms, _MAX_BLOCK_MS))),
                (self.key, f"{max(after_seq, 0) + 1}-0", limit),
            )
        except NoScriptError:
            # Redis lost its script cache (a restart): nothing was appended; load it the plain way.
            return await self._apart(producer, entries, position, after_seq, limit, block_ms)
        if bell_id is not None:
            self._bell_seen = bell_id
        self._behind = len(rows) >= limit
        following = [decode_stream_entry(stream_id, fields) for stream_id, fields in rows]
        if reply[0] == b"DUP":
            raise DuplicateAppend(f"{producer} already appended position {reply[1].decode()!r}")
        if reply[0] == b"OK":
            self._head = (sealed[-1].seq, sealed[-1].hash)
            appended = sealed
        else:
            self._head = self._moved_head(reply)
            appended = []
        if following:
            self._saw(following[-1])
        if not appended:
            appended = await self.append(producer, entries, position=position)
        return appended, following

    async def _apart(
        self,
        producer: str,
        entries: Sequence[NewEntry],
        position: str,
        after_seq: int,
        limit: int,
        block_ms: int,
    ) -> tuple[list[Entry], list[Entry]]:
        """append_then_follow as two calls in turn."""
        appended = await self.append(producer, entries, position=position)
        return appended, await self.follow(after_seq, limit, block_ms)

    def _seal(self, producer: str, entries: Sequence[NewEntry], head: tuple[int, bytes]) -> list[Entry]:
        seq, prev_hash = head
        logged_ns = self._clock()
        sealed: list[Entry] = []
        for new in entries:
            seq += 1
            sealed.append(seal(new, seq=seq, producer=producer, logged_ns=logged_ns, prev_hash=prev_hash))
            prev_hash = sealed[-1].hash
        return sealed

    async def _run_script(
        self, producer: str, position: str | None, head: tuple[int, bytes], sealed: list[Entry]
    ) -> list[Any]:
        args = self._script_args(producer, position, head, sealed)
        return await self._wire.run_script(_APPEND_LUA, [self.key, self.positions_key], args)

    @staticmethod
    def _script_args(
        producer: str, position: str | None, head: tuple[int, bytes], sealed: list[Entry]
    ) -> list[str | bytes]:
        args: list[str | bytes] = [_head_id(head[0]), head[1] if head[0] else b"", producer, position or ""]
        for entry in sealed:
            args += [f"{entry.seq}-0", entry.type.encode(), _encoder.encode(entry)]
        return args

    def _saw(self, entry: Entry) -> None:
        """Remember the newest entry read as the likely head: a follower appends right after reading, and
        sealing on a stale head costs a refused script call and a second one (measured: about one
        retry per append with four writers when only the handle's own appends moved the cache)."""
        if self._head is None or entry.seq > self._head[0]:
            self._head = (entry.seq, entry.hash)

    @staticmethod
    def _moved_head(reply: list[Any]) -> tuple[int, bytes]:
        """The head from a MOVED reply: empty, or the head's stream id and flat field list."""
        return _head_of(rows_of([reply[1:]]) if len(reply) > 1 else [])

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Entry]:
        entries, fault = await self.read_checked(after_seq, limit)
        if fault is not None:
            raise fault
        return entries

    async def read_checked(self, after_seq: int, limit: int) -> tuple[list[Entry], LogCorrupt | None]:
        """The good entries after `after_seq`, and the fault that stopped the page early, if any."""
        rows = await self._wire.xrange(self.key, f"{max(after_seq, 0) + 1}-0", limit)
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
                entries = [decode_stream_entry(stream_id, fields) for stream_id, fields in rows]
                self._saw(entries[-1])
                return entries
            if loop.time() >= deadline:
                return []

    async def _wait_rows(
        self, after_seq: int, limit: int, wait_ms: int, first: Sequence[Command]
    ) -> list[Row]:
        if self._bell is None:
            # XREAD returns ids strictly greater than the one given, so pass the last seen seq.
            return await self._wire.xread(self.key, f"{after_seq}-0", limit, wait_ms, first)
        start = f"{after_seq + 1}-0"
        if self._behind:  # a backlog (or a fresh start): no ring is owed for entries already there
            rows = await self._wire.xrange(self.key, start, limit, first)
        else:
            # One round trip: Redis runs the range only once the bell's XREAD returns, so the range holds
            # everything appended up to the ring; a ring after the bell id we saw returns at once.
            bell_id, rows = await self._wire.ring_then_range(
                self._bell, self._bell_seen, wait_ms, self.key, start, limit, first
            )
            if bell_id is not None:
                self._bell_seen = bell_id
        self._behind = len(rows) >= limit
        return rows

    def head_command(self) -> Command:
        """A command whose reply, passed to note_head, refreshes this handle's idea of the head: a writer
        that does not read the log sends it with its own reads, so its appends rarely need a retry."""
        return ("XREVRANGE", self.key, "+", "-", "COUNT", 1)

    def note_head(self, reply: list[list[Any]]) -> None:
        if reply:
            self._saw(decode_stream_entry(*rows_of(reply)[0]))

    async def head(self) -> tuple[int, bytes]:
        self._head = _head_of(await self._wire.last(self.key))
        return self._head

    async def position(self, producer: str) -> str:
        stored = cast(bytes | None, await self.redis.hget(self.positions_key, producer))
        return "" if stored is None else stored.decode()

    async def import_entries(self, entries: Sequence[Entry]) -> None:
        """Load sealed entries after the current head, all or nothing, or raise LogCorrupt/LogFenced.

        Producer positions are not rebuilt: a position names a producer's input, which entries do not
        record, so producers resuming on an imported log must re-establish theirs.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.key)  # a concurrent append voids the transaction instead of interleaving
            # Under WATCH, before MULTI, the pipeline runs commands at once and returns their replies.
            head_seq, head_hash = _head_of(
                cast(list[Row], await pipe.xrevrange(self.key, "+", "-", count=1))
            )
            verifier = ChainVerifier(start_seq=head_seq + 1, prev_hash=head_hash)
            for entry in entries:
                verifier.check(entry)
            pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1
            for entry in entries:
                pipe.xadd(self.key, encode_entry(entry), id=f"{entry.seq}-0")  # type: ignore[arg-type]
            try:
                await pipe.execute()
            except WatchError as exc:
                raise LogFenced(f"{self.key} moved during the import; nothing was written") from exc
        self._head = (verifier.head_seq, verifier.head_hash)


def _head_of(rows: list[Row]) -> tuple[int, bytes]:
    """(seq, hash) of an XREVRANGE COUNT 1 reply."""
    if not rows:
        return 0, GENESIS_HASH
    entry = decode_stream_entry(*rows[0])
    return entry.seq, entry.hash
