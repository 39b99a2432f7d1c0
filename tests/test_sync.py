"""Syncing to the SQL central stores: real SQLite files and the real PostgreSQL server.

The scenarios run against both stores; PostgreSQL-only cases (several bots on one store,
100,000 rows, an outage in the middle of a pass) follow; then the `sync` command as a
process, and the worker inside a real `serve` fed by signed SMS webhooks.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.store import Store, StoreError
from bot.sync import outbox
from bot.sync.base import Backend, Outcome
from bot.sync.sql import PostgresBackend, SqliteBackend
from bot.sync.worker import Syncer
from tests.harness import ROOT, BotProcess, Twilio, new_number, sms_env, wait_for
from tests.standins.tcp_proxy import TcpProxy
from tests.sync_support import (
    PG_HOST,
    PG_PORT,
    Central,
    PgSchemas,
    erase,
    fill_bot_db,
    in_thread,
    opt_out,
    pg_user,
    sign,
    write_turn,
)

NOTHING = {o: 0 for o in Outcome}


def counts(**named: int) -> dict[Outcome, int]:
    """`counts(pushed=2, present=1)` → the full count table of a pass."""
    names = {"pushed": Outcome.PUSHED, "present": Outcome.PRESENT, "erased": Outcome.ERASED,
             "failed": Outcome.FAILED, "parked": Outcome.PARKED, "skipped": Outcome.SKIPPED,
             "cannot_erase": Outcome.CANNOT_ERASE}
    return {**NOTHING, **{names[k]: v for k, v in named.items()}}


@pytest.fixture(scope="module")
def pg() -> Iterator[PgSchemas]:
    schemas = PgSchemas(pg_user())
    yield schemas
    schemas.drop_all()


@dataclass
class Target:
    """One central store under test."""

    kind: str
    url: str
    central: Central
    path: Path | None = None

    def backend(self) -> Backend:
        return SqliteBackend(self.path) if self.path else PostgresBackend(self.url)


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        path = tmp_path / "central.sqlite3"
        return Target("sqlite", f"sqlite:///{path}", Central("", path), path)
    pg: PgSchemas = request.getfixturevalue("pg")
    url = pg.url(pg.new())
    return Target("postgres", url, Central(url))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "bot.sqlite3") as s:
        yield s


async def sync_pass(store: Store, target: Target, **kw: Any) -> dict[Outcome, int]:
    syncer = Syncer(store, target.backend())
    try:
        report = await syncer.run_pass(**kw)
    finally:
        await syncer.close()
    assert report.error is None, report.error
    return report.counts


def phone(i: int) -> str:
    return f"+1416555{i:04d}"


# --- scenarios on every SQL store ------------------------------------------------------------

async def sync_twice(store: Store, target: Target) -> None:
    sids = [await sign(store, phone(i), f"Ana Cruz {i}", opted_in=bool(i % 2)) for i in range(5)]
    await sign(store, "telegram:42", "Kai Tan", region=None, opted_in=False)
    assert await sync_pass(store, target) == counts(pushed=6)
    assert await sync_pass(store, target) == NOTHING
    rows = await target.central.rows()
    assert set(rows) >= set(sids) and len(rows) == 6
    row = rows[sids[1]]
    assert (row["campaign"], row["full_name"], row["region"], row["channel"], row["language"],
            bool(row["opted_in_updates"]), row["contact"]) == (
        "test-campaign", "Ana Cruz 1", "ON", "sms", "en", True, phone(1))
    signed_at = row["signed_at"]
    text = signed_at if isinstance(signed_at, str) else signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert text.endswith("Z") and len(text) == 20
    tg = next(r for r in rows.values() if r["contact"] == "telegram:42")
    assert tg["region"] is None and tg["channel"] == "telegram"
    assert (await store.outbox_counts())["pending"] == 0


async def resent_is_already_present(store: Store, target: Target) -> None:
    for i in range(4):
        await sign(store, phone(i))
    await sync_pass(store, target)
    await store.write(lambda c: c.execute("UPDATE outbox SET status = 'pending'"))
    assert await sync_pass(store, target) == counts(present=4)
    assert await target.central.count() == 4


async def crash_between_commit_and_mark(store: Store, target: Target) -> None:
    for i in range(7):
        await sign(store, phone(i))
    backend = target.backend()
    await backend.open()
    jobs, _ = await outbox.next_jobs(store, 0, 100, due_by=None)
    await backend.push(jobs)  # the store committed; the bot "dies" before marking the rows
    await backend.close()
    assert (await store.outbox_counts())["pending"] == 14
    assert await sync_pass(store, target) == counts(present=7)
    assert await target.central.count() == 7
    assert (await store.outbox_counts())["pending"] == 0


async def coalesce_one_signature(store: Store, target: Target) -> None:
    sid = await sign(store, phone(1), opted_in=True)
    await opt_out(store, phone(1))
    await write_turn(store, phone(1), *[])  # a turn with no effect queues nothing
    assert (await store.outbox_counts())["pending"] == 3
    assert await sync_pass(store, target) == counts(pushed=1)
    assert bool((await target.central.rows())[sid]["opted_in_updates"]) is False
    assert (await store.outbox_counts()) == {"pending": 0, "parked": 0, "done": 3}


async def opt_out_propagates(store: Store, target: Target) -> None:
    sid = await sign(store, phone(1), opted_in=True)
    other = await sign(store, phone(2), opted_in=True)
    await sync_pass(store, target)
    await opt_out(store, phone(1))
    assert await sync_pass(store, target) == counts(pushed=1)
    rows = await target.central.rows()
    assert bool(rows[sid]["opted_in_updates"]) is False
    assert bool(rows[other]["opted_in_updates"]) is True


async def erasure_propagates(store: Store, target: Target) -> None:
    sid = await sign(store, phone(1), "Zoe Erasable")
    keep = await sign(store, phone(2))
    await sync_pass(store, target)
    await erase(store, phone(1))
    assert await sync_pass(store, target) == counts(erased=1)
    assert set(await target.central.rows()) == {keep}
    again = await sign(store, phone(1), "Zoe Again")  # signing again is a new signature
    assert again != sid
    assert await sync_pass(store, target) == counts(pushed=1)
    assert set(await target.central.rows()) == {keep, again}


async def erased_before_first_push(store: Store, target: Target) -> None:
    await sign(store, phone(1))
    await erase(store, phone(1))
    assert await sync_pass(store, target) == counts(erased=1)
    assert await target.central.count() == 0


async def refused_row_is_parked(store: Store, target: Target) -> None:
    """A DBA's constraint refuses one row: the others go, it is parked with the reason."""
    ddl = ("CREATE TABLE signatures (signature_id TEXT PRIMARY KEY, campaign TEXT, "
           "full_name TEXT CHECK (length(full_name) < 20), region TEXT, channel TEXT, "
           "language TEXT, opted_in_updates BOOLEAN, signed_at TEXT, contact TEXT)")
    await run_ddl(target, ddl)
    await sign(store, phone(1), "Ana Cruz")
    await sign(store, phone(2), "A Name Far Too Long For The Column")
    await sign(store, phone(3), "Kai Tan")
    assert await sync_pass(store, target) == counts(pushed=2, parked=1)
    row = await store.fetchone("SELECT last_error FROM outbox WHERE status = 'parked'")
    assert row is not None and "check constraint" in row[0].lower()
    assert await sync_pass(store, target) == NOTHING  # parked is not retried
    assert await sync_pass(store, target, everything=True) == NOTHING
    assert await target.central.count() == 2


