"""The bot's own SQLite database: schema, migrations, and a group-committing writer.

Connection strategy: one writer connection owned by a single task that commits every
write job waiting in its queue in one transaction (group commit: one fsync for many
concurrent messages, each job in its own SAVEPOINT so one failure does not spoil the
others), and a separate reader connection. WAL lets the reader run while the writer
writes, so nothing in the bot waits on a global lock; messages of one contact are
ordered by the engine, not here.

Durability: WAL with `synchronous=FULL`. A reply (or a 200 to Twilio or Telegram) is sent
only after the transaction that recorded the turn is on disk, so a signature we thanked
someone for survives a power cut, not just a crash. Group commit pays for the fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from flows.types import Erase, SetUpdates, Sign, Start, Stop

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 1: contacts, their conversation, processed inbound ids, signatures, consent ledger.
    """
    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,          -- E.164 number, telegram:<id>, whatsapp:+E164
        channel TEXT NOT NULL,
        language TEXT,
        state TEXT NOT NULL DEFAULT 'new',
        data TEXT NOT NULL DEFAULT '{}',       -- answers of the step in progress
        stopped INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE inbound (                     -- platform ids already processed, with our answer
        channel TEXT NOT NULL,
        platform_id TEXT NOT NULL,
        contact_id INTEGER,
        replies TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (channel, platform_id)
    ) WITHOUT ROWID;
    CREATE INDEX inbound_contact ON inbound (contact_id);
    CREATE INDEX inbound_received ON inbound (received_at);
    CREATE TABLE signatures (
        signature_id TEXT PRIMARY KEY,         -- a UUID that never changes
        contact_id INTEGER NOT NULL REFERENCES contacts (id),
        campaign TEXT NOT NULL,
        full_name TEXT NOT NULL,
        region TEXT,
        channel TEXT NOT NULL,
        language TEXT NOT NULL,
        opted_in_updates INTEGER NOT NULL DEFAULT 0,
        signed_at TEXT NOT NULL,
        contact TEXT NOT NULL,
        UNIQUE (campaign, contact_id)
    );
    CREATE INDEX signatures_campaign ON signatures (campaign, signed_at);
    CREATE TABLE consent (                     -- what was agreed or withdrawn, when, where
        id INTEGER PRIMARY KEY,
        contact_id INTEGER,                    -- NULL once the contact is erased
        event TEXT NOT NULL,                   -- signed, updates_yes|no, stop, start, erase
        channel TEXT NOT NULL,
        language TEXT,
        text_version TEXT,
        at TEXT NOT NULL
    );
    CREATE INDEX consent_contact ON consent (contact_id);
    """,
    # 2: the outbox that the sync worker drains to the central store.
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,                    -- upsert, erase
        signature_id TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', -- pending, done, parked
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (status, id);
    CREATE INDEX outbox_signature ON outbox (signature_id);
    """,
    # 3: sync bookkeeping: what an OSDI store calls each signature it holds (so a re-sent
    # signature is never posted twice), the lease that lets one sync at a time drain the
    # outbox, and an index for the erasures a store could not carry out.
    """
    CREATE TABLE sync_remote (
        store TEXT NOT NULL,                   -- the store's URL, without credentials
        signature_id TEXT NOT NULL,
        remote_id TEXT NOT NULL,               -- the store's identifier, e.g. action_network:…
        href TEXT,                             -- the store's self link
        opted_in_updates INTEGER NOT NULL,     -- the state the store holds
        pushed_at TEXT NOT NULL,
        PRIMARY KEY (store, signature_id)
    ) WITHOUT ROWID;
    CREATE TABLE sync_lease (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,                   -- a token of the running sync
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX outbox_noted ON outbox (kind, status) WHERE last_error IS NOT NULL;
    """,
    # 4: broadcasts: the texts and segment, one row per recipient with its delivery state,
    # and contacts a platform told us we cannot reach (invalid number, blocked the bot).
    """
    ALTER TABLE contacts ADD COLUMN unreachable TEXT;
    CREATE TABLE broadcasts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,                     -- texts + segment: the same command resumes it
        segment TEXT NOT NULL,
        texts TEXT NOT NULL,                   -- JSON: language -> final text
        status TEXT NOT NULL DEFAULT 'running', -- running, done, cancelled
        total INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        lease_owner TEXT,                      -- the process sending it now
        lease_expires TEXT
    );
    CREATE INDEX broadcasts_key ON broadcasts (key, status);
    CREATE TABLE broadcast_recipients (
        broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
        contact_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        channel TEXT NOT NULL,
        language TEXT NOT NULL,
        region TEXT,
        state TEXT NOT NULL DEFAULT 'queued',  -- queued sending sent delivered failed skipped…
        attempts INTEGER NOT NULL DEFAULT 0,
        platform_id TEXT,
        error TEXT,
        updated_at TEXT,
        PRIMARY KEY (broadcast_id, contact_id)
    ) WITHOUT ROWID;
    CREATE INDEX broadcast_queue ON broadcast_recipients (broadcast_id, channel, state, contact_id);
    CREATE INDEX broadcast_platform_id ON broadcast_recipients (platform_id)
        WHERE platform_id IS NOT NULL;
    CREATE INDEX broadcast_contact ON broadcast_recipients (contact_id);
    """,
    # 5: the organizer console: its signing secret, one-time sign-in links (only their
    # hash), sessions (only the hash of their id), and the simulator's sandbox transcripts.
    """
    CREATE TABLE console_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL,                  -- signs session cookies and CSRF tokens
        created_at TEXT NOT NULL
    );
    CREATE TABLE console_links (
        token_hash TEXT PRIMARY KEY,           -- sha256 of the token in the link
        issued_to TEXT,                        -- cli, or the organizer's address
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    ) WITHOUT ROWID;
    CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,              -- sha256 of the session id in the cookie
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        ended_at TEXT,                         -- signed out
        lang TEXT,                             -- the organizer's language for numbers and dates
        sim_channel TEXT NOT NULL DEFAULT 'sms',
        sim_lang TEXT,                         -- the simulated phone's language, if any
        sim_n INTEGER NOT NULL DEFAULT 1       -- the sandbox contact: sandbox:<session>:<n>
    ) WITHOUT ROWID;
    CREATE TABLE console_sandbox (             -- what was said in the simulator
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        address TEXT NOT NULL,
        sender TEXT NOT NULL,                  -- me, bot, note
        body TEXT NOT NULL,                    -- JSON
        at TEXT NOT NULL
    );
    CREATE INDEX console_sandbox_session ON console_sandbox (session, id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
#: Address prefix of the console simulator's contacts (`sandbox:<session>:<n>`): they talk to
#: the real engine but are never counted, exported, broadcast to or synced.
SANDBOX = "sandbox:"


def utcnow() -> str:
    """ISO 8601 UTC to the second, `2026-11-28T14:03:07Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StoreError(Exception):
    """The database cannot be opened or written; the message says what to check."""


@dataclass(frozen=True)
class ContactRow:
    id: int
    address: str
    channel: str
    language: str | None
    state: str
    data: str
    stopped: bool
    signed: bool


WriteJob = Callable[[aiosqlite.Connection], Awaitable[Any]]


async def _configure(conn: aiosqlite.Connection) -> None:
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA busy_timeout = 10000")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = FULL")


def migrate(path: Path) -> int:
    """Bring the file at `path` to the current schema; returns the version it was at."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, newer than this bot ({SCHEMA_VERSION}): "
                "upgrade the bot"
            )
        for number in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(version)
    finally:
        conn.close()


class Store:
    """Open with `async with Store(path) as store:`."""

    def __init__(self, path: Path, *, batch_limit: int = 256) -> None:
        self.path = path
        self.batch_limit = batch_limit
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[tuple[WriteJob, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(migrate, self.path)
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the database {self.path}: {exc}; check BOT_DB and the folder's "
                "permissions"
            ) from exc
        for conn in (self._writer, self._reader):
            await _configure(conn)
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    # --- writing ------------------------------------------------------------------------

    async def write(self, job: WriteJob) -> Any:
        """Run `job` inside a transaction and return its result once it is durable."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((job, future))
        return await future

    async def _write_loop(self) -> None:
        assert self._writer is not None
        conn = self._writer
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_limit and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            try:
                await conn.execute("BEGIN IMMEDIATE")
                for job, future in batch:
                    await conn.execute("SAVEPOINT job")
                    try:
                        value = await job(conn)
                    except Exception as exc:  # the job's own failure: undo it alone
                        await conn.execute("ROLLBACK TO job")
                        await conn.execute("RELEASE job")
                        results.append((future, None, exc))
                    else:
                        await conn.execute("RELEASE job")
                        results.append((future, value, None))
                await conn.execute("COMMIT")
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreError("the store is closing"))
                raise
            except Exception as exc:
                log.exception("store: a write batch failed")
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreError(f"database write failed: {exc}"))
                continue
            for future, value, error in results:
                if future.done():
                    continue
                if error is None:
                    future.set_result(value)
                else:
                    future.set_exception(error)

    # --- reading ------------------------------------------------------------------------

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> aiosqlite.Row | None:
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def contact(self, address: str, campaign: str) -> ContactRow | None:
        row = await self.fetchone(
            "SELECT c.*, EXISTS (SELECT 1 FROM signatures s WHERE s.contact_id = c.id "
            "AND s.campaign = ?) AS signed FROM contacts c WHERE c.address = ?",
            (campaign, address),
        )
        if row is None:
            return None
        return ContactRow(row["id"], row["address"], row["channel"], row["language"],
                          row["state"], row["data"], bool(row["stopped"]), bool(row["signed"]))

    async def processed(self, channel: str, platform_id: str) -> str | None:
        """The replies (JSON) we gave to a platform message already processed, else None."""
        row = await self.fetchone(
            "SELECT replies FROM inbound WHERE channel = ? AND platform_id = ?",
            (channel, platform_id),
        )
        return None if row is None else str(row["replies"])

    async def signature_count(self, campaign: str) -> int:
        row = await self.fetchone("SELECT count(*) AS n FROM signatures WHERE campaign = ? "
                                  "AND contact NOT LIKE 'sandbox:%'", (campaign,))
        return int(row["n"]) if row else 0

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self.fetchall("SELECT status, count(*) AS n FROM outbox GROUP BY status")
        counts = {"pending": 0, "parked": 0, "done": 0}
        counts.update({row["status"]: int(row["n"]) for row in rows})
        return counts

    async def backup(self, target: Path) -> None:
        """A consistent copy of the database through SQLite's online backup API."""
        target.parent.mkdir(parents=True, exist_ok=True)

        def run() -> None:
            source = sqlite3.connect(self.path)
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)
            finally:
                dest.close()
                source.close()

        await asyncio.to_thread(run)

    async def prune_inbound(self, older_than: str) -> int:
        """Forget processed platform ids older than a cut-off (platforms retry for hours)."""

        async def job(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute("DELETE FROM inbound WHERE received_at < ?", (older_than,))
            return cursor.rowcount

        return int(await self.write(job))


# --- one turn of a conversation, written in one transaction -------------------------------

@dataclass(frozen=True)
class TurnRecord:
    """Everything one handled message changes, written together by `save_turn`."""

    channel: str
    address: str
    platform_id: str | None
    campaign: str
    language: str | None
    state: str
    data: str
    replies: str  # JSON, given again to a platform retry of the same message
    effects: tuple[Any, ...]


async def save_turn(conn: aiosqlite.Connection, rec: TurnRecord) -> None:
    """Contact state, signature, consent ledger, outbox and the processed id: all or nothing.

    Raises sqlite3.IntegrityError when the platform id was processed meanwhile.
    """
    now = utcnow()
    cursor = await conn.execute(
        "INSERT INTO contacts (address, channel, language, state, data, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
        "language = excluded.language, state = excluded.state, data = excluded.data, "
        "updated_at = excluded.updated_at RETURNING id",
        (rec.address, rec.channel, rec.language, rec.state, rec.data, now, now),
    )
    contact_id = (await cursor.fetchone())[0]
    await cursor.close()

    async def ledger(event: str, version: str | None = None, who: int | None = contact_id) -> None:
        await conn.execute(
            "INSERT INTO consent (contact_id, event, channel, language, text_version, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (who, event, rec.channel, rec.language, version, now),
        )

    async def signature_id() -> str | None:
        async with conn.execute(
            "SELECT signature_id FROM signatures WHERE contact_id = ? AND campaign = ?",
            (contact_id, rec.campaign),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def outbox(kind: str, sid: str) -> None:
        if rec.address.startswith(SANDBOX):
            return  # the console's simulator: never synced
        await conn.execute(
            "INSERT INTO outbox (kind, signature_id, created_at) VALUES (?, ?, ?)", (kind, sid, now)
        )

    async def set_updates(value: bool) -> None:
        sid = await signature_id()
        if sid is not None:
            await conn.execute(
                "UPDATE signatures SET opted_in_updates = ? WHERE signature_id = ?", (value, sid)
            )
            await outbox("upsert", sid)

    erased = False
    for effect in rec.effects:
        if isinstance(effect, Sign):
            if await signature_id() is None:
                sid = str(uuid.uuid4())
                await conn.execute(
                    "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, "
                    "region, channel, language, opted_in_updates, signed_at, contact) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (sid, contact_id, rec.campaign, effect.full_name, effect.region, rec.channel,
                     rec.language or "", now, rec.address),
                )
                await ledger("signed", effect.summary_version)
                await outbox("upsert", sid)
        elif isinstance(effect, SetUpdates):
            await ledger("updates_yes" if effect.opted_in else "updates_no")
            await set_updates(effect.opted_in)
        elif isinstance(effect, Stop):
            await conn.execute("UPDATE contacts SET stopped = 1 WHERE id = ?", (contact_id,))
            await ledger("stop")
            await set_updates(False)  # a stop withdraws consent to updates too
        elif isinstance(effect, Start):
            await conn.execute("UPDATE contacts SET stopped = 0 WHERE id = ?", (contact_id,))
            await ledger("start")
        elif isinstance(effect, Erase):
            sid = await signature_id()
            if sid is not None:
                await conn.execute("DELETE FROM outbox WHERE signature_id = ? AND status != 'done'",
                                   (sid,))
                await conn.execute("DELETE FROM signatures WHERE signature_id = ?", (sid,))
                await outbox("erase", sid)
            await conn.execute("DELETE FROM consent WHERE contact_id = ?", (contact_id,))
            await ledger("erase", who=None)
            await conn.execute(
                "UPDATE inbound SET contact_id = NULL, replies = '[]' WHERE contact_id = ?",
                (contact_id,),
            )
            await conn.execute("DELETE FROM signatures WHERE contact_id = ?", (contact_id,))
            await conn.execute("DELETE FROM broadcast_recipients WHERE contact_id = ?",
                               (contact_id,))
            await conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
            erased = True

    if rec.platform_id is not None:
        await conn.execute(
            "INSERT INTO inbound (channel, platform_id, contact_id, replies, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (rec.channel, rec.platform_id, None if erased else contact_id, rec.replies, now),
        )
