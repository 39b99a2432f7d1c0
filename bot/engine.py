"""The channel-agnostic engine: an inbound message in, the replies out.

dedupe (a platform id is processed once) -> the contact's lock (one message of a contact at
a time, in order; other contacts in parallel) -> load state -> the flow decides -> one
transaction commits state, signature, consent, outbox and the processed id -> replies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from bot.campaign import Campaign
from bot.config import is_organizer
from bot.i18n import Catalogs
from bot.logs import mask
from bot.store import ContactRow, Store, TurnRecord, write_turn
from bot.throttle import Throttle
from flows.signing import State, decide
from flows.types import ContactView, Reply, Turn
from flows.words import fold

log = logging.getLogger(__name__)

ORGANIZER_STATS = "stats"  # organizers text it for the numbers; others get the normal answers
MAX_TEXT = 1600  # Twilio's own limit for one message; anything longer is cut before the flow


@dataclass(frozen=True)
class Inbound:
    """One message from a person, as a channel hands it over."""

    channel: str  # sms, telegram, whatsapp
    address: str  # +E164, telegram:<id>, whatsapp:+E164
    text: str
    platform_id: str | None = None  # MessageSid, update_id: processed once
    language_hint: str | None = None  # e.g. Telegram's language_code, already mapped to ours
    #: Folded words the carrier already answered itself (Twilio's opt-out handling): the bot
    #: records what they mean and stays silent, unless a yes/no question took the word.
    carrier_words: frozenset[str] = field(default_factory=frozenset)
    media: bool = False  # a photo, voice note or sticker came with (or instead of) the text


@dataclass(frozen=True)
class Outcome:
    replies: list[Reply]
    duplicate: bool = False
    language: str | None = None
    throttled: bool = False


class Tally:
    """The count a thank-you shows. Several bots may feed one central store, so it is the
    store's total as the sync worker last read it, plus this bot's signatures that were not
    in it then (not synced yet, parked, or new since); until a total is known, or when this
    bot alone has more, its own count."""

    def __init__(self, store: Store, campaign: str) -> None:
        self.store, self.campaign = store, campaign
        #: (the store's total, how many of ours it held then: synced ones)
        self.central: tuple[int, int] | None = None

    async def signature_count(self) -> int:
        ours = await self.store.signature_count(self.campaign)
        if self.central is None:
            return ours
        total, ours_then = self.central
        return max(ours, total + ours - ours_then)

    async def set_central(self, total: int) -> None:
        """The central store holds `total` now (read by the sync worker)."""
        self.central = (total, await self.store.synced_count(self.campaign))


class _FixedTexts:
    """The catalogs as the flows read them, with what cannot change while the bot runs
    worked out once: texts without values, language names. (Catalogs.text formats the
    campaign goal with Babel on every call, and the language question asks for every name.)"""

    def __init__(self, catalogs: Catalogs) -> None:
        self.catalogs = catalogs
        self._texts: dict[tuple[str, str], str] = {}
        self._names: dict[str, str] = {}
        self._all_names: dict[str, tuple[str, ...]] = {}

    def text(self, lang: str, key: str, **values: object) -> str:
        if values:
            return self.catalogs.text(lang, key, **values)
        text = self._texts.get((lang, key))
        if text is None:
            text = self._texts[lang, key] = self.catalogs.text(lang, key)
        return text

    def number(self, value: int, lang: str) -> str:
        return self.catalogs.number(value, lang)

    def language_name(self, lang: str) -> str:
        name = self._names.get(lang)
        if name is None:
            name = self._names[lang] = self.catalogs.language_name(lang)
        return name

    def language_names(self, lang: str) -> list[str]:
        names = self._all_names.get(lang)
        if names is None:
            names = self._all_names[lang] = tuple(self.catalogs.language_names(lang))
        return list(names)


class KeyedLocks:
    """One asyncio.Lock per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def _replies_json(replies: list[Reply]) -> str:
    return json.dumps([r.to_json() for r in replies], ensure_ascii=False)


def replies_from(raw: str) -> list[Reply]:
    """Replies as the inbound table keeps them (JSON)."""
    return [Reply.from_json(item) for item in json.loads(raw)]


