"""`greenex dead-letters`: the commands intake gave up on (services/intake/deadletters.py): list them,
show one, drop it or re-drive it onto its sender's stream (docs/operations.md, 'Dead letters')."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, NoReturn, cast

import msgspec
import typer
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from services.intake.deadletters import DeadLetter, dead_letter_of
from shared.config import ADMIN, cli_user, connect, load_settings
from shared.keyring import KeyMissing
from shared.keys import Keys

__all__ = ["dead_letters_app", "read_dead_letters"]

dead_letters_app = typer.Typer(
    help="Commands intake could not process: list, show, drop or re-drive them.", no_args_is_help=True
)
_ID = re.compile(r"\d+-\d+")
_LIST_HINT = "`greenex dead-letters list` shows them"
_PREVIEW = 60  # characters of a command shown by `list`
_SAYS = ("type", "action", "client_order_id", "instrument")  # what `list` shows of a command
LetterId = Annotated[str, typer.Argument(metavar="ID", help="The dead letter's id, as `list` shows it.")]

# Atomic, and once: the dead letter must still be there (two operators re-driving it at once send it
# back once), and an XADD Redis refuses (a sender that blocked its stream with the largest id) stops the
# script before the XDEL, so the dead letter is kept.
_REDRIVE_LUA = """
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], '*', 'data', ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[1])
return id
"""


class Refused(Exception):  # noqa: N818  -- named as the fact, like KeyMissing
    """What was asked cannot be done (an unknown id): one line, exit 1."""


async def read_dead_letters(redis: Redis, keys: Keys) -> list[DeadLetter]:
    rows: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(keys.dead_letters)  # type: ignore[assignment]
    return [dead_letter_of(stream_id, fields) for stream_id, fields in rows]


async def _read_one(redis: Redis, keys: Keys, letter_id: str) -> DeadLetter:
    if not _ID.fullmatch(letter_id):
        raise Refused(f"{letter_id!r} is not a dead letter id (like 1712345678901-0); {_LIST_HINT}")
    rows: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(  # type: ignore[assignment]
        keys.dead_letters, letter_id, letter_id
    )
    if not rows:
        raise Refused(f"no dead letter {letter_id}; {_LIST_HINT}")
    return dead_letter_of(*rows[0])


def _age(dead_ns: int, now_ns: int) -> str:
    seconds = max(0, (now_ns - dead_ns) // 1_000_000_000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _preview(data: bytes) -> str:
    """What a command is (its type, action, client order id, instrument) when it is a JSON object, whose
    first bytes are the same for every command; else the start of its text."""
    try:
        command = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):  # a dead letter is often exactly such a payload
        command = None
    if isinstance(command, dict) and (says := [str(command[k]) for k in _SAYS if k in command]):
        text = " ".join(says)
    else:
        text = " ".join(_text(data).split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def _line(letter: DeadLetter, now_ns: int) -> str:
    return (
        f"{letter.id}  sender={letter.sender}  input={letter.input_id}  deliveries={letter.deliveries}  "
        f"age={_age(letter.dead_ns, now_ns)}  {_preview(letter.data)}"
    )


def _run(user: str | None, work: Callable[[Redis, Keys], Awaitable[list[str]]]) -> None:
    """Run `work` logged in as `user` (the CLI's user by default) and print its lines; every expected
    failure is one line on stderr: exit 1 when the request cannot be done, 2 when Redis cannot be used."""
    settings = load_settings()

    async def run() -> list[str]:
        redis = connect(settings, user or cli_user())
        try:
            return await work(redis, settings.keys)
        finally:
            await redis.aclose()

    try:
        lines = asyncio.run(run())
    except Refused as refused:
        _fail(f"error: {refused}", 1)
    except KeyMissing as missing:
        _fail(f"error: {missing}", 1)
    except NoPermissionError as denied:
        _fail(f"error: Redis refused: {denied}; re-apply the ACLs (`greenex acl apply`, docs/security.md)", 1)
    except (RedisError, OSError) as failed:
        _fail(f"error: cannot reach the exchange at {settings.redis_url}: {failed}", 1)
    for line in lines:
        typer.echo(line)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@dead_letters_app.command("list")
def list_letters() -> None:
    """One line per dead letter: its id, sender, input id, deliveries, age and the start of its data."""

    async def work(redis: Redis, keys: Keys) -> list[str]:
        now = time.time_ns()
        return [_line(letter, now) for letter in await read_dead_letters(redis, keys)] or ["no dead letters"]

    _run(None, work)


@dead_letters_app.command()
def show(letter_id: LetterId) -> None:
    """The whole dead letter: the command exactly as its sender wrote it, and why it is here."""

    async def work(redis: Redis, keys: Keys) -> list[str]:
        letter = await _read_one(redis, keys, letter_id)
        since = datetime.fromtimestamp(letter.dead_ns / 1e9, UTC).isoformat(timespec="seconds")
        data = _text(letter.data) or "(none: its sender trimmed it from its stream before intake gave up)"
        return [
            f"dead letter  {letter.id}",
            f"sender       {letter.sender}",
            f"input id     {letter.input_id} on {keys.commands(letter.sender)}",
            f"deliveries   {letter.deliveries}",
            f"dead since   {since} ({_age(letter.dead_ns, time.time_ns())} ago)",
            f"data         {data}",
        ]

    _run(None, work)


@dead_letters_app.command()
def drop(letter_id: LetterId) -> None:
    """Delete the dead letter: its command is never decided, and its sender gets no answer for it."""

    async def work(redis: Redis, keys: Keys) -> list[str]:
        letter = await _read_one(redis, keys, letter_id)
        if not await redis.xdel(keys.dead_letters, letter.id):
            raise Refused(f"no dead letter {letter.id} (dropped meanwhile); {_LIST_HINT}")
        return [f"dropped {letter.id}: {letter.sender}'s input {letter.input_id} ({letter.deliveries} "
                f"deliveries), never decided"]  # fmt: skip

    _run(None, work)


@dead_letters_app.command()
def redrive(letter_id: LetterId) -> None:
    """Put the command back on its sender's stream, as a new entry, and delete the dead letter.

    One script does both; intake then decides the command like any new input. Runs as admin: only a
    sender and admin may write the sender's stream."""

    async def work(redis: Redis, keys: Keys) -> list[str]:
        letter = await _read_one(redis, keys, letter_id)
        stream = keys.commands(letter.sender)
        try:
            reply = await redis.eval(_REDRIVE_LUA, 2, stream, keys.dead_letters, letter.id, letter.data)
        except NoPermissionError:
            raise  # not admin after all: said as such by _run
        except ResponseError as refused:
            raise Refused(f"Redis refused the re-drive ({refused}); the dead letter is kept") from None
        new_id = cast(bytes | None, reply)
        if new_id is None:
            raise Refused(f"no dead letter {letter.id} (dropped or re-driven meanwhile); {_LIST_HINT}")
        return [f"re-driven {letter.id}: {letter.sender}'s input {letter.input_id} is back on {stream} as "
                f"{new_id.decode()}; intake decides it as a new input"]  # fmt: skip

    _run(ADMIN, work)
