"""A pass over the outbox, the background loop inside `serve`, and the `sync` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.store import Store, StoreError
from bot.sync import outbox
from bot.sync.base import (
    Backend,
    Bulk,
    Job,
    Outcome,
    PassReport,
    Result,
    StoreUnavailable,
    SyncConfigError,
)
from bot.sync.outbox import Backoff, Lease, SyncBusy

log = logging.getLogger("bot.sync")

IDLE_POLL = 1.0  # seconds between looks at an empty outbox
TOTAL_EVERY = 30.0  # seconds between reads of the central store's total ...
TOTAL_AFTER_PUSH = 5.0  # ... or this soon after a push (OSDI shares 4 requests/s with pushes)
PASS_BACKOFF = Backoff(base=1.0, cap=60.0)  # between passes while the store is down
PROGRESS_MIN = 500  # a progress bar from this many signatures on
BUSY_WAIT = 15.0  # how long `sync --once` waits for a pass of `serve` to end
LEASE_RENEW = outbox.LEASE_SECONDS / 4  # a pass renews its lease between batches this often
READ_AHEAD = 2  # batches read and waiting for their push
MARKING = 2  # pushed batches whose marks may be on their way to the disk at once


def open_backend(settings: Settings, store: Store, cwd: Path | None = None) -> Backend:
    """The backend that CENTRAL_STORE_URL names (not yet connected)."""
    from bot.sync.osdi import OsdiBackend
    from bot.sync.sql import PostgresBackend, SqliteBackend, sqlite_path

    url = settings.central_store_url
    if url.startswith("sqlite:///"):
        return SqliteBackend(sqlite_path(url, cwd))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url)
    if url.startswith(("https://", "http://")):
        return OsdiBackend(url, settings.central_store_api_key, store)
    raise SyncConfigError(f"CENTRAL_STORE_URL={url!r} must start with sqlite:///, "
                          "postgresql:// or https://")


class Syncer:
    """Drains one bot's outbox into one backend, a batch at a time."""

    def __init__(self, store: Store, backend: Backend, *, backoff: Backoff | None = None,
                 batch_size: int | None = None) -> None:
        self.store = store
        self.backend = backend
        self.backoff = backoff or Backoff()
        self.batch_size = batch_size or backend.batch_size
        self.lease = Lease(store)
        self._open = False

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.backend.close()

    async def total(self, campaign: str) -> int | None:
        """The central store's count for the campaign, or None (unknown, or unreachable)."""
        try:
            if not self._open:
                await self.backend.open()
                self._open = True
            return await self.backend.total(campaign)
        except StoreUnavailable as exc:
            log.info("sync: no total from the central store: %s", exc)
            return None

    async def run_pass(self, *, everything: bool = False,
                       progress: Callable[[int, int], None] | None = None,
                       stop: asyncio.Event | None = None) -> PassReport:
        """Push every due job once (every pending one when `everything`).

        Raises SyncBusy when another sync holds the outbox and SyncConfigError when the
        settings cannot work; a store that cannot be reached is reported in `error`.
        """
        report = PassReport()
        reader = outbox.OutboxReader(self.store.path)
        ahead: asyncio.Queue[outbox.Batch | Exception] = asyncio.Queue(READ_AHEAD)
        reading: asyncio.Task[None] | None = None
        settling: list[asyncio.Task[None]] = []
        try:
            # Three stages overlap, each at its own pace: reading the next batches from the
            # bot's database (the first while taking the lease and connecting to the store),
            # pushing one, marking the ones before. A batch read early may hold rows pushed in
            # a batch before it (a signature with rows on both sides of a batch edge): `seen`
            # drops them.
            due_by = None if everything else outbox.stamp(outbox.now_utc())
            reading = asyncio.create_task(self._read_ahead(reader, due_by, ahead))
            await self.lease.acquire()
            renewed = time.monotonic()
            if not self._open:
                try:
                    await self.backend.open()
                except StoreUnavailable as exc:
                    report.error = str(exc)
                    return report
                self._open = True
            seen: set[int] = set()  # outbox rows this pass has pushed already
            total = 0 if progress is None else await outbox.pending_count(self.store,
                                                                          due_by=due_by)
            answered = 0  # jobs the store has answered for (the progress bar's count)

            async def settle(results: list[Result]) -> None:
                for result in await outbox.settle(self.store, results, self.backoff):
                    report.add(result)

            async def settle_bulk(bulk: Bulk, pushed: int, present: int) -> None:
                await outbox.settle_bulk(self.store, bulk)
                report.counts[Outcome.PUSHED] += pushed
                report.counts[Outcome.PRESENT] += present

            while not (stop is not None and stop.is_set()):
                batch = await ahead.get()
                if isinstance(batch, Exception):
                    raise batch
                if not batch:
                    break
                bulk = batch.bulk(seen)
                stored, down = await self._push_bulk(bulk)
                marking: Coroutine[Any, Any, None]
                if bulk is not None and stored is not None:  # the fast lane went through
                    seen.update(bulk.rows)
                    answered += len(bulk)
                    marking = settle_bulk(bulk, *stored)
                else:
                    results = await self._push_jobs(_unseen(batch.jobs(), seen), down, report)
                    answered += len(results)
                    marking = settle(results)
                if progress is not None:
                    progress(answered, total)
                settling.append(asyncio.create_task(marking))
                if len(settling) > MARKING:
                    await settling.pop(0)
                if report.error:
                    await self.close()  # reconnect on the next pass
                    break
                if time.monotonic() - renewed > LEASE_RENEW:
                    await self.lease.acquire()
                    renewed = time.monotonic()
            return report
        finally:
            if reading is not None:  # a read under way in its thread ends before the close
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
            failures = [e for e in await asyncio.gather(*settling, return_exceptions=True)
                        if isinstance(e, BaseException)]
            await asyncio.to_thread(reader.close)
            with contextlib.suppress(StoreError):
                await self.lease.release()
            if failures:
                raise failures[0]

    async def _read_ahead(self, reader: outbox.OutboxReader, due_by: str | None,
                          out: asyncio.Queue[outbox.Batch | Exception]) -> None:
        """Read the batches one after the other into `out`, ahead of the pushes; an empty
        batch ends them, and so does a failure, handed on."""
        after = 0
        try:
            while True:
                batch = await reader.next_batch(after, self.batch_size, due_by=due_by)
                await out.put(batch)
                if not batch:
                    return
                after = batch.after
        except Exception as exc:  # the pass raises it, where it waits for the next batch
            await out.put(exc)

    async def _push_bulk(self, bulk: Bulk | None) -> tuple[
            tuple[int, int] | None, StoreUnavailable | None]:
        """A batch of plain upserts through the backend's fast lane, if it has one: (pushed,
        present), or None to go job by job; and the store's failure."""
        if bulk is None:
            return None, None
        if not bulk.rows:  # all of it pushed in the batches before
            return (0, 0), None
        try:
            return await self.backend.push_bulk(bulk), None
        except StoreUnavailable as exc:
            return None, exc

    async def _push_jobs(self, jobs: list[Job], down: StoreUnavailable | None,
                         report: PassReport) -> list[Result]:
        """Push the jobs (all failed, when the fast lane found the store `down`); a failure
        of the store is noted in `report`."""
        if down is not None:
            results = [Result(j, Outcome.FAILED, str(down)) for j in jobs]
        else:
            results = [Result(j, Outcome.SKIPPED, "skipped: the signature is gone here")
                       for j in jobs if j.kind == "upsert" and j.record is None]
            ready = [j for j in jobs if not (j.kind == "upsert" and j.record is None)]
            try:
                results += await self.backend.push(ready) if ready else []
            except StoreUnavailable as exc:
                results += exc.results
                down = exc
        if down is not None:
            report.error = str(down)
            report.retry_after = down.retry_after
        return results


