"""The store: migrations from any version, group commit, isolation of failing jobs, backup."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import MIGRATIONS, SCHEMA_VERSION, Store, StoreError, migrate


def schema(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return {(r[0], r[1]) for r in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}


def test_fresh_and_old_files_end_at_the_same_schema(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite3"
    assert migrate(fresh) == 0
    old = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(old)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO contacts (address, channel, created_at, updated_at) "
                 "VALUES ('+14165550100', 'sms', 'x', 'x')")
    conn.commit()
    conn.close()
    assert migrate(old) == 1
    assert schema(old) == schema(fresh)
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate(old) == SCHEMA_VERSION  # idempotent


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this bot"):
        migrate(path)


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    async def run() -> None:
        async with Store(blocker / "bot.sqlite3"):
            pass

    with pytest.raises(StoreError, match="BOT_DB"):
        asyncio.run(run())


async def test_concurrent_writes_are_group_committed_and_isolated(tmp_path: Path) -> None:
    async with Store(tmp_path / "bot.sqlite3") as store:
        async def insert(i: int) -> int:
            async def job(conn) -> int:  # type: ignore[no-untyped-def]
                if i == 7:
                    raise ValueError("job 7 fails alone")
                await conn.execute(
                    "INSERT INTO contacts (address, channel, created_at, updated_at) "
                    "VALUES (?, 'sms', 'x', 'x')", (f"+1416555{i:04d}",))
                return i
            return int(await store.write(job))

        results = await asyncio.gather(*(insert(i) for i in range(50)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        assert len(failures) == 1 and "job 7" in str(failures[0])
        row = await store.fetchone("SELECT count(*) AS n FROM contacts")
        assert row is not None and row["n"] == 49


async def test_backup_is_a_consistent_copy(tmp_path: Path) -> None:
    async with Store(tmp_path / "bot.sqlite3") as store:
        async def job(conn) -> None:  # type: ignore[no-untyped-def]
            await conn.execute("INSERT INTO contacts (address, channel, created_at, updated_at) "
                               "VALUES ('+14165550100', 'sms', 'x', 'x')")
        await store.write(job)
        await store.backup(tmp_path / "copy.sqlite3")
    with sqlite3.connect(tmp_path / "copy.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_plain_jobs_share_the_group_commit_with_async_jobs(tmp_path: Path) -> None:
    """`write_sync` jobs run in the writer's thread (a run of them in one hop), mixed in one
    transaction with `write` jobs; a failing job of either kind is undone alone."""
    async with Store(tmp_path / "bot.sqlite3") as store:
        sql = ("INSERT INTO contacts (address, channel, created_at, updated_at) "
               "VALUES (?, 'sms', 'x', 'x')")

        async def plain(i: int) -> int:
            def job(db: sqlite3.Connection) -> int:
                db.execute(sql, (f"+1416555{i:04d}",))
                if i % 10 == 7:
                    raise ValueError(f"job {i} fails alone")
                return i
            return int(await store.write_sync(job))

        async def awaited(i: int) -> int:
            async def job(conn) -> int:  # type: ignore[no-untyped-def]
                await conn.execute(sql, (f"+1416555{i:04d}",))
                if i % 10 == 7:
                    raise ValueError(f"job {i} fails alone")
                return i
            return int(await store.write(job))

        jobs = [plain(i) if i % 3 else awaited(i) for i in range(60)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        failures = {str(r) for r in results if isinstance(r, Exception)}
        assert failures == {f"job {i} fails alone" for i in range(7, 60, 10)}
        assert [r for r in results if not isinstance(r, Exception)] == [
            i for i in range(60) if i % 10 != 7]
        row = await store.fetchone("SELECT count(*) AS n FROM contacts")
        assert row is not None and row["n"] == 54
        # one read: the contact as stored (no platform id to look up) ...
        done, contact = await store.turn_state("+14165550001", "c", "sms", None)
        assert done is None and contact == await store.contact("+14165550001", "c")
        assert contact is not None and contact.state == "new" and not contact.signed


async def test_a_busy_file_is_read_in_the_readers_thread(tmp_path: Path) -> None:
    """Lookups read on the event loop's thread never wait for a lock there: when the file is
    busy (SQLITE_BUSY at once: busy_timeout 0) they are read in the reader's thread."""

    class Busy:
        def execute(self, *args: object) -> None:
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = 261  # type: ignore[attr-defined]  # SQLITE_BUSY_RECOVERY
            raise exc

    async with Store(tmp_path / "bot.sqlite3") as store:
        async def job(conn) -> None:  # type: ignore[no-untyped-def]
            await conn.execute("INSERT INTO contacts (address, channel, state, created_at, "
                               "updated_at) VALUES ('+14165550100', 'sms', 'menu', 'x', 'x')")
        await store.write(job)
        point, store._point = store._point, Busy()  # type: ignore[assignment]
        try:
            done, contact = await store.turn_state("+14165550100", "c", "sms", "SM1")
        finally:
            store._point = point
        assert done is None and contact is not None and contact.state == "menu"
