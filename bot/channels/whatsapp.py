"""WhatsApp replies with tappable choices, through Twilio's Content API.

A reply with choices (the language list, yes/no, the menu) goes out as Twilio Content: a
`twilio/quick-reply` with up to three buttons, or a `twilio/list-picker` with up to ten items
behind one button. WhatsApp takes both inside the 24-hour session without Meta's approval.
There is one content per language and choice set, whose body is one variable (the reply's
text): made once through the Content API (`POST /v1/Content`) and remembered in the store, so
each later reply costs one message request, as a plain text does.

A turn with such a reply is answered through the Messages API on the member's own line
(`bot.lines`), in order, and the webhook gets empty TwiML; a repeated MessageSid gets the
same empty TwiML and sends nothing again. A turn without choices is answered in TwiML, once
the member's earlier replies have left (so it never overtakes them). When the choices do not
fit (a label too long, more than ten, a text over 255 characters) or the Content API
refuses, the reply goes out as numbered text, as on SMS. With WHATSAPP_BUTTONS=off every
reply goes back in TwiML as numbered text.

Receiving stays in `bot.channels.sms` (the same webhook): a tap arrives with the id we gave
the choice (`ub:` and its value) in `ButtonPayload` (quick reply) or `ListId` (list picker).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import httpx

from bot.app import Bot
from bot.channels.sms import CHOICE_ID, WhatsAppOutlet, render
from bot.delivery import Outcome
from bot.i18n import Catalogs
from bot.lines import Lines
from bot.logs import mask
from bot.replies import has_buttons, marker
from bot.store import StoreError
from flows.types import Reply

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
QUICK_REPLY_MAX = 3  # buttons WhatsApp shows in a session message without approval
LIST_MAX = 10  # items of a list picker
TITLE_MAX = 20  # a button's title, the list's button
ITEM_MAX = 24  # a list item
DESCRIPTION_MAX = 72  # the line under a list item
ID_MAX = 200  # what a tap sends back
VARIABLE_MAX = 255  # a content variable's value: the reply's text
ATTEMPTS = 4  # a reply Twilio could not take (429, 5xx, no answer) is tried this often
TWIML_WAIT = 3.0  # how long a TwiML answer waits for this member's line to empty
REFUSED_PAUSE = 300.0  # after the Content API refused, numbered text for this long


def content_for(reply: Reply, choose: str, account: str = "") -> dict[str, Any] | None:
    """The Content API body for this reply's choices (its text left as variable 1), or None
    when they do not fit WhatsApp's limits: then the reply goes as numbered text. `key`
    names it in our store (per Twilio account: a restored database may change accounts)."""
    choices = reply.labelled()
    if not choices or len(choices) > LIST_MAX or not reply.text.strip() or \
            len(reply.text) > VARIABLE_MAX or \
            any(len(CHOICE_ID + c.value) > ID_MAX for c in choices):
        return None
    if len(choices) <= QUICK_REPLY_MAX and all(len(c.label) <= TITLE_MAX for c in choices):
        kind = "twilio/quick-reply"
        spec: dict[str, Any] = {"body": "{{1}}", "actions": [
            {"title": c.label, "id": CHOICE_ID + c.value} for c in choices]}
    elif all(len(c.label) <= ITEM_MAX for c in choices) and 0 < len(choose) <= TITLE_MAX:
        kind = "twilio/list-picker"
        spec = {"body": "{{1}}", "button": choose, "items": [
            {"item": c.label, "id": CHOICE_ID + c.value,
             "description": plain.label[:DESCRIPTION_MAX]}
            for c, plain in zip(choices, reply.choices, strict=True)]}
    else:
        return None
    types = {kind: spec}
    key = hashlib.sha256(json.dumps([account, reply.lang, types], sort_keys=True,
                                    ensure_ascii=False).encode()).hexdigest()[:32]
    return {"friendly_name": f"union_bot_{reply.lang}_{key[:12]}", "language": reply.lang,
            "variables": {"1": "text"}, "types": types, "key": key}


def content_of(catalogs: Catalogs, reply: Reply, account: str = "") -> dict[str, Any] | None:
    """What this reply goes out as: its content (a list's button in the reply's language),
    or None for text (no choices, or they do not fit)."""
    if not reply.choices:
        return None
    return content_for(reply, catalogs.text(reply.lang, "button_choose"), account)


class Contents:
    """ContentSids of the bot's choice sets: from memory, the store, or made once."""

    def __init__(self, bot: Bot, client: httpx.AsyncClient) -> None:
        settings = bot.settings
        assert settings.twilio_account_sid and settings.twilio_auth_token
        self.store = bot.store
        self.client = client
        self.url = f"{settings.twilio_content_url}/v1/Content"
        self.auth = (settings.twilio_account_sid, settings.twilio_auth_token)
        self.account = settings.twilio_account_sid
        self._sids: dict[str, str] = {}
        self._making: dict[str, asyncio.Lock] = {}
        self._refused: set[str] = set()  # contents Twilio found invalid: numbered text
        self._paused_until = 0.0  # the Content API is down or closed to us: numbered text

    async def sid(self, content: dict[str, Any]) -> str | None:
        key = content["key"]
        if key in self._sids:
            return self._sids[key]
        lock = self._making.setdefault(key, asyncio.Lock())
        async with lock:  # two members at the same step make it once
            if key not in self._sids:
                row = await self.store.fetchone(
                    "SELECT sid FROM whatsapp_contents WHERE key = ?", (key,))
                sid = str(row["sid"]) if row else await self._make(content)
                if sid is None:
                    return None
                self._sids[key] = sid
        self._making.pop(key, None)
        return self._sids[key]

    async def forget(self, sid: str) -> None:
        """Twilio refused a message naming `sid` (deleted in the console, another account):
        make it again next time."""
        self._sids = {k: v for k, v in self._sids.items() if v != sid}

        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute("DELETE FROM whatsapp_contents WHERE sid = ?", (sid,))

        try:
            await self.store.write(job)
        except StoreError:
            log.exception("whatsapp: could not forget content %s", sid)

    async def _make(self, content: dict[str, Any]) -> str | None:
        key = content["key"]
        if key in self._refused or time.monotonic() < self._paused_until:
            return None
        body = {k: v for k, v in content.items() if k != "key"}
        try:
            response = await self.client.post(self.url, json=body, auth=self.auth)
            data = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            return self._pause(f"did not answer ({type(exc).__name__})")
        sid = data.get("sid") if isinstance(data, dict) else None
        if response.status_code in (200, 201) and isinstance(sid, str) and sid.startswith("HX"):
            await self._remember(key, sid)
            log.info("whatsapp: made content %s (%s) for choices in %s", sid,
                     next(iter(content["types"])), content["language"])
            return sid
        message = data.get("message") if isinstance(data, dict) else None
        problem = f"answered {response.status_code}" + (f": {message}" if message else "")
        if response.status_code in (400, 422):  # this content only: the others may be fine
            self._refused.add(key)
            log.warning("whatsapp: the Content API %s; these choices in %s go as numbered text",
                        problem, content["language"])
            return None
        return self._pause(problem)

    def _pause(self, problem: str) -> None:
        self._paused_until = time.monotonic() + REFUSED_PAUSE
        log.warning("whatsapp: the Content API %s; choices go as numbered text for %.0f "
                    "minutes (check the account's Content API access, or set "
                    "WHATSAPP_BUTTONS=off)", problem, REFUSED_PAUSE / 60)

    async def _remember(self, key: str, sid: str) -> None:
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute("INSERT OR IGNORE INTO whatsapp_contents (key, sid, created_at) "
                               "VALUES (?, ?, ?)", (key, sid, at))

        try:
            await self.store.write(job)
        except StoreError:  # kept in memory; made again after a restart, at worst
            log.exception("whatsapp: could not keep content %s in the store", sid)


