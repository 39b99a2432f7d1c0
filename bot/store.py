"""The bot's own SQLite database: schema, migrations, and a group-committing writer.

Connection strategy: one writer connection owned by a single task that commits every
write job waiting in its queue in one transaction (group commit: one fsync for many
concurrent messages, each job in its own SAVEPOINT so one failure does not spoil the
others), and a separate reader connection. WAL lets the reader run while the writer
writes, so nothing in the bot waits on a global lock; messages of one contact are
ordered by the engine, not here. The two lookups every message makes (was this platform
id processed, the contact's state: one row each by key, microseconds) are read on the
event loop's own thread from a third connection that never waits for a lock (it hands the
read to the reader thread instead); a hop to a thread and back costs more than the read.

Durability: WAL with `synchronous=FULL`. A reply (or a 200 to Twilio or Telegram) is sent
only after the transaction that recorded the turn is on disk, so a signature we thanked
someone for survives a power cut, not just a crash. Group commit pays for the fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.logs import scrub
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
    # 6: WhatsApp's tappable choices: the Twilio Content made once per language and choice
    # set (bot/channels/whatsapp.py), so it is never made twice.
    """
    CREATE TABLE whatsapp_contents (
        key TEXT PRIMARY KEY,                  -- hash of the content's language and types
        sid TEXT NOT NULL,                     -- Twilio's ContentSid, HX…
        created_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 7: replies sent after the turn is committed (Telegram, WhatsApp buttons) are marked
    # until they have left, so a crash in between does not lose them: `serve` sends them on
    # start (bot/replies.py).
    """
    ALTER TABLE inbound ADD COLUMN unsent INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX inbound_unsent ON inbound (received_at) WHERE unsent = 1;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
#: Address prefix of the console simulator's contacts (`sandbox:<session>:<n>`): they talk to
#: the real engine but are never counted, exported, broadcast to or synced.
SANDBOX = "sandbox:"


def process_alive(pid: int) -> bool:
    """Is process `pid` on this host running? (The leases of sync and broadcasts take over at
    once from a dead holder on the same host.) A process we may not signal is alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
#: A write job that is a plain function of the writer's sqlite3 connection (`Store.write_sync`):
#: it runs in the writer's own thread, and a whole run of them waiting in the queue goes there
#: in one hop, BEGIN and COMMIT included, instead of one hop per statement.
SyncJob = Callable[[sqlite3.Connection], Any]


async def in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """`fn(sqlite3_connection, *args)` in the thread aiosqlite runs `conn` in: one hop to that
    thread and back, where `await conn.execute(...)` then `fetchone()` then closing the cursor
    take three. aiosqlite has no public call for it; `_execute` and `_conn` are what its own
    methods use (tests/test_store.py pins them)."""
    return await conn._execute(lambda: fn(conn._conn, *args))  # noqa: SLF001


def _fetchone(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    cursor = db.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()  # ends the statement, and with it the read snapshot


BUSY_TIMEOUT = 10.0  # seconds a statement waits for another process's lock
BUSY_POLL = 0.0005  # seconds between two tries of BEGIN IMMEDIATE while another process writes


def _begin(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write transaction (a `broadcast` command
    beside `serve`) by trying again every half millisecond. SQLite's own busy handler sleeps
    1, 2, 5, 10, 15, 20, 25 ms … between tries, and a process that commits back to back wins
    the lock again in each gap: replies waited 100 ms and more behind a broadcast."""
    db.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or \
                        time.monotonic() > deadline:
                    raise
            time.sleep(BUSY_POLL)
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


def _run_jobs(db: sqlite3.Connection, jobs: list[SyncJob], begin: bool,
              commit: bool) -> list[tuple[Any, Exception | None]]:
    """A run of plain write jobs in the writer's thread, each in its own savepoint."""
    if begin:
        _begin(db)
    out: list[tuple[Any, Exception | None]] = []
    for job in jobs:
        db.execute("SAVEPOINT job")
        try:
            value = job(db)
        except Exception as exc:  # the job's own failure: undo it alone
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
            out.append((None, exc))
        else:
            db.execute("RELEASE job")
            out.append((value, None))
    if commit:
        db.execute("COMMIT")
    return out


async def _configure(conn: aiosqlite.Connection) -> None:
    conn.row_factory = aiosqlite.Row
    await conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
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
        self._point: sqlite3.Connection | None = None  # the event loop's thread only
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[Any], bool]] = asyncio.Queue()
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
            self._point = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the database {self.path}: {exc}; check BOT_DB and the folder's "
                "permissions"
            ) from exc
        for conn in (self._writer, self._reader):
            await _configure(conn)
        self._point.row_factory = sqlite3.Row
        self._point.execute("PRAGMA busy_timeout = 0")  # busy: read in the reader's thread
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
        if self._point is not None:
            self._point.close()
        self._writer = self._reader = self._point = None

    # --- writing ------------------------------------------------------------------------

    async def write(self, job: WriteJob) -> Any:
        """Run `job` inside a transaction and return its result once it is durable."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future, False))
        return await future

    async def write_sync(self, job: SyncJob) -> Any:
        """Like `write`, for a plain function of the writer's sqlite3 connection, run in the
        writer's thread; the jobs waiting with it go there in the same hop and commit together."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future, True))
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
                begun = committed = False
                i = 0
                while i < len(batch):
                    if batch[i][2]:  # a run of plain jobs: one hop to the writer's thread
                        end = i
                        while end < len(batch) and batch[end][2]:
                            end += 1
                        last = end == len(batch)
                        outs = await in_thread(conn, _run_jobs, [j for j, _, _ in batch[i:end]],
                                               not begun, last)
                        begun, committed = True, last
                        results.extend((f, value, error) for (_, f, _), (value, error)
                                       in zip(batch[i:end], outs, strict=True))
                        i = end
                        continue
                    job, future, _ = batch[i]
                    i += 1
                    if not begun:
                        await in_thread(conn, _begin)
                        begun = True
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
                if not committed:
                    await conn.execute("COMMIT")
            except asyncio.CancelledError:
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(StoreError("the store is closing"))
                raise
            except Exception as exc:
                log.exception("store: a write batch failed")
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                for _, future, _ in batch:
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
        row: aiosqlite.Row | None = await in_thread(self._reader, _fetchone, sql, params)
        return row

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
        assert self._reader is not None
        return list(await self._reader.execute_fetchall(sql, params))

    async def contact(self, address: str, campaign: str) -> ContactRow | None:
        return (await self.turn_state(address, campaign, None, None))[1]

    async def processed(self, channel: str, platform_id: str) -> str | None:
        """The replies (JSON) we gave to a platform message already processed, else None."""
        row = await self._read_point(_fetchone, PROCESSED_SQL, (channel, platform_id))
        return None if row is None else str(row["replies"])

    async def turn_state(self, address: str, campaign: str, channel: str | None,
                         platform_id: str | None) -> tuple[str | None, ContactRow | None]:
        """In one read: the replies already given to this platform message (then no contact),
        else None and the contact as stored (None for a new one)."""
        return await self._read_point(_turn_state, address, campaign, channel, platform_id)

    async def _read_point(self, fn: Callable[..., T], *args: Any) -> T:
        """A lookup by key, read here on the event loop's thread (see the module's docstring);
        in the reader's thread when the file is busy (WAL recovery, a checkpoint resetting
        the log), so the loop never waits for a lock."""
        assert self._point is not None and self._reader is not None
        try:
            return fn(self._point, *args)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
        return await in_thread(self._reader, fn, *args)

    async def signature_count(self, campaign: str) -> int:
        row = await self.fetchone("SELECT count(*) AS n FROM signatures WHERE campaign = ? "
                                  "AND contact NOT LIKE 'sandbox:%'", (campaign,))
        return int(row["n"]) if row else 0

    async def synced_count(self, campaign: str) -> int:
        """Signatures of ours the central store holds: none of their outbox rows is left."""
        row = await self.fetchone(
            "SELECT count(*) AS n FROM signatures s WHERE campaign = ? AND contact NOT LIKE "
            "'sandbox:%' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.signature_id = "
            "s.signature_id AND o.status != 'done')", (campaign,))
        return int(row["n"]) if row else 0

    async def parked_reasons(self, limit: int = 5) -> list[dict[str, str]]:
        """The latest parked outbox rows: signature id and why the store refused it (masked:
        a store's error can quote a row's values)."""
        rows = await self.fetchall(
            "SELECT signature_id, last_error FROM outbox WHERE status = 'parked' "
            "ORDER BY id DESC LIMIT ?", (limit,))
        return [{"signature_id": str(r["signature_id"]), "reason": scrub(r["last_error"] or "")}
                for r in rows]

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


