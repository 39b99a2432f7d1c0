"""The simulator: a sandbox contact that talks to the real engine and flows.

Its address is `sandbox:<session>:<n>` (store.SANDBOX): the engine treats it like any
contact, but stats, the export, broadcasts and the sync outbox leave it out. Each session
has one at a time; a reset (or another channel or language) starts the next `n` and erases
the last one's conversation, signature and consent rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.app import Bot
from bot.console.auth import Session, update_session
from bot.engine import Inbound
from bot.store import SANDBOX, utcnow
from flows.types import Reply

CHANNELS = ("sms", "telegram", "whatsapp")
MAX_TEXT = 1600


@dataclass(frozen=True)
class Item:
    id: int
    sender: str  # me, bot, note
    body: dict[str, Any]


async def transcript(bot: Bot, session: Session) -> list[Item]:
    rows = await bot.store.fetchall(
        "SELECT id, sender, body FROM console_sandbox WHERE session = ? AND address = ? "
        "ORDER BY id", (session.id_hash, session.sandbox))
    return [Item(int(r["id"]), str(r["sender"]), json.loads(r["body"])) for r in rows]


def inbound(bot: Bot, session: Session, text: str) -> Inbound:
    """What the simulated phone sends, read as its channel reads it."""
    if session.sim_channel == "telegram":
        from bot.channels import telegram

        return telegram.to_inbound(session.sandbox, text, campaign=bot.campaign,
                                   language_code=session.sim_lang)
    channel = "whatsapp" if session.sim_channel == "whatsapp" else "sms"
    return Inbound(channel=channel, address=session.sandbox, text=text,
                   language_hint=session.sim_lang)


async def say(bot: Bot, session: Session, text: str, label: str | None = None) -> list[Item]:
    """Send `text` (a pressed button's value, shown as `label`) and record both sides."""
    assert session.sandbox.startswith(SANDBOX)
    text = text[:MAX_TEXT]
    outcome = await bot.engine.handle(inbound(bot, session, text), flood_limit=False)
    entries: list[tuple[str, dict[str, Any]]] = [
        ("me", {"text": text, "label": label} if label else {"text": text})]
    entries += [("bot", {"reply": reply.to_json(), "channel": session.sim_channel})
                for reply in outcome.replies]
    if outcome.throttled:
        entries.append(("note", {"text": "Too many messages at once: the bot dropped this one "
                                         "(flood protection). Wait a few seconds."}))
    elif not outcome.replies:
        entries.append(("note", {"text": "No reply."}))

    async def job(conn: aiosqlite.Connection) -> list[int]:
        ids = []
        for sender, body in entries:
            cursor = await conn.execute(
                "INSERT INTO console_sandbox (session, address, sender, body, at) "
                "VALUES (?, ?, ?, ?, ?)", (session.id_hash, session.sandbox, sender,
                                           json.dumps(body, ensure_ascii=False), utcnow()))
            ids.append(int(cursor.lastrowid or 0))
        return ids

    ids = await bot.store.write(job)
    return [Item(i, sender, body) for i, (sender, body) in zip(ids, entries, strict=True)]


def reply_of(item: Item) -> Reply:
    return Reply.from_json(item.body["reply"])


async def erase(bot: Bot, session: Session) -> None:
    """Forget the session's current sandbox contact: transcript, state, signature, consent."""
    address = session.sandbox
    assert address.startswith(SANDBOX)

    async def job(conn: aiosqlite.Connection) -> None:
        await conn.execute("DELETE FROM console_sandbox WHERE session = ?", (session.id_hash,))
        ids = "SELECT id FROM contacts WHERE address = ?"
        await conn.execute(f"DELETE FROM consent WHERE contact_id IN ({ids})", (address,))
        await conn.execute(f"DELETE FROM inbound WHERE contact_id IN ({ids})", (address,))
        await conn.execute(f"DELETE FROM broadcast_recipients WHERE contact_id IN ({ids})",
                           (address,))
        await conn.execute(f"DELETE FROM signatures WHERE contact_id IN ({ids})", (address,))
        await conn.execute("DELETE FROM contacts WHERE address = ?", (address,))

    await bot.store.write(job)


async def reset(bot: Bot, session: Session, channel: str | None = None,
                lang: str | None = None, *, keep_lang: bool = True) -> None:
    """Start over with a new sandbox contact (and, if given, another channel or language)."""
    await erase(bot, session)
    values: dict[str, object] = {"sim_n": session.sim_n + 1}
    if channel in CHANNELS:
        values["sim_channel"] = channel
    if not keep_lang:
        values["sim_lang"] = lang if lang in bot.campaign.languages else None
    await update_session(bot, session, **values)
