"""The outbox side of a sync: which jobs are due, and settling them once the store answered.

The outbox holds no personal data: an upsert names a signature, and the signature row is
read at push time (so the latest state is what goes out, once, however many rows queued it).

Row life: pending → done (the store confirmed it, or there was nothing left to do),
pending → parked (the store refused it for a reason retrying cannot fix; an organizer looks
at it in /healthz and `sync`), and pending → pending with attempts + 1, last_error and, when
the failure may be the row's own, a next_attempt_at after an exponential backoff with
jitter. A parked row is settled as done when a later change of the same signature gets
through.

One sync at a time drains a bot's outbox: a pass holds a lease row (renewed between batches
well before it runs out, expiring on its own, taken over at once from a process that died on
this host), so a `sync --once` beside `serve` cannot push an upsert after the erase that
followed it.

A pass reads through a connection of its own, a batch of rows at a time, each column as one
JSON array (`Batch`); a batch that is nothing but upserts of signatures still here goes to
the store as columns (`Bulk`), the others as a Job per signature.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store import Store, StoreError, process_alive
from bot.sync.base import (
    COLUMNS,
    DONE,
    Bulk,
    Job,
    OutboxRow,
    Outcome,
    Result,
    SignatureRecord,
)

LEASE_SECONDS = 120


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with equal jitter: half the step is fixed, half is random."""

    base: float = 2.0
    cap: float = 600.0

    def delay(self, attempt: int) -> float:
        step = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


# The heads are the next pending rows in id order; a job is every open row of a head's
# signature (wherever it stands in the outbox), with the signature as it is now. One row
# comes back: the id to continue after, then each column as a JSON array. SQLite builds them
# in one step, so the thread running the query does not hand the GIL back and forth for
# every row (beside a busy event loop, that costs more than the query), and decoding makes
# no object per row. The last column, {id: signature_id}, goes back as it is to mark them.
_FIELDS = ("o.id", "o.kind", "o.signature_id", "o.status", "o.attempts", "s.campaign",
           "s.full_name", "nullif(s.region, '')", "s.channel", "s.language",
           "s.opted_in_updates", "s.signed_at", "s.contact")
NEXT_BATCH = f"""
WITH heads AS MATERIALIZED (
    SELECT id, signature_id FROM outbox
    WHERE status = 'pending' AND id > ?1
      AND (?2 IS NULL OR next_attempt_at IS NULL OR next_attempt_at <= ?2)
    ORDER BY id LIMIT ?3
)
SELECT (SELECT max(id) FROM heads), {", ".join(f"json_group_array({f})" for f in _FIELDS)},
       json_group_object(o.id, o.signature_id)
FROM outbox o LEFT JOIN signatures s ON s.signature_id = o.signature_id
WHERE o.signature_id IN (SELECT signature_id FROM heads) AND o.status != 'done'
"""


def _by_id(row: OutboxRow) -> int:
    return row.id


def _first_id(job: Job) -> int:
    return job.rows[0].id


@dataclass(slots=True)
class Batch:
    """One read of the outbox: every open row of the signatures due next, in columns, one
    entry per row (NEXT_BATCH's order). `jobs` makes a Job of each signature; `bulk` gives
    the fast lane, when the batch is nothing but plain upserts."""

    after: int  # the id to continue after
    ids: list[int]
    kinds: list[str]
    sids: list[str]
    statuses: list[str]
    attempts: list[int]
    signature: tuple[list[Any], ...]  # COLUMNS[1:] as the bot holds them; None: gone
    marks: str  # JSON {id: signature_id} of the rows, for MARK_UPSERTS

    @classmethod
    def decode(cls, answer: Sequence[Any], after_id: int) -> Batch:
        if answer[0] is None:
            return cls(after_id, [], [], [], [], [], tuple([] for _ in COLUMNS[1:]), "{}")
        ids, kinds, sids, statuses, attempts, *signature = map(json.loads, answer[1:-1])
        return cls(int(answer[0]), ids, kinds, sids, statuses, attempts, tuple(signature),
                   answer[-1])

    def __len__(self) -> int:
        return len(self.ids)

    def jobs(self) -> list[Job]:
        """A job per signature with a pending row (the latest row decides its kind), oldest
        first."""
        jobs: dict[str, Job] = {}
        get = jobs.get
        for (id_, kind, sid, status, attempts, campaign, name, region, channel, language,
             opted, signed_at, contact) in zip(
                self.ids, self.kinds, self.sids, self.statuses, self.attempts,
                *self.signature, strict=True):
            job = get(sid)
            if job is None:
                record = None if campaign is None else SignatureRecord(
                    sid, campaign, name, region, channel, language, bool(opted), signed_at,
                    contact)
                jobs[sid] = Job(sid, kind, [OutboxRow(id_, kind, status, attempts)], record)
            else:
                job.rows.append(OutboxRow(id_, kind, status, attempts))
        due = []
        for job in jobs.values():
            if len(job.rows) > 1:  # else its one row is a head: pending
                job.rows.sort(key=_by_id)
                job.kind = "erase" if job.rows[-1].kind == "erase" else "upsert"
                if not job.pending:
                    continue
            if job.kind == "erase":
                job.record = None
            due.append(job)
        due.sort(key=_first_id)
        return due

    def bulk(self, seen: set[int]) -> Bulk | None:
        """The batch as plain upserts, if that is all it is (no erasure, no signature gone):
        one entry per signature, which settles every row of it but those an earlier batch of
        this pass pushed already (`seen`: a signature with rows on both sides of a batch
        edge). Its job would be an upsert of those rows; it has a pending one (the head, or
        a row added since that batch was read)."""
        if "erase" in self.kinds or None in self.signature[0]:
            return None
        ids, sids, signature, marks = self.ids, self.sids, self.signature, self.marks
        if not seen.isdisjoint(ids):
            keep = [i for i, id_ in enumerate(ids) if id_ not in seen]
            ids, sids = [ids[i] for i in keep], [sids[i] for i in keep]
            signature = tuple([column[i] for i in keep] for column in signature)
            marks = json.dumps(dict(zip(ids, sids, strict=True)))
        columns = (sids, *signature)
        # One entry per signature (from any of its rows: they all carry the same signature).
        one = dict(zip(sids, range(len(sids)), strict=True))
        if len(one) < len(sids):
            keep = list(one.values())
            columns = tuple([column[i] for i in keep] for column in columns)
        return Bulk(columns, ids, marks)


