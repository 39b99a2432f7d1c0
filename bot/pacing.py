"""Send pacing.

`SlidingWindow` (broadcasts): never more than `rate` messages in any one-second window.
Starts are spread evenly (no bursts) at 97% of the rate, and a sliding window also caps
them at 98% of it in any second (the whole rate at low rates): the margins absorb the jitter
between when we start a request and when the platform counts it, so the platform never sees
more than `rate`.

`TokenBucket` (one Telegram chat's replies, OSDI requests): a burst, then `rate` a second.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

SAFETY = 0.97


class SlidingWindow:
    def __init__(self, rate: float, slack: float = 0.02) -> None:
        self.rate = rate
        # A request can reach the platform up to a few tens of ms after it starts, so the cap
        # on starts keeps 2% of the rate back (400/s: 392) for what is still in flight from the
        # window before; at low rates that is less than one message and the cap is the rate.
        self.burst = max(1, math.floor(rate) - math.floor(rate * 0.02))
        self.window = (1.0 if rate >= 1 else 1.0 / rate) + slack
        self.spacing = 1.0 / (rate * SAFETY)
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._next = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every sender (a 429's retry_after)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if now < self._next:
                    await asyncio.sleep(self._next - now)
                    continue
                while self._starts and now - self._starts[0] >= self.window:
                    self._starts.popleft()
                if len(self._starts) < self.burst:
                    self._starts.append(now)
                    # Even spacing from the schedule, not from a timer's late wake-up (timers
                    # wake ~1 ms late: at 200/s that alone cost 12% of the rate); a start more
                    # than one spacing late re-anchors, so idle time never earns a burst.
                    late = now - self._next
                    base = self._next if 0 <= late < self.spacing else now
                    self._next = base + self.spacing
                    return
                await asyncio.sleep(self.window - (now - self._starts[0]))


class TokenBucket:
    """At most `rate` sends a second, `capacity` of them back to back (a burst)."""

    def __init__(self, rate: float, capacity: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = capacity
        self.updated = clock()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def full(self) -> bool:
        """No token used: nothing sent lately (a chat whose bucket can be forgotten)."""
        now = self.clock()
        return self.tokens + (now - self.updated) * self.rate >= self.capacity

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                wait = max(self.paused_until - now, (1 - self.tokens) / self.rate)
                if wait <= 0:
                    self.tokens -= 1
                    return
                await asyncio.sleep(wait)
