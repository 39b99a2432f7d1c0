"""An OSDI petition endpoint, Action Network style: CENTRAL_STORE_URL is the petition's URL.

A new signature is posted to `<petition>/signatures` (Action Network's record-signature
helper, which finds or creates the person); the identifier and self link it answers are
kept in `sync_remote`, so a re-sent signature is never posted twice and a later change
(an opt-out of updates) goes to the self link with PUT. `status: subscribed` is never sent:
it would re-subscribe someone who unsubscribed. A phone number goes only with consent.

What the answers mean here (the provider's vocabulary, mapped once):

    2xx with a body       stored; keep identifiers and the self link
    200 with no body      Action Network's way of refusing a blind POST: retry with backoff,
                          park after a few tries
    401, 403              the API key is refused: the store is unusable until fixed
    404 on the petition   CENTRAL_STORE_URL names no petition: unusable until fixed
    408, 5xx, timeouts    try again later, with backoff; the pass stops
    429                   too fast: wait (Retry-After) and go on later
    other 4xx             this signature is refused (validation): parked with the reason

The API cannot delete a signature, so an erase is marked done with a note naming the
signature's link for an organizer to delete by hand, and counted as "cannot erase".
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import httpx

from bot.pacing import TokenBucket
from bot.store import Store
from bot.sync.base import (
    Backend,
    Job,
    Outcome,
    Result,
    SignatureRecord,
    StoreUnavailable,
    SyncConfigError,
    mask_url,
)

RATE = 3.5  # Action Network allows 4 requests a second: keep a margin for network jitter
EMPTY_BODY_ATTEMPTS = 5
SERVER_ERROR_ATTEMPTS = 25
USER_AGENT = "union-outreach-bot (petition sync)"
_DIGITS = re.compile(r"\+?\d[\d ()-]{5,}\d")


def split_name(full_name: str) -> tuple[str, str]:
    """`Mary Ann Smith` → (`Mary Ann`, `Smith`); one word is a given name."""
    parts = full_name.strip().rsplit(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (full_name.strip(), "")


def phone_of(contact: str) -> str | None:
    if contact.startswith("whatsapp:"):
        contact = contact.removeprefix("whatsapp:")
    return contact if contact.startswith("+") else None


def signature_body(record: SignatureRecord) -> dict[str, Any]:
    """The record-signature helper's body; never a `status`, a phone only with consent."""
    given, family = split_name(record.full_name)
    person: dict[str, Any] = {"given_name": given}
    if family:
        person["family_name"] = family
    phone = phone_of(record.contact)
    if record.opted_in_updates and phone:
        person["phone_numbers"] = [{"number": phone, "number_type": "Mobile"}]
    if record.region:
        person["postal_addresses"] = [{"region": record.region, "country": "CA"}]
    person["languages_spoken"] = [record.language]
    person["custom_fields"] = {
        "language": record.language,
        "signature_id": record.signature_id,
        "channel": record.channel,
        "opted_in_updates": "true" if record.opted_in_updates else "false",
    }
    return {"person": person, "action_network:referrer_data": {"source": record.channel}}


class Refused(Exception):
    """This one signature was refused; retrying it as it is will not help."""


class Flaky(Exception):
    """This request failed in a way that may pass later (and may be this signature's doing)."""

    def __init__(self, message: str, park_after: int, *, stop: bool = False) -> None:
        super().__init__(message)
        self.park_after = park_after
        self.stop = stop  # the server itself is failing: end the pass here