async def older_table_is_migrated(store: Store, target: Target) -> None:
    await run_ddl(target, "CREATE TABLE signatures (signature_id TEXT PRIMARY KEY, "
                          "campaign TEXT, full_name TEXT)")
    sid = await sign(store, phone(1), region="QC")
    assert await sync_pass(store, target) == counts(pushed=1)
    row = (await target.central.rows())[sid]
    assert (row["region"], row["contact"], bool(row["opted_in_updates"])) == ("QC", phone(1), True)


async def total_is_the_campaigns_count(store: Store, target: Target) -> None:
    for i in range(3):
        await sign(store, phone(i))
    await sync_pass(store, target)
    syncer = Syncer(store, target.backend())
    try:
        assert await syncer.total("test-campaign") == 3
        assert await syncer.total("another-campaign") == 0
        await erase(store, phone(0))
        await syncer.run_pass()
        assert await syncer.total("test-campaign") == 2
    finally:
        await syncer.close()


async def run_ddl(target: Target, ddl: str) -> None:
    if target.path is not None:
        with sqlite3.connect(target.path) as conn:
            conn.execute(ddl)
        return
    import asyncpg

    conn = await asyncpg.connect(target.url)
    try:
        await conn.execute(ddl.replace("TEXT,", "text,").replace("BOOLEAN", "boolean"))
    finally:
        await conn.close()