async def next_jobs(store: Store, after_id: int, limit: int, *, due_by: str | None) -> tuple[
        list[Job], int]:
    """The jobs of the next `limit` pending rows past `after_id` (due by `due_by`, or all
    when None), each with all the open rows of its signature and, for an upsert, the
    signature as it stands now (None when it is gone); and the id to continue after."""
    answer = await store.fetchone(NEXT_BATCH, (after_id, due_by, limit))
    assert answer is not None  # an aggregate: always one row
    batch = Batch.decode(answer, after_id)
    return batch.jobs(), batch.after


class OutboxReader:
    """The sync's own read-only connection to the bot's database, used from a worker thread:
    a pass reads its big batches there, beside the bot's reader rather than in its way (the
    WAL lets it read while the bot writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _query(self, after_id: int, limit: int, due_by: str | None) -> tuple[Any, ...]:
        with self._lock:
            if self._conn is None:
                conn = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 10000")
                conn.execute("PRAGMA query_only = ON")
                self._conn = conn
            answer: tuple[Any, ...] = self._conn.execute(
                NEXT_BATCH, (after_id, due_by, limit)).fetchone()
        return answer

    async def next_batch(self, after_id: int, limit: int, *, due_by: str | None) -> Batch:
        """As `next_jobs`, through this connection, as a Batch. The query runs in a thread;
        the columns are decoded here, in the event loop's thread."""
        try:
            answer = await asyncio.to_thread(self._query, after_id, limit, due_by)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the outbox in {self.path}: {exc}") from exc
        return Batch.decode(answer, after_id)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# Settling a batch: one statement per kind of change, the rows given as one JSON array of
# [id, kind, signature_id, note, (retry at)]. Each names the row's kind and signature too: an
# erase deletes the open rows of its signature, and SQLite may give the erase row the id of
# a deleted one.
_MATCH = ("FROM json_each(?1) AS m WHERE outbox.id = m.value ->> 0 "
          "AND outbox.kind = m.value ->> 1 AND outbox.signature_id = m.value ->> 2")
_OPEN = " AND +outbox.status = 'pending'"  # the + keeps the planner on the id
MARK_DONE = ("UPDATE outbox SET status = 'done', done_at = ?2, last_error = m.value ->> 3 "
             + _MATCH)
# A batch of upserts done, its rows given as {id: signature_id}.
MARK_UPSERTS = ("UPDATE outbox SET status = 'done', done_at = ?2, last_error = NULL "
                "FROM json_each(?1) AS m WHERE outbox.id = CAST(m.key AS INTEGER) "
                "AND outbox.kind = 'upsert' AND outbox.signature_id = m.value")
MARK_PARKED = ("UPDATE outbox SET status = 'parked', attempts = attempts + 1, "
               "last_error = m.value ->> 3 " + _MATCH + _OPEN)
MARK_FAILED = ("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = m.value ->> 4, "
               "last_error = m.value ->> 3 " + _MATCH + _OPEN)


