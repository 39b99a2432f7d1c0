"""The outbox side of a sync: which jobs are due, and settling them once the store answered.

The outbox holds no personal data: an upsert names a signature, and the signature row is
read at push time (so the latest state is what goes out, once, however many rows queued it).

Row life: pending → done (the store confirmed it, or there was nothing left to do),
pending → parked (the store refused it for a reason retrying cannot fix; an organizer looks
at it in /healthz and `sync`), and pending → pending with attempts + 1, last_error and, when
the failure may be the row's own, a next_attempt_at after an exponential backoff with
jitter. A parked row is settled as done when a later change of the same signature gets
through.

One sync at a time drains a bot's outbox: a pass holds a lease row (renewed every batch,
expiring on its own, taken over at once from a process that died on this host), so a
`sync --once` beside `serve` cannot push an upsert after the erase that followed it.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from bot.store import Store
from bot.sync.base import DONE, Job, OutboxRow, Outcome, Result, SignatureRecord

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


NEXT_BATCH = """
WITH heads AS (
    SELECT id, signature_id FROM outbox
    WHERE status = 'pending' AND id > ?1
      AND (?2 IS NULL OR next_attempt_at IS NULL OR next_attempt_at <= ?2)
    ORDER BY id LIMIT ?3
)
SELECT o.id, o.kind, o.signature_id, o.status, o.attempts,
       s.campaign, s.full_name, s.region, s.channel, s.language, s.opted_in_updates,
       s.signed_at, s.contact, (SELECT max(id) FROM heads)
FROM outbox o LEFT JOIN signatures s ON s.signature_id = o.signature_id
WHERE o.signature_id IN (SELECT signature_id FROM heads) AND o.status != 'done'
ORDER BY o.id
"""


async def next_jobs(store: Store, after_id: int, limit: int, *, due_by: str | None) -> tuple[
        list[Job], int]:
    """The next `limit` signatures with a pending row past `after_id` (due by `due_by`, or all
    when None), each with all its open rows and, for an upsert, the signature as it stands
    now (None when it is gone); and the id to continue after."""
    rows = await store.fetchall(NEXT_BATCH, (after_id, due_by, limit))
    if not rows:
        return [], after_id
    jobs: dict[str, Job] = {}
    for r in rows:
        sid = r[2]
        job = jobs.get(sid)
        if job is None:
            record = None if r[5] is None else SignatureRecord(
                sid, r[5], r[6], r[7] or None, r[8], r[9], bool(r[10]), r[11], r[12])
            job = jobs[sid] = Job(sid, "upsert", [], record)
        job.rows.append(OutboxRow(r[0], r[1], r[3], r[4]))
    for job in jobs.values():
        if job.rows[-1].kind == "erase":
            job.kind, job.record = "erase", None
    return [j for j in jobs.values() if j.pending], int(rows[0][13])


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
        # Each update names the row's kind and signature too: an erase deletes the open rows
        # of its signature and SQLite may give the erase row a deleted row's id.
        if result.outcome in DONE:
            done += [(at, result.note, r.id, r.kind, job.signature_id) for r in job.rows]
            settled.append(result)
            continue
        pending = [r for r in job.rows if r.status == "pending"]
        if result.outcome is Outcome.PARKED:
            parked += [(result.note, r.id, r.kind, job.signature_id) for r in pending]
            settled.append(result)
            continue
        attempts = job.attempts + 1
        if result.park_after is not None and attempts >= result.park_after:
            note = f"gave up after {attempts} attempts: {result.note}"
            parked += [(note, r.id, r.kind, job.signature_id) for r in pending]
            settled.append(Result(job, Outcome.PARKED, note))
            continue
        retry_at = stamp(now + timedelta(seconds=backoff.delay(attempts))) if result.backoff \
            else None
        failed += [(retry_at, result.note, r.id, r.kind, job.signature_id) for r in pending]
        settled.append(result)

    async def write(conn: aiosqlite.Connection) -> None:
        if done:
            await conn.executemany(
                "UPDATE outbox SET status = 'done', done_at = ?, last_error = ? "
                "WHERE id = ? AND kind = ? AND signature_id = ?", done)
        if parked:
            await conn.executemany(
                "UPDATE outbox SET status = 'parked', attempts = attempts + 1, last_error = ? "
                "WHERE id = ? AND kind = ? AND signature_id = ? AND status = 'pending'", parked)
        if failed:
            await conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                "WHERE id = ? AND kind = ? AND signature_id = ? AND status = 'pending'", failed)

    if done or parked or failed:
        await store.write(write)
    return settled


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
                dead = row["host"] == self.host and row["pid"] != self.pid and not _alive(
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