SCENARIOS = [
    pytest.param(sync_twice, id="sync-twice-pushes-once"),
    pytest.param(resent_is_already_present, id="resent-is-already-present"),
    pytest.param(crash_between_commit_and_mark, id="crash-between-store-commit-and-mark"),
    pytest.param(coalesce_one_signature, id="several-rows-one-push"),
    pytest.param(opt_out_propagates, id="opt-out-propagates"),
    pytest.param(erasure_propagates, id="erasure-propagates"),
    pytest.param(erased_before_first_push, id="erased-before-first-push"),
    pytest.param(refused_row_is_parked, id="refused-row-parked"),
    pytest.param(older_table_is_migrated, id="older-table-migrated"),
    pytest.param(total_is_the_campaigns_count, id="total-is-the-campaigns-count"),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_sql_store(scenario: Callable[[Store, Target], Awaitable[None]], store: Store,
                         target: Target) -> None:
    await scenario(store, target)


# --- outages ---------------------------------------------------------------------------------

@pytest.mark.postgres
async def test_outage_in_the_middle_of_a_pass_loses_nothing(pg: PgSchemas, tmp_path: Path) -> None:
    schema = pg.new()
    fill_bot_db(tmp_path / "bot.sqlite3", 300)
    proxy = TcpProxy((PG_HOST, PG_PORT)).start()
    try:
        async with Store(tmp_path / "bot.sqlite3") as store:
            syncer = Syncer(store, PostgresBackend(pg.url(schema, proxy.port)), batch_size=100)
            batches = []

            def cut_after_first_batch(done: int, total: int) -> None:
                batches.append(done)
                if len(batches) == 1:
                    proxy.cut()

            report = await syncer.run_pass(progress=cut_after_first_batch)
            assert report.error and "CENTRAL_STORE_URL" in report.error
            assert report.counts == counts(pushed=100, failed=100)
            assert await Central(pg.url(schema)).count() == 100
            assert (await store.outbox_counts())["pending"] == 200
            failed = await store.fetchone(
                "SELECT count(*), max(attempts), min(last_error) FROM outbox "
                "WHERE status = 'pending' AND attempts > 0")
            assert failed[0] == 100 and failed[1] == 1 and failed[2]

            proxy.restore()
            report = await syncer.run_pass()
            assert report.error is None
            assert report.counts == counts(pushed=200)
            await syncer.close()
            assert await Central(pg.url(schema)).count() == 300
            assert (await store.outbox_counts())["pending"] == 0
    finally:
        proxy.stop()


UNREACHABLE = [
    pytest.param("postgresql://127.0.0.1:1/x", id="postgres-refused"),
    pytest.param("sqlite:///{tmp}/a-file/central.sqlite3", id="sqlite-unusable-folder"),
]


@pytest.mark.parametrize("url", UNREACHABLE)
async def test_unreachable_store_changes_nothing(url: str, store: Store, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    url = url.format(tmp=tmp_path)
    await sign(store, phone(1))
    backend = (PostgresBackend(url) if url.startswith("postgresql")
               else SqliteBackend(Path(url.removeprefix("sqlite:///"))))
    syncer = Syncer(store, backend)
    report = await syncer.run_pass()
    assert report.error and "check CENTRAL_STORE_URL" in report.error
    assert report.counts == NOTHING
    assert (await store.outbox_counts())["pending"] == 2
    again = await syncer.run_pass()  # the lease was released: a later pass may run
    assert again.error


# --- PostgreSQL: many bots, many rows ---------------------------------------------------------

@pytest.mark.postgres
async def test_several_bots_feed_one_postgres_store(pg: PgSchemas, tmp_path: Path) -> None:
    url = pg.url(pg.new())
    fill_bot_db(tmp_path / "a.sqlite3", 3000, start=0)
    fill_bot_db(tmp_path / "b.sqlite3", 2000, start=10_000)
    async with Store(tmp_path / "a.sqlite3") as a, Store(tmp_path / "b.sqlite3") as b:
        first = await asyncio.gather(sync_pass(a, Target("pg", url, Central(url))),
                                     sync_pass(b, Target("pg", url, Central(url))))
        assert [c[Outcome.PUSHED] for c in first] == [3000, 2000]
        await erase(b, "+14160010000")
        await a.write(lambda c: c.execute("UPDATE outbox SET status = 'pending'"))
        second = await asyncio.gather(sync_pass(a, Target("pg", url, Central(url))),
                                      sync_pass(b, Target("pg", url, Central(url))))
        assert second == [counts(present=3000), counts(erased=1)]
    rows = await Central(url).rows()
    assert len(rows) == 4999
    assert len({r["contact"] for r in rows.values()}) == 4999


@pytest.mark.postgres
async def test_a_hundred_thousand_rows_drain_in_seconds(pg: PgSchemas, tmp_path: Path) -> None:
    url = pg.url(pg.new())
    fill_bot_db(tmp_path / "bot.sqlite3", 100_000)
    async with Store(tmp_path / "bot.sqlite3") as store:
        started = time.monotonic()
        assert await sync_pass(store, Target("pg", url, Central(url))) == counts(pushed=100_000)
        elapsed = time.monotonic() - started
        assert (await store.outbox_counts())["pending"] == 0
    assert await Central(url).count() == 100_000
    assert elapsed < 20, f"100,000 rows took {elapsed:.1f} s"


# --- the `sync` command -------------------------------------------------------------------------

def run_sync(workdir: Path, url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "sync", *args],
        cwd=workdir, capture_output=True, text=True, timeout=60,
        env={**os.environ, "BOT_DB": str(workdir / "bot.sqlite3"), "CENTRAL_STORE_URL": url,
             "CI": os.environ.get("CI", ""), **env},
    )


SUMMARY = "pushed {}, already present {}, erased {}, failed {}, parked {}"

CLI_CASES = [
    # (label, url, rows in the bot, environment, exit code, stdout has, stderr has)
    pytest.param("sqlite:///central.sqlite3", 3, {}, 0, SUMMARY.format(3, 0, 0, 0, 0), "SQLite",
                 id="sqlite-pushes"),
    pytest.param("sqlite:///central.sqlite3", 0, {}, 0, SUMMARY.format(0, 0, 0, 0, 0), "",
                 id="nothing-pending"),
    pytest.param("postgresql://127.0.0.1:1/x", 3, {}, 1, "", "check CENTRAL_STORE_URL",
                 id="postgres-unreachable"),
    pytest.param("http://127.0.0.1:9/api/v2/petitions/p", 1, {}, 2, "", "CENTRAL_STORE_API_KEY",
                 id="osdi-without-key"),
    pytest.param("http://127.0.0.1:9/api/v2/petitions/p", 1,
                 {"CENTRAL_STORE_API_KEY": "k"}, 1, "", "cannot reach", id="osdi-unreachable"),
    pytest.param("sqlite:///central.sqlite3", 600, {}, 0, SUMMARY.format(600, 0, 0, 0, 0),
                 "600/600", id="progress-bar-for-many"),
]


@pytest.mark.parametrize("url,rows,env,code,out,err", CLI_CASES)
def test_sync_once_command(tmp_path: Path, url: str, rows: int, env: dict[str, str], code: int,
                           out: str, err: str) -> None:
    fill_bot_db(tmp_path / "bot.sqlite3", rows)
    result = run_sync(tmp_path, url, "--once", **env)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert out in result.stdout
    assert err in result.stderr
    assert "Traceback" not in result.stderr
    if code:
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and len(errors[0]) < 300, result.stderr
        assert (tmp_path / "bot.sqlite3").exists()
        with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
            assert conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'"
                                ).fetchone()[0] == rows
    if rows and code == 0:
        again = run_sync(tmp_path, url, "--once")
        assert SUMMARY.format(0, 0, 0, 0, 0) in again.stdout
        assert len(central_ids(tmp_path / "central.sqlite3")) == rows


