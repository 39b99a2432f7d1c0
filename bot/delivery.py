"""What happened to one outgoing message, in words every channel maps its platform's answer to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    SENT = "sent"  # the platform took it (an id may follow in status callbacks)
    RETRY = "retry"  # certainly not sent (rate limit, connection refused): try again later
    FAILED = "failed"  # refused for this message; do not retry
    STOPPED = "stopped"  # the person opted out at the carrier (Twilio 21610): record a stop
    UNREACHABLE = "unreachable"  # invalid or not mobile (21211/21614) or blocked the bot (403)
    AMBIGUOUS = "ambiguous"  # may or may not have left (timeout): never retried


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    platform_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


class Outlet(Protocol):
    """A channel's sender through its platform's REST API: broadcasts use one, and WhatsApp's
    replies with buttons their own (never a broadcast's, so they never wait behind one)."""

    channel: str

    async def send(self, address: str, text: str) -> SendResult: ...