class WhatsAppReplies:
    """The reply lane for turns with choices: each member's replies in order, through the
    Messages API, apart from any broadcast (its own client and line)."""

    def __init__(self, bot: Bot, client: httpx.AsyncClient) -> None:
        self.bot = bot
        self.outlet = WhatsAppOutlet(bot.settings, client, status_callback=False)
        self.contents = Contents(bot, client)
        self.lines: Lines[str, Reply] = Lines(self._send, CHANNEL)

    async def answers(self, address: str, replies: Sequence[Reply], repeat: bool,
                      platform_id: str | None = None) -> bool:
        """Take this turn's replies on the member's line (True: the webhook answers with
        empty TwiML), or leave them to TwiML (False).

        A turn with choices is always ours: decided by the replies alone, so a repeated
        MessageSid decides the same way, and then nothing is sent again. A turn without
        choices goes in TwiML once this member's earlier replies have left (TwiML must not
        overtake them); if they are held up (a 429, a slow Content API), it joins the line.
        """
        if has_buttons(replies):
            if not repeat:  # the turn marked them unsent (bot.replies): clear it once sent
                self.lines.put(address, replies, marker(self.bot.store, CHANNEL, platform_id))
            return True
        if repeat:
            return False
        try:
            async with asyncio.timeout(TWIML_WAIT):
                await self.lines.drained(address)
            return False
        except TimeoutError:
            self.lines.put(address, replies)
            return True

    async def close(self) -> None:
        await self.lines.close()

    async def _content_sid(self, reply: Reply) -> str | None:
        try:
            content = content_of(self.bot.catalogs, reply, self.contents.account or "")
            return await self.contents.sid(content) if content else None
        except Exception:  # whatever went wrong, the member still gets the numbered text
            log.exception("whatsapp: no content for a reply's choices; numbered text instead")
            return None

    async def _send(self, address: str, reply: Reply) -> bool:
        sid = await self._content_sid(reply)
        attempt = 0
        while True:
            if sid is not None:
                result = await self.outlet.send_template(address, sid, {"1": reply.text})
            else:
                result = await self.outlet.send(address, render(reply, self.bot.campaign,
                                                                CHANNEL))
            if result.outcome is Outcome.SENT:
                return True
            if result.outcome in (Outcome.STOPPED, Outcome.UNREACHABLE):
                log.info("whatsapp: %s cannot be reached (%s); the rest of this answer is "
                         "dropped", mask(address), result.error)
                return False
            if result.outcome is Outcome.FAILED and sid is not None:
                log.warning("whatsapp: Twilio refused content %s (%s); sending the numbered "
                            "text instead", sid, result.error)
                await self.contents.forget(sid)
                sid = None
                continue  # not an attempt: the text has not been tried yet
            attempt += 1
            if result.outcome is not Outcome.RETRY or attempt == ATTEMPTS:
                break  # refused, or it may have left (no answer in time): never sent twice
            await asyncio.sleep(result.retry_after or min(2.0 ** (attempt - 1), 10.0))
        if result.outcome is Outcome.AMBIGUOUS:
            log.warning("whatsapp: a reply to %s may not have been sent: %s", mask(address),
                        result.error)
        else:
            log.error("whatsapp: a reply to %s was not sent: %s", mask(address), result.error)
        return True
