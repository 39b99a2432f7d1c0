"""Organizer broadcasts: plan (dry run), persist, send within each channel's rate, resume.

A broadcast is persisted when it starts: its final texts, its segment, and one row per
recipient chosen then. Each channel has its own lane, paced so that no one-second window
holds more than its `SEND_RATE_*`; member replies never go through these lanes.

Crash policy (we prefer a rare missed message to a double text to a worker who pays for it):
a row is marked `sending` and committed *before* the platform is called, and `sent` with the
platform's id after. A row found in `sending` when a broadcast resumes may or may not have
left: it is marked `skipped` ("interrupted"), never sent again. A timeout from the platform
is treated the same way. Rows still `queued` are sent on resume. Only one process sends a
broadcast at a time (a lease renewed every few seconds), so `serve` and a re-run of the
command never both send it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import socket
import sys
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
import httpx
from rich.console import Console

from bot.app import Bot
from bot.delivery import Outcome, Outlet, SendResult
from bot.i18n import PLACEHOLDER
from bot.logs import mask
from bot.pacing import SlidingWindow
from bot.segments import Segment, parse_segment
from bot.sms_text import cost, to_gsm7
from bot.store import process_alive, utcnow
from flows.keywords import Keyword, words_for
from flows.words import fold

log = logging.getLogger(__name__)

#: Local time of a contact, from their province; the campaign's zone when unknown.
REGION_ZONES: dict[str, str] = {
    "AB": "America/Edmonton", "BC": "America/Vancouver", "MB": "America/Winnipeg",
    "NB": "America/Moncton", "NL": "America/St_Johns", "NS": "America/Halifax",
    "ON": "America/Toronto", "PE": "America/Halifax", "QC": "America/Toronto",
    "SK": "America/Regina", "NT": "America/Yellowknife", "NU": "America/Iqaluit",
    "YT": "America/Whitehorse",
}
#: Default price of one outbound SMS segment on a Canadian long code, in USD.
PRICE_PER_SEGMENT = 0.0083
BIG_AUDIENCE, COSTLY_SEGMENTS = 1000, 4
LEASE = timedelta(seconds=15)
MAX_ATTEMPTS = 5
PAGE = 500
STATE_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3,
              "failed": 3, "skipped": 3}
INTERRUPTED = "interrupted while sending: may have left, not sent again"


class BroadcastError(Exception):
    """The message file, segment or settings are wrong; the message says how to fix it."""


class LeaseHeld(BroadcastError):
    """Another live process is sending this broadcast."""


# --- the message file -------------------------------------------------------------------

@dataclass(frozen=True)
class MessageFile:
    texts: dict[str, str]
    segment: str | None
    #: language -> {"content_sid": "HX…", "variables": {"1": "…"}}: the pre-approved WhatsApp
    #: template for contacts outside WhatsApp's 24-hour window (Twilio Content API).
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)


TEMPLATES_KEY = "_whatsapp_templates"  # kept beside the texts in broadcasts.texts
WHATSAPP_WINDOW = timedelta(hours=24)


def _template(path: Path, lang: str, raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("content_sid"), str) or \
            not raw["content_sid"].startswith("HX"):
        raise BroadcastError(f"message file {path}: [{lang}] whatsapp_template needs "
                             'content_sid = "HX…" (a Twilio Content SID)')
    variables = raw.get("variables", {})
    if not isinstance(variables, dict):
        raise BroadcastError(f"message file {path}: [{lang}] whatsapp_template.variables "
                             "must be a table")
    return {"content_sid": raw["content_sid"],
            "variables": {str(k): str(v) for k, v in variables.items()}}


def load_message_file(path: Path, languages: tuple[str, ...], default: str) -> MessageFile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BroadcastError(f"message file {path} not found") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BroadcastError(f"message file {path} is not valid TOML: {exc}") from exc
    texts: dict[str, str] = {}
    templates: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key == "segment":
            continue
        if isinstance(value, dict) and "whatsapp_template" in value:
            templates[key] = _template(path, key, value["whatsapp_template"])
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise BroadcastError(f"message file {path}: [{key}] needs a text = \"…\"")
        if key not in languages:
            raise BroadcastError(f"message file {path}: [{key}] is not one of the campaign's "
                                 f"languages ({', '.join(languages)})")
        text = value["text"].strip()
        if not text:
            raise BroadcastError(f"message file {path}: [{key}] text is empty")
        if PLACEHOLDER.search(text):
            raise BroadcastError(f"message file {path}: [{key}] has a {{placeholder}}; "
                                 "broadcast texts are sent as written")
        texts[key] = text
    if default not in texts:
        raise BroadcastError(f"message file {path}: needs a [{default}] text (the campaign's "
                             "default language, for contacts whose language has none)")
    segment = data.get("segment")
    if segment is not None and not isinstance(segment, str):
        raise BroadcastError(f"message file {path}: segment must be a string")
    return MessageFile(texts, segment, templates)


def final_text(bot: Bot, lang: str, text: str) -> str:
    """Name the organization and say how to stop, unless the text already does."""
    org = bot.campaign.organization
    if fold(org) not in fold(text):
        text = f"{org}: {text}"
    stop_words = {fold(w) for w in (*words_for(Keyword.STOP, lang), "STOP")}
    said = {fold(w) for w in text.replace(",", " ").replace(".", " ").split()}
    if not stop_words & said:
        text = f"{text} {bot.catalogs.text(lang, 'broadcast_stop')}"
    return text


def sms_text(bot: Bot, lang: str, text: str) -> str:
    return to_gsm7(text) if lang in bot.campaign.gsm7_languages else text


# --- the plan (dry run) -----------------------------------------------------------------

AUDIENCE = """
    FROM contacts c
    JOIN signatures s ON s.contact_id = c.id AND s.campaign = ?
    WHERE c.stopped = 0 AND c.unreachable IS NULL AND s.opted_in_updates = 1 AND {where}
      AND c.address NOT LIKE 'sandbox:%'
