"""Replies that leave after their turn is committed, kept until they have left.

Over SMS (and WhatsApp without buttons) the replies go back in the webhook's answer: if the
bot dies before answering, Twilio sends the message again and the stored replies go out
then. Telegram's replies, and WhatsApp's with buttons, leave on a reply line after the
commit, and the platform has had its 200: a crash in between would lose them, and the member
would be left without the next question. So the turn marks its processed id `unsent` in the
same transaction, the line clears the mark once the replies have left, and `serve` sends
what is still marked when it starts again. A reply may then come twice (a crash after it
left and before the mark was cleared), never not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from bot.engine import Inbound, replies_from
from bot.logs import mask
from bot.store import Store, StoreError
from flows.types import Reply

log = logging.getLogger(__name__)

RESEND_WITHIN = timedelta(hours=1)  # older replies are stale after a long outage: not sent


def has_buttons(replies: Sequence[Reply]) -> bool:
    """A WhatsApp turn with choices: its replies go out as buttons, through the Messages API
    after the commit (bot.channels.whatsapp), not in the webhook's TwiML."""
    return any(reply.choices for reply in replies)


def later(bot: Any, msg: Inbound, replies: Sequence[Reply]) -> bool:
    """Do this turn's replies leave after the commit (so the turn marks them)?"""
    if not replies or msg.platform_id is None:  # `chat` and the console answer at once
        return False
    if msg.channel == "telegram":
        return msg.address.startswith("telegram:")
    return msg.channel == "whatsapp" and bot.whatsapp is not None and has_buttons(replies)


def marker(store: Store, channel: str, platform_id: str | None
           ) -> Callable[[], Awaitable[None]] | None:
    """What a reply line runs once the turn's replies have left: clear the mark."""
    if platform_id is None:
        return None

    async def sent() -> None:
        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute("UPDATE inbound SET unsent = 0 WHERE channel = ? AND "
                               "platform_id = ?", (channel, platform_id))

        try:
            await store.write(job)
        except StoreError:  # the worst case: sent once more after a crash
            log.exception("could not mark %s replies as sent", channel)

    return sent


async def resend(bot: Any) -> int:
    """On start, before the server takes any message: put what a crash left unsent back on
    the members' lines, oldest first (Telegram's wait there until the Bot API answers).
    Returns how many turns' replies were queued again."""
    cutoff = (datetime.now(UTC) - RESEND_WITHIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = await bot.store.fetchall(
        "SELECT i.channel, i.platform_id, i.replies, i.received_at, c.address "
        "FROM inbound i LEFT JOIN contacts c ON c.id = i.contact_id WHERE i.unsent = 1 "
        "ORDER BY i.received_at, length(i.platform_id), i.platform_id")
    queued = 0
    for row in rows:
        channel, address = row["channel"], row["address"]
        done = marker(bot.store, channel, row["platform_id"])
        assert done is not None
        fresh = address is not None and row["received_at"] >= cutoff  # not erased, not stale
        try:
            if fresh and _queue(bot, channel, address, replies_from(row["replies"]), done):
                queued += 1
                continue
        except Exception:
            log.exception("%s %s: replies left unsent could not be queued again", channel,
                          mask(address))
        await done()  # nothing more will be tried for this one
    if queued:
        log.warning("sending the replies of %d messages that a stop or crash left unsent",
                    queued)
    return queued


def _queue(bot: Any, channel: str, address: str, replies: list[Reply],
           done: Callable[[], Awaitable[None]]) -> bool:
    """Put replies back on their member's line; False when there is nothing to send or the
    channel is off now."""
    chat = address.removeprefix("telegram:")
    if not replies:
        return False
    if channel == "telegram" and bot.telegram is not None and chat.lstrip("-").isdigit():
        bot.telegram.sender.reply(int(chat), replies, done)
        return True
    if channel == "whatsapp" and bot.whatsapp is not None:
        bot.whatsapp.lines.put(address, replies, done)
        return True
    log.warning("%s %s: replies left unsent, but the channel is off now", channel,
                mask(address))
    return False