def _unseen(jobs: list[Job], seen: set[int]) -> list[Job]:
    """Drop the rows an earlier batch of this pass pushed already, and jobs left empty."""
    kept = []
    for job in jobs:
        if any(row.id in seen for row in job.rows):
            job.rows = [row for row in job.rows if row.id not in seen]
            if not job.pending:
                continue
        seen.update(row.id for row in job.rows)
        kept.append(job)
    return kept


# --- inside `serve` -----------------------------------------------------------------------

async def run_worker(bot: Any, health: dict[str, Any], *, backoff: Backoff | None = None,
                     idle: float = IDLE_POLL) -> None:
    """Keep the central store in step with the outbox until cancelled.

    `health` feeds /healthz: `sync_error` (the last store-level error, cleared by a pass
    that gets through), `sync_cannot_erase`, `sync_backend`, `sync_last_pass`.
    """
    health.setdefault("sync_error", None)
    try:
        backend = open_backend(bot.settings, bot.store)
    except SyncConfigError as exc:
        health["sync_error"] = str(exc)
        log.error("sync is off: %s", exc)
        return
    syncer = Syncer(bot.store, backend, backoff=backoff)
    log.info("sync: central store %s", backend.label)
    health["sync_backend"] = backend.label
    health["sync_erase_supported"] = backend.can_erase
    failures = 0
    counted = -TOTAL_EVERY  # when the central total was last read (monotonic)
    try:
        health["sync_cannot_erase"] = await outbox.cannot_erase_count(bot.store)
        while True:
            wait = idle
            try:
                due = await outbox.next_due(bot.store)
                if due is not None and due <= outbox.now_utc():
                    report = await syncer.run_pass()
                    wait = _after_pass(report, health, failures)
                    if report.counts[Outcome.CANNOT_ERASE]:
                        health["sync_cannot_erase"] = await outbox.cannot_erase_count(bot.store)
                    failures = failures + 1 if report.error else 0
                    if not report.error and report.busy:
                        wait = 0  # more may have come meanwhile
                        # what we pushed changed the total: read it soon, not more than
                        # once every TOTAL_AFTER_PUSH seconds under a steady trickle
                        counted = min(counted, time.monotonic() - TOTAL_EVERY + TOTAL_AFTER_PUSH)
                    if report.error:
                        counted = time.monotonic()  # the store is in trouble: not now
                elif due is not None:
                    wait = min(idle, max(0.0, (due - outbox.now_utc()).total_seconds()))
                if wait and time.monotonic() - counted >= TOTAL_EVERY:
                    counted = time.monotonic()
                    await _read_total(bot, syncer, health)
            except SyncBusy as exc:
                log.info("sync: %s", exc)
                wait = 5.0
            except SyncConfigError as exc:
                health["sync_error"] = str(exc)
                log.error("sync is off: %s", exc)
                return
            except Exception as exc:  # never let the worker die: say so and try later
                failures += 1
                health["sync_error"] = f"sync failed: {exc}"
                log.exception("sync: a pass failed")
                wait = PASS_BACKOFF.delay(failures)
            await asyncio.sleep(wait)
    finally:
        await syncer.close()