def central_ids(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT signature_id FROM signatures"))


@pytest.mark.postgres
def test_sync_killed_mid_pass_resumes_without_duplicates(pg: PgSchemas, tmp_path: Path) -> None:
    url = pg.url(pg.new())
    fill_bot_db(tmp_path / "bot.sqlite3", 40_000)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_bot.py"), "sync", "--once"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "BOT_DB": str(tmp_path / "bot.sqlite3"), "CENTRAL_STORE_URL": url})
    central = Central(url)

    def stored() -> int:
        try:
            return in_thread(central.count())
        except Exception:  # the table is not there yet
            return 0

    deadline = time.monotonic() + 30
    while stored() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()  # somewhere between a commit in the store and the marks in the bot
    proc.communicate()
    assert 0 < stored() < 40_000, "the process was killed in the middle of the pass"
    result = run_sync(tmp_path, url, "--once")  # takes over the dead process's lease at once
    assert result.returncode == 0, result.stderr
    assert stored() == 40_000
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM outbox WHERE status != 'done'"
                            ).fetchone()[0] == 0


def test_sync_keeps_going_until_interrupted(tmp_path: Path) -> None:
    fill_bot_db(tmp_path / "bot.sqlite3", 3)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_bot.py"), "sync"], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "BOT_DB": str(tmp_path / "bot.sqlite3"),
             "CENTRAL_STORE_URL": "sqlite:///central.sqlite3", "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        assert "pushed 3," in proc.stdout.readline()
        fill_bot_db(tmp_path / "bot.sqlite3", 2, start=100)  # new signatures while it runs
        assert "pushed 2," in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "sync stopped" in err and "Traceback" not in err
    assert len(central_ids(tmp_path / "central.sqlite3")) == 5


