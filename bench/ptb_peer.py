"""The Telegram peer: python-telegram-bot's own update processing, bare, fed in-process.

    python -m bench.ptb_peer PLAN [--duration S]  ->  one JSON object on stdout

`Application.process_update` with a three-state `ConversationHandler` (name, province,
confirm), no persistence, no HTTP (the Bot's request answers getMe in-process; the handlers
only return the next state, they send nothing). Fed the same update bodies the webhook bench
posts, one after another: JSON parsed, `Update.de_json`, `process_update`. What a bot built on
PTB's Application spends per update before any storage or network, i.e. a ceiling for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBUserWarning

ASK_NAME, ASK_REGION, CONFIRM = range(3)
CALLS: dict[str, int] = {}  # handler -> times called, to show the peer did the work


def called(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


class InProcessRequest(BaseRequest):
    """Answers getMe (Application.initialize) without a network; nothing else is called."""

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None,
                         ) -> tuple[int, bytes]:
        me = {"id": 4242001, "is_bot": True, "first_name": "Peer", "username": "peer_bot"}
        return 200, json.dumps({"ok": True, "result": me}).encode()


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: the welcome (nothing is sent here)."""
    called("start")


async def sign(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """/sign: ask for the name."""
    called("sign")
    return ASK_NAME


async def got_name(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the name; ask for the province."""
    called("got_name")
    assert update.message is not None and context.user_data is not None
    context.user_data["name"] = update.message.text
    return ASK_REGION


async def got_region(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Keep the province; ask to confirm."""
    called("got_region")
    assert update.message is not None and context.user_data is not None
    context.user_data["region"] = update.message.text
    return CONFIRM


async def confirmed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """A button: signed."""
    called("confirmed")
    return ConversationHandler.END


async def help_(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help."""
    called("help")


def build() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)  # per_message=False with a button
        conversation = ConversationHandler(
            entry_points=[CommandHandler("sign", sign)],
            states={
                ASK_NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_name)],
                ASK_REGION: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_region)],
                CONFIRM: [CallbackQueryHandler(confirmed)],
            },
            fallbacks=[CommandHandler("help", help_)],
        )
    request = InProcessRequest()
    app = (ApplicationBuilder().token("4242001:peer-token_ABCdef").request(request)
           .get_updates_request(request).updater(None).build())
    app.add_handler(conversation)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_))
    app.add_handler(CallbackQueryHandler(confirmed))
    return app


async def run(bodies: list[bytes], duration: float, warmup: int) -> dict[str, Any]:
    app = build()
    latencies: list[float] = []
    async with app:
        deadline = None
        began = time.perf_counter()
        for n, body in enumerate(bodies):
            t = time.perf_counter()
            if n == warmup:
                began, deadline = t, t + duration
            elif deadline is not None and t >= deadline:
                break
            update = Update.de_json(json.loads(body), app.bot)
            await app.process_update(update)
            if n >= warmup:
                latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float | None:
        return latencies[int(q / 100 * (len(latencies) - 1))] * 1000 if latencies else None

    return {"requests": len(latencies), "elapsed_s": elapsed,
            "rps": len(latencies) / elapsed if elapsed else 0.0,
            "p50_ms": pct(50), "p99_ms": pct(99), "handlers_called": CALLS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("plan", type=Path, help="pickled list of update bodies, in order")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    bodies: list[bytes] = pickle.loads(args.plan.read_bytes())
    print(json.dumps(asyncio.run(run(bodies, args.duration, args.warmup))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
