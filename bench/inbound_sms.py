"""Inbound SMS: signed Twilio webhooks at 50 connections, the bot against a bare app.

    python -m bench.inbound_sms [--quick]

Distinct numbers, each walked through a whole conversation (first message, language, SIGN,
name, province, confirm, news, a keyword after signing), pre-signed and sent by the load
client in its own process (`bench.load`), 50 connections, bounded in count and in time. The
ceiling is `bench.ceiling` on the same server stack: it parses the form, checks the
signature and returns fixed TwiML. Goal: at least 50% of the ceiling's requests/s with every
state change durable (synchronous=FULL) before the reply, and p99 under 25 ms.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    BotProcess,
    Report,
    bot_env,
    cpu_seconds,
    free_port,
    load,
    sms_conversations,
    standalone,
    write_plan,
)

PUBLIC_URL = "https://bot.example.org"  # what both sign against: one plan for both servers
CONNECTIONS = 50
EXPECT = "<Message>"


def start_ceiling(port: int, loop: str = "auto") -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([PYTHON, "-m", "bench.ceiling", "--port", str(port), "--loop", loop,
                             "--public-url", PUBLIC_URL], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the ceiling app did not start") from None
            time.sleep(0.05)


def ceiling(plan: Path, duration: float, warmup: int, loop: str = "auto") -> dict[str, Any]:
    """The bare app on `loop`, signing against PUBLIC_URL as the bot does."""
    port = free_port()
    proc = start_ceiling(port, loop)
    try:
        result = load(plan, port, connections=CONNECTIONS, duration=duration, warmup=warmup,
                      expect=EXPECT)
        result["server_cpu_s"] = None
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def through_bot(workdir: Path, plan: Path, duration: float, warmup: int,
                bot_cls: type[BotProcess] = BotProcess, **env: str) -> dict[str, Any]:
    bot = bot_cls(workdir, bot_env(PUBLIC_URL=PUBLIC_URL, **env)).start()
    try:
        cpu = cpu_seconds(bot.proc.pid if bot.proc else 0)
        result = load(plan, bot.port, connections=CONNECTIONS, duration=duration, warmup=warmup,
                      expect=EXPECT)
        result["server_cpu_s"] = cpu_seconds(bot.proc.pid if bot.proc else 0) - cpu
    finally:
        bot.stop()
    rows = bot.query("SELECT (SELECT count(*) FROM contacts) AS contacts, "
                     "(SELECT count(*) FROM signatures) AS signatures, "
                     "(SELECT count(*) FROM inbound) AS inbound")[0]
    result.update(contacts=rows["contacts"], signatures=rows["signatures"],
                  processed=rows["inbound"])
    return result


def run(workdir: Path, quick: bool = False) -> Report:
    people = 1500 if quick else 6000
    duration = 5.0 if quick else 15.0
    warmup = 400
    report = Report("inbound_sms")
    # The ceiling listens on another port, but both check signatures against PUBLIC_URL.
    plan = write_plan(workdir, sms_conversations(0, PUBLIC_URL, people))
    ceil = ceiling(plan, duration, warmup)
    (workdir / "bot").mkdir()
    bot = through_bot(workdir / "bot", plan, duration, warmup)
    ratio = bot["rps"] / ceil["rps"] if ceil["rps"] else None
    report.add("requests/s, 50 connections", bot["rps"], "req/s",
               reference="bare Starlette+uvicorn, signature check, fixed TwiML",
               ref_value=ceil["rps"], ratio=ratio, goal=">= 50% of ceiling",
               met=ratio is not None and ratio >= 0.5)
    report.add("p50 latency", bot["p50_ms"], "ms", reference="ceiling p50",
               ref_value=ceil["p50_ms"],
               ratio=bot["p50_ms"] / ceil["p50_ms"] if ceil["p50_ms"] else None)
    report.add("p99 latency", bot["p99_ms"], "ms", reference="ceiling p99",
               ref_value=ceil["p99_ms"],
               ratio=bot["p99_ms"] / ceil["p99_ms"] if ceil["p99_ms"] else None,
               goal="< 25 ms", met=bot["p99_ms"] is not None and bot["p99_ms"] < 25)
    ok = bot["statuses"].get("200", 0) == bot["requests"] and not bot["errors"]
    report.add("answered 200 with durable state", bot["statuses"].get("200", 0), "req",
               reference="requests counted", ref_value=bot["requests"],
               ratio=bot["statuses"].get("200", 0) / bot["requests"] if bot["requests"] else None,
               goal="all", met=ok)
    report.details = {"ceiling": ceil, "bot": bot, "people": people, "connections": CONNECTIONS,
                      "duration_s": duration, "warmup": warmup}
    return report


if __name__ == "__main__":
    sys.exit(standalone("inbound_sms", run, __doc__))