# --- the worker inside `serve` ----------------------------------------------------------------

def sign_up(twilio: Twilio, number: str, name: str, updates: str = "1") -> None:
    for line in ("hi", "1", "SIGN", name, "ON", "1", updates):
        twilio.send(number, line)


def test_serve_worker_drains_what_sms_webhooks_signed(tmp_path: Path) -> None:
    bot = BotProcess(tmp_path, sms_env()).start()
    central = tmp_path / "central.sqlite3"

    def health() -> dict[str, Any]:
        return dict(httpx.get(f"{bot.url}/healthz", timeout=5).json())

    def store_rows() -> dict[str, tuple[Any, ...]]:
        if not central.exists():
            return {}
        with sqlite3.connect(central) as conn:
            try:
                return {r[0]: r for r in conn.execute(
                    "SELECT contact, full_name, opted_in_updates FROM signatures")}
            except sqlite3.OperationalError:
                return {}

    try:
        with Twilio(bot) as twilio:
            one, two = new_number(), new_number()
            sign_up(twilio, one, "Mary Smith")
            sign_up(twilio, two, "Jose Santos")
            wait_for(lambda: health()["outbox"]["pending"] == 0 and len(store_rows()) == 2)
            assert store_rows()[one] == (one, "Mary Smith", 1)
            status = health()
            assert status["sync"]["last_error"] is None and status["status"] == "ok"
            assert "SQLite" in status["sync"]["backend"]

            twilio.send(one, "STOP")  # withdraws consent to updates: reaches the store
            wait_for(lambda: store_rows().get(one, (0, 0, 1))[2] == 0)
            twilio.send(two, "DELETE")
            twilio.send(two, "1")
            wait_for(lambda: two not in store_rows())
            assert health()["outbox"] == {"pending": 0, "parked": 0, "parked_reasons": []}
            # A restart keeps going from where it was.
            bot.stop()
            with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
                conn.execute("UPDATE outbox SET status = 'pending'")  # as if never marked
            bot.start()
            wait_for(lambda: health()["outbox"]["pending"] == 0)
            assert set(store_rows()) == {one}
            assert json.dumps(health()["sync"]["last_pass"]).count("already present") == 1
    finally:
        bot.stop()


# --- one sync at a time per bot database ------------------------------------------------------

@pytest.mark.parametrize("target", [pytest.param("sqlite", id="sqlite")], indirect=True)
async def test_tally_adds_what_the_central_store_does_not_hold_yet(store: Store,
                                                                   target: Target) -> None:
    """The central total read, plus this bot's signatures not in it: one not synced yet, one
    signed since; never one of ours twice."""
    from bot.engine import Tally

    for i in range(2):
        await sign(store, phone(i))
    await sync_pass(store, target)
    await sign(store, phone(2))  # not synced yet
    tally = Tally(store, "test-campaign")
    assert await tally.signature_count() == 3  # no total read yet: our own
    await tally.set_central(10)  # other bots' 8, and our 2 synced
    assert await tally.signature_count() == 11
    await sign(store, phone(3))
    assert await tally.signature_count() == 12
    await sync_pass(store, target)
    await tally.set_central(12)
    assert await tally.signature_count() == 12


