"""Helpers for the sync tests: bot databases with signatures, PostgreSQL schemas, store readers.

Signatures are written the way the bot writes them (`save_turn`, so the outbox rows are the
real ones); `fill_bot_db` writes many rows straight into a bot database file for speed.
PostgreSQL is the real server on 127.0.0.1:5432; each test gets its own schema. Under
CI=true an unreachable server fails the tests instead of skipping them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from bot.store import Store, TurnRecord, migrate, save_turn
from flows.types import Erase, SetUpdates, Sign

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
CAMPAIGN = "test-campaign"
T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pg_missing(reason: str) -> None:
    message = f"PostgreSQL at {PG_HOST}:{PG_PORT}/{PG_DB} is needed: {reason}"
    if in_ci():
        pytest.fail(message + " (CI is set, so this fails instead of skipping)")
    pytest.skip(message)


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end on its own loop in another thread (from sync fixtures,
    and from inside a running loop, where asyncio.run cannot be called)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_user() -> str:
    """The first user the test server lets in (fails under CI, else skips, when none)."""
    user, errors = in_thread(_pg_user())
    if user is None:
        pg_missing("; ".join(errors))
    return str(user)


async def _pg_user() -> tuple[str | None, list[str]]:
    errors = []
    for user in ("postgres", "root", os.environ.get("USER", "")):
        if not user:
            continue
        try:
            conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database=PG_DB,
                                         timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            errors.append(f"{user}: {exc}")
            continue
        await conn.close()
        return user, errors
    return None, errors


class PgSchemas:
    """Fresh schemas on the test server, each dropped at the end."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.made: list[str] = []

    def url(self, schema: str, port: int = PG_PORT) -> str:
        return f"postgresql://{self.user}@{PG_HOST}:{port}/{PG_DB}?search_path={schema}"

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=self.user, database=PG_DB)

    def new(self) -> str:
        schema = f"sync_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        self.made.append(schema)
        in_thread(self._execute(f"CREATE SCHEMA {schema}"))
        return schema

    def drop_all(self) -> None:
        in_thread(self._execute(*(f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in self.made)))

    async def _execute(self, *statements: str) -> None:
        conn = await self.connect()
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()


# --- the bot side ------------------------------------------------------------------------

async def write_turn(store: Store, address: str, *effects: Any, campaign: str = CAMPAIGN,
                     language: str = "en") -> None:
    channel = "telegram" if address.startswith("telegram:") else (
        "whatsapp" if address.startswith("whatsapp:") else "sms")
    rec = TurnRecord(channel, address, None, campaign, language, "menu", "{}", "[]",
                     tuple(effects))
    await store.write(lambda conn: save_turn(conn, rec))


async def sign(store: Store, address: str, name: str = "Ana Cruz", region: str | None = "ON",
               opted_in: bool = True, **kw: Any) -> str:
    await write_turn(store, address, Sign(name, region, "v1"), SetUpdates(opted_in), **kw)
    row = await store.fetchone("SELECT signature_id FROM signatures WHERE contact = ?",
                               (address,))
    assert row is not None
    return str(row[0])


async def opt_out(store: Store, address: str) -> None:
    await write_turn(store, address, SetUpdates(False))


async def erase(store: Store, address: str) -> None:
    await write_turn(store, address, Erase())


async def outbox(store: Store) -> dict[str, int]:
    return await store.outbox_counts()


def fill_bot_db(path: Path, n: int, *, campaign: str = CAMPAIGN, start: int = 0) -> list[str]:
    """`n` signatures with one pending upsert each, written straight into the file."""
    migrate(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        base = conn.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0]
        sids = [str(uuid.uuid4()) for _ in range(n)]
        at = "2026-11-28T14:03:07Z"
        conn.executemany(
            "INSERT INTO contacts (id, address, channel, language, state, created_at, "
            "updated_at) VALUES (?, ?, 'sms', 'en', 'menu', ?, ?)",
            [(base + i + 1, f"+1416{start + i:07d}", at, at) for i in range(n)])
        conn.executemany(
            "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, region, "
            "channel, language, opted_in_updates, signed_at, contact) "
            "VALUES (?, ?, ?, ?, ?, 'sms', 'en', ?, ?, ?)",
            [(sid, base + i + 1, campaign, f"Person {start + i}", "ON" if i % 3 else None,
              i % 2, at, f"+1416{start + i:07d}") for i, sid in enumerate(sids)])
        conn.executemany(
            "INSERT INTO outbox (kind, signature_id, created_at) VALUES ('upsert', ?, ?)",
            [(sid, at) for sid in sids])
        conn.execute("COMMIT")
    finally:
        conn.close()
    return sids


# --- the store side ----------------------------------------------------------------------

class Central:
    """Reads what a SQL central store holds, whichever kind it is."""

    def __init__(self, url: str, path: Path | None = None) -> None:
        self.url = url
        self.path = path

    async def rows(self) -> dict[str, dict[str, Any]]:
        if self.path is not None:
            if not self.path.exists():
                return {}
            conn = sqlite3.connect(self.path)
            conn.row_factory = sqlite3.Row
            try:
                return {r["signature_id"]: dict(r) for r in conn.execute(
                    "SELECT * FROM signatures")}
            except sqlite3.OperationalError:
                return {}
            finally:
                conn.close()
        pg = await asyncpg.connect(self.url)
        try:
            if await pg.fetchval("SELECT to_regclass('signatures')") is None:
                return {}
            return {r["signature_id"]: dict(r) for r in await pg.fetch("SELECT * FROM signatures")}
        finally:
            await pg.close()

    async def count(self) -> int:
        if self.path is not None:
            return len(await self.rows())
        pg = await asyncpg.connect(self.url)
        try:
            return int(await pg.fetchval("SELECT count(*) FROM signatures"))
        finally:
            await pg.close()


@asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[Store]:
    async with Store(path) as store:
        yield store
