"""Start-up time and memory: `serve` to a 200 from /healthz, idle RSS, and RSS after 100,000
contacts have talked to it.

    python -m bench.startup [--quick]

Start-up is timed from spawning `python run_bot.py serve` to the first 200 from /healthz
(the median of three starts; goal under 1.5 s), beside the bare interpreter's own start
(`python -c pass`) and a bare Starlette app's (`bench.ceiling`) as the floor. Then 100,000
distinct numbers each send their first message (a new contact and its welcome) at 50
connections; RSS is read when the per-contact throttle LRU (bot/throttle.py, capacity
50,000) is full and again at the end: goal flat, nothing kept per contact beyond that
bounded LRU, whose own size is measured in-process with tracemalloc.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    BotProcess,
    Report,
    bot_env,
    free_port,
    load,
    rss_mb,
    sms_conversations,
    standalone,
    write_plan,
)
from bot.throttle import Throttle

PUBLIC_URL = "https://bot.example.org"


def time_to_healthz(argv: list[str], port: int, env: dict[str, str] | None = None,
                    cwd: Path = ROOT) -> float:
    """Seconds from spawning `argv` until GET /healthz answers 200 on `port`."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=1) as client:
            while time.perf_counter() - started < 20:
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv} exited {proc.returncode}")
                time.sleep(0.005)
        raise RuntimeError(f"{argv} did not answer /healthz in 20 s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bot_start(workdir: Path) -> float:
    bot = BotProcess(workdir, bot_env(PUBLIC_URL=PUBLIC_URL))  # its env and port, not started
    return time_to_healthz([PYTHON, str(ROOT / "run_bot.py"), "serve"], bot.port, bot.env,
                           workdir)


def throttle_cost(entries: int = 50_000) -> float:
    """Bytes the throttle LRU holds when full (tracemalloc), per entry."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    throttle = Throttle()
    for i in range(entries):
        throttle.allow(f"+1416{5000000 + i:07d}")
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(throttle) == entries
    return used / entries


def run(workdir: Path, quick: bool = False) -> Report:
    contacts = 20_000 if quick else 100_000
    report = Report("startup")
    python = statistics.median(
        _timed([PYTHON, "-c", "pass"]) for _ in range(3))
    bare = statistics.median(
        time_to_healthz([PYTHON, "-m", "bench.ceiling", "--port", str(port)], port)
        for port in (free_port() for _ in range(3)))
    starts = []
    for i in range(3):
        (workdir / f"start{i}").mkdir()
        starts.append(bot_start(workdir / f"start{i}"))
    start = statistics.median(starts)
    report.add("serve to a 200 from /healthz", start, "s",
               reference="bare Starlette+uvicorn app", ref_value=bare, ratio=start / bare,
               goal="< 1.5 s", met=start < 1.5,
               note=f"three starts: {', '.join(f'{s:.2f}' for s in starts)}; "
                    f"bare interpreter {python:.2f} s")

    (workdir / "talk").mkdir()
    bot = BotProcess(workdir / "talk", bot_env(PUBLIC_URL=PUBLIC_URL)).start()
    try:
        pid = bot.proc.pid if bot.proc else 0
        time.sleep(1.0)
        idle = rss_mb(pid)
        half = contacts // 2
        steps: list[dict[str, Any]] = []
        for part, (first, count) in enumerate(((0, half), (half, contacts - half))):
            plan = write_plan(workdir, sms_conversations(0, PUBLIC_URL, count, first=first,
                                                         scripts=[["hi"]]), f"talk{part}")
            result = load(plan, bot.port, connections=50, duration=600.0, warmup=0)
            steps.append({"contacts": first + count, "rss_mb": rss_mb(pid),
                          "rps": result["rps"], "statuses": result["statuses"]})
        talked = bot.query("SELECT count(*) AS n FROM contacts")[0]["n"]
    finally:
        bot.stop()
    per_entry = throttle_cost()
    lru_mb = per_entry * 50_000 / 2**20
    after_half, after_all = steps[0]["rss_mb"], steps[1]["rss_mb"]
    report.add("idle RSS after start", idle, "MB")
    full = " (throttle LRU full)" if half >= Throttle().capacity else ""
    report.add(f"RSS after {contacts:,} contacts", after_all, "MB",
               reference=f"RSS after {half:,}{full}", ref_value=after_half,
               ratio=after_all / after_half if after_half else None,
               goal="flat past the LRU (<= 1.05x)",
               met=after_half > 0 and after_all / after_half <= 1.05,
               note=f"{after_all - idle:.0f} MB above idle")
    report.add("throttle LRU when full (50,000 contacts)", lru_mb, "MB",
               note=f"{per_entry:.0f} bytes a contact, tracemalloc")
    report.details = {"starts_s": starts, "bare_app_start_s": bare, "python_start_s": python,
                      "idle_rss_mb": idle, "steps": steps, "contacts_stored": talked,
                      "throttle_bytes_per_entry": per_entry}
    return report


def _timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(standalone("startup", run, __doc__))
