"""Replies to members, in the background: one line per member, in order, members in parallel.

What is put on a member's line goes out one item at a time, in the order it was put; each
member's line drains on its own task, so a slow or rate-limited member holds up nobody else,
and the request that produced the replies never waits for them. Used by the Telegram and
WhatsApp reply lanes (bulk sends go through `bot.broadcast`, never through here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

STOP_GRACE = 5.0  # seconds that replies still queued get when the bot stops


class _Done:
    """Put after a batch: `callback` runs once the items before it have left (or were
    dropped: the member blocked the bot)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], Any]) -> None:
        self.callback = callback


class Lines(Generic[K, T]):
    """`deliver(key, item)` sends one item and returns False to drop the rest of that
    member's line (they blocked the bot, or stopped)."""

    def __init__(self, deliver: Callable[[K, T], Awaitable[bool]], name: str) -> None:
        self._deliver = deliver
        self._name = name
        self._lines: dict[K, deque[Any]] = {}  # items, and _Done marks
        self._emptied: dict[K, asyncio.Event] = {}  # set when that member's line is done
        self._waiting = 0  # items queued and not yet sent, over all lines
        self._fewer: asyncio.Event | None = None  # set when `_waiting` goes down
        self._tasks: set[asyncio.Task[Any]] = set()

    def put(self, key: K, items: Iterable[T], done: Callable[[], Any] | None = None) -> None:
        """Queue items for one member, after what is already on their line; `done` runs
        once they have all left."""
        batch: list[Any] = list(items)
        self._waiting += len(batch)
        if done is not None:
            batch.append(_Done(done))
        if not batch:
            return
        line: deque[Any] | None = self._lines.get(key)
        if line is not None:
            line.extend(batch)
            return
        self._lines[key] = deque(batch)
        self.spawn(self._drain(key), f"{self._name}-line")

    def spawn(self, job: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a small side job (answering a button press) under the same shutdown."""
        task = asyncio.create_task(job, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drained(self, key: K) -> None:
        """Return once nothing for this member is left to send (wrap it in a timeout)."""
        if key in self._lines:
            await self._emptied.setdefault(key, asyncio.Event()).wait()

    async def below(self, limit: int) -> None:
        """Return once fewer than `limit` items are waiting over all lines."""
        while self._waiting >= limit:
            if self._fewer is None:
                self._fewer = asyncio.Event()
            await self._fewer.wait()

    def _less(self, n: int) -> None:
        self._waiting -= n
        if n and self._fewer is not None:
            self._fewer.set()
            self._fewer = None

    @property
    def waiting(self) -> int:
        """Items queued and not yet sent, over all lines."""
        return self._waiting

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Give what is queued `grace` seconds, then stop."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if pending:
            log.warning("%s: stopped with %d members' replies unsent", self._name, len(pending))

    async def _run(self, done: _Done) -> None:
        """Run a mark in the line's own task, so stopping waits for it like for a send."""
        try:
            result = done.callback()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("%s: marking replies as sent failed", self._name)

    async def _drain(self, key: K) -> None:
        line = self._lines[key]
        try:
            while line:
                item = line[0]
                if isinstance(item, _Done):
                    await self._run(item)
                    line.popleft()
                    continue
                try:
                    keep_going = await self._deliver(key, item)
                except Exception:
                    log.exception("%s: a reply could not be sent", self._name)
                    keep_going = True
                if not keep_going:  # the rest is dropped: nothing to send again later
                    marks = [dropped for dropped in line if isinstance(dropped, _Done)]
                    self._less(len(line) - len(marks))
                    line.clear()
                    for mark in marks:
                        await self._run(mark)
                    break
                line.popleft()
                self._less(1)
        finally:  # stopped (cancelled) with items left: they are not waiting any more
            self._less(sum(not isinstance(item, _Done) for item in line))
            self._lines.pop(key, None)
            emptied = self._emptied.pop(key, None)
            if emptied is not None:
                emptied.set()
