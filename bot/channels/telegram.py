"""Telegram (Bot API): updates in, replies out, in either mode (webhook or long polling).

Receiving only reads and hands over: an `Update` (POSTed to our own `/telegram/webhook`, or
fetched with `getUpdates`) becomes a `Received` (`read_update`), the engine handles its
`Inbound` once (platform id = `update_id`), and the replies go on the member's own line in
the `Sender`. Sending keeps within Telegram's limits (about 30 messages/s overall, about
1/s per chat, a 429's `retry_after` honoured) in two lanes that share one overall budget
per bot (`overall_budget`): replies to members (`Sender`), sent as soon as the limits
allow, and bulk (`TelegramOutlet`, which `bot.broadcast` paces at SEND_RATE_TELEGRAM),
which never takes the last BULK_RESERVE messages of the budget, so a reply never waits
behind a broadcast.

python-telegram-bot supplies the Bot API client (`telegram.Bot`, with `base_url` from
TELEGRAM_API_URL), the types and the keyboards; the updater, persistence and handlers of
its `Application` are not used: state and consent live in our own store, written at once.

Exceptions of the Bot API client, as handled here (`telegram.error`):

    TelegramError
    ├── Forbidden        403: the member blocked the bot. Logged (masked), not retried.
    ├── InvalidToken     401/404: TELEGRAM_BOT_TOKEN refused. Shown in /healthz.
    ├── Conflict         409: another poller, or a webhook is set while we poll.
    ├── RetryAfter       429: wait `retry_after` seconds, then send the same message again.
    └── NetworkError     no answer / 5xx: retried a few times with a growing pause.
        ├── BadRequest   400: the request itself is wrong (old button, bad chat). Not retried.
        └── TimedOut
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import json
import logging
import re
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import partial
from typing import Any

import httpx
from telegram import Bot as BotAPI
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.warnings import PTBDeprecationWarning

from bot.app import Bot
from bot.campaign import Campaign
from bot.config import Settings
from bot.delivery import Outcome, SendResult
from bot.engine import Inbound
from bot.i18n import Catalogs
from bot.lines import Lines
from bot.logs import mask
from bot.organizer import Desk
from bot.pacing import TokenBucket
from bot.replies import marker
from bot.store import StoreError
from flows.types import Choice, Reply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
#: The update types we use; Telegram does not even create the others for us.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
#: Telegram commands -> the keyword the engine reads (the menu shows them in this order).
COMMANDS: dict[str, str] = {
    "start": "START",
    "sign": "SIGN",
    "language": "LANGUAGE",
    "help": "HELP",
    "menu": "MENU",
    "stop": "STOP",
    "delete": "DELETE",
}
#: Telegram `language_code` tags that name one of our languages by another code.
LANGUAGE_ALIASES: dict[str, str] = {"fil": "tl"}

MAX_UPDATE_BODY = 256 * 1024  # a whole Update with a replied-to message is a few tens of KB
MAX_TEXT = 4096  # Bot API limit for one message's text
MAX_CALLBACK_DATA = 64  # bytes
POLL_TIMEOUT = 25  # seconds a getUpdates long poll waits for an update
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token

OVERALL_LIMIT = 30  # messages in any one second, all chats together
PACE_SLACK = 0.02  # seconds added to that second, for jitter between us and Telegram
CHAT_RATE = 1.0  # messages a second to one chat, sustained ...
CHAT_BURST = 5.0  # ... after a short burst (one turn's replies go out at once)
#: We pace a chat at 95% of CHAT_RATE: a request reaches Telegram some tens of ms after we
#: start it, and a first message that arrives late makes the ones after look early.
CHAT_MARGIN = 0.95
BULK_RESERVE = 5  # of the overall budget, what bulk sends leave to member replies
POLL_BACKLOG = OVERALL_LIMIT * 60  # polling waits while a minute's worth of replies is queued
NETWORK_ATTEMPTS = 5  # tries of one message while the Bot API does not answer
CALLBACK_ATTEMPTS = 3
STOP_GRACE = 2.0  # seconds `stop()` gives queued replies before leaving

TOKEN_REFUSED = "the Bot API refused TELEGRAM_BOT_TOKEN: check it with @BotFather"


# --- reading updates ----------------------------------------------------------------------

_COMMAND = re.compile(r"/(?P<name>[A-Za-z0-9_]{1,32})(?:@\w+)?(?:\s.*)?", re.DOTALL)


def read_command(text: str) -> tuple[str, bool]:
    """A typed `/command` as the engine reads it (`/sign@OurBot` -> `SIGN`, `/start <payload>`
    -> `START`: the deep-link payload is dropped), other text as typed; and whether it was
    /start."""
    match = _COMMAND.fullmatch(text.strip())
    keyword = COMMANDS.get(match["name"].lower()) if match else None
    if keyword is None:
        return text, False
    return keyword, keyword == "START"


def map_language(tag: str | None, languages: Sequence[str]) -> str | None:
    """Telegram's `language_code` (an IETF tag: `es`, `es-MX`, `pt-br`) -> one of ours, or None."""
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-")
    for candidate in (tag, tag.split("-")[0]):
        code = LANGUAGE_ALIASES.get(candidate, candidate)
        if code in languages:
            return code
    return None


