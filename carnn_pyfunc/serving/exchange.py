"""The pieces of one HTTP exchange on raw ASGI: the body read within its limit, the request id,
an error's headers, the bounded labels of metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

from carnn_pyfunc.contract import INPUT_FIELDS
from carnn_pyfunc.monitoring.labels import MAX_REQUEST_ID
from carnn_pyfunc.monitoring.prediction_log import new_request_id
from carnn_pyfunc.serving.errors import ApiError
from carnn_pyfunc.serving.limits import RETRY_AFTER_S, Slot, Slots

JSON_HEADERS = [(b"content-type", b"application/json")]
# A small body: JSON or CSV up to this size (a few hundred cars) is parsed in the event loop and
# scored there too unless it holds more than scoring.INLINE_ROWS rows (well under a millisecond,
# less than a hop to a thread and back costs). Larger ones take large-body bytes and go to the
# scoring thread, as every Parquet body does (a few hundred bytes of it can hold 100,000 rows).
INLINE_BYTES = 32 * 1024
_HEADER_CHARS = 1000  # the ignored columns' names in the header, at most
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]+")


def metric_field(fields: list[str]) -> str:
    """The field a 400 names first, as a bounded metrics label (a client's own column names
    never become label values)."""
    return fields[0] if fields and fields[0] in INPUT_FIELDS else "input"


def error_headers(err: ApiError) -> list[tuple[bytes, bytes]]:
    headers = list(JSON_HEADERS)
    if err.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if err.status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
    return headers


async def read_body(
    chunks: AsyncIterator[bytes],
    declared: str,
    limit: int,
    on_large: Callable[[], None] | None = None,
    large: int = 0,
) -> bytes:
    """The request body, or a 413 as soon as it is over the limit; ``on_large()`` once when it
    grows past ``large`` bytes (it may refuse: its ApiError ends the read)."""
    too_large = ApiError(413, "REQUEST_TOO_LARGE", f"the body is over the limit of {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large
        if on_large is not None and size > large:
            on_large()
            on_large = None
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_weighed(
    chunks: AsyncIterator[bytes], declared: str, limit: int, budget: Slots, large: list[Slot]
) -> bytes:
    """The body; a large one (a declared length over :data:`INLINE_BYTES`, or chunks outgrowing
    it) first takes its bytes of ``budget`` into ``large``, or a 503. A length not declared is
    weighed as the largest."""

    def weigh(size: int = limit) -> None:
        large.append(budget.take(size))

    if not declared.isdigit():
        return await read_body(chunks, declared, limit, weigh, INLINE_BYTES)
    if INLINE_BYTES < int(declared) <= limit:  # (beyond: a 413 at once)
        weigh(int(declared))
    return await read_body(chunks, declared, limit)


async def read_request(
    receive, declared: str, limit: int, budget: Slots, large: list[Slot]
) -> bytes:
    """:func:`read_weighed` from ASGI ``receive``; a small body, which comes in one message as a
    rule, without the chunks' machinery."""
    if declared.isdigit() and int(declared) <= min(INLINE_BYTES, limit):
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            return message.get("body", b"")  # (no longer than declared: the server's check)
        return await read_weighed(Chunks(receive, message), declared, limit, budget, large)
    return await read_weighed(Chunks(receive), declared, limit, budget, large)


class Chunks:
    """The body's chunks from ASGI ``receive`` (a class: cheaper than an async generator);
    ``first``: a message already received."""

    def __init__(self, receive, first: dict | None = None) -> None:
        self.receive, self.done, self.first = receive, False, first

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.done:
            raise StopAsyncIteration
        message, self.first = self.first or await self.receive(), None
        if message["type"] == "http.disconnect":
            raise ApiError(400, "BAD_REQUEST", "the client went away before its body arrived")
        self.done = not message.get("more_body", False)
        return message.get("body", b"")


def request_id_of(headers: dict[bytes, bytes]) -> str:
    """The client's X-Request-Id when it is a sensible id, else a new one."""
    given = headers.get(b"x-request-id", b"")
    if 0 < len(given) <= MAX_REQUEST_ID and _REQUEST_ID.fullmatch(given):
        return given.decode("ascii")
    return new_request_id()


def header_value(names: list[str]) -> bytes:
    """The ignored column names as a header value: printable ASCII only, bounded."""
    text = ", ".join(names)[:_HEADER_CHARS]
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text).encode("ascii")
