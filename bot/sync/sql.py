"""The SQL central stores: an embedded SQLite file or a PostgreSQL database.

Both hold the interface's `signatures` table, created (or given missing columns) by the
bot. A batch goes in one transaction: the rows into a staging table, then one
`INSERT … ON CONFLICT (signature_id) DO UPDATE … WHERE something differs`, so a re-sent
signature changes nothing and counts as already present, an opt-out updates the row, and
an erase deletes it. PostgreSQL first tries the short way, a COPY of the rows straight into
the table (a bulk of new signatures, the common case, has nothing to compare); one that is
there already rolls that back, and the batch takes the staging way. Signature ids are
UUIDs, so several bots can feed one store without conflicts. A batch the store rejects for
its data (a value too long for a column a DBA narrowed, say) is split in halves until the
refused rows stand alone; only they are parked.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bot.sync.base import (
    COLUMNS,
    Backend,
    Bulk,
    Job,
    Outcome,
    Result,
    StoreUnavailable,
    SyncConfigError,
    mask_url,
)

DATA_COLUMNS = COLUMNS[1:]  # everything but the key
Row = tuple[Any, ...]  # a signature in COLUMNS order (a SignatureRecord is one)


class RowRejected(Exception):
    """The store refused the batch because of the data in it (not because it is down)."""


class SqlBackend(Backend):
    batch_size = 10_000

    async def push(self, jobs: list[Job]) -> list[Result]:
        results: list[Result] = []
        try:
            await self._push_part(jobs, results)
        except StoreUnavailable as exc:  # what was not stored has failed
            settled = {id(r.job) for r in results}
            exc.results = results + [Result(j, Outcome.FAILED, str(exc)) for j in jobs
                                     if id(j) not in settled]
            raise
        return results

    async def _push_part(self, jobs: list[Job], results: list[Result]) -> None:
        """One transaction for `jobs`; when the store refuses it for its data, halves until
        the refused rows stand alone, and parks those."""
        upserts = [j for j in jobs if j.kind == "upsert" and j.record is not None]
        erases = [j for j in jobs if j.kind == "erase"]
        try:
            changed = await self._write([j.record for j in upserts if j.record],
                                        [j.signature_id for j in erases])
        except RowRejected as exc:
            if len(jobs) == 1:
                results.append(Result(jobs[0], Outcome.PARKED, f"the store refused it: {exc}"))
                return
            half = len(jobs) // 2
            await self._push_part(jobs[:half], results)
            await self._push_part(jobs[half:], results)
            return
        results += [Result(j, Outcome.PUSHED if j.signature_id in changed else Outcome.PRESENT)
                    for j in upserts]
        results += [Result(j, Outcome.ERASED) for j in erases]

    async def push_bulk(self, bulk: Bulk) -> tuple[int, int] | None:
        try:
            changed = await self._write_bulk(bulk)
        except RowRejected:  # the jobs one by one find the refused rows, and park them
            return None
        return len(changed), len(bulk) - len(changed)

    async def _write(self, records: Sequence[Row], erase: list[str]) -> set[str]:
        """Upsert `records` (SignatureRecords, or tuples in the same order) and delete
        `erase`, in one transaction; returns the ids inserted or changed."""
        raise NotImplementedError

    async def _write_bulk(self, bulk: Bulk) -> set[str]:
        """`_write` for a batch's fast lane."""
        raise NotImplementedError


# --- SQLite -----------------------------------------------------------------------------

SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS signatures (
    signature_id TEXT PRIMARY KEY,
    campaign TEXT NOT NULL,
    full_name TEXT NOT NULL,
    region TEXT,
    channel TEXT NOT NULL,
    language TEXT NOT NULL,
    opted_in_updates BOOLEAN NOT NULL DEFAULT 0,
    signed_at TEXT NOT NULL,
    contact TEXT NOT NULL
)"""
SQLITE_TYPES = {"opted_in_updates": "BOOLEAN NOT NULL DEFAULT 0"}

_differs = " OR ".join(f"t.{c} IS NOT s.{c}" for c in DATA_COLUMNS)


def _sqlite_unique_id(conn: sqlite3.Connection) -> bool:
    """Whether some unique index (the primary key's, say) is on signature_id alone."""
    for index in conn.execute("PRAGMA index_list(signatures)").fetchall():
        if index[2]:  # unique
            columns = [c[2] for c in conn.execute(f"PRAGMA index_info('{index[1]}')")]
            if columns == ["signature_id"]:
                return True
    return False


class SqliteBackend(SqlBackend):
    """The embedded default: a SQLite file (WAL, so readers never wait on the sync)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"SQLite {path}"
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(self._hint(exc)) from exc
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(SQLITE_TABLE)
            have = {row[1] for row in conn.execute("PRAGMA table_info(signatures)")}
            for column in COLUMNS:
                if column not in have:
                    conn.execute(f"ALTER TABLE signatures ADD COLUMN {column} "
                                 f"{SQLITE_TYPES.get(column, 'TEXT')}")
            if not _sqlite_unique_id(conn):  # an older table without a key: upserts need one
                conn.execute("CREATE UNIQUE INDEX signatures_signature_id "
                             "ON signatures (signature_id)")
            conn.execute("COMMIT")
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS sync_stage (signature_id TEXT PRIMARY KEY, "
                + ", ".join(DATA_COLUMNS) + ")")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(self._hint(exc)) from exc
        self._conn = conn

    def _hint(self, exc: BaseException) -> str:
        return (f"cannot use the central store {self.path}: {exc}; check CENTRAL_STORE_URL and "
                "the folder's permissions")

    async def total(self, campaign: str) -> int | None:
        conn = self._conn
        if conn is None:
            return None

        def count() -> int:
            row = conn.execute("SELECT count(*) FROM signatures WHERE campaign = ?",
                               (campaign,)).fetchone()
            return int(row[0])

        async with self._lock:
            try:
                return await asyncio.to_thread(count)
            except sqlite3.Error as exc:
                raise StoreUnavailable(self._hint(exc)) from exc

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)

    async def _write(self, records: Sequence[Row], erase: list[str]) -> set[str]:
        async with self._lock:
            return await asyncio.to_thread(self._write_sync, records, erase)

    async def _write_bulk(self, bulk: Bulk) -> set[str]:
        return await self._write(list(zip(*bulk.columns, strict=True)), [])

    def _write_sync(self, records: Sequence[Row], erase: list[str]) -> set[str]:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable(f"the central store {self.path} is not open")
        cols = ", ".join(COLUMNS)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM sync_stage")
                conn.executemany(  # a record is a row in COLUMNS order (a bool is an int)
                    f"INSERT INTO sync_stage ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    records)
                changed = {row[0] for row in conn.execute(
                    "SELECT s.signature_id FROM sync_stage s LEFT JOIN signatures t "
                    f"ON t.signature_id = s.signature_id WHERE t.signature_id IS NULL OR {_differs}"
                )}
                if changed:
                    conn.execute(
                        f"INSERT INTO signatures ({cols}) SELECT {cols} FROM sync_stage WHERE true "
                        "ON CONFLICT (signature_id) DO UPDATE SET "
                        + ", ".join(f"{c} = excluded.{c}" for c in DATA_COLUMNS))
                if erase:
                    conn.executemany("DELETE FROM signatures WHERE signature_id = ?",
                                     [(sid,) for sid in erase])
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.IntegrityError, sqlite3.DataError) as exc:
            raise RowRejected(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(self._hint(exc)) from exc
        return changed


# --- PostgreSQL ---------------------------------------------------------------------------

PG_TABLE = """
CREATE TABLE IF NOT EXISTS signatures (
    signature_id text PRIMARY KEY,
    campaign text NOT NULL,
    full_name text NOT NULL,
    region text,
    channel text NOT NULL,
    language text NOT NULL,
    opted_in_updates boolean NOT NULL DEFAULT false,
    signed_at timestamptz NOT NULL,
    contact text NOT NULL
)"""
PG_TYPES = {"opted_in_updates": "boolean NOT NULL DEFAULT false", "signed_at": "timestamptz"}

PG_UNIQUE_ID = """
SELECT EXISTS (
    SELECT 1 FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = 'signatures'::regclass AND i.indisunique AND i.indnatts = 1
      AND a.attname = 'signature_id'
)"""

# A connection that breaks, a server that goes away or is starting up: try again later.
PG_DOWN: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError, asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
)
# Rejected for the data in it: retry row by row and park the rows that fail.
PG_DATA: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError,
)


_cols = ", ".join(COLUMNS)
PG_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS sync_stage ON COMMIT DELETE ROWS AS "
            f"SELECT {_cols} FROM signatures WITH NO DATA")
PG_UPSERT = (
    f"INSERT INTO signatures AS t ({_cols}) SELECT {_cols} FROM sync_stage "
    "ON CONFLICT (signature_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in DATA_COLUMNS)
    + " WHERE " + " OR ".join(f"t.{c} IS DISTINCT FROM excluded.{c}" for c in DATA_COLUMNS)
    + " RETURNING t.signature_id")


def pg_reason(exc: BaseException) -> str:
    """The error's first line: PostgreSQL's DETAIL may quote the row (a name, a number)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_FLAG = COLUMNS.index("opted_in_updates")


def copy_text(columns: Sequence[Sequence[Any]], *, escape: bool = False) -> bytes:
    """Signatures given as columns in COLUMNS order, as the data of `COPY … (FORMAT text)`:
    a line per row, a tab between values, \\N for NULL, t or f for the flag. A value with
    a backslash, a tab or a line break in it is rare: the lines are made without looking,
    and made again with escapes when their count of those is not the plain one.
    PostgreSQL parses signed_at itself (as a timestamp, or keeps the text)."""
    cells: list[Sequence[str]] = []
    nulls = 0
    for i, column in enumerate(columns):
        if i == _FLAG:
            cells.append(["t" if value else "f" for value in column])
            continue
        if escape:
            column = [None if v is None else v.translate(_ESCAPES) for v in column]
        if None in column:
            nulls += column.count(None)
            column = ["\\N" if v is None else v for v in column]
        cells.append(column)
    rows = len(cells[0])
    if not rows:
        return b""
    lines = "\n".join(map("\t".join, zip(*cells, strict=True)))
    if not escape and (lines.count("\t") != rows * (len(cells) - 1)
                       or lines.count("\n") != rows - 1 or lines.count("\\") != nulls
                       or "\r" in lines):
        return copy_text(columns, escape=True)
    return f"{lines}\n".encode()


class PostgresBackend(SqlBackend):
    """PostgreSQL through an asyncpg pool; `?search_path=…` in the URL picks the schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.label = f"PostgreSQL {mask_url(url)}"
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=2, timeout=10,
                                                   command_timeout=120)
        except asyncpg.exceptions.InvalidPasswordError as exc:
            raise StoreUnavailable(f"{self.label} refused the login: {pg_reason(exc)}; check "
                                   "the user and password in CENTRAL_STORE_URL") from exc
        except asyncpg.exceptions.InvalidCatalogNameError as exc:
            raise StoreUnavailable(f"{self.label}: {pg_reason(exc)}; create the database or "
                                   "fix its name in CENTRAL_STORE_URL") from exc
        except (*PG_DOWN, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(self._hint(exc)) from exc
        except ValueError as exc:  # a URL asyncpg cannot parse
            raise SyncConfigError(f"CENTRAL_STORE_URL {mask_url(self.url)!r}: {exc}") from exc
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.signatures'))")
                await conn.execute(PG_TABLE)
                have = {r["column_name"] for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'signatures'")}
                for column in COLUMNS:
                    if column not in have:
                        await conn.execute(f"ALTER TABLE signatures ADD COLUMN {column} "
                                           f"{PG_TYPES.get(column, 'text')}")
                if not await conn.fetchval(PG_UNIQUE_ID):  # an older table without a key
                    await conn.execute("CREATE UNIQUE INDEX signatures_signature_id "
                                       "ON signatures (signature_id)")
        except (*PG_DOWN, asyncpg.PostgresError) as exc:
            await self.close()
            raise StoreUnavailable(self._hint(exc)) from exc

    async def total(self, campaign: str) -> int | None:
        if self._pool is None:
            return None
        try:
            n = await self._pool.fetchval(
                "SELECT count(*) FROM signatures WHERE campaign = $1", campaign)
        except (*PG_DOWN, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(self._hint(exc)) from exc
        return int(n)

    def _hint(self, exc: BaseException) -> str:
        reason = pg_reason(exc)
        return (f"cannot reach the central store {self.label}: {reason}; check "
                "CENTRAL_STORE_URL and that PostgreSQL is running and accepts this user")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, *PG_DOWN):
                pool.terminate()

    async def _write(self, records: Sequence[Row], erase: list[str]) -> set[str]:
        columns = list(zip(*records, strict=True)) or [() for _ in COLUMNS]
        return await self._store(columns, erase)

    async def _write_bulk(self, bulk: Bulk) -> set[str]:
        return await self._store(bulk.columns, [])

    async def _store(self, columns: Sequence[Sequence[Any]], erase: list[str]) -> set[str]:
        """The signatures straight into the table with COPY: most are new, and there is
        nothing to compare a new one with. If one is there already (a mark lost in a crash,
        an opt-out, a new store URL), that transaction is rolled back and they all go the
        other way: into the staging table, then one upsert that changes only what differs."""
        if self._pool is None:
            raise StoreUnavailable(f"the central store {self.label} is not open")
        data = copy_text(columns)
        try:
            async with self._pool.acquire() as conn:
                if data:
                    with contextlib.suppress(asyncpg.exceptions.UniqueViolationError):
                        async with conn.transaction():
                            await self._copy(conn, "signatures", data)
                            await self._erase(conn, erase)
                        return set(columns[0])
                async with conn.transaction():
                    changed: set[str] = set()
                    if data:
                        await conn.execute(PG_STAGE)
                        await self._copy(conn, "sync_stage", data)
                        changed = {r[0] for r in await conn.fetch(PG_UPSERT)}
                    await self._erase(conn, erase)
                return changed
        except PG_DATA as exc:
            raise RowRejected(pg_reason(exc)) from exc
        except (*PG_DOWN, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(self._hint(exc)) from exc

    @staticmethod
    async def _copy(conn: asyncpg.Connection, table: str, data: bytes) -> None:
        # A memoryview: asyncpg takes bytes for the name of a file to read.
        await conn.copy_to_table(table, source=memoryview(data), columns=COLUMNS,
                                 format="text")

    @staticmethod
    async def _erase(conn: asyncpg.Connection, erase: list[str]) -> None:
        if erase:
            await conn.execute("DELETE FROM signatures WHERE signature_id = ANY($1::text[])",
                               erase)


def sqlite_path(url: str, cwd: Path | None = None) -> Path:
    """`sqlite:///data/c.sqlite3` is relative to the working folder, `sqlite:////abs` absolute."""
    raw = url[len("sqlite:///"):]
    if not raw:
        raise SyncConfigError("CENTRAL_STORE_URL sqlite:/// needs a file path, e.g. "
                              "sqlite:///./data/central.sqlite3")
    path = Path(raw)
    return path if path.is_absolute() else (cwd or Path.cwd()) / path
