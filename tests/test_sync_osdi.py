"""Syncing to an OSDI petition (Action Network style) through a local stand-in over HTTP.

The stand-in runs once per module and is reset for each test; it records every request,
so the tests check what went over the wire as well as what the bot concluded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.pacing import TokenBucket
from bot.store import Store
from bot.sync import outbox
from bot.sync.base import Outcome, PassReport
from bot.sync.osdi import RATE, OsdiBackend, signature_body, split_name
from bot.sync.worker import Syncer
from flows.types import SetUpdates
from tests.harness import BotProcess, Twilio, new_number, sms_env, wait_for
from tests.standins.osdi_api import Misbehave, OsdiAPI
from tests.sync_support import erase, opt_out, sign, write_turn

NOTHING = {o: 0 for o in Outcome}


def counts(**named: int) -> dict[Outcome, int]:
    names = {"pushed": Outcome.PUSHED, "present": Outcome.PRESENT, "erased": Outcome.ERASED,
             "failed": Outcome.FAILED, "parked": Outcome.PARKED,
             "cannot_erase": Outcome.CANNOT_ERASE}
    return {**NOTHING, **{names[k]: v for k, v in named.items()}}


@pytest.fixture(scope="module")
def api() -> Iterator[OsdiAPI]:
    server = OsdiAPI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh(api: OsdiAPI) -> None:
    api.reset()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "bot.sqlite3") as s:
        yield s


async def sync_pass(store: Store, api: OsdiAPI, *, key: str | None = None, url: str | None = None,
                    rate: float = 200.0, everything: bool = True) -> PassReport:
    backend = OsdiBackend(url or api.url, key or api.api_key, store, rate=rate, timeout=0.5)
    syncer = Syncer(store, backend)
    try:
        return await syncer.run_pass(everything=everything)
    finally:
        await syncer.close()


def phone(i: int) -> str:
    return f"+1416555{i:04d}"


def keys_in(value: Any) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


# --- what goes over the wire -----------------------------------------------------------------

async def test_a_signature_is_posted_as_action_network_expects(api: OsdiAPI, store: Store) -> None:
    sid = await sign(store, phone(1), "Mary Ann Smith", region="QC", opted_in=True,
                     language="fr")
    await sign(store, "telegram:77", "Kai", region=None, opted_in=True)
    await sign(store, "whatsapp:+14165550199", "Jose Santos", region="BC", opted_in=False)
    report = await sync_pass(store, api)
    assert report.counts == counts(pushed=3) and report.error is None
    bodies = {r.body["person"]["custom_fields"]["signature_id"]: r for r in api.posts()}
    first = bodies[sid]
    assert first.path == "/api/v2/petitions/petition-1/signatures"
    assert first.headers["osdi-api-token"] == api.api_key
    assert first.body == {
        "person": {
            "given_name": "Mary Ann",
            "family_name": "Smith",
            "phone_numbers": [{"number": phone(1), "number_type": "Mobile"}],
            "postal_addresses": [{"region": "QC", "country": "CA"}],
            "languages_spoken": ["fr"],
            "custom_fields": {"language": "fr", "signature_id": sid, "channel": "sms",
                              "opted_in_updates": "true"},
        },
        "action_network:referrer_data": {"source": "sms"},
    }
    others = [r.body for r in bodies.values() if r is not first]
    for body in others:  # telegram has no number; no consent, no number
        assert "phone_numbers" not in body["person"]
    assert {b["action_network:referrer_data"]["source"] for b in others} == {"telegram",
                                                                              "whatsapp"}
    assert all("status" not in keys_in(r.body) for r in api.requests)


NAMES = [
    pytest.param("Ana Cruz", ("Ana", "Cruz"), id="two-words"),
    pytest.param("Mary Ann Smith", ("Mary Ann", "Smith"), id="three-words"),
    pytest.param("Cher", ("Cher", ""), id="one-word"),
    pytest.param("  María   López ", ("María", "López"), id="spaces"),
]


@pytest.mark.parametrize("full,expected", NAMES)
def test_names_are_split_into_given_and_family(full: str, expected: tuple[str, str]) -> None:
    assert split_name(full) == expected


# --- the store misbehaving, then coming back ---------------------------------------------------

FAILURES = [
    # (what the store does first, what the first pass reports, error of the pass)
    pytest.param([Misbehave(500, '{"error": "Server error"}')], counts(failed=1), "answered 500",
                 id="server-error-500"),
    pytest.param([Misbehave(503)], counts(failed=1), "answered 503", id="unavailable-503"),
    pytest.param([Misbehave(0, delay=1.0)], counts(failed=1), "did not answer",
                 id="timeout-after-the-store-recorded-it"),
    pytest.param([Misbehave(429, '{"error": "slow down"}', retry_after="0")], counts(failed=1),
                 "rate-limiting", id="rate-limited-429"),
    pytest.param([Misbehave(200)], counts(pushed=1, failed=1), None, id="empty-200-is-a-failure"),
]


@pytest.mark.parametrize("tricks,first,error", FAILURES)
async def test_a_failing_store_loses_nothing_and_posts_once(
        api: OsdiAPI, store: Store, tricks: list[Misbehave], first: dict[Outcome, int],
        error: str | None) -> None:
    await sign(store, phone(1), "Ana Cruz")
    await sign(store, phone(2), "Kai Tan")
    api.next(*tricks)
    report = await sync_pass(store, api)
    assert report.counts == first
    assert (report.error is None) if error is None else (error in (report.error or ""))
    row = await store.fetchone("SELECT max(attempts), max(last_error) FROM outbox")
    assert row[0] == 1 and row[1]
    again = await sync_pass(store, api)
    assert again.error is None
    assert again.counts == counts(pushed=2 - first[Outcome.PUSHED])
    assert len(api.signatures) == 2  # each person recorded once, whatever was re-sent
    assert (await store.outbox_counts())["pending"] == 0


async def test_failures_back_off_with_jitter_and_the_worker_waits(api: OsdiAPI,
                                                                  store: Store) -> None:
    await sign(store, phone(1))
    api.next(Misbehave(500), Misbehave(500))
    await sync_pass(store, api, everything=False)
    first = await store.fetchone("SELECT next_attempt_at FROM outbox WHERE status = 'pending'")
    assert first[0] is not None  # not due now: a due-only pass leaves it alone
    assert (await sync_pass(store, api, everything=False)).counts == NOTHING
    delays = [outbox.Backoff(base=2, cap=600).delay(n) for n in (1, 2, 3, 10, 30) for _ in
              range(20)]
    assert all(0.5 <= d <= 600 for d in delays)
    by_attempt = [outbox.Backoff(base=2, cap=600).delay(n) for n in (1, 4)]
    assert 1 <= by_attempt[0] <= 2 and 8 <= by_attempt[1] <= 16
    assert len({round(outbox.Backoff().delay(3), 6) for _ in range(10)}) > 1  # jitter


REFUSALS = [
    # (store's rule, status, reason, what the pass reports)
    pytest.param(400, "phone_numbers.number is invalid", id="validation-400"),
    pytest.param(422, "family_name is too long", id="unprocessable-422"),
    pytest.param(409, "conflict", id="conflict-409"),
]


@pytest.mark.parametrize("status,reason", REFUSALS)
async def test_a_refused_signature_is_parked_with_its_reason(api: OsdiAPI, store: Store,
                                                             status: int, reason: str) -> None:
    api.refuse(lambda body: body["person"]["given_name"] == "Bad", status, reason)
    await sign(store, phone(1), "Ana Cruz")
    bad = await sign(store, phone(2), "Bad Name")
    await sign(store, phone(3), "Kai Tan")
    report = await sync_pass(store, api)
    assert report.counts == counts(pushed=2, parked=1) and report.error is None
    assert report.notes == [(Outcome.PARKED, bad, f"{status}: {reason}")]
    assert (await store.outbox_counts())["parked"] == 2  # its Sign and SetUpdates rows
    before = len(api.requests)
    assert (await sync_pass(store, api)).counts == NOTHING  # not retried forever
    assert len(api.requests) == before


async def test_empty_answers_park_after_a_few_tries(api: OsdiAPI, store: Store) -> None:
    await sign(store, phone(1))
    api.next(*[Misbehave(200)] * 5)
    reports = [await sync_pass(store, api) for _ in range(5)]
    assert [r.counts[Outcome.FAILED] for r in reports] == [1, 1, 1, 1, 0]
    assert reports[-1].counts[Outcome.PARKED] == 1
    row = await store.fetchone("SELECT status, last_error FROM outbox")
    assert row[0] == "parked" and "gave up after 5 attempts" in row[1]


STORE_DOWN = [
    # (petition URL suffix or None, API key or None, error of the pass)
    pytest.param(None, "wrong-key", "refused the API key (401)", id="bad-api-key"),
    pytest.param("/petitions/nope", None, "no such petition (404)", id="no-such-petition"),
]


@pytest.mark.parametrize("suffix,key,error", STORE_DOWN)
async def test_a_store_we_cannot_use_parks_nothing(api: OsdiAPI, store: Store, suffix: str | None,
                                                   key: str | None, error: str) -> None:
    await sign(store, phone(1))
    await sign(store, phone(2))
    url = api.base + suffix if suffix else None
    report = await sync_pass(store, api, key=key, url=url)
    assert error in (report.error or "")
    assert report.counts == counts(failed=1)  # the pass stopped at the first
    assert (await store.outbox_counts()) == {"pending": 4, "parked": 0, "done": 0}
    assert (await sync_pass(store, api)).counts == counts(pushed=2)


# --- never twice, opt-outs, erasures ----------------------------------------------------------

async def test_a_resent_signature_is_never_posted_twice(api: OsdiAPI, store: Store) -> None:
    for i in range(3):
        await sign(store, phone(i))
    assert (await sync_pass(store, api)).counts == counts(pushed=3)
    await store.write(lambda c: c.execute("UPDATE outbox SET status = 'pending'"))
    assert (await sync_pass(store, api)).counts == counts(present=3)
    assert len(api.posts()) == 3 and len(api.requests) == 3


async def test_opt_out_and_back_in_update_the_signature_in_place(api: OsdiAPI,
                                                                 store: Store) -> None:
    sid = await sign(store, phone(1), opted_in=True)
    await sync_pass(store, api)
    href = json.loads(json.dumps(api.signatures))  # what the store holds
    assert len(href) == 1
    remote = next(iter(href))
    await opt_out(store, phone(1))
    assert (await sync_pass(store, api)).counts == counts(pushed=1)
    put = api.puts()[-1]
    assert put.path == f"/api/v2/petitions/petition-1/signatures/{remote}"
    assert "phone_numbers" not in put.body["person"]
    assert put.body["person"]["custom_fields"]["opted_in_updates"] == "false"
    await write_turn(store, phone(1), SetUpdates(True))
    assert (await sync_pass(store, api)).counts == counts(pushed=1)
    assert api.puts()[-1].body["person"]["phone_numbers"] == [
        {"number": phone(1), "number_type": "Mobile"}]
    assert len(api.posts()) == 1 and len(api.signatures) == 1
    assert all("status" not in keys_in(r.body) for r in api.requests)
    assert api.signatures[remote]["person"]["custom_fields"]["signature_id"] == sid


async def test_erasure_cannot_be_done_and_says_so(api: OsdiAPI, store: Store) -> None:
    await sign(store, phone(1), "Zoe Erasable")
    await sync_pass(store, api)
    remote = next(iter(api.signatures))
    await erase(store, phone(1))
    await sign(store, phone(2))
    await erase(store, phone(2))  # erased before it was ever pushed: nothing to do there
    report = await sync_pass(store, api)
    assert report.counts == counts(cannot_erase=1, erased=1)
    assert "cannot erase 1" in report.summary()
    [(outcome, _, note)] = report.notes
    assert outcome is Outcome.CANNOT_ERASE
    assert note.startswith("cannot erase: OSDI petition") and f"signatures/{remote}" in note
    assert await outbox.cannot_erase_count(store) == 1
    assert await store.fetchall("SELECT * FROM sync_remote") == []
    assert len(api.requests) == 1  # nothing was sent for either erasure


# --- the rate limit -----------------------------------------------------------------------

async def test_requests_stay_under_four_a_second(api: OsdiAPI, store: Store) -> None:
    for i in range(9):
        await sign(store, phone(i))
    assert (await sync_pass(store, api, rate=RATE)).counts == counts(pushed=9)
    times = sorted(r.at for r in api.requests)
    assert len(times) == 9
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 4


async def test_token_bucket_paces_and_pauses() -> None:
    clock = [0.0]
    bucket = TokenBucket(rate=4, clock=lambda: clock[0])
    await bucket.take()
    assert bucket.tokens == 0
    bucket.pause(10)
    assert bucket.paused_until == 10


def test_signature_body_never_subscribes() -> None:
    from bot.sync.base import SignatureRecord

    record = SignatureRecord("s1", "c", "Ana Cruz", None, "sms", "es", True,
                             "2026-11-28T14:03:07Z", "+14165550100")
    body = signature_body(record)
    assert "status" not in keys_in(body) and "postal_addresses" not in body["person"]
    assert body["person"]["languages_spoken"] == ["es"]


# --- inside `serve` -------------------------------------------------------------------------

def test_serve_worker_reports_errors_parked_rows_and_erasures_in_healthz(
        api: OsdiAPI, tmp_path: Path) -> None:
    bot = BotProcess(tmp_path, sms_env(CENTRAL_STORE_URL=api.url,
                                       CENTRAL_STORE_API_KEY=api.api_key)).start()

    def health() -> dict[str, Any]:
        return dict(httpx.get(f"{bot.url}/healthz", timeout=5).json())

    try:
        with Twilio(bot) as twilio:
            api.refuse(lambda body: True, 503, "down for maintenance")
            good, bad = new_number(), new_number()
            for line in ("hi", "1", "SIGN", "Mary Smith", "ON", "1", "1"):
                twilio.send(good, line)
            error = wait_for(lambda: health()["sync"]["last_error"])
            assert "503" in error and health()["status"] == "degraded"
            api.forgive()
            api.refuse(lambda body: body["person"]["given_name"] == "Bad", 422, "bad name")
            for line in ("hi", "1", "SIGN", "Bad Name", "ON", "1", "2"):
                twilio.send(bad, line)
            wait_for(lambda: (health()["outbox"]["pending"], health()["outbox"]["parked"])
                     == (0, 2))
            status = health()
            reasons = status["outbox"]["parked_reasons"]
            assert len(reasons) == 2 and all("422" in r["reason"] and "bad name" in r["reason"]
                                             for r in reasons)
            assert "Bad" not in str(reasons) and bad not in str(reasons)
            assert status["sync"]["last_error"] is None
            assert status["status"] == "degraded"  # a parked row needs an organizer
            assert status["sync"]["erase_supported"] is False
            assert len(api.signatures) == 1

            twilio.send(good, "DELETE")
            twilio.send(good, "1")
            wait_for(lambda: health()["sync"]["cannot_erase"] == 1)
            assert health()["outbox"]["pending"] == 0
        with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
            notes = [r[0] for r in conn.execute(
                "SELECT last_error FROM outbox WHERE kind = 'erase'")]
        assert len(notes) == 1 and notes[0].startswith("cannot erase")
    finally:
        bot.stop()


async def test_total_is_the_petitions_total_signatures(api: OsdiAPI, store: Store) -> None:
    """The thank-you count reads the petition's `total_signatures` (every source's)."""
    await sign(store, phone(1), "Ana Cruz")
    await sign(store, phone(2), "Kai Tan")
    await sync_pass(store, api)
    syncer = Syncer(store, OsdiBackend(api.url, api.api_key, store, rate=200.0, timeout=0.5))
    try:
        assert await syncer.total("any") == 2
        api.next(Misbehave(500, '{"error": "Server error"}'))
        assert await syncer.total("any") is None, "unknown, not zero"
    finally:
        await syncer.close()
    wrong_key = Syncer(store, OsdiBackend(api.url, "wrong", store, rate=200.0, timeout=0.5))
    try:
        assert await wrong_key.total("any") is None
    finally:
        await wrong_key.close()