async def _read_total(bot: Any, syncer: Syncer, health: dict[str, Any]) -> None:
    """Read the central store's total (other bots' signatures too) for the thank-yous."""
    total = await syncer.total(bot.campaign.id)
    if total is not None:
        await bot.engine.tally.set_central(total)
        health["central_total"] = total


def _after_pass(report: PassReport, health: dict[str, Any], failures: int) -> float:
    """Record a pass in `health` and the log; returns how long to wait before the next."""
    if report.busy or report.error:
        health["sync_last_pass"] = {
            "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **{o.value: n for o, n in report.counts.items() if n},
        }
    if report.busy:
        log.info("sync: %s", report.summary())
    for _, sid, note in report.notes:
        log.warning("sync: signature %s: %s", sid, note)
    if report.error:
        if health.get("sync_error") != report.error:
            log.warning("sync: %s", report.error)
        health["sync_error"] = report.error
        wait = PASS_BACKOFF.delay(failures + 1)
        return max(wait, report.retry_after or 0.0)
    health["sync_error"] = None
    return IDLE_POLL


# --- the `sync` command -------------------------------------------------------------------

class _Progress:
    """A rich progress bar on stderr, started only when there is much to send."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < PROGRESS_MIN:
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            console = Console(stderr=True)
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                                transient=console.is_terminal)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, completed=min(done, total))

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _print_report(report: PassReport, out: Any = None, *, stamp: bool = False) -> None:
    out = out or sys.stdout
    prefix = time.strftime("%H:%M:%S ") if stamp else ""
    print(f"{prefix}{report.summary()}", file=out)
    shown = 0
    for outcome, sid, note in report.notes:
        if shown == 10:
            print(f"  … and {len(report.notes) - shown} more (see /healthz and the bot's log)",
                  file=out)
            break
        label = "parked " if outcome is Outcome.PARKED else ""
        print(f"  {label}{sid}: {note}", file=out)
        shown += 1
    out.flush()


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


async def run_command(bot: Any, args: argparse.Namespace) -> int:
    """`sync --once`: one pass over every pending signature; `sync`: keep going until Ctrl-C.

    Exit 0 when everything went, 1 when the store could not be reached or some signature
    failed or was parked in this pass, 2 when the settings cannot work.
    """
    try:
        backend = open_backend(bot.settings, bot.store)
    except SyncConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    syncer = Syncer(bot.store, backend)
    print(f"sync to {backend.label}", file=sys.stderr)
    try:
        if args.once:
            return await _once(syncer)
        return await _forever(syncer)
    except SyncConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except SyncBusy as exc:
        _error(str(exc))
        return 1
    finally:
        await syncer.close()


async def _once(syncer: Syncer) -> int:
    bar = _Progress("sync")
    deadline = time.monotonic() + BUSY_WAIT
    try:
        while True:
            try:
                report = await syncer.run_pass(everything=True, progress=bar)
                break
            except SyncBusy:  # `serve` is in the middle of a pass: it is short, wait for it
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        bar.stop()
    if report.busy or not report.error:
        _print_report(report)
    if report.error:
        _error(report.error)
        return 1
    failed, parked = report.counts[Outcome.FAILED], report.counts[Outcome.PARKED]
    if failed:
        _error(f"{failed} signature(s) failed; they are tried again at the next sync")
    if parked:
        _error(f"{parked} signature(s) refused by the store and parked (reasons above, and "
               "outbox.parked in /healthz); they are not retried")
    return 1 if failed or parked else 0


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _forever(syncer: Syncer) -> int:
    """Pass after pass until Ctrl-C (or SIGTERM): the first stops after the current batch,
    a second one at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    current: asyncio.Task[PassReport] | None = None

    def interrupt() -> None:
        if stop.is_set() and current is not None:
            current.cancel()
        stop.set()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupt)
            handled.append(sig)
    failures = 0
    quiet_error: str | None = None  # said once, not at every retry
    busy_said = False
    try:
        while not stop.is_set():
            wait = IDLE_POLL
            due = await outbox.next_due(syncer.store)
            if due is not None and due <= outbox.now_utc():
                current = asyncio.create_task(syncer.run_pass(stop=stop))
                try:
                    report = await current
                except asyncio.CancelledError:
                    break
                except SyncBusy as exc:
                    if not busy_said:
                        print(f"{exc} (will try again)", file=sys.stderr)
                        busy_said = True
                    await _pause(stop, 5.0)
                    continue
                finally:
                    current = None
                busy_said = False
                if report.busy:
                    _print_report(report, stamp=True)
                if report.error:
                    failures += 1
                    if report.error != quiet_error:
                        _error(f"{report.error} (will try again)")
                        quiet_error = report.error
                    wait = max(PASS_BACKOFF.delay(failures), report.retry_after or 0.0)
                else:
                    if quiet_error:
                        print(time.strftime("%H:%M:%S ") + "the central store is back",
                              file=sys.stderr)
                    failures, quiet_error = 0, None
                    if report.busy:
                        wait = 0
            await _pause(stop, wait)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    print("sync stopped", file=sys.stderr)
    return 0