def to_inbound(address: str, text: str, *, campaign: Campaign, platform_id: str | None = None,
               language_code: str | None = None, media: bool = False) -> Inbound:
    """What a member typed or pressed, as the engine reads it (`chat --channel telegram` too).

    The language hint is the member's `language_code` when the campaign has it; for /start
    it is the campaign's default language otherwise, so /start always welcomes in a
    language already chosen (with buttons to change it).
    """
    text, is_start = read_command(text)
    hint = map_language(language_code, campaign.languages)
    if hint is None and is_start:
        hint = campaign.default_language
    return Inbound(channel=CHANNEL, address=address, text=text, platform_id=platform_id,
                   language_hint=hint, media=media)


def address_of(user_id: int) -> str:
    return f"{CHANNEL}:{user_id}"


@dataclass(frozen=True)
class Received:
    """One update, read: what the engine should handle (None: nothing), where replies go."""

    update_id: int
    inbound: Inbound | None
    chat_id: int | None = None
    callback_id: str | None = None  # a button press, to be answered whatever happens
    why: str = ""  # why nothing is handled, for the log

    @property
    def key(self) -> str:
        """Updates with the same key are handled in order; different keys in parallel."""
        return self.inbound.address if self.inbound else f"update:{self.update_id}"


def read_update(update: Update, campaign: Campaign) -> Received:
    """The message in an update, or why there is none we answer.

    Private chats only: a group, a channel post or another bot gets nothing. A button's
    `callback_data` is read as the typed text; an edited message, a sticker, a photo or a
    voice note is `media` without text, which the flow answers with a short `text_only`.
    """
    uid = update.update_id
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        user = query.from_user
        if chat is not None and chat.type != chat.PRIVATE:
            return Received(uid, None, callback_id=query.id, why="a button in a group")
        if user.is_bot or not isinstance(query.data, str):
            return Received(uid, None, callback_id=query.id, why="a button without data")
        inbound = to_inbound(address_of(user.id), query.data, campaign=campaign,
                             platform_id=str(uid), language_code=user.language_code)
        return Received(uid, inbound, chat.id if chat else user.id, callback_id=query.id)

    message: Message | None = update.message or update.edited_message
    if message is None:
        return Received(uid, None, why="an update type we do not use")
    if message.chat.type != message.chat.PRIVATE:
        return Received(uid, None, why=f"a message in a {message.chat.type} chat")
    person = message.from_user
    if person is None or person.is_bot:
        return Received(uid, None, why="a message from a bot or on behalf of a chat")
    if update.edited_message is not None:
        text, media = "", True
    elif isinstance(message.text, str):
        text, media = message.text, False
    elif message.effective_attachment is not None:
        text, media = message.caption if isinstance(message.caption, str) else "", True
    else:
        return Received(uid, None, why="a service message")
    inbound = to_inbound(address_of(person.id), text, campaign=campaign, platform_id=str(uid),
                         language_code=person.language_code, media=media)
    return Received(uid, inbound, message.chat.id)


# --- writing replies ----------------------------------------------------------------------

