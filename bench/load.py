"""The load client: pre-built HTTP/1.1 requests over keep-alive sockets, in its own process.

    python -m bench.load SPEC.json  ->  one JSON object on stdout

The requests are built and signed beforehand (`bench.common.write_plan`): a pickled list of
*conversations*, each a list of raw requests that must go one after another (the next message
of a person only after the answer to the previous one). Two ways to drive them:

- `closed`: `connections` workers, each taking a whole conversation at a time and sending its
  requests back to back on its own connection (a fixed number in flight: throughput).
- `paced`: one request every 1/`rate` seconds, from the conversations whose previous answer
  has arrived, on up to `connections` connections; latency counts from when the request was
  due, so a stall is not hidden by sending less (no coordinated omission).

Bounded in count (the plan) and in time (`duration`); `warmup` requests are sent first and not
counted. A hand-written client rather than httpx: httpx spends ~10x more CPU per request, and on
a two-core machine the client's CPU is taken from the server under test.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Conversation = list[bytes]


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = 0, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    marked: int = 0  # answers whose body holds `expect` (e.g. a TwiML <Message>)
    errors: Counter[str] = field(default_factory=Counter)
    first: float = 0.0
    last: float = 0.0


def summary(tally: Tally, elapsed: float) -> dict[str, Any]:
    lat = sorted(tally.latencies)

    def pct(q: float) -> float | None:
        if not lat:
            return None
        return lat[min(len(lat) - 1, int(round(q / 100 * (len(lat) - 1))))] * 1000

    n = len(lat)
    return {
        "requests": n,
        "elapsed_s": elapsed,
        "rps": n / elapsed if elapsed > 0 else 0.0,
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": pct(100),
        "mean_ms": (sum(lat) / n * 1000) if n else None,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "marked": tally.marked,
        "errors": dict(tally.errors),
    }


async def closed(spec: dict[str, Any], conversations: Iterator[Conversation]) -> dict[str, Any]:
    """`connections` workers, each sends a conversation's requests back to back."""
    host, port, expect = spec["host"], int(spec["port"]), spec.get("expect", "").encode()
    warmup, limit = int(spec.get("warmup", 0)), float(spec["duration"])
    tally = Tally()
    sent = 0
    trace: list[tuple[float, float, int]] | None = [] if spec.get("trace") else None
    start = time.perf_counter()
    measuring_since: list[float] = []
    deadline = start + limit + 30.0  # replaced once the warm-up is over

    async def worker() -> None:
        nonlocal sent, deadline
        conn = Connection(host, port)
        try:
            for conv in conversations:
                for raw in conv:
                    now = time.perf_counter()
                    if now >= deadline:
                        return
                    counted = sent >= warmup
                    sent += 1
                    if counted and not measuring_since:
                        measuring_since.append(now)
                        deadline = now + limit
                    try:
                        status, body = await conn.request(raw)
                    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        conn.close()
                        if counted:
                            tally.errors[type(exc).__name__] += 1
                        continue
                    done = time.perf_counter()
                    if counted:
                        tally.latencies.append(done - now)
                        if trace is not None:
                            trace.append((now - start, done - now, status))
                        tally.statuses[status] += 1
                        tally.last = done
                        if expect and expect in body:
                            tally.marked += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(int(spec["connections"]))))
    begun = measuring_since[0] if measuring_since else start
    return {**summary(tally, max(tally.last - begun, 1e-9)), "trace": trace}


async def paced(spec: dict[str, Any], conversations: Iterator[Conversation]) -> dict[str, Any]:
    """One request every 1/rate s from ready conversations; latency from the due time."""
    host, port, expect = spec["host"], int(spec["port"]), spec.get("expect", "").encode()
    rate, limit = float(spec["rate"]), float(spec["duration"])
    active = int(spec.get("active", 200))  # conversations in play at once
    tally = Tally()
    ready: deque[Iterator[bytes]] = deque()
    idle: list[Connection] = []
    busy = 0
    slots = asyncio.Semaphore(int(spec["connections"]))
    tasks: set[asyncio.Task[None]] = set()

    def refill() -> None:
        while len(ready) < active:
            conv = next(conversations, None)
            if conv is None:
                return
            ready.append(iter(conv))

    async def one(due: float, steps: Iterator[bytes], raw: bytes) -> None:
        nonlocal busy
        async with slots:
            conn = idle.pop() if idle else Connection(host, port)
            busy += 1
            try:
                status, body = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                tally.errors[type(exc).__name__] += 1
                return
            finally:
                busy -= 1
            done = time.perf_counter()
            idle.append(conn)
            tally.latencies.append(done - due)
            tally.statuses[status] += 1
            tally.last = done
            if expect and expect in body:
                tally.marked += 1
            ready.append(steps)  # this person may send their next message now

    refill()
    start = time.perf_counter()
    i = 0
    while True:
        due = start + i / rate
        if due - start >= limit:
            break
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        refill()
        raw = None
        while ready and raw is None:
            steps = ready.popleft()
            raw = next(steps, None)
        if raw is None:
            if not tasks:
                break  # every conversation is done
            await asyncio.sleep(0.001)
            continue
        task = asyncio.create_task(one(due, steps, raw))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    for conn in idle:
        conn.close()
    return {**summary(tally, max(tally.last - start, 1e-9)), "offered_rps": rate}


async def run(spec: dict[str, Any], plan: list[Conversation]) -> dict[str, Any]:
    conversations = iter(plan)
    if spec.get("mode", "closed") == "paced":
        return await paced(spec, conversations)
    return await closed(spec, conversations)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    plan: list[Conversation] = pickle.loads(Path(spec["plan"]).read_bytes())
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec, plan))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(run(spec, plan))
    trace = result.pop("trace", None)
    if trace is not None and spec.get("trace"):
        Path(spec["trace"]).write_text(json.dumps(trace))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
