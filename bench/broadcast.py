"""Broadcast to 100,000 supporters, and inbound SMS while it runs.

    python -m bench.broadcast [--quick]

100,000 opted-in signers (half SMS, half Telegram) are written straight into a bot database
(the schema `tests/test_broadcast.py` seeds). A `serve` process answers inbound SMS on it
while `python run_bot.py broadcast --yes` sends to them through the local Twilio and Bot API
stand-ins:

1. inbound SMS at a steady pace with no broadcast: the idle reply latency;
2. a broadcast at a high test rate (SEND_RATE_SMS, Telegram at its default 25/s) while the
   same inbound pace goes on: reply latency beside the idle figure (goal: p99 within 20%),
   the rate each lane achieved as a share of its setting (goal 95-100%, never above it in
   any one-second window, counted where the stand-ins receive), and the peak RSS of the
   sending process (goal under 200 MB);
3. the same broadcast resumed at the default rates (SMS 1/s, Telegram 25/s) for a bounded
   window: adherence at the real settings in scaled time, not the 28 hours a 100,000-SMS
   send takes at 1/s.

The broadcast is stopped at the end of each window (Ctrl-C, as an organizer would).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PYTHON,
    ROOT,
    TELEGRAM_TOKEN,
    BotProcess,
    Report,
    bot_env,
    cpu_seconds,
    load,
    peak_rss_mb,
    rss_mb,
    sms_conversations,
    standalone,
    write_plan,
)
from bot.store import migrate
from tests.harness import busiest_second
from tests.standins.telegram_api import TelegramAPI
from tests.standins.twilio_api import TwilioAPI

PUBLIC_URL = "https://bot.example.org"
MESSAGE = """
[en]
text = "The petition reached Parliament! Thank you."
[es]
text = "¡La petición llegó al Parlamento! Gracias."
"""
HIGH_SMS_RATE = 200.0  # messages a second: a Messaging Service with a pool of numbers
DEFAULT_RATES = {"sms": 1.0, "telegram": 25.0}  # bot/config.py defaults
INBOUND_RATE = 50.0  # inbound SMS a second while measuring reply latency


def seed(db: Path, n: int) -> None:
    """`n` signers who want news, half on SMS and half on Telegram, en and es."""
    migrate(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO contacts (id, address, channel, language, state, stopped, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, 'menu', 0, 'x', 'x')",
        ((i + 1, address(i), channel(i), "es" if i % 4 == 1 else "en") for i in range(n)))
    conn.executemany(
        "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, region, channel,"
        " language, opted_in_updates, signed_at, contact) VALUES (?, ?, 'mwac-pathway-pr', 'N',"
        " 'ON', ?, ?, 1, '2026-11-28T10:00:00Z', ?)",
        ((str(uuid.uuid4()), i + 1, channel(i), "es" if i % 4 == 1 else "en", address(i))
         for i in range(n)))
    conn.execute("COMMIT")
    conn.close()


def channel(i: int) -> str:
    return "telegram" if i % 2 else "sms"


def address(i: int) -> str:
    return f"telegram:{8_000_000_000 + i}" if i % 2 else f"+1647{3000000 + i:07d}"


@dataclass
class Watch:
    """Samples a process's RSS in the background; keeps the highest seen and its VmHWM."""

    pid: int
    peak: float = 0.0
    hwm: float = 0.0
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            now = rss_mb(self.pid)
            if now:
                self.samples.append(now)
                self.peak = max(self.peak, now)
                self.hwm = max(self.hwm, peak_rss_mb(self.pid))

    def stop(self) -> None:
        self.hwm = max(self.hwm, peak_rss_mb(self.pid))
        self._stop.set()
        self._thread.join()


