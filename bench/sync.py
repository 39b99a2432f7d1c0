"""Benchmark: 100,000 signatures into PostgreSQL through the bot's sync path, against the
ceiling of a bare COPY of the same rows in the same run.

    .venv/bin/python bench/sync.py [--rows 100000] [--url postgresql://postgres@127.0.0.1/test]

It writes a bot database with the signatures and their pending outbox rows (in a temporary
folder), drains it with the real Syncer into a fresh schema, times a bare COPY of the same
rows into a table of the same shape, then syncs again (nothing pending: nothing is sent)
and once more with every outbox row put back to pending (a lost mark: all already present).
The schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.store import Store, migrate  # noqa: E402
from bot.sync.base import COLUMNS, Outcome  # noqa: E402
from bot.sync.sql import PostgresBackend  # noqa: E402
from bot.sync.worker import Syncer  # noqa: E402

SIGNED_AT = "2026-11-28T14:03:07Z"


def fill(path: Path, n: int) -> None:
    migrate(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    sids = [str(uuid.uuid4()) for _ in range(n)]
    conn.executemany(
        "INSERT INTO contacts (id, address, channel, language, state, created_at, updated_at) "
        "VALUES (?, ?, 'sms', 'en', 'menu', ?, ?)",
        [(i + 1, f"+1416{i:07d}", SIGNED_AT, SIGNED_AT) for i in range(n)])
    conn.executemany(
        "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, region, channel, "
        "language, opted_in_updates, signed_at, contact) VALUES (?, ?, 'bench', ?, ?, 'sms', "
        "'en', ?, ?, ?)",
        [(sid, i + 1, f"Person Number {i}", "ON" if i % 3 else None, i % 2, SIGNED_AT,
          f"+1416{i:07d}") for i, sid in enumerate(sids)])
    conn.executemany("INSERT INTO outbox (kind, signature_id, created_at) VALUES ('upsert', ?, ?)",
                     [(sid, SIGNED_AT) for sid in sids])
    conn.execute("COMMIT")
    conn.close()


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} rows/s ({seconds:.2f} s)"


async def sync(store: Store, url: str) -> tuple[dict[Outcome, int], float]:
    syncer = Syncer(store, PostgresBackend(url))
    started = time.perf_counter()
    report = await syncer.run_pass()
    elapsed = time.perf_counter() - started
    await syncer.close()
    if report.error:
        raise SystemExit(f"error: {report.error}")
    return report.counts, elapsed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--url", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    n = args.rows
    schema = f"bench_sync_{os.getpid()}"
    try:
        admin = await asyncpg.connect(args.url)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot reach PostgreSQL at {args.url}: {exc}", file=sys.stderr)
        return 1
    await admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}search_path={schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bot.sqlite3"
            started = time.perf_counter()
            fill(db, n)
            print(f"bot database with {n:,} pending signatures written in "
                  f"{time.perf_counter() - started:.2f} s")
            async with Store(db) as store:
                counts, through_bot = await sync(store, url)
                assert counts[Outcome.PUSHED] == n, counts

                # The ceiling: the same rows, already in memory, COPYed into a bare table.
                rows = await store.fetchall(f"SELECT {', '.join(COLUMNS)} FROM signatures")
                records = [(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]),
                            datetime.strptime(r[7], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                            r[8]) for r in rows]
                await admin.execute(f"CREATE TABLE {schema}.ceiling (LIKE {schema}.signatures "
                                    "INCLUDING ALL)")
                started = time.perf_counter()
                await admin.copy_records_to_table("ceiling", schema_name=schema, records=records,
                                                  columns=COLUMNS)
                bare = time.perf_counter() - started

                again, idle = await sync(store, url)
                await store.write(lambda c: c.execute("UPDATE outbox SET status = 'pending'"))
                resent, lost_marks = await sync(store, url)
            total = await admin.fetchval(f"SELECT count(*) FROM {schema}.signatures")
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()

    print(f"through the bot (outbox → COPY → upsert → mark done): {rate(n, through_bot)}")
    print(f"bare COPY of the same rows (the ceiling):               {rate(n, bare)}")
    print(f"ratio: the bot's path runs at {bare / through_bot:.0%} of the ceiling "
          f"({through_bot / bare:.1f}x slower)")
    print(f"second sync: {sum(again.values())} rows considered, {again[Outcome.PUSHED]} sent "
          f"({idle * 1000:.0f} ms)")
    print(f"every mark lost, sync again: {resent[Outcome.PRESENT]:,} already present, "
          f"{resent[Outcome.PUSHED]} pushed ({rate(n, lost_marks)})")
    print(f"rows in the store: {total:,}")
    ok = total == n and again[Outcome.PUSHED] == 0 and resent[Outcome.PUSHED] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