def buttons(reply: Reply) -> list[list[Choice]]:
    """The reply's choices as rows of buttons (a numbered list keeps its numbers)."""
    choices = [c for c in reply.labelled() if len(c.value.encode("utf-8")) <= MAX_CALLBACK_DATA]
    if len(choices) <= 3:
        return [choices] if choices else []
    return [choices[i:i + 2] for i in range(0, len(choices), 2)]


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    rows = buttons(reply)
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(c.label, callback_data=c.value) for c in row] for row in rows]
    )


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a text over Telegram's limit at line breaks or spaces where it can."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text or not parts else parts


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """The messages one reply becomes: the original text (no GSM-7 mapping, no parse_mode),
    the buttons under the last part."""
    if not reply.text.strip():
        return []  # Telegram refuses an empty message
    parts = split_text(reply.text)
    markup = keyboard(reply)
    return [(part, markup if i == len(parts) - 1 else None) for i, part in enumerate(parts)]


def retry_seconds(exc: RetryAfter) -> float:
    """A 429's retry_after in seconds (an int today, a timedelta in python-telegram-bot's
    next major version, which it warns about on every read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- sending ------------------------------------------------------------------------------

class Budget:
    """At most `limit` sends in any window of `window` seconds; `pause()` holds every sender.

    `take(keep=n)` leaves the last `n` sends of the window to others: the bulk lane keeps
    BULK_RESERVE for replies, so a reply never waits behind a broadcast.
    """

    def __init__(self, limit: int, window: float = 1.0 + PACE_SLACK) -> None:
        self.limit, self.window = limit, window
        # Also at most a quarter of the limit in any quarter of the window: a whole second's
        # sends started at once reach Telegram spread out, and could bunch with the next
        # second's (Telegram counts arrivals). Quarters keep the waiting replies' wake-ups few.
        self.part, self.part_limit = window / 4, max(1, -(-limit // 4))
        self.paused_until = 0.0
        self._starts: deque[float] = deque()

    async def take(self, keep: int = 0) -> None:
        room = self.limit - keep
        # The reserve holds in every quarter too: one send a quarter kept for replies, which
        # still leaves the bulk lane 7 a quarter (27/s, above SEND_RATE_TELEGRAM's 25).
        part_room = self.part_limit - (1 if keep else 0)
        while True:
            now = time.monotonic()
            if now < self.paused_until:
                await asyncio.sleep(self.paused_until - now)
                continue
            while self._starts and now - self._starts[0] >= self.window:
                self._starts.popleft()
            recent = len(self._starts) - bisect.bisect_right(self._starts, now - self.part)
            if recent >= part_room:
                # wait until the oldest start of this quarter leaves it
                oldest = self._starts[len(self._starts) - recent]
                await asyncio.sleep(oldest + self.part - now)
                continue
            if len(self._starts) < room:
                self._starts.append(now)
                return
            # wait until enough of the oldest sends leave the window
            await asyncio.sleep(self._starts[len(self._starts) - room] + self.window - now)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


_BUDGETS: dict[str, Budget] = {}


def overall_budget(token: str) -> Budget:
    """The overall sending budget of one bot (Telegram counts per token), shared by every
    lane of this process; a 429 on any of them pauses them all."""
    budget = _BUDGETS.get(token)
    if budget is None:
        budget = _BUDGETS[token] = Budget(OVERALL_LIMIT)
    return budget


class Delivery(StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # 403: the member blocked the bot
    FAILED = "failed"  # refused (400) or no answer after NETWORK_ATTEMPTS


@dataclass(frozen=True)
class Outgoing:
    chat_id: int
    text: str
    markup: InlineKeyboardMarkup | None = None


def _masked(chat_id: int) -> str:
    return mask(address_of(chat_id))


Report = Callable[[str, str | None], None]


class Sender:
    """The reply lane: each member's replies on that chat's own line, sent in order as soon
    as the per-chat and overall limits allow. A 429 pauses all sending for its
    `retry_after`, then the same message is sent again; a 403 (blocked) drops the rest."""

    def __init__(self, api: BotAPI, *, report: Report, scrub: Callable[[object], str],
                 on_blocked: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.api = api
        self._on_blocked = on_blocked
        self.overall = overall_budget(api.token)
        self._chats: dict[int, TokenBucket] = {}
        self._lines: Lines[int, Outgoing] = Lines(self._send, "telegram")
        self._report = report
        self._scrub = scrub

    def reply(self, chat_id: int, replies: Iterable[Reply],
              done: Callable[[], Any] | None = None) -> None:
        """Queue replies to a member; sent in order, in the background; `done` runs once
        they have left."""
        self._lines.put(chat_id, (Outgoing(chat_id, text, markup)
                                  for r in replies for text, markup in render(r)), done)

    def answer(self, callback_id: str) -> None:
        """Answer a button press (stops its spinner), in the background."""
        self._lines.spawn(self._answer(callback_id), "telegram-callback")

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Give queued replies `grace` seconds, then stop."""
        await self._lines.close(grace)

    @property
    def backlog(self) -> int:
        """Replies queued and not yet sent, over all chats."""
        return self._lines.waiting

    async def room(self, limit: int) -> None:
        """Return once fewer than `limit` replies are queued."""
        await self._lines.below(limit)

    # inside

    def _chat(self, chat_id: int) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) > 10_000:  # forget chats whose bucket filled up again
                self._chats = {k: b for k, b in self._chats.items() if not b.full()}
            bucket = self._chats[chat_id] = TokenBucket(CHAT_RATE * CHAT_MARGIN, CHAT_BURST)
        return bucket

    async def _send(self, chat_id: int, item: Outgoing) -> bool:
        """One message of a member's line; False drops the rest (they blocked the bot)."""
        if await self._deliver(item) is not Delivery.BLOCKED:
            return True
        if self._on_blocked is not None:
            try:
                await self._on_blocked(chat_id)
            except Exception:
                log.exception("telegram: could not record a blocked member")
        return False

    async def _deliver(self, item: Outgoing) -> Delivery:
        attempt = 0
        while True:
            # The overall budget first, the chat's own pace last, right before the call: a
            # chat token taken and then held up by the overall budget would let this chat's
            # messages reach Telegram closer together than its pace.
            await self.overall.take()
            await self._chat(item.chat_id).take()
            try:
                await self.api.send_message(item.chat_id, item.text, reply_markup=item.markup)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                log.warning("telegram: flood limit (429); all sending waits %.0f s, then the "
                            "message to %s is sent again", wait, _masked(item.chat_id))
                self.overall.pause(wait)
                continue
            except Forbidden:
                log.info("telegram: %s blocked the bot; the rest of this answer is dropped",
                         _masked(item.chat_id))
                return Delivery.BLOCKED
            except BadRequest as exc:
                log.warning("telegram: the Bot API refused a message to %s: %s",
                            _masked(item.chat_id), self._scrub(exc))
                return Delivery.FAILED
            except InvalidToken:
                self._report("send", TOKEN_REFUSED)
                log.error("telegram: a message to %s was not sent: %s", _masked(item.chat_id),
                          TOKEN_REFUSED)
                return Delivery.FAILED
            except NetworkError as exc:
                attempt += 1
                problem = f"sending failed: {self._scrub(exc)}"
                if attempt >= NETWORK_ATTEMPTS:
                    self._report("send", problem)
                    log.error("telegram: gave up on a message to %s after %d tries: %s",
                              _masked(item.chat_id), attempt, self._scrub(exc))
                    return Delivery.FAILED
                await asyncio.sleep(min(2.0 ** (attempt - 1), 30.0))
                continue
            except TelegramError as exc:
                log.warning("telegram: a message to %s was not sent: %s", _masked(item.chat_id),
                            self._scrub(exc))
                return Delivery.FAILED
            except Exception:
                log.exception("telegram: a message to %s could not be sent",
                              _masked(item.chat_id))
                return Delivery.FAILED
            self._report("send", None)
            return Delivery.SENT

    async def _answer(self, callback_id: str) -> None:
        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            await self.overall.take()
            try:
                await self.api.answer_callback_query(callback_id)
                return
            except RetryAfter as exc:
                self.overall.pause(retry_seconds(exc))
            except BadRequest:
                return  # too old, or answered already: the spinner has stopped anyway
            except TelegramError as exc:
                if attempt == CALLBACK_ATTEMPTS:
                    log.warning("telegram: a button press was not answered: %s",
                                self._scrub(exc))
                    return
                await asyncio.sleep(attempt)