PROCESSED_SQL = "SELECT replies FROM inbound WHERE channel = ? AND platform_id = ?"
CONTACT_SQL = ("SELECT c.*, EXISTS (SELECT 1 FROM signatures s WHERE s.contact_id = c.id "
               "AND s.campaign = ?) AS signed FROM contacts c WHERE c.address = ?")


def _turn_state(db: sqlite3.Connection, address: str, campaign: str, channel: str | None,
                platform_id: str | None) -> tuple[str | None, ContactRow | None]:
    if platform_id is not None:
        done = _fetchone(db, PROCESSED_SQL, (channel, platform_id))
        if done is not None:
            return str(done["replies"]), None
    row = _fetchone(db, CONTACT_SQL, (campaign, address))
    if row is None:
        return None, None
    return None, ContactRow(row["id"], row["address"], row["channel"], row["language"],
                            row["state"], row["data"], bool(row["stopped"]), bool(row["signed"]))


# --- one turn of a conversation, written in one transaction -------------------------------

@dataclass(frozen=True)
class TurnRecord:
    """Everything one handled message changes, written together by `write_turn`."""

    channel: str
    address: str
    platform_id: str | None
    campaign: str
    language: str | None
    state: str
    data: str
    replies: str  # JSON, given again to a platform retry of the same message
    effects: tuple[Any, ...]
    unsent: bool = False  # the replies leave after the commit: marked until they have