class Down(Exception):
    """The store takes nothing now; `retry_after` when it said how long to wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _reason(response: httpx.Response) -> str:
    """The error text a provider put in its answer, short."""
    text = response.text.strip()
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("error", "message", "errors"):
            if data.get(key):
                value = data[key]
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                break
    text = _DIGITS.sub("…", " ".join(text.split()))  # a provider may echo the number
    return (text[:200] + "…") if len(text) > 200 else text


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


class OsdiBackend(Backend):
    batch_size = 20
    can_erase = False

    def __init__(self, url: str, api_key: str | None, store: Store, *, rate: float = RATE,
                 timeout: float = 15.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.key = mask_url(self.url)
        self.label = f"OSDI petition {self.key}"
        self.api_key = api_key
        self.store = store
        self.bucket = TokenBucket(rate)
        self.timeout = timeout
        self.transport = transport
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if not self.api_key:
            raise SyncConfigError(
                "CENTRAL_STORE_API_KEY is not set: the OSDI petition endpoint needs its API key "
                "(Action Network: Start Organizing → Details → API & Sync)")
        if "/petitions/" not in self.url:
            raise SyncConfigError(
                f"CENTRAL_STORE_URL {self.key!r} is not a petition: use the petition's API URL, "
                "e.g. https://actionnetwork.org/api/v2/petitions/<id>")
        self._client = httpx.AsyncClient(
            timeout=self.timeout, transport=self.transport,
            headers={"OSDI-API-Token": self.api_key, "User-Agent": USER_AGENT,
                     "Accept": "application/hal+json, application/json"})

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def total(self, campaign: str) -> int | None:
        """The petition's `total_signatures` (every source, not only this bot's)."""
        if self._client is None:
            return None
        await self.bucket.take()
        try:
            response = await self._client.get(self.url)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise StoreUnavailable(f"{self.label} did not give its total: {exc}") from exc
        total = data.get("total_signatures") if isinstance(data, dict) else None
        return total if isinstance(total, int) and total >= 0 else None

    async def push(self, jobs: list[Job]) -> list[Result]:
        results: list[Result] = []
        for job in jobs:
            try:
                results.append(await self._one(job))
            except Refused as exc:
                results.append(Result(job, Outcome.PARKED, str(exc)))
            except Flaky as exc:
                results.append(Result(job, Outcome.FAILED, str(exc), backoff=True,
                                      park_after=exc.park_after))
                if exc.stop:
                    raise StoreUnavailable(str(exc), results) from exc
            except Down as exc:
                results.append(Result(job, Outcome.FAILED, str(exc)))
                raise StoreUnavailable(str(exc), results, exc.retry_after) from exc
        return results

    async def _one(self, job: Job) -> Result:
        remote = await self.store.fetchone(
            "SELECT remote_id, href, opted_in_updates FROM sync_remote "
            "WHERE store = ? AND signature_id = ?", (self.key, job.signature_id))
        if job.kind == "erase":
            return await self._erase(job, remote)
        record = job.record
        assert record is not None
        if remote is not None:
            if bool(remote["opted_in_updates"]) == record.opted_in_updates:
                return Result(job, Outcome.PRESENT)
            href = remote["href"] or f"{self.url}/signatures/{remote['remote_id']}"
            await self._request("PUT", href, signature_body(record), petition=False)
            await self._remember(record, str(remote["remote_id"]), href)
            return Result(job, Outcome.PUSHED)
        data = await self._request("POST", f"{self.url}/signatures", signature_body(record),
                                   petition=True)
        remote_id, href = _identity(data)
        if remote_id is None:
            raise Flaky("the store answered without an identifier for the signature",
                        EMPTY_BODY_ATTEMPTS)
        await self._remember(record, remote_id, href)
        return Result(job, Outcome.PUSHED)

    async def _erase(self, job: Job, remote: Any) -> Result:
        if remote is None:
            pushed = await self.store.fetchone(
                "SELECT 1 FROM outbox WHERE signature_id = ? AND kind = 'upsert' "
                "AND status = 'done' LIMIT 1", (job.signature_id,))
            if pushed is None:  # it never reached the store: nothing there to erase
                return Result(job, Outcome.ERASED)
            where = "its link was not kept"
        else:
            where = f"delete {remote['href'] or remote['remote_id']} by hand"
        sid = job.signature_id

        async def forget(conn: aiosqlite.Connection) -> None:
            await conn.execute("DELETE FROM sync_remote WHERE store = ? AND signature_id = ?",
                               (self.key, sid))

        await self.store.write(forget)
        return Result(job, Outcome.CANNOT_ERASE,
                      f"cannot erase: {self.label} has no API to delete a signature; {where}")

    async def _remember(self, record: SignatureRecord, remote_id: str, href: str | None) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT INTO sync_remote (store, signature_id, remote_id, href, opted_in_updates, "
                "pushed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store, signature_id) DO UPDATE "
                "SET remote_id = excluded.remote_id, href = excluded.href, "
                "opted_in_updates = excluded.opted_in_updates, pushed_at = excluded.pushed_at",
                (self.key, record.signature_id, remote_id, href, int(record.opted_in_updates), now))

        await self.store.write(job)

    async def _request(self, method: str, url: str, body: dict[str, Any], *,
                       petition: bool) -> dict[str, Any]:
        assert self._client is not None
        await self.bucket.take()
        try:
            response = await self._client.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            raise Down(f"{self.label} did not answer within {self.timeout:g} s; "
                       "will try again") from exc
        except httpx.TransportError as exc:
            raise Down(f"cannot reach {self.label}: {exc or type(exc).__name__}; check "
                       "CENTRAL_STORE_URL and the network") from exc
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            self.bucket.pause(wait if wait is not None else 1.0)
            raise Down(f"{self.label} is rate-limiting us (429); waiting", wait)
        if status in (401, 403):
            raise Down(f"{self.label} refused the API key ({status}): check "
                       "CENTRAL_STORE_API_KEY")
        if status == 404 and petition:
            raise Down(f"{self.label} has no such petition (404): check CENTRAL_STORE_URL")
        if status == 408 or status >= 500:
            raise Flaky(f"{self.label} answered {status}: {_reason(response)}",
                        SERVER_ERROR_ATTEMPTS, stop=True)
        if status >= 400:
            raise Refused(f"{status}: {_reason(response) or 'refused'}")
        if not response.content.strip():
            raise Flaky(f"{self.label} answered {status} with an empty body, which means it "
                        "did not record the signature", EMPTY_BODY_ATTEMPTS)
        try:
            data = response.json()
        except ValueError as exc:
            raise Flaky(f"{self.label} answered {status} with a body that is not JSON",
                        EMPTY_BODY_ATTEMPTS) from exc
        if not isinstance(data, dict) or not data:
            raise Flaky(f"{self.label} answered {status} with an empty body, which means it "
                        "did not record the signature", EMPTY_BODY_ATTEMPTS)
        return data


def _identity(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """The store's identifier (`action_network:…` first) and self link of a signature."""
    href = None
    links = data.get("_links")
    if isinstance(links, dict) and isinstance(links.get("self"), dict):
        href = links["self"].get("href")
    identifiers = [i for i in data.get("identifiers") or [] if isinstance(i, str)]
    identifiers.sort(key=lambda i: not i.startswith("action_network:"))
    remote_id = identifiers[0] if identifiers else (href.rstrip("/").rsplit("/", 1)[-1]
                                                    if href else None)
    return remote_id, href if isinstance(href, str) else None