def test_thanks_count_every_bot_on_the_central_store(tmp_path: Path) -> None:
    """Two bots (their own numbers and databases) feed one central store: a thank-you counts
    the campaign's signatures from both, not only the bot's own."""
    central = tmp_path / "central.sqlite3"
    env = sms_env(CENTRAL_STORE_URL=f"sqlite:///{central}")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = BotProcess(tmp_path / "a", env).start(), BotProcess(tmp_path / "b", env)

    def central_total(bot: BotProcess) -> Any:
        return httpx.get(f"{bot.url}/healthz", timeout=5).json()["sync"]["central_total"]

    try:
        with Twilio(first) as twilio:
            for name in ("Mary Smith", "Jose Santos"):
                sign_up(twilio, new_number(), name)
            wait_for(lambda: central_total(first) == 2)
        second.start()
        with Twilio(second) as twilio:
            sign_up(twilio, new_number(), "Ana Cruz")
            wait_for(lambda: central_total(second) == 3)
            phone = new_number()
            for line in ("hi", "1", "SIGN", "Kai Tan", "ON", "1"):
                twilio.send(phone, line)
            (thanks,) = twilio.send(phone, "1")
        assert "4 of 20,000" in thanks, thanks
    finally:
        first.stop()
        second.stop()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


LEASES = [
    # (holder's host, holder's pid, expires in seconds, may another sync take over)
    pytest.param("here", "alive", 60, False, id="live-sync-on-this-host-waits"),
    pytest.param("here", "dead", 60, True, id="dead-sync-on-this-host-taken-over-at-once"),
    pytest.param("elsewhere", "alive", 60, False, id="sync-on-another-host-waits"),
    pytest.param("elsewhere", "alive", -1, True, id="expired-lease-taken-over"),
]


@pytest.mark.parametrize("host,pid,expires,taken", LEASES)
async def test_lease_lets_one_sync_drain_at_a_time(store: Store, tmp_path: Path, host: str,
                                                   pid: str, expires: int, taken: bool) -> None:
    import socket
    from datetime import timedelta

    await sign(store, phone(1))
    holder_host = socket.gethostname() if host == "here" else "another-host"
    holder_pid = dead_pid() if pid == "dead" else os.getpid()
    until = outbox.stamp(outbox.now_utc() + timedelta(seconds=expires))
    await store.write(lambda c: c.execute(
        "INSERT INTO sync_lease (name, owner, host, pid, expires_at) VALUES "
        "('outbox', 'someone-else', ?, ?, ?)", (holder_host, holder_pid, until)))
    syncer = Syncer(store, SqliteBackend(tmp_path / "central.sqlite3"))
    try:
        if taken:
            assert (await syncer.run_pass()).counts == counts(pushed=1)
            assert await store.fetchall("SELECT * FROM sync_lease") == []  # released
        else:
            with pytest.raises(outbox.SyncBusy, match="another sync is draining"):
                await syncer.run_pass()
            assert (await store.outbox_counts())["pending"] == 2
    finally:
        await syncer.close()


def test_sync_once_exits_1_when_a_signature_is_parked(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "central.sqlite3") as conn:
        conn.execute("CREATE TABLE signatures (signature_id TEXT PRIMARY KEY, campaign TEXT, "
                     "full_name TEXT CHECK (full_name NOT LIKE '%7'), region TEXT, channel TEXT, "
                     "language TEXT, opted_in_updates BOOLEAN, signed_at TEXT, contact TEXT)")
    sids = fill_bot_db(tmp_path / "bot.sqlite3", 10)
    result = run_sync(tmp_path, "sqlite:///central.sqlite3", "--once")
    assert result.returncode == 1
    assert SUMMARY.format(9, 0, 0, 0, 1) in result.stdout
    assert f"parked {sids[7]}: the store refused it: CHECK constraint failed" in result.stdout
    assert "refused by the store and parked" in result.stderr
    again = run_sync(tmp_path, "sqlite:///central.sqlite3", "--once")
    assert again.returncode == 0 and SUMMARY.format(0, 0, 0, 0, 0) in again.stdout


# --- the bulk lane: a batch of plain upserts in columns, COPY straight in ---------------------

AWKWARD_NAMES = ["Tab\tIn Name", "Line\nBreak", "Back\\slash", "\\N", "Carriage\rReturn",
                 "Zoë Ñúñez 王", "  spaced  "]