async def settle(store: Store, results: list[Result], backoff: Backoff) -> list[Result]:
    """Write what the store said about each job; returns the results as settled (a FAILED
    job that reached its limit comes back PARKED)."""
    now = now_utc()
    at = stamp(now)
    done: list[tuple[Any, ...]] = []
    parked: list[tuple[Any, ...]] = []
    failed: list[tuple[Any, ...]] = []
    settled: list[Result] = []
    for result in results:
        job = result.job
        sid = job.signature_id
        if result.outcome in DONE:
            done += [(r.id, r.kind, sid, result.note) for r in job.rows]
            settled.append(result)
            continue
        pending = [r for r in job.rows if r.status == "pending"]
        if result.outcome is Outcome.PARKED:
            parked += [(r.id, r.kind, sid, result.note) for r in pending]
            settled.append(result)
            continue
        attempts = job.attempts + 1
        if result.park_after is not None and attempts >= result.park_after:
            note = f"gave up after {attempts} attempts: {result.note}"
            parked += [(r.id, r.kind, sid, note) for r in pending]
            settled.append(Result(job, Outcome.PARKED, note))
            continue
        retry_at = stamp(now + timedelta(seconds=backoff.delay(attempts))) if result.backoff \
            else None
        failed += [(r.id, r.kind, sid, result.note, retry_at) for r in pending]
        settled.append(result)

    marks = [(sql, (json.dumps(rows), *extra)) for sql, rows, extra in
             ((MARK_DONE, done, (at,)), (MARK_PARKED, parked, ()), (MARK_FAILED, failed, ()))
             if rows]

    async def write(conn: aiosqlite.Connection) -> None:
        for sql, params in marks:
            await conn.execute(sql, params)

    if marks:
        await store.write(write)
    return settled


async def settle_bulk(store: Store, bulk: Bulk) -> None:
    """Mark the rows of a bulk lane done: it went through."""
    if not bulk.rows:
        return

    async def write(conn: aiosqlite.Connection) -> None:
        await conn.execute(MARK_UPSERTS, (bulk.marks, stamp(now_utc())))

    await store.write(write)


async def pending_count(store: Store, *, due_by: str | None) -> int:
    row = await store.fetchone(
        "SELECT count(DISTINCT signature_id) AS n FROM outbox WHERE status = 'pending' "
        "AND (? IS NULL OR next_attempt_at IS NULL OR next_attempt_at <= ?)",
        (due_by, due_by),
    )
    return int(row["n"]) if row else 0


async def next_due(store: Store) -> datetime | None:
    """When the earliest pending row may be tried (now, if one is due already)."""
    now = now_utc()
    due = await store.fetchone(
        "SELECT 1 FROM outbox WHERE status = 'pending' "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) LIMIT 1", (stamp(now),))
    if due is not None:
        return now
    row = await store.fetchone(
        "SELECT min(next_attempt_at) AS at FROM outbox WHERE status = 'pending'")
    if row is None or row["at"] is None:
        return None
    return datetime.strptime(str(row["at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def cannot_erase_count(store: Store) -> int:
    row = await store.fetchone(
        "SELECT count(*) AS n FROM outbox WHERE kind = 'erase' AND status = 'done' "
        "AND last_error IS NOT NULL AND last_error LIKE 'cannot erase%'")
    return int(row["n"]) if row else 0


# --- the lease: one sync at a time per bot database -----------------------------------------

class SyncBusy(Exception):
    """Another sync holds the outbox; the message names it."""


class Lease:
    def __init__(self, store: Store, name: str = "outbox") -> None:
        self.store = store
        self.name = name
        self.owner = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()

    async def acquire(self) -> None:
        """Take or renew the lease; raises SyncBusy when a live sync elsewhere holds it."""
        now = now_utc()

        async def job(conn: aiosqlite.Connection) -> str | None:
            async with conn.execute(
                "SELECT owner, host, pid, expires_at FROM sync_lease WHERE name = ?", (self.name,)
            ) as cur:
                row = await cur.fetchone()
            if row is not None and row["owner"] != self.owner and row["expires_at"] > stamp(now):
                dead = row["host"] == self.host and row["pid"] != self.pid and not process_alive(
                    int(row["pid"]))
                if not dead:
                    return f"pid {row['pid']} on {row['host']}"
            await conn.execute(
                "INSERT INTO sync_lease (name, owner, host, pid, expires_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, host = excluded.host, "
                "pid = excluded.pid, expires_at = excluded.expires_at",
                (self.name, self.owner, self.host, self.pid,
                 stamp(now + timedelta(seconds=LEASE_SECONDS))),
            )
            return None

        holder = await self.store.write(job)
        if holder is not None:
            raise SyncBusy(f"another sync is draining this bot's outbox ({holder}); "
                           "wait for it to finish or stop it")

    async def release(self) -> None:
        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute("DELETE FROM sync_lease WHERE name = ? AND owner = ?",
                               (self.name, self.owner))

        await self.store.write(job)
