"""Organizer commands on Telegram: /stats, /export, /broadcast, /console.

Only contacts on ORGANIZERS reach these; anyone else typing them gets the member answers
(the engine reads `/stats` as free text), so nothing hints that they exist.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from telegram import Bot as BotAPI
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions
from telegram.error import TelegramError

from bot import broadcast
from bot.app import Bot
from bot.chart import bar_chart
from bot.reports import export_signatures, stats

log = logging.getLogger(__name__)

COMMANDS = ("stats", "export", "broadcast", "console", "cancel")
CALLBACK = "org:"
PROGRESS_EVERY = 2.0  # seconds between progress edits
MAX_TEXT = 4000


@dataclass
class Draft:
    """A broadcast being written on Telegram: waiting for its text, then for a confirmation."""

    segment: str | None
    message: broadcast.MessageFile | None = None
    key: str | None = None


def parse_texts(text: str, default: str, languages: tuple[str, ...]) -> dict[str, str]:
    """`Hello all\\nes: Hola a todos` -> {"en": "Hello all", "es": "Hola a todos"}."""
    texts: dict[str, list[str]] = {}
    current = default
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.strip().lower() in languages and head.strip() == head.strip().lower():
            current = head.strip().lower()
            line = rest.strip()
        texts.setdefault(current, []).append(line)
    return {lang: "\n".join(lines).strip() for lang, lines in texts.items()
            if "\n".join(lines).strip()}


class Desk:
    def __init__(self, bot: Bot, api: BotAPI) -> None:
        self.bot = bot
        self.api = api
        self.drafts: dict[str, Draft] = {}
        self._seen: deque[int] = deque(maxlen=1000)
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self, address: str, text: str) -> bool:
        if not self.bot.engine.is_organizer(address):
            return False
        if text.startswith(CALLBACK) or address in self.drafts:
            return True
        word = text.strip().split(maxsplit=1)[0].lstrip("/").split("@")[0].lower() if \
            text.strip().startswith("/") else ""
        return word in COMMANDS

    async def handle(self, update_id: int, address: str, chat_id: int, text: str) -> None:
        if update_id in self._seen:
            return  # Telegram redelivered it: done already
        self._seen.append(update_id)
        command, _, rest = text.strip().partition(" ")
        name = command.lstrip("/").split("@")[0].lower() if command.startswith("/") else ""
        try:
            if name == "stats":
                await self.send_stats(chat_id)
            elif name == "export":
                await self.send_export(chat_id)
            elif name == "console":
                await self.send_console_link(chat_id)
            elif name == "cancel":
                self.drafts.pop(address, None)
                await self.say(chat_id, "Cancelled. Nothing was sent.")
            elif name == "broadcast":
                self.drafts[address] = Draft(segment=rest.strip() or None)
                await self.say(chat_id, (
                    "Send the update as one message. The first lines are the "
                    f"{self.bot.campaign.default_language} text; start a line with `es:` (or "
                    "another language code) for that language. /cancel to stop."))
            elif text.startswith(CALLBACK):
                await self.confirm(address, chat_id, text[len(CALLBACK):])
            else:
                await self.draft_text(address, chat_id, text)
        except TelegramError as exc:
            log.warning("telegram: an organizer command failed: %s", type(exc).__name__)

    async def say(self, chat_id: int, text: str, markup: Any = None) -> Any:
        return await self.api.send_message(chat_id, text[:MAX_TEXT], reply_markup=markup)

    async def send_stats(self, chat_id: int) -> None:
        data = await stats(self.bot.store, self.bot.campaign.id, self.bot.campaign.goal)
        lines = [f"{data['signatures']} of {data['goal']} signatures; "
                 f"{data['opted_in_updates']} want updates; {data['stopped']} stopped."]
        for key, title in (("signatures_by_day", "Per day"),
                           ("signatures_by_language", "Per language"),
                           ("signatures_by_channel", "Per channel"),
                           ("signatures_by_region", "Per province")):
            items = list(data[key].items())[-14:] if key.endswith("day") else data[key].items()
            lines.append(f"{title}: " + (", ".join(f"{k} {v}" for k, v in items) or "none"))
        for b in data["broadcasts"][:3]:
            states = ", ".join(f"{n} {s}" for s, n in b["states"].items())
            lines.append(f"Broadcast #{b['id']} ({b['status']}): {states}")
        await self.say(chat_id, "\n".join(lines))
        days = list(data["signatures_by_day"].items())[-30:]
        if days:
            top = max(v for _, v in days)
            caption = f"Signatures per day, {days[0][0]} to {days[-1][0]} (max {top})"
            await self.api.send_photo(chat_id, photo=bar_chart([v for _, v in days]),
                                      caption=caption)

    async def send_export(self, chat_id: int) -> None:
        out = io.StringIO()
        count = await export_signatures(self.bot.store, self.bot.campaign.id, out, "csv")
        document = InputFile(io.BytesIO(out.getvalue().encode("utf-8")),
                             filename=f"{self.bot.campaign.id}-signatures.csv")
        await self.api.send_document(chat_id, document=document,
                                     caption=f"{count} signatures (CSV)")

    async def send_console_link(self, chat_id: int) -> None:
        try:
            from bot.console import issue_link
        except ImportError:
            await self.say(chat_id, "The console is not available in this version.")
            return
        link = await issue_link(self.bot)
        await self.api.send_message(  # no link preview: fetching it must not use the link up
            chat_id, f"Your sign-in link (one use, 15 minutes):\n{link}",
            link_preview_options=LinkPreviewOptions(is_disabled=True))

    async def draft_text(self, address: str, chat_id: int, text: str) -> None:
        draft = self.drafts[address]
        campaign = self.bot.campaign
        texts = parse_texts(text, campaign.default_language, campaign.languages)
        if campaign.default_language not in texts:
            await self.say(chat_id, f"The first lines must be the {campaign.default_language} "
                                    "text. Send it again, or /cancel.")
            return
        try:
            message = broadcast.MessageFile(texts, None)
            plan = await broadcast.plan(self.bot, message, draft.segment)
        except broadcast.BroadcastError as exc:
            self.drafts.pop(address, None)
            await self.say(chat_id, f"{exc}. Start again with /broadcast.")
            return
        draft.message, draft.key = message, plan.key
        buttons = InlineKeyboardMarkup([[
            InlineKeyboardButton(f"Send to {plan.recipients}",
                                 callback_data=f"{CALLBACK}send:{plan.key}"),
            InlineKeyboardButton("Cancel", callback_data=f"{CALLBACK}cancel"),
        ]])
        await self.say(chat_id, "Dry run:\n" + broadcast.format_plan(plan), buttons)

    async def confirm(self, address: str, chat_id: int, action: str) -> None:
        draft = self.drafts.pop(address, None)
        if action == "cancel" or draft is None or draft.message is None or \
                action != f"send:{draft.key}":
            await self.say(chat_id, "Nothing was sent." if action == "cancel" or draft is None
                           else "That button is from an older draft; nothing was sent.")
            return
        plan = await broadcast.plan(self.bot, draft.message, draft.segment)
        bid, _ = await broadcast.create(self.bot, plan)
        status = await self.say(chat_id, f"Broadcast #{bid}: starting, {plan.recipients} "
                                         "recipients.")
        task = asyncio.create_task(self.follow(chat_id, status.message_id, bid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def follow(self, chat_id: int, message_id: int, bid: int) -> None:
        """Edit the status message with progress until the broadcast is done (serve's
        broadcast worker sends it)."""
        last = ""
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            counts = await broadcast.counts(self.bot, bid)
            row = await self.bot.store.fetchone("SELECT status FROM broadcasts WHERE id = ?",
                                                (bid,))
            done = row is None or row["status"] != "running"
            text = (f"Broadcast #{bid}: " + ("done. " if done else "sending: ")
                    + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
            if text != last:
                last = text
                try:
                    await self.api.edit_message_text(text, chat_id=chat_id,
                                                     message_id=message_id)
                except TelegramError as exc:
                    log.warning("telegram: a progress edit failed: %s", type(exc).__name__)
            if done:
                return

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