async def awkward_values_arrive_intact(store: Store, target: Target) -> None:
    """COPY text needs escapes for a tab, a line break or a backslash: none may be lost."""
    sids: dict[str, str] = {}
    for i, name in enumerate(AWKWARD_NAMES):
        sids[await sign(store, phone(i), name, region="ON" if i % 2 else None)] = name
    empty = await sign(store, phone(99), "Empty Region", region="")
    assert await sync_pass(store, target) == counts(pushed=len(AWKWARD_NAMES) + 1)
    rows = await target.central.rows()
    assert {sid: rows[sid]["full_name"] for sid in sids} == sids
    assert [rows[sid]["region"] for sid in sids] == [("ON" if i % 2 else None)
                                                      for i in range(len(AWKWARD_NAMES))]
    assert rows[empty]["region"] is None


async def rows_on_both_sides_of_a_batch_edge(store: Store, target: Target) -> None:
    """Batches of 2 rows: a signature's later row is read again before its first batch is
    marked; it is pushed once all the same, and every row is marked."""
    await sign(store, phone(1))  # rows 1, 2
    await sign(store, phone(2))  # rows 3, 4
    await opt_out(store, phone(1))  # row 5, the same signature as rows 1 and 2
    await sign(store, phone(3))  # rows 6, 7
    syncer = Syncer(store, target.backend(), batch_size=2)
    try:
        report = await syncer.run_pass()
    finally:
        await syncer.close()
    assert report.error is None
    assert report.counts == counts(pushed=3)
    assert await store.outbox_counts() == {"pending": 0, "parked": 0, "done": 7}
    assert [bool(r["opted_in_updates"]) for r in sorted(
        (await target.central.rows()).values(), key=lambda r: r["contact"])] == [False, True, True]


async def some_there_some_new(store: Store, target: Target) -> None:
    """A batch mixing new signatures with ones the store holds (a lost mark, an opt-out):
    the straight COPY is refused, the staging upsert sorts them out."""
    lost = await sign(store, phone(1))
    await sign(store, phone(2), opted_in=True)
    assert await sync_pass(store, target) == counts(pushed=2)
    await store.write(lambda c: c.execute(
        "UPDATE outbox SET status = 'pending' WHERE signature_id = ?", (lost,)))
    await opt_out(store, phone(2))
    new = [await sign(store, phone(i)) for i in (3, 4)]
    assert await sync_pass(store, target) == counts(pushed=3, present=1)
    rows = await target.central.rows()
    assert len(rows) == 4 and set(new) <= set(rows)
    assert not rows[next(s for s, r in rows.items() if r["contact"] == phone(2))][
        "opted_in_updates"]
    assert (await store.outbox_counts())["pending"] == 0


BULK_SCENARIOS = [
    pytest.param(awkward_values_arrive_intact, id="tabs-breaks-backslashes-intact"),
    pytest.param(rows_on_both_sides_of_a_batch_edge, id="batch-edge-pushes-once"),
    pytest.param(some_there_some_new, id="mixed-new-and-present"),
]


@pytest.mark.parametrize("scenario", BULK_SCENARIOS)
async def test_sql_store_bulk_lane(scenario: Callable[[Store, Target], Awaitable[None]],
                                   store: Store, target: Target) -> None:
    await scenario(store, target)


async def test_a_failed_read_ends_the_pass_and_frees_the_lease(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batches are read ahead, in a thread: a read that fails stops the pass with the
    store's error (no hang), what was pushed is marked, and the lease is let go."""
    fill_bot_db(store.path, 30)
    real = outbox.OutboxReader._query
    reads = []

    def failing(self: outbox.OutboxReader, *args: Any) -> Any:
        reads.append(args)
        if len(reads) > 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, *args)

    monkeypatch.setattr(outbox.OutboxReader, "_query", failing)
    syncer = Syncer(store, SqliteBackend(tmp_path / "central.sqlite3"), batch_size=10)
    try:
        with pytest.raises(StoreError, match="disk I/O error"):
            await syncer.run_pass()
    finally:
        await syncer.close()
    counts_now = await store.outbox_counts()
    assert counts_now["done"] == len(central_ids(tmp_path / "central.sqlite3")) > 0
    assert counts_now["pending"] == 30 - counts_now["done"]
    assert await store.fetchall("SELECT * FROM sync_lease") == []
