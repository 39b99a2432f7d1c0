"""Per-contact flood control: a token bucket per contact, in a bounded LRU.

A person texting normally never comes near the limit; a phone (or a script) sending 100
messages a second gets its first `burst` answered, then nothing until it slows down. Nothing
is stored for throttled messages, so a flood cannot grow the database.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class Throttle:
    def __init__(self, burst: int = 30, per_minute: float = 30.0, capacity: int = 50_000) -> None:
        self.burst = burst
        self.refill = per_minute / 60.0
        self.capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.dropped = 0

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, seen = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - seen) * self.refill)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)  # the least recently seen contact
        if not allowed:
            self.dropped += 1
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