def write_turn(db: sqlite3.Connection, rec: TurnRecord) -> None:
    """Contact state, signature, consent ledger, outbox and the processed id: all or nothing.

    A plain function of the writer's connection (`store.write_sync(partial(write_turn, rec=…))`):
    it runs in the writer's thread, so a turn costs one hop whatever it changes.
    Raises sqlite3.IntegrityError when the platform id was processed meanwhile.
    """
    now = utcnow()
    contact_id = _fetchone(
        db,
        "INSERT INTO contacts (address, channel, language, state, data, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
        "language = excluded.language, state = excluded.state, data = excluded.data, "
        # They wrote to us: reachable again (a Telegram member who had blocked the bot).
        "updated_at = excluded.updated_at, unreachable = NULL RETURNING id",
        (rec.address, rec.channel, rec.language, rec.state, rec.data, now, now),
    )[0]

    def ledger(event: str, version: str | None = None, who: int | None = contact_id) -> None:
        db.execute(
            "INSERT INTO consent (contact_id, event, channel, language, text_version, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (who, event, rec.channel, rec.language, version, now),
        )

    def signature_id() -> str | None:
        row = _fetchone(db, "SELECT signature_id FROM signatures WHERE contact_id = ? AND "
                            "campaign = ?", (contact_id, rec.campaign))
        return None if row is None else str(row[0])

    def outbox(kind: str, sid: str) -> None:
        if rec.address.startswith(SANDBOX):
            return  # the console's simulator: never synced
        db.execute(
            "INSERT INTO outbox (kind, signature_id, created_at) VALUES (?, ?, ?)", (kind, sid, now)
        )

    def set_updates(value: bool) -> None:
        sid = signature_id()
        if sid is not None:
            db.execute(
                "UPDATE signatures SET opted_in_updates = ? WHERE signature_id = ?", (value, sid)
            )
            outbox("upsert", sid)

    erased = False
    for effect in rec.effects:
        if isinstance(effect, Sign):
            if signature_id() is None:
                sid = str(uuid.uuid4())
                db.execute(
                    "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, "
                    "region, channel, language, opted_in_updates, signed_at, contact) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (sid, contact_id, rec.campaign, effect.full_name, effect.region, rec.channel,
                     rec.language or "", now, rec.address),
                )
                ledger("signed", effect.summary_version)
                outbox("upsert", sid)
        elif isinstance(effect, SetUpdates):
            ledger("updates_yes" if effect.opted_in else "updates_no")
            set_updates(effect.opted_in)
        elif isinstance(effect, Stop):
            db.execute("UPDATE contacts SET stopped = 1 WHERE id = ?", (contact_id,))
            ledger("stop")
            set_updates(False)  # a stop withdraws consent to updates too
        elif isinstance(effect, Start):
            db.execute("UPDATE contacts SET stopped = 0 WHERE id = ?", (contact_id,))
            ledger("start")
        elif isinstance(effect, Erase):
            sid = signature_id()
            if sid is not None:
                db.execute("DELETE FROM outbox WHERE signature_id = ? AND status != 'done'", (sid,))
                db.execute("DELETE FROM signatures WHERE signature_id = ?", (sid,))
                outbox("erase", sid)
            db.execute("DELETE FROM consent WHERE contact_id = ?", (contact_id,))
            ledger("erase", who=None)
            db.execute(
                "UPDATE inbound SET contact_id = NULL, replies = '[]' WHERE contact_id = ?",
                (contact_id,),
            )
            db.execute("DELETE FROM signatures WHERE contact_id = ?", (contact_id,))
            db.execute("DELETE FROM broadcast_recipients WHERE contact_id = ?", (contact_id,))
            db.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
            erased = True

    if rec.platform_id is not None:
        db.execute(
            "INSERT INTO inbound (channel, platform_id, contact_id, replies, received_at, "
            "unsent) VALUES (?, ?, ?, ?, ?, ?)",
            (rec.channel, rec.platform_id, None if erased else contact_id, rec.replies, now,
             int(rec.unsent and not erased)),
        )


async def save_turn(conn: aiosqlite.Connection, rec: TurnRecord) -> None:
    """`write_turn` as an async write job (`store.write(lambda conn: save_turn(conn, rec))`)."""
    await in_thread(conn, write_turn, rec)