@contextmanager
def broadcasting(workdir: Path, env: dict[str, str], rates: dict[str, float]
                 ) -> Iterator[subprocess.Popen[str]]:
    """`run_bot.py broadcast --yes` running until the block ends, then Ctrl-C."""
    (workdir / "update.toml").write_text(MESSAGE, encoding="utf-8")
    full = {**env, "SEND_RATE_SMS": str(rates["sms"]),
            "SEND_RATE_TELEGRAM": str(rates["telegram"])}
    with (workdir / "broadcast.log").open("a") as log:
        proc = subprocess.Popen(
            [PYTHON, str(ROOT / "run_bot.py"), "broadcast", "--message-file", "update.toml",
             "--yes"], cwd=workdir, env=full, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_first_send(twilio: TwilioAPI, proc: subprocess.Popen[str], log: Path,
                    timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    start = len(twilio.sent)
    while time.monotonic() < deadline:
        if len(twilio.sent) > start:
            return time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"broadcast exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    raise RuntimeError(f"broadcast sent nothing in {timeout} s:\n{log.read_text()[-3000:]}")


def adherence(times: list[float], rate: float, since: float, until: float) -> dict[str, Any]:
    """Sends (stand-in arrival times) in [since, until]: the sustained rate (sends after the
    first over the time from the first to the last: whole gaps, not the window's edges), its
    share of `rate`, and the most sends in any one-second window."""
    inside = sorted(t for t in times if since <= t <= until)
    span = inside[-1] - inside[0] if len(inside) > 1 else 0.0
    achieved = (len(inside) - 1) / span if span > 0 else 0.0
    return {"sent": len(inside), "window_s": until - since, "achieved": achieved,
            "share": achieved / rate if rate else None, "busiest_1s": busiest_second(inside),
            "limit_1s": rate}


def inbound(plan: Path, port: int, duration: float) -> dict[str, Any]:
    return load(plan, port, mode="paced", rate=INBOUND_RATE, connections=50,
                duration=duration, expect="<Message>", active=400)


def run(workdir: Path, quick: bool = False) -> Report:
    n = 20_000 if quick else 100_000
    idle_s, high_s, default_s = (4.0, 8.0, 8.0) if quick else (10.0, 30.0, 20.0)
    report = Report("broadcast")
    db = workdir / "bot.sqlite3"
    started = time.monotonic()
    seed(db, n)
    seeded_in = time.monotonic() - started
    people = int(INBOUND_RATE * max(idle_s, high_s) / 8) + 400  # 8 messages each
    idle_plan = write_plan(workdir, sms_conversations(0, PUBLIC_URL, people), "idle")
    busy_plan = write_plan(workdir, sms_conversations(people, PUBLIC_URL, people), "busy")
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as twilio, TelegramAPI() as telegram:
        env = bot_env(PUBLIC_URL=PUBLIC_URL, TWILIO_API_URL=twilio.url, BROADCAST_HOURS="00-24")
        bot = BotProcess(workdir, env).start()
        try:
            idle = inbound(idle_plan, bot.port, idle_s)
            cli_env = {**bot.env, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
                       "TELEGRAM_API_URL": telegram.url}
            high_rates = {"sms": HIGH_SMS_RATE, "telegram": DEFAULT_RATES["telegram"]}
            log = workdir / "broadcast.log"
            with broadcasting(workdir, cli_env, high_rates) as proc:
                first = wait_first_send(twilio, proc, log)
                sender = Watch(proc.pid)
                serve = Watch(bot.proc.pid if bot.proc else 0)
                time.sleep(1.0)  # the lanes reach their pace
                begin = time.monotonic()
                cpu = (cpu_seconds(proc.pid), cpu_seconds(bot.proc.pid if bot.proc else 0))
                busy = inbound(busy_plan, bot.port, high_s)
                end = time.monotonic()
                cpu_share = [(cpu_seconds(pid) - was) / (end - begin) for pid, was in
                             zip((proc.pid, bot.proc.pid if bot.proc else 0), cpu, strict=True)]
                sender.stop()
                serve.stop()
            sms_high = adherence(sms_times(twilio), high_rates["sms"], begin, end)
            tg_high = adherence(telegram_times(telegram), high_rates["telegram"], begin, end)
            with broadcasting(workdir, cli_env, DEFAULT_RATES) as proc:
                wait_first_send(twilio, proc, log)
                sender_default = Watch(proc.pid)
                time.sleep(1.0)
                begin = time.monotonic()
                time.sleep(default_s)
                end = time.monotonic()
                sender_default.stop()
            sms_default = adherence(sms_times(twilio), DEFAULT_RATES["sms"], begin, end)
            tg_default = adherence(telegram_times(telegram), DEFAULT_RATES["telegram"], begin,
                                   end)
        finally:
            bot.stop()
    recipients = bot.query("SELECT state, count(*) AS n FROM broadcast_recipients GROUP BY "
                           "state")
    states = {r["state"]: r["n"] for r in recipients}

    ratio = busy["p99_ms"] / idle["p99_ms"] if idle["p99_ms"] else None
    report.add(f"inbound p99 while broadcasting (inbound {INBOUND_RATE:.0f}/s)", busy["p99_ms"],
               "ms", reference="idle p99, same pace, same process", ref_value=idle["p99_ms"],
               ratio=ratio, goal="<= 1.2x idle", met=ratio is not None and ratio <= 1.2)
    report.add("inbound p50 while broadcasting", busy["p50_ms"], "ms",
               reference="idle p50", ref_value=idle["p50_ms"],
               ratio=busy["p50_ms"] / idle["p50_ms"] if idle["p50_ms"] else None)
    for label, result, rate in (
            (f"SMS lane at {HIGH_SMS_RATE:.0f}/s", sms_high, HIGH_SMS_RATE),
            (f"Telegram lane at {DEFAULT_RATES['telegram']:.0f}/s (with SMS at "
             f"{HIGH_SMS_RATE:.0f}/s)", tg_high, DEFAULT_RATES["telegram"]),
            (f"SMS lane at default {DEFAULT_RATES['sms']:.0f}/s", sms_default,
             DEFAULT_RATES["sms"]),
            (f"Telegram lane at default {DEFAULT_RATES['telegram']:.0f}/s", tg_default,
             DEFAULT_RATES["telegram"])):
        share = result["share"]
        report.add(f"{label}: achieved", result["achieved"], "msg/s",
                   reference="configured rate", ref_value=rate, ratio=share,
                   goal="95-100%, none above in any 1 s",
                   met=share is not None and 0.95 <= share <= 1.0
                   and result["busiest_1s"] <= rate,
                   note=f"busiest second {result['busiest_1s']} over "
                        f"{result['window_s']:.0f} s")
    report.add("peak RSS of the sending process", sender.hwm, "MB",
               reference="goal", ref_value=200.0, ratio=sender.hwm / 200.0,
               goal="< 200 MB", met=sender.hwm < 200)
    report.details = {"recipients": n, "seeded_in_s": seeded_in, "inbound_idle": idle,
                      "inbound_busy": busy, "sms_high": sms_high, "telegram_high": tg_high,
                      "sms_default": sms_default, "telegram_default": tg_default,
                      "sender_peak_rss_mb": sender.hwm,
                      "sender_default_peak_rss_mb": sender_default.hwm,
                      "serve_peak_rss_mb": serve.hwm, "recipient_states": states,
                      "cpu_share_while_broadcasting": {"sender": cpu_share[0],
                                                       "serve": cpu_share[1]},
                      "high_sms_rate": HIGH_SMS_RATE, "inbound_rate": INBOUND_RATE,
                      "first_send_after_s": first - started}
    return report


def sms_times(twilio: TwilioAPI) -> list[float]:
    """Arrival times at the Twilio stand-in, on the monotonic clock."""
    offset = time.monotonic() - time.time()
    with twilio._lock:
        return [s.at + offset for s in twilio.sent]


def telegram_times(telegram: TelegramAPI) -> list[float]:
    return [c.at for c in telegram.calls(TELEGRAM_TOKEN, "sendMessage", ok=True)]


if __name__ == "__main__":
    sys.exit(standalone("broadcast", run, __doc__))


