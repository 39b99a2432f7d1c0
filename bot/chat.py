"""`run_bot.py chat`: talk to the bot in a terminal, through the real engine, flows and store.

There is no carrier between the terminal and the bot, so the bot answers every keyword
itself here (as with TWILIO_KEYWORDS=bot). Piped input works too: one reply block per input
line, blocks separated by a blank line, `(no reply)` where the bot stays silent.

`--channel telegram` goes through the Telegram channel's own reading of a message: the same
/commands, the language hint (`--lang`, as Telegram's `language_code`), buttons printed as
`[label]`; typing a button's `[label]` presses it (its value is sent, as a callback would).
"""

from __future__ import annotations

import asyncio
import sys

from bot.app import Bot
from bot.channels import sms, telegram
from bot.engine import Inbound
from flows.types import Reply


def render(reply: Reply, channel: str, bot: Bot) -> str:
    if channel == "telegram":
        rows = ["  ".join(f"[{c.label}]" for c in row) for row in telegram.buttons(reply)]
        return "\n".join([reply.text, *rows])
    return sms.render(reply, bot.campaign)


def pressed(text: str, shown: list[Reply]) -> str:
    """`[Label]` of a button under the last replies -> that button's value; else the text."""
    label = text.strip()
    if len(label) > 2 and label[0] == "[" and label[-1] == "]":
        for reply in reversed(shown):
            for row in telegram.buttons(reply):
                for choice in row:
                    if choice.label == label[1:-1]:
                        return choice.value
    return text


def inbound(bot: Bot, channel: str, address: str, text: str, lang: str | None,
            shown: list[Reply]) -> Inbound:
    if channel == "telegram":
        return telegram.to_inbound(address, pressed(text, shown), campaign=bot.campaign,
                                   language_code=lang)
    return Inbound(channel=channel, address=address, text=text, platform_id=None,
                   language_hint=lang)


async def run_chat(bot: Bot, channel: str, address: str, lang: str | None) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Talking to the bot as {address} over {channel}. Ctrl-D to leave.", flush=True)
    loop = asyncio.get_running_loop()
    shown: list[Reply] = []
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        msg = inbound(bot, channel, address, line.rstrip("\r\n"), lang, shown)
        outcome = await bot.engine.handle(msg, flood_limit=False)  # a script may pipe fast
        shown = outcome.replies or shown
        blocks = [render(r, channel, bot) for r in outcome.replies] or ["(no reply)"]
        print("\n".join(blocks), end="\n\n", flush=True)
    return 0
