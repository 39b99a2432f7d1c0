"""Telegram updates through /telegram/webhook against python-telegram-bot's bare Application.

    python -m bench.telegram [--quick]

A real `serve` in webhook mode (TELEGRAM_WEBHOOK_SECRET set, TELEGRAM_API_URL at the local
Bot API stand-in, `tests/standins/telegram_api.py`) gets a whole conversation per member
(/start, /sign, name, province, the confirm and news buttons, /help) from the load client at
50 connections: each update answered 200 only once it is deduplicated and its state change is
durable, its replies queued for the stand-in. The peer (`bench.ptb_peer`) is PTB's own
`Application.process_update` with a three-state ConversationHandler, no persistence and no
HTTP, fed the same updates in-process. Goal: our whole path at least as fast as the peer.

Replies leave in the reply lane, within Telegram's limit of about 30 messages a second per
bot (bot/channels/telegram.py OVERALL_LIMIT); their rate at the stand-in is reported too.
"""

from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    ROOT,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    BotProcess,
    Report,
    cpu_seconds,
    http_post,
    load,
    standalone,
    wait_telegram,
    write_plan,
)
from tests.harness import busiest_second
from tests.standins.telegram_api import TelegramAPI

CONNECTIONS = 50
LANGUAGE_CODES = ["en", "es", "fr", "tl"]


def conversation(user_id: int, lang: str, update_ids: Any) -> list[dict[str, Any]]:
    """One member's updates, from /start to /help after signing."""
    user = {"id": user_id, "is_bot": False, "first_name": "Ana", "language_code": lang}
    chat = {"id": user_id, "type": "private", "first_name": "Ana"}
    message_ids = itertools.count(1)

    def message(text: str) -> dict[str, Any]:
        return {"update_id": next(update_ids), "message": {
            "message_id": next(message_ids), "date": 1764338587, "chat": chat, "from": user,
            "text": text, **({"entities": [{"type": "bot_command", "offset": 0,
                                            "length": len(text)}]} if text[0] == "/" else {})}}

    def press(data: str) -> dict[str, Any]:
        return {"update_id": next(update_ids), "callback_query": {
            "id": f"{user_id}-{next(message_ids)}", "from": user, "chat_instance": str(user_id),
            "data": data, "message": {"message_id": 1, "date": 1764338587, "chat": chat,
                                      "text": "…"}}}

    return [message("/start"), message("/sign"), message("Ana Cruz"), message("ON"),
            press("1"), press("1"), message("/help")]


def updates(people: int) -> list[list[dict[str, Any]]]:
    update_ids = itertools.count(500_000_001)
    return [conversation(7_000_000_000 + n, LANGUAGE_CODES[n % 4], update_ids)
            for n in range(people)]


def requests(convs: list[list[dict[str, Any]]], port: int) -> list[list[bytes]]:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    return [[http_post("/telegram/webhook", json.dumps(u).encode(), headers, port,
                       "application/json") for u in conv] for conv in convs]


def interleaved(convs: list[list[dict[str, Any]]], width: int) -> list[bytes]:
    """The updates in the order the bot sees them: `width` members at a time, step by step."""
    out = []
    for i in range(0, len(convs), width):
        group = convs[i:i + width]
        for step in range(max(len(c) for c in group)):
            out.extend(json.dumps(c[step]).encode() for c in group if step < len(c))
    return out


def peer(workdir: Path, convs: list[list[dict[str, Any]]], duration: float,
         warmup: int) -> dict[str, Any]:
    plan = workdir / "peer.pickle"
    plan.write_bytes(pickle.dumps(interleaved(convs, CONNECTIONS)))
    proc = subprocess.run([PYTHON, "-m", "bench.ptb_peer", str(plan), "--duration",
                           str(duration), "--warmup", str(warmup)], cwd=ROOT,
                          capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"the PTB peer failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def through_bot(workdir: Path, convs: list[list[dict[str, Any]]], duration: float,
                warmup: int) -> dict[str, Any]:
    with TelegramAPI() as api:
        env = {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_URL": api.url,
               "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET}
        bot = BotProcess(workdir, env).start()
        try:
            wait_telegram(bot)
            plan = write_plan(workdir, requests(convs, bot.port))
            pid = bot.proc.pid if bot.proc else 0
            cpu = cpu_seconds(pid)
            started = time.monotonic()
            result = load(plan, bot.port, connections=CONNECTIONS, duration=duration,
                          warmup=warmup)
            result["server_cpu_s"] = cpu_seconds(pid) - cpu
            window = time.monotonic() - started
            sent = api.calls(TELEGRAM_TOKEN, "sendMessage", ok=True)
            # Telegram's ~30/s is about messages; answerCallbackQuery is not one.
            lane = sorted(c.at for c in api.calls(TELEGRAM_TOKEN) if c.method == "sendMessage")
            result["replies_sent"] = len(sent)
            result["replies_per_s"] = len(sent) / window if window else 0.0
            result["lane_calls"] = len(lane)
            # messages sent by the reply lane in the busiest second (Telegram allows ~30)
            result["lane_max_1s"] = busiest_second(lane)
        finally:
            bot.stop()
    rows = bot.query("SELECT (SELECT count(*) FROM contacts) AS contacts, "
                     "(SELECT count(*) FROM signatures) AS signatures, "
                     "(SELECT count(*) FROM inbound) AS processed")[0]
    result.update(contacts=rows["contacts"], signatures=rows["signatures"],
                  processed=rows["processed"])
    return result


def run(workdir: Path, quick: bool = False) -> Report:
    people = 1500 if quick else 6000
    duration = 5.0 if quick else 15.0
    warmup = 350
    convs = updates(people)
    report = Report("telegram")
    ptb = peer(workdir, convs, duration, warmup)
    (workdir / "bot").mkdir()
    bot = through_bot(workdir / "bot", convs, duration, warmup)
    ratio = bot["rps"] / ptb["rps"] if ptb["rps"] else None
    report.add("updates/s, webhook, 50 connections", bot["rps"], "upd/s",
               reference="PTB Application.process_update, 3-state ConversationHandler, "
                         "in-process, no storage", ref_value=ptb["rps"], ratio=ratio,
               goal=">= 1.0x peer", met=ratio is not None and ratio >= 1.0)
    report.add("p50 latency (HTTP round trip)", bot["p50_ms"], "ms",
               reference="peer p50 (one process_update)", ref_value=ptb["p50_ms"])
    report.add("p99 latency (HTTP round trip)", bot["p99_ms"], "ms",
               reference="peer p99 (one process_update)", ref_value=ptb["p99_ms"])
    ok = bot["statuses"].get("200", 0) == bot["requests"] and not bot["errors"]
    report.add("answered 200 with durable state", bot["statuses"].get("200", 0), "upd",
               reference="updates counted", ref_value=bot["requests"], goal="all", met=ok)
    report.add("reply messages in the busiest second", bot["lane_max_1s"], "msgs",
               reference="Telegram's limit (OVERALL_LIMIT)", ref_value=30.0,
               ratio=bot["lane_max_1s"] / 30.0, goal="<= 30", met=bot["lane_max_1s"] <= 30,
               note=f"{bot['replies_per_s']:.1f} replies/s reached the stand-in meanwhile")
    report.details = {"peer": ptb, "bot": bot, "people": people, "connections": CONNECTIONS,
                      "duration_s": duration, "warmup": warmup}
    return report


if __name__ == "__main__":
    sys.exit(standalone("telegram", run, __doc__))
