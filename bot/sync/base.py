"""What every central-store backend speaks: jobs in, one result per job out.

Failures, from the narrowest to the widest:

    a result of FAILED or PARKED   one signature could not be stored; the others went on
    StoreUnavailable               the store cannot take anything now (down, timing out,
                                   rate-limiting, refusing our key); the pass stops here
    SyncConfigError                the settings cannot work at all (exit 2 in `sync`)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit, urlunsplit


class Outcome(StrEnum):
    """What became of one job; the values are the words `sync` prints."""

    PUSHED = "pushed"
    PRESENT = "already present"
    ERASED = "erased"
    CANNOT_ERASE = "cannot erase"
    SKIPPED = "skipped"  # an upsert whose signature is gone here, with no erase queued
    FAILED = "failed"
    PARKED = "parked"


DONE = frozenset({Outcome.PUSHED, Outcome.PRESENT, Outcome.ERASED, Outcome.CANNOT_ERASE,
                  Outcome.SKIPPED})


class SignatureRecord(NamedTuple):
    """One signature as the interface's `signatures` table holds it: a row, in COLUMNS order."""

    signature_id: str
    campaign: str
    full_name: str
    region: str | None
    channel: str
    language: str
    opted_in_updates: bool
    signed_at: str  # ISO 8601 UTC, 2026-11-28T14:03:07Z
    contact: str


COLUMNS = ("signature_id", "campaign", "full_name", "region", "channel", "language",
           "opted_in_updates", "signed_at", "contact")


@dataclass(slots=True)
class OutboxRow:
    id: int
    kind: str
    status: str  # pending or parked (a parked row is settled too when a later push succeeds)
    attempts: int


@dataclass(slots=True)
class Job:
    """All open outbox rows of one signature, coalesced: push its latest state once."""

    signature_id: str
    kind: Literal["upsert", "erase"]
    rows: list[OutboxRow]
    record: SignatureRecord | None = None  # read at push time, for an upsert

    @property
    def attempts(self) -> int:
        return max((r.attempts for r in self.rows if r.status == "pending"), default=0)

    @property
    def pending(self) -> bool:
        return any(r.status == "pending" for r in self.rows)


@dataclass(frozen=True, slots=True)
class Bulk:
    """A batch's fast lane: plain upserts (every signature here, one entry each), kept in
    columns, in COLUMNS order, rather than as a Job and a record per signature."""

    columns: tuple[list[Any], ...]
    rows: list[int]  # the outbox rows it settles
    marks: str  # the same, as MARK_UPSERTS takes them: JSON {id: signature_id}

    def __len__(self) -> int:
        return len(self.columns[0])


@dataclass(frozen=True)
class Result:
    job: Job
    outcome: Outcome
    note: str | None = None  # the reason for FAILED / PARKED, a remark for CANNOT_ERASE
    backoff: bool = False  # FAILED: wait before this job is tried again (it may be the cause)
    park_after: int | None = None  # FAILED: park once it has failed this many times


class StoreUnavailable(Exception):
    """The store cannot take anything now; `results` holds what was settled before that."""

    def __init__(self, message: str, results: list[Result] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.results = results or []
        self.retry_after = retry_after


class SyncConfigError(Exception):
    """CENTRAL_STORE_URL or CENTRAL_STORE_API_KEY cannot work; the message says how to fix it."""


class Backend(ABC):
    """A central store. `open` connects and creates or migrates what it needs."""

    #: a human name with the URL, credentials masked
    label: str
    #: how many jobs go to `push` at once
    batch_size: int = 2000
    #: False: the store offers no way to delete a signature (an erase is noted, not done)
    can_erase: bool = True

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def push(self, jobs: list[Job]) -> list[Result]:
        """Store every job (upserts carry their record); one result per job, in any order.

        Returns only once the store has confirmed what it reports as done; raises
        StoreUnavailable (with the results settled so far) when the store cannot go on.
        """

    async def total(self, campaign: str) -> int | None:
        """How many signatures the store holds for the campaign, from every bot that feeds
        it (the count a thank-you shows), or None when it cannot say."""
        return None

    async def push_bulk(self, bulk: Bulk) -> tuple[int, int] | None:
        """Store a batch of plain upserts in one go, if this store has a way to: returns how
        many were new or changed and how many were there already, once the store confirmed
        them all. None (the default) hands the batch to `push`, job by job: also the answer
        when the store refuses some row. Raises StoreUnavailable as `push` does.
        """
        return None


def mask_url(url: str) -> str:
    """The URL with any password replaced, fit for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


@dataclass
class PassReport:
    """What one pass over the outbox did."""

    counts: dict[Outcome, int] = field(default_factory=lambda: {o: 0 for o in Outcome})
    notes: list[tuple[Outcome, str, str]] = field(default_factory=list)  # (outcome, sid, note)
    error: str | None = None  # the store-level failure that stopped the pass
    retry_after: float | None = None

    def add(self, result: Result, outcome: Outcome | None = None) -> None:
        outcome = outcome or result.outcome
        self.counts[outcome] += 1
        if result.note and outcome in (Outcome.PARKED, Outcome.CANNOT_ERASE):
            self.notes.append((outcome, result.job.signature_id, result.note))

    @property
    def settled(self) -> int:
        return sum(self.counts[o] for o in (*DONE, Outcome.PARKED))

    @property
    def busy(self) -> bool:
        return any(self.counts.values())

    def summary(self) -> str:
        """`pushed 3, already present 0, erased 1, failed 0, parked 0` (+ the rarer ones)."""
        shown = [Outcome.PUSHED, Outcome.PRESENT, Outcome.ERASED, Outcome.FAILED, Outcome.PARKED]
        text = ", ".join(f"{o.value} {self.counts[o]}" for o in shown)
        for extra in (Outcome.CANNOT_ERASE, Outcome.SKIPPED):
            if self.counts[extra]:
                text += f", {extra.value} {self.counts[extra]}"
        return text