class Engine:
    def __init__(self, store: Store, campaign: Campaign, catalogs: Catalogs,
                 organizers: frozenset[str] = frozenset(), throttle: Throttle | None = None
                 ) -> None:
        self.store = store
        self.campaign = campaign
        self.catalogs = catalogs
        self._texts = _FixedTexts(catalogs)
        self.organizers = organizers
        self.throttle = throttle or Throttle()
        self.locks = KeyedLocks()
        self.tally = Tally(store, campaign.id)
        #: Do a turn's replies leave after the commit (bot.replies.later)? Then the turn
        #: marks them unsent until its channel has sent them.
        self.replies_later: Callable[[Inbound, list[Reply]], bool] = lambda msg, replies: False

    def is_organizer(self, address: str) -> bool:
        return is_organizer(self.organizers, address)

    async def handle(self, msg: Inbound, *, flood_limit: bool = True) -> Outcome:
        """Process one message exactly once and return what to answer. `flood_limit=False`
        for a tester at the keyboard (`chat`, the console's simulator), never a platform."""
        if msg.platform_id is not None:
            done = await self.store.processed(msg.channel, msg.platform_id)
            if done is not None:
                return Outcome(replies_from(done), duplicate=True)
        if flood_limit and not self.throttle.allow(msg.address):
            if self.throttle.dropped % 100 == 1:
                log.warning("%s %s: flooding; messages dropped until it slows down",
                            msg.channel, mask(msg.address))
            return Outcome([], throttled=True)
        if fold(msg.text) == ORGANIZER_STATS and self.is_organizer(msg.address):
            return Outcome([await self.stats_reply()])
        async with self.locks.hold(msg.address):
            # Again under the lock (the same id may have been handled meanwhile), with the
            # contact's state in the same read.
            done, row = await self.store.turn_state(msg.address, self.campaign.id, msg.channel,
                                                    msg.platform_id)
            if done is not None:
                return Outcome(replies_from(done), duplicate=True)
            return await self._turn(msg, row)

    async def _turn(self, msg: Inbound, row: ContactRow | None) -> Outcome:
        contact = ContactView(
            address=msg.address,
            channel=msg.channel,
            language=row.language if row else None,
            state=row.state if row else State.NEW,
            data=json.loads(row.data) if row else {},
            stopped=row.stopped if row else False,
            signed=row.signed if row else False,
        )
        turn = Turn(
            contact=contact,
            text=msg.text[:MAX_TEXT],
            texts=self._texts,
            languages=self.campaign.languages,
            default_language=self.campaign.default_language,
            counter=self.tally,
            language_hint=msg.language_hint,
            media=msg.media,
        )
        await decide(turn)
        replies = turn.replies
        if msg.carrier_words and fold(msg.text) in msg.carrier_words and not turn.answered:
            replies = []  # the carrier answered this word itself; a second answer would fail
        record = TurnRecord(
            channel=msg.channel,
            address=msg.address,
            platform_id=msg.platform_id,
            campaign=self.campaign.id,
            language=turn.language,
            state=turn.state,
            data=json.dumps(turn.data, ensure_ascii=False),
            replies=_replies_json(replies),
            effects=tuple(turn.effects),
            unsent=self.replies_later(msg, replies),
        )
        try:
            await self.store.write_sync(partial(write_turn, rec=record))
        except sqlite3.IntegrityError:
            # The same platform id was committed meanwhile (another process): answer as it did.
            done = await self.store.processed(msg.channel, msg.platform_id or "")
            if done is None:
                raise
            return Outcome(replies_from(done), duplicate=True)
        log.info(
            "%s %s: %s -> %s%s%s",
            msg.channel,
            mask(msg.address),
            contact.state,
            turn.state,
            f" [{turn.keyword}]" if turn.keyword else "",
            "".join(f" +{type(e).__name__.lower()}" for e in turn.effects),
        )
        return Outcome(replies, language=turn.language)

    async def stats_reply(self) -> Reply:
        """`STATS` from an organizer: the count, today, and the languages, in one short text."""
        from bot.reports import stats

        data = await stats(self.store, self.campaign.id, self.campaign.goal)
        today = max(data["signatures_by_day"].items(), default=("-", 0))
        langs = " ".join(f"{k}:{v}" for k, v in data["signatures_by_language"].items())
        text = (f"{data['signatures']}/{self.campaign.goal} signed; {today[1]} on {today[0]}; "
                f"{data['opted_in_updates']} want news; {data['stopped']} stopped. {langs}")
        return Reply(text, self.campaign.default_language)


def carrier_words(words: Mapping[str, object]) -> frozenset[str]:
    return frozenset(fold(w) for w in words)
