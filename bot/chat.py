"""`run_bot.py chat`: talk to the bot in a terminal, through the real engine, flows and store.

There is no carrier between the terminal and the bot, so the bot answers every keyword
itself here (as with TWILIO_KEYWORDS=bot). Piped input works too: one reply block per input
line, blocks separated by a blank line, `(no reply)` where the bot stays silent.
"""

from __future__ import annotations

import asyncio
import sys

from bot.app import Bot
from bot.channels import sms
from bot.engine import Inbound
from flows.types import Reply


def render(reply: Reply, channel: str, bot: Bot) -> str:
    if channel == "telegram":
        buttons = "  ".join(f"[{c.label}]" for c in reply.choices)
        return reply.text + (f"\n{buttons}" if buttons else "")
    return sms.render(reply, bot.campaign)


async def run_chat(bot: Bot, channel: str, address: str, lang: str | None) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Talking to the bot as {address} over {channel}. Ctrl-D to leave.", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        text = line.rstrip("\r\n")
        msg = Inbound(
            channel=channel,
            address=address,
            text=text,
            platform_id=None,
            language_hint=lang,
        )
        outcome = await bot.engine.handle(msg)
        blocks = [render(r, channel, bot) for r in outcome.replies] or ["(no reply)"]
        print("\n".join(blocks), end="\n\n", flush=True)
    return 0