"""


@dataclass
class Line:
    language: str
    channel: str
    recipients: int
    text: str
    fallback: bool
    encoding: str = ""
    segments: int = 0
    by_template: int = 0  # WhatsApp: outside the 24-hour window, sent as the template
    no_template: int = 0  # WhatsApp: outside the window and no template: skipped


@dataclass
class Plan:
    segment: Segment
    texts: dict[str, str]  # language -> final text (Telegram form; SMS maps it to GSM-7)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    price: float = PRICE_PER_SEGMENT

    @property
    def recipients(self) -> int:
        return sum(line.recipients for line in self.lines)

    @property
    def sms_segments(self) -> int:
        return sum(line.recipients * line.segments for line in self.lines if line.channel == "sms")

    @property
    def key(self) -> str:
        raw = json.dumps([self.segment.text, sorted(self.texts.items()),
                          sorted(self.templates.items())], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def plan(bot: Bot, message: MessageFile, segment_expr: str | None,
               price: float = PRICE_PER_SEGMENT) -> Plan:
    expr = segment_expr if segment_expr is not None else message.segment
    try:
        segment = parse_segment(expr, bot.campaign.languages)
    except ValueError as exc:
        raise BroadcastError(str(exc)) from exc
    default = bot.campaign.default_language
    texts = {lang: final_text(bot, lang, message.texts.get(lang, message.texts[default]))
             for lang in bot.campaign.languages}
    templates = {lang: message.templates.get(lang) or message.templates[default]
                 for lang in bot.campaign.languages
                 if lang in message.templates or default in message.templates}
    result = Plan(segment, texts, templates, price=price)
    where, params = segment.sql()
    window_start = (datetime.now(UTC) - WHATSAPP_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    outside = {str(r["language"]): int(r["n"]) for r in await bot.store.fetchall(
        f"SELECT coalesce(c.language, ?) AS language, count(*) AS n "
        f"{AUDIENCE.format(where=where)} AND c.channel = 'whatsapp' AND c.updated_at < ? "
        "GROUP BY 1", (default, bot.campaign.id, *params, window_start))}
    rows = await bot.store.fetchall(
        f"SELECT coalesce(c.language, ?) AS language, c.channel, count(*) AS n "
        f"{AUDIENCE.format(where=where)} GROUP BY 1, 2 ORDER BY 1, 2",
        (default, bot.campaign.id, *params),
    )
    for row in rows:
        lang, channel, n = row["language"], row["channel"], int(row["n"])
        lang = lang if lang in texts else default
        line = Line(lang, channel, n, texts[lang], fallback=lang not in message.texts)
        if channel == "sms":
            line.text = sms_text(bot, lang, line.text)
            c = cost(line.text)
            line.encoding, line.segments = c.encoding, c.segments
            if c.segments >= COSTLY_SEGMENTS:
                size = "WARNING: " if n >= BIG_AUDIENCE else ""
                result.warnings.append(
                    f"{size}the {lang} SMS takes {c.segments} segments ({c.encoding}) and goes to "
                    f"{n} phones: {n * c.segments} segments. Shorten it?")
        if channel == "whatsapp":
            late = outside.get(row["language"], 0)
            if lang in templates:
                line.by_template = late
            else:
                line.no_template = late
                if late:
                    result.warnings.append(
                        f"{late} {lang} WhatsApp contacts wrote more than 24 hours ago and "
                        "there is no whatsapp_template for them: they will be skipped")
        result.lines.append(line)
    settings = bot.settings
    offs = (("sms", settings.sms_off_reason), ("telegram", settings.telegram_off_reason))
    for channel, off in offs:
        waiting = sum(line.recipients for line in result.lines if line.channel == channel)
        if off and waiting:
            result.warnings.append(f"{waiting} {channel} recipients will be skipped: {off}")
    return result


def format_plan(p: Plan) -> str:
    out = [f"Segment: {p.segment.text or '(everyone who opted in to updates)'}",
           f"{'language':<8} {'channel':<9} {'recipients':>10} {'encoding':<8} {'seg/msg':>7} "
           f"{'segments':>8}  fallback"]
    for line in p.lines:
        seg = f"{line.segments:>7} {line.recipients * line.segments:>8}" if line.segments else \
            f"{'-':>7} {'-':>8}"
        out.append(f"{line.language:<8} {line.channel:<9} {line.recipients:>10} "
                   f"{line.encoding or '-':<8} {seg}  {'default text' if line.fallback else ''}")
        if line.by_template or line.no_template:
            out.append(f"{'':<8} {'':<9} outside WhatsApp's 24-hour window: {line.by_template} "
                       f"by template, {line.no_template} skipped (no template)")
    out.append(f"Total: {p.recipients} recipients; {p.sms_segments} SMS segments, about "
               f"${p.sms_segments * p.price:,.2f} at ${p.price}/segment")
    out.append("")
    shown = set()
    for line in p.lines:
        if (line.language, line.channel) in shown:
            continue
        shown.add((line.language, line.channel))
        extra = f" [{line.encoding}, {line.segments} segment(s)]" if line.channel == "sms" else ""
        out.append(f"{line.language}/{line.channel}{extra}: {line.text}")
    out.extend(f"\n{w}" for w in p.warnings)
    return "\n".join(out)


# --- persistence ------------------------------------------------------------------------

def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def create(bot: Bot, p: Plan, owner: str | None = None) -> tuple[int, bool]:
    """The broadcast for this plan: an unfinished one with the same texts and segment is
    resumed (returns its id and False), else a new one with its recipients (id, True).
    A new one is born leased to `owner` when given, so no other process (serve's worker)
    can take it between its creation and its sender's first claim."""
    existing = await bot.store.fetchone(
        "SELECT id FROM broadcasts WHERE key = ? AND status = 'running' ORDER BY id DESC LIMIT 1",
        (p.key,),
    )
    if existing is not None:
        return int(existing["id"]), False
    where, params = p.segment.sql()
    default = bot.campaign.default_language
    languages = bot.campaign.languages

    async def job(conn: aiosqlite.Connection) -> int:
        cursor = await conn.execute(
            "INSERT INTO broadcasts (key, segment, texts, created_at, lease_owner, "
            "lease_expires) VALUES (?, ?, ?, ?, ?, ?)",
            (p.key, p.segment.text,
             json.dumps({**p.texts, TEMPLATES_KEY: p.templates}, ensure_ascii=False), utcnow(),
             owner, _stamp(datetime.now(UTC) + LEASE) if owner else None),
        )
        bid = int(cursor.lastrowid or 0)
        marks = ", ".join("?" * len(languages))
        await conn.execute(
            "INSERT INTO broadcast_recipients (broadcast_id, contact_id, address, channel, "
            "language, region) SELECT ?, c.id, c.address, c.channel, "
            f"CASE WHEN c.language IN ({marks}) THEN c.language ELSE ? END, s.region "
            f"{AUDIENCE.format(where=where)}",
            (bid, *languages, default, bot.campaign.id, *params),
        )
        await conn.execute(
            "UPDATE broadcasts SET total = (SELECT count(*) FROM broadcast_recipients "
            "WHERE broadcast_id = ?) WHERE id = ?", (bid, bid))
        return bid

    return int(await bot.store.write(job)), True


async def unfinished(bot: Bot) -> list[int]:
    rows = await bot.store.fetchall("SELECT id FROM broadcasts WHERE status = 'running'")
    return [int(r["id"]) for r in rows]


async def counts(bot: Bot, bid: int) -> dict[str, int]:
    rows = await bot.store.fetchall(
        "SELECT state, count(*) AS n FROM broadcast_recipients WHERE broadcast_id = ? "
        "GROUP BY state", (bid,))
    return {str(r["state"]): int(r["n"]) for r in rows}


async def apply_status(bot: Bot, platform_id: str, state: str, error: int | None) -> bool:
    """A delivery-status callback: move the message's state forward only."""
    rank = STATE_RANK[state]
    stopped = error == 21610

    async def job(conn: aiosqlite.Connection) -> bool:
        cursor = await conn.execute(
            "UPDATE broadcast_recipients SET state = ?, error = coalesce(?, error), "
            "updated_at = ? WHERE platform_id = ? AND CASE state "
            + " ".join(f"WHEN '{s}' THEN {r}" for s, r in STATE_RANK.items())
            + " ELSE 9 END < ? RETURNING contact_id",
            (state, f"Twilio error {error}" if error else None, utcnow(), platform_id, rank),
        )
        row = await cursor.fetchone()
        await cursor.close()
        if row is not None and stopped:
            await record_carrier_stop(conn, int(row[0]))
        return row is not None

    return bool(await bot.store.write(job))


async def record_carrier_stop(conn: aiosqlite.Connection, contact_id: int) -> None:
    """The carrier says this person replied STOP (21610): never send again, like our STOP."""
    now = utcnow()
    await conn.execute("UPDATE contacts SET stopped = 1 WHERE id = ?", (contact_id,))
    await conn.execute(
        "INSERT INTO consent (contact_id, event, channel, language, text_version, at) "
        "SELECT id, 'stop', channel, language, 'carrier', ? FROM contacts WHERE id = ?",
        (now, contact_id))
    async with conn.execute(
        "SELECT signature_id FROM signatures WHERE contact_id = ? AND opted_in_updates = 1",
        (contact_id,)) as cur:
        rows = await cur.fetchall()
    for (sid,) in rows:
        await conn.execute("UPDATE signatures SET opted_in_updates = 0 WHERE signature_id = ?",
                           (sid,))
        await conn.execute("INSERT INTO outbox (kind, signature_id, created_at) "
                           "VALUES ('upsert', ?, ?)", (sid, now))


# --- sending ----------------------------------------------------------------------------

def in_window(last_inbound: str | None, now: datetime | None = None) -> bool:
    """A WhatsApp contact wrote to us within 24 hours: free text is allowed."""
    if not last_inbound:
        return False
    start = ((now or datetime.now(UTC)) - WHATSAPP_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    return last_inbound >= start


def in_hours(hours: tuple[int, int], zone: ZoneInfo, now: datetime) -> bool:
    start, end = hours
    if (start, end) in ((0, 24), (0, 0)) or start == end:
        return True
    hour = now.astimezone(zone).hour
    return start <= hour < end if start < end else hour >= start or hour < end


def open_regions(bot: Bot, now: datetime) -> set[str | None]:
    """Provinces (None: unknown) where it is now within BROADCAST_HOURS."""
    hours = bot.settings.broadcast_hours
    regions: set[str | None] = {r for r, z in REGION_ZONES.items()
                                if in_hours(hours, ZoneInfo(z), now)}
    if in_hours(hours, ZoneInfo(bot.campaign.timezone), now):
        regions.add(None)
    return regions


@dataclass
class Progress:
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    waiting: int = 0  # outside BROADCAST_HOURS for now

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped


def tally(p: Progress, c: dict[str, int]) -> Progress:
    """Fill `p` from the recipients' states (`counts`)."""
    p.total = sum(c.values())
    p.sent = c.get("sent", 0) + c.get("delivered", 0)
    p.failed = c.get("failed", 0) + c.get("undelivered", 0)
    p.skipped = c.get("skipped", 0)
    return p


async def follow(bot: Bot, bid: int, on_progress: Callable[[Progress], None],
                 every: float = 0.5) -> Progress | None:
    """Watch broadcast `bid` while another process sends it: its counts until it is done
    (returns them), or None once its lease is let go or its owner died, so the caller can
    take it over."""
    progress = Progress()
    while True:
        row = await bot.store.fetchone(
            "SELECT status, lease_owner, lease_expires FROM broadcasts WHERE id = ?", (bid,))
        on_progress(tally(progress, await counts(bot, bid)))
        if row is None or row["status"] != "running":
            return progress
        if row["lease_owner"] is None or _owner_is_dead(row["lease_owner"]) or \
                (row["lease_expires"] or "") < _stamp(datetime.now(UTC)):
            return None
        await asyncio.sleep(every)


def _owner_is_dead(owner: str | None) -> bool:
    """A lease owner `host:pid:token` on this host whose process is gone."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))


class Sender:
    """Sends one broadcast over its channels' outlets, each in its own paced lane."""

    def __init__(self, bot: Bot, outlets: dict[str, Outlet], rates: dict[str, float],
                 on_progress: Callable[[Progress], None] | None = None,
                 concurrency: int = 32) -> None:
        self.bot = bot
        self.outlets = outlets
        self.rates = rates
        self.on_progress = on_progress or (lambda p: None)
        self.concurrency = concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.templates: dict[str, dict[str, Any]] = {}
        self.progress = Progress()

    # The lease: one process sends a broadcast at a time.
    async def claim(self, bid: int) -> bool:
        """Take (or renew) the lease: free, ours, expired, or held by a dead process here."""
        now = datetime.now(UTC)
        expires, current = _stamp(now + LEASE), _stamp(now)
        row = await self.bot.store.fetchone("SELECT lease_owner FROM broadcasts WHERE id = ?",
                                            (bid,))
        dead = row["lease_owner"] if row and _owner_is_dead(row["lease_owner"]) else None

        async def job(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute(
                "UPDATE broadcasts SET lease_owner = ?, lease_expires = ? WHERE id = ? AND "
                "status = 'running' AND (lease_owner IS NULL OR lease_owner = ? OR "
                "lease_owner = ? OR lease_expires < ?)",
                (self.owner, expires, bid, self.owner, dead, current))
            return cursor.rowcount == 1

        return bool(await self.bot.store.write(job))

    async def release(self, bid: int, finished: bool) -> None:
        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE broadcasts SET lease_owner = NULL, lease_expires = NULL, "
                "status = CASE WHEN ? THEN 'done' ELSE status END, "
                "finished_at = CASE WHEN ? THEN ? ELSE finished_at END "
                "WHERE id = ? AND lease_owner = ?",
                (finished, finished, utcnow(), bid, self.owner))

        await self.bot.store.write(job)

    async def run(self, bid: int) -> Progress:
        """Send what is left of broadcast `bid`; returns the final counts."""
        if not await self.claim(bid):
            raise LeaseHeld(f"broadcast {bid} is being sent by another process; "
                            "it will go on there (or try again in a few seconds)")
        renew = asyncio.create_task(self._renew(bid))
        finished = False
        try:
            await self._skip_interrupted(bid)
            row = await self.bot.store.fetchone("SELECT texts FROM broadcasts WHERE id = ?", (bid,))
            texts = json.loads(row["texts"]) if row else {}
            self.templates = texts.pop(TEMPLATES_KEY, {})
            await self._refresh(bid)
            lanes = [self._lane(bid, channel, texts) for channel in ("sms", "telegram", "whatsapp")]
            await asyncio.gather(*lanes)
            await self._refresh(bid)
            finished = self.progress.waiting == 0
        finally:
            renew.cancel()
            await asyncio.gather(renew, return_exceptions=True)
            await self.release(bid, finished)
        return self.progress

    async def _renew(self, bid: int) -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            if not await self.claim(bid):
                log.error("broadcast %d: lost the lease; stopping", bid)
                return

    async def _skip_interrupted(self, bid: int) -> None:
        async def job(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "UPDATE broadcast_recipients SET state = 'skipped', error = ?, updated_at = ? "
                "WHERE broadcast_id = ? AND state = 'sending'", (INTERRUPTED, utcnow(), bid))
            return cursor.rowcount

        if n := await self.bot.store.write(job):
            log.warning("broadcast %d: %d messages were in flight when it stopped; "
                        "marked skipped, not sent again", bid, n)

    async def _refresh(self, bid: int) -> None:
        tally(self.progress, await counts(self.bot, bid))
        self.on_progress(self.progress)

    async def _set(self, bid: int, contact_id: int, state: str, *, platform_id: str | None = None,
                   error: str | None = None, attempt: bool = False) -> None:
        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE broadcast_recipients SET state = ?, platform_id = coalesce(?, platform_id),"
                " error = ?, attempts = attempts + ?, updated_at = ? "
                "WHERE broadcast_id = ? AND contact_id = ?",
                (state, platform_id, error, 1 if attempt else 0, utcnow(), bid, contact_id))

        await self.bot.store.write(job)

    async def _lane(self, bid: int, channel: str, texts: dict[str, str]) -> None:
        outlet = self.outlets.get(channel)
        pacer = SlidingWindow(self.rates.get(channel, 1.0))
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            regions = open_regions(self.bot, datetime.now(UTC))
            after, sent_any, waiting = -1, False, 0
            while True:
                rows = await self.bot.store.fetchall(
                    "SELECT contact_id, address, language, region, attempts FROM "
                    "broadcast_recipients WHERE broadcast_id = ? AND channel = ? AND "
                    "state = 'queued' AND contact_id > ? ORDER BY contact_id LIMIT ?",
                    (bid, channel, after, PAGE))
                if not rows:
                    break
                after = int(rows[-1]["contact_id"])
                for row in rows:
                    if outlet is None:
                        await self._set(bid, row["contact_id"], "skipped",
                                        error=f"{channel} is not configured")
                        self.progress.skipped += 1
                        continue
                    if row["region"] not in regions:
                        waiting += 1
                        continue
                    await slots.acquire()
                    sent_any = True
                    task = asyncio.create_task(self._send_one(bid, outlet, pacer, row, texts))
                    tasks.add(task)
                    task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
            if tasks:
                await asyncio.gather(*list(tasks))
            self.progress.waiting = waiting
            self.on_progress(self.progress)
            queued = await self.bot.store.fetchone(
                "SELECT count(*) AS n FROM broadcast_recipients WHERE broadcast_id = ? AND "
                "channel = ? AND state = 'queued'", (bid, channel))
            left = int(queued["n"]) if queued else 0
            if left == 0:
                return
            if not sent_any:
                if waiting >= left:
                    log.info("broadcast %d: %d %s messages wait for BROADCAST_HOURS", bid,
                             waiting, channel)
                    await asyncio.sleep(60)
                else:
                    await asyncio.sleep(1)  # retries after a rate limit

    async def _send_one(self, bid: int, outlet: Outlet, pacer: SlidingWindow,
                        row: Any, texts: dict[str, str]) -> None:
        contact_id = int(row["contact_id"])
        contact = await self._still_wanted(contact_id)
        if contact is None:
            await self._skip_gone(bid, contact_id)
            return
        text = texts.get(row["language"]) or texts[self.bot.campaign.default_language]
        if outlet.channel == "sms":
            text = sms_text(self.bot, row["language"], text)
        template = None
        if outlet.channel == "whatsapp" and not in_window(contact["updated_at"]):
            template = self.templates.get(row["language"])
            if template is None:
                await self._set(bid, contact_id, "skipped", error="outside WhatsApp's 24-hour "
                                "window and no whatsapp_template")
                self.progress.skipped += 1
                self.on_progress(self.progress)
                return
        await self._set(bid, contact_id, "sending", attempt=True)
        # Paced here, right before the platform call, not before the write above: an fsync
        # that stalls the write would otherwise release a bunch of sends at once. Whoever
        # stopped while this send waited its turn is not sent to.
        await pacer.wait()
        if await self._still_wanted(contact_id) is None:
            await self._skip_gone(bid, contact_id)
            return
        try:
            if template is not None:
                result = await outlet.send_template(  # type: ignore[attr-defined]
                    row["address"], template["content_sid"], template["variables"])
            else:
                result = await outlet.send(row["address"], text)
        except Exception as exc:  # an outlet bug must not leave the row looking unsent
            log.exception("broadcast %d: send failed", bid)
            result = SendResult(Outcome.AMBIGUOUS, error=f"send failed: {exc}")
        await self._record(bid, contact_id, row, pacer, result)

    async def _still_wanted(self, contact_id: int) -> Any:
        """The contact, if it has not stopped, become unreachable or opted out since."""
        contact = await self.bot.store.fetchone(
            "SELECT c.stopped, c.unreachable, c.updated_at, s.opted_in_updates FROM contacts c "
            "LEFT JOIN signatures s ON s.contact_id = c.id AND s.campaign = ? WHERE c.id = ?",
            (self.bot.campaign.id, contact_id))
        if contact is None or contact["stopped"] or contact["unreachable"] or \
                not contact["opted_in_updates"]:
            return None
        return contact

    async def _skip_gone(self, bid: int, contact_id: int) -> None:
        await self._set(bid, contact_id, "skipped", error="opted out or unreachable since")
        self.progress.skipped += 1
        self.on_progress(self.progress)

    async def _record(self, bid: int, contact_id: int, row: Any, pacer: SlidingWindow,
                      result: SendResult) -> None:
        outcome = result.outcome
        if outcome is Outcome.SENT:
            await self._set(bid, contact_id, "sent", platform_id=result.platform_id)
            self.progress.sent += 1
        elif outcome is Outcome.RETRY and int(row["attempts"]) + 1 < MAX_ATTEMPTS:
            pacer.pause(result.retry_after or 2 ** int(row["attempts"]))
            await self._set(bid, contact_id, "queued", error=result.error)
        elif outcome is Outcome.AMBIGUOUS:
            await self._set(bid, contact_id, "skipped", error=f"{result.error}: {INTERRUPTED}")
            self.progress.skipped += 1
        else:
            await self._set(bid, contact_id, "failed", error=result.error)
            self.progress.failed += 1

            async def mark(conn: aiosqlite.Connection) -> None:
                if outcome is Outcome.STOPPED:
                    await record_carrier_stop(conn, contact_id)
                elif outcome is Outcome.UNREACHABLE:
                    await conn.execute("UPDATE contacts SET unreachable = ? WHERE id = ?",
                                       (result.error or "unreachable", contact_id))

            if outcome in (Outcome.STOPPED, Outcome.UNREACHABLE):
                log.info("broadcast %d: %s is %s", bid, mask(row["address"]), outcome.value)
                await self.bot.store.write(mark)
        self.on_progress(self.progress)


# --- wiring: the command and the worker inside `serve` -----------------------------------

@asynccontextmanager
async def open_outlets(bot: Bot) -> AsyncIterator[dict[str, Outlet]]:
    """The bulk senders of every configured channel, sharing one HTTP client."""
    from bot.channels import sms

    timeout = httpx.Timeout(15.0, connect=5.0)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        outlets: dict[str, Outlet] = {}
        if bot.settings.sms_enabled:
            outlets["sms"] = sms.SmsOutlet(bot.settings, client)
        if bot.settings.whatsapp_enabled:
            outlets["whatsapp"] = sms.WhatsAppOutlet(bot.settings, client)
        if bot.settings.telegram_enabled:
            from bot.channels import telegram

            make = getattr(telegram, "TelegramOutlet", None)
            if make is not None:
                outlets["telegram"] = make(bot.settings, client)
        yield outlets


def rates(bot: Bot) -> dict[str, float]:
    return {"sms": bot.settings.send_rate_sms, "telegram": bot.settings.send_rate_telegram,
            "whatsapp": bot.settings.send_rate_sms}


async def run_command(bot: Bot, args: argparse.Namespace) -> int:
    """`broadcast --message-file FILE [--segment EXPR] [--dry-run] [--yes]`."""
    try:
        message = load_message_file(args.message_file, bot.campaign.languages,
                                    bot.campaign.default_language)
        p = await plan(bot, message, args.segment, args.price_per_segment)
    except BroadcastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_plan(p))
    if args.dry_run:
        print("\nDry run: nothing was sent.")
        return 0
    if p.recipients == 0:
        print("\nNobody to send to.")
        return 0
    if not args.yes:
        print(f"\nSend to {p.recipients} recipients? Type 'yes' to send: ", end="", flush=True)
        answer = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if answer.strip().lower() not in ("y", "yes"):
            print("Not sent.")
            return 1
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("[bold]broadcast"), BarColumn(), MofNCompleteColumn(),
             TextColumn("sent {task.fields[sent]} failed {task.fields[failed]} "
                        "skipped {task.fields[skipped]} waiting {task.fields[waiting]}"),
             TextColumn("{task.fields[rate]:.1f}/s"), TimeRemainingColumn(),
             console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("send", total=None, sent=0, failed=0, skipped=0, waiting=0, rate=0.0)
        started = time.monotonic()

        def show(pr: Progress) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            bar.update(task, total=pr.total, completed=pr.done, sent=pr.sent, failed=pr.failed,
                       skipped=pr.skipped, waiting=pr.waiting, rate=pr.sent / elapsed)

        async with open_outlets(bot) as outlets:
            sender = Sender(bot, outlets, rates(bot), show)
            bid, new = await create(bot, p, owner=sender.owner)
            print(f"{'Sending' if new else 'Resuming'} broadcast {bid}.", flush=True)
            told = False
            while True:
                try:
                    result = await sender.run(bid)
                    break
                except LeaseHeld:
                    # serve (or another run) is sending it: show its progress; take over
                    # only if it lets go before the end.
                    if not told:
                        told = True
                        print(f"Broadcast {bid} is being sent by another process (serve?); "
                              "showing its progress. Ctrl-C stops watching, not the broadcast.",
                              flush=True)
                    followed = await follow(bot, bid, show)
                    if followed is not None:
                        result = followed
                        break
    print(f"Broadcast {bid}: {result.sent} sent, {result.failed} failed, {result.skipped} "
          f"skipped" + (f", {result.waiting} waiting for BROADCAST_HOURS" if result.waiting
                        else ""))
    return 0


async def run_worker(bot: Bot, every: float = 5.0) -> None:
    """Inside `serve`: carry on any broadcast left unfinished (by a crash or Ctrl-C)."""
    async with open_outlets(bot) as outlets:
        while True:
            for bid in await unfinished(bot):
                sender = Sender(bot, outlets, rates(bot))
                try:
                    result = await sender.run(bid)
                except BroadcastError:
                    continue  # another process (the `broadcast` command) is sending it
                except Exception:
                    log.exception("broadcast %d: the worker failed; will try again", bid)
                    continue
                log.info("broadcast %d: %d sent, %d failed, %d skipped", bid,
                         result.sent, result.failed, result.skipped)
            await asyncio.sleep(every)