# --- broadcasts: the Outlet that bot.broadcast sends through ------------------------------

#: httpx errors after which the request certainly did not reach Telegram.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class SharedClientRequest(BaseRequest):
    """python-telegram-bot's networking over an httpx client someone else owns (and closes)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @property
    def read_timeout(self) -> float | None:
        return self.client.timeout.read

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None  # the owner closes the client

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE,
                         write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE,
                         ) -> tuple[int, bytes]:
        # The client's own timeouts apply (broadcast sets them); PTB's per-call ones are unused.
        try:
            response = await self.client.request(
                method, url, data=request_data.json_parameters if request_data else None,
                files=request_data.multipart_data if request_data else None)
        except httpx.TimeoutException as exc:
            raise TimedOut(f"httpx.{type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"httpx.{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content


class TelegramOutlet:
    """The bulk lane: one Bot API call per broadcast message, its answer mapped to an `Outcome`.

    `bot.broadcast` paces these at SEND_RATE_TELEGRAM and retries what comes back `RETRY`
    (after `retry_after` for a 429); a message that may have left (a timeout) is `AMBIGUOUS`
    and never sent twice. Each call takes from the bot's overall budget but leaves its last
    BULK_RESERVE messages to the reply lane (`Sender`), which member replies go through.
    """

    channel = CHANNEL

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.token = settings.telegram_token or ""
        request = SharedClientRequest(client)  # broadcast's client: it opens and closes it
        self.api = BotAPI(self.token, base_url=f"{settings.telegram_api_url}/bot",
                          request=request, get_updates_request=request)
        self.overall = overall_budget(self.token)

    async def send(self, address: str, text: str) -> SendResult:
        ident = address.removeprefix(f"{CHANNEL}:")
        if not ident.lstrip("-").isdigit():
            return SendResult(Outcome.UNREACHABLE, error=f"not a Telegram chat: {mask(address)}")
        await self.overall.take(keep=BULK_RESERVE)
        try:
            message = await self.api.send_message(int(ident), text[:MAX_TEXT])
        except RetryAfter as exc:
            self.overall.pause(retry_seconds(exc))
            return SendResult(Outcome.RETRY, error="Telegram 429 (flood limit)",
                              retry_after=retry_seconds(exc))
        except Forbidden:
            return SendResult(Outcome.UNREACHABLE, error="blocked the bot (Telegram 403)")
        except BadRequest as exc:
            gone = "chat not found" in str(exc).lower()
            return SendResult(Outcome.UNREACHABLE if gone else Outcome.FAILED,
                              error=f"Telegram 400: {self.scrub(exc)}")
        except InvalidToken:
            return SendResult(Outcome.FAILED, error=TOKEN_REFUSED)
        except NetworkError as exc:  # TimedOut too
            cause = exc.__cause__
            unsent = cause is None or isinstance(cause, NOT_SENT)  # None: Telegram said 5xx
            return SendResult(Outcome.RETRY if unsent else Outcome.AMBIGUOUS,
                              error=f"Telegram did not answer: {self.scrub(exc)}")
        except TelegramError as exc:
            return SendResult(Outcome.FAILED, error=self.scrub(exc))
        return SendResult(Outcome.SENT, platform_id=str(message.message_id))

    def scrub(self, error: object) -> str:
        text = str(error) or type(error).__name__
        return text.replace(self.token, "<token>") if self.token else text


# --- the channel --------------------------------------------------------------------------

def bot_commands(catalogs: Catalogs, lang: str) -> list[BotCommand]:
    return [BotCommand(name, catalogs.text(lang, f"command_{name}")) for name in COMMANDS]


class TelegramChannel:
    """The Telegram channel inside `serve`.

    `start()` returns at once; in the background it checks the token (getMe), registers
    (setWebhook with our secret, or deleteWebhook then long polling) and sets the command
    menu per language. /healthz shows the mode and, until connected or after a failure, why
    the channel is not working (`health["telegram_error"]`).
    """

    max_body = MAX_UPDATE_BODY  # the webhook route reads no more of a request

    def __init__(self, bot: Bot, health: dict[str, Any]) -> None:
        settings = bot.settings
        self.bot, self.health = bot, health
        self.token = settings.telegram_token or ""
        self.secret = settings.telegram_webhook_secret
        self.mode = "webhook" if self.secret else "polling"
        self.webhook_url = settings.public_url + WEBHOOK_PATH
        self._requests = (
            HTTPXRequest(connection_pool_size=64, read_timeout=10, write_timeout=10,
                         connect_timeout=5, pool_timeout=10),
            HTTPXRequest(connection_pool_size=1, read_timeout=10, connect_timeout=5),
        )
        self.api = BotAPI(self.token, base_url=f"{settings.telegram_api_url}/bot",
                          request=self._requests[0], get_updates_request=self._requests[1])
        self.sender = Sender(self.api, report=self._report, scrub=self.scrub,
                             on_blocked=self._blocked)
        self.desk = Desk(bot, self.api)  # organizer commands, for the ORGANIZERS list only
        self._problems: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def _blocked(self, chat_id: int) -> None:
        """A member blocked the bot (403 on a reply): broadcasts skip them until they write."""
        address = address_of(chat_id)

        async def job(conn: Any) -> None:
            await conn.execute("UPDATE contacts SET unreachable = 'blocked the bot (Telegram "
                               "403)' WHERE address = ?", (address,))

        await self.bot.store.write(job)

    # lifecycle

    async def start(self) -> None:
        self.health["telegram_mode"] = self.mode
        self._report("api", "not connected to the Bot API yet")
        if self.mode == "webhook" and not self.webhook_url.startswith("https://"):
            log.warning("telegram: the webhook URL %s is not HTTPS; Telegram itself only calls "
                        "HTTPS URLs (set PUBLIC_URL)", self.webhook_url)
        self._task = asyncio.create_task(self._run(), name="telegram")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.desk.close()
        await self.sender.close()
        for request in self._requests:
            with contextlib.suppress(Exception):
                await request.shutdown()

    # receiving

    def secret_ok(self, header: str | None) -> bool:
        """X-Telegram-Bot-Api-Secret-Token equals TELEGRAM_WEBHOOK_SECRET (constant time)."""
        if not self.secret or header is None:
            return False
        return hmac.compare_digest(header.encode("utf-8"), self.secret.encode("utf-8"))

    async def receive(self, body: bytes) -> int:
        """An authenticated webhook body -> the HTTP status to answer Telegram.

        200 for anything we cannot use (so Telegram does not retry it forever), 503 when the
        store could not record it (Telegram retries; the update id dedupes).
        """
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            log.warning("telegram: a webhook body that is not JSON (%d bytes) was ignored",
                        len(body))
            return 200
        uid = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(uid, int) or isinstance(uid, bool):
            log.warning("telegram: a webhook body that is not an Update was ignored")
            return 200
        try:
            received = read_update(Update.de_json(data, self.api), self.bot.campaign)
        except Exception as exc:
            log.warning("telegram: update %d could not be read (%s); ignored", uid,
                        type(exc).__name__)
            return 200
        try:
            await self.handle(received)
        except StoreError:
            log.exception("telegram: update %d could not be recorded; Telegram will retry", uid)
            return 503
        return 200

    async def handle(self, received: Received) -> None:
        """Hand one update to the engine and queue the replies; a button press is answered
        whatever happens (except a redelivery, which sends nothing again). Raises StoreError."""
        duplicate = False
        try:
            msg = received.inbound
            if msg is None or received.chat_id is None:
                log.info("telegram: update %d ignored: %s", received.update_id, received.why)
                return
            if self.desk.wants(msg.address, msg.text):
                await self.desk.handle(received.update_id, msg.address, received.chat_id,
                                       msg.text)
                return
            outcome = await self.bot.engine.handle(msg)
            duplicate = outcome.duplicate
            if duplicate:
                log.info("telegram: update %d from %s was handled before; nothing sent again",
                         received.update_id, mask(msg.address))
                return
            self.sender.reply(received.chat_id, outcome.replies,
                              marker(self.bot.store, msg.channel, msg.platform_id)
                              if outcome.replies else None)
        except StoreError:
            raise
        except Exception:
            log.exception("telegram: update %d could not be handled", received.update_id)
        finally:
            if received.callback_id is not None and not duplicate:
                self.sender.answer(received.callback_id)

    # connecting, registering, polling

    async def _run(self) -> None:
        if not await self._connect():
            return
        if self.mode == "polling":
            await asyncio.gather(self._set_commands(), self._poll())
        else:
            await self._set_commands()

    async def _connect(self) -> bool:
        """getMe, then register (setWebhook, or deleteWebhook for polling); retried until it
        works. False when the settings make it impossible."""
        if self.secret and not SECRET_TOKEN.fullmatch(self.secret):
            self._report("api", "TELEGRAM_WEBHOOK_SECRET may only hold A-Z, a-z, 0-9, _ and - "
                                "(1 to 256 characters): change it")
            log.error("telegram: %s", self._problems["api"])
            return False
        delay = 1.0
        while True:
            step = "getMe"
            try:
                await self._call(self.api.initialize)
                if self.mode == "webhook":
                    step = "setWebhook"
                    await self._call(lambda: self.api.set_webhook(
                        self.webhook_url, allowed_updates=list(ALLOWED_UPDATES),
                        secret_token=self.secret, drop_pending_updates=False))
                else:
                    step = "deleteWebhook"
                    await self._call(lambda: self.api.delete_webhook(drop_pending_updates=False))
                break
            except InvalidToken:
                self._report("api", TOKEN_REFUSED)
                log.error("telegram: %s", TOKEN_REFUSED)
                delay = 60.0
            except TelegramError as exc:
                self._report("api", f"{step} failed: {self.scrub(exc)}")
                log.warning("telegram: %s failed (%s); trying again in %.0f s", step,
                            self.scrub(exc), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        self._report("api", None)
        log.info("telegram: connected as @%s in %s mode%s", self.api.username, self.mode,
                 f" ({self.webhook_url})" if self.mode == "webhook" else "")
        return True

    async def _set_commands(self) -> None:
        """The / menu in each campaign language, and in the default language for the rest."""
        catalogs, campaign = self.bot.catalogs, self.bot.campaign
        menus: list[tuple[str | None, list[BotCommand]]] = [
            (None, bot_commands(catalogs, campaign.default_language)),
            *((lang, bot_commands(catalogs, lang)) for lang in campaign.languages),
        ]
        for lang, commands in menus:
            try:
                await self._call(partial(self.api.set_my_commands, commands,
                                         language_code=lang))
            except TelegramError as exc:
                log.warning("telegram: setMyCommands (%s) failed: %s", lang or "default",
                            self.scrub(exc))

    async def _poll(self) -> None:
        """Long polling: each batch handled, then confirmed by asking with offset = last + 1."""
        offset: int | None = None
        delay = 1.0
        while True:
            # Take no more updates than can be answered soon: under a flood they wait at
            # Telegram (kept for 24 hours) instead of as replies in our memory.
            await self.sender.room(POLL_BACKLOG)
            try:
                updates = await self.api.get_updates(offset=offset, timeout=POLL_TIMEOUT,
                                                     allowed_updates=list(ALLOWED_UPDATES))
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except TelegramError as exc:
                problem = TOKEN_REFUSED if isinstance(exc, InvalidToken) else (
                    f"getUpdates failed: {self.scrub(exc)}")
                if isinstance(exc, Conflict):
                    problem += " (another process polls with this token, or a webhook is set)"
                self._report("api", problem)
                log.warning("telegram: %s; trying again in %.0f s", problem, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self._report("api", None)
            delay = 1.0
            if not updates:
                continue
            again = await self._handle_batch(updates)
            offset = again if again is not None else updates[-1].update_id + 1
            if again is not None:
                await asyncio.sleep(1.0)

    async def _handle_batch(self, updates: Sequence[Update]) -> int | None:
        """Each member's updates in order, members in parallel; the first update id that must
        be fetched again (the store failed), or None."""
        chains: dict[str, list[Received]] = {}
        for update in updates:
            try:
                received = read_update(update, self.bot.campaign)
            except Exception as exc:
                log.warning("telegram: update %d could not be read (%s); ignored",
                            update.update_id, type(exc).__name__)
                continue
            chains.setdefault(received.key, []).append(received)

        async def chain(items: list[Received]) -> int | None:
            for item in items:
                try:
                    await self.handle(item)
                except StoreError:
                    log.exception("telegram: update %d could not be recorded; fetching it "
                                  "again", item.update_id)
                    return item.update_id
            return None

        failed = [uid for uid in await asyncio.gather(*map(chain, chains.values()))
                  if uid is not None]
        return min(failed) if failed else None

    # helpers

    async def _call(self, job: Callable[[], Awaitable[Any]]) -> Any:
        """One Bot API call outside the sender (registration), waiting out a 429."""
        while True:
            try:
                return await job()
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))

    def _report(self, source: str, problem: str | None) -> None:
        """Record (or clear) what keeps the channel from working; /healthz shows the first."""
        if problem is None:
            self._problems.pop(source, None)
        else:
            self._problems[source] = problem
        self.health["telegram_error"] = next(iter(self._problems.values()), None)

    def scrub(self, error: object) -> str:
        """An error's text without the bot token (PTB names it in some messages)."""
        text = str(error) or type(error).__name__
        return text.replace(self.token, "<token>") if self.token else text
