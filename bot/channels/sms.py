"""Twilio SMS: signature check, form -> Inbound, replies -> TwiML, Twilio's vocabulary.

Receiving only parses and hands over (web.py calls the engine); replies to an inbound
message go back in the TwiML response, so they never wait behind a bulk send.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl

import phonenumbers
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.campaign import Campaign
from bot.config import Settings
from bot.engine import Inbound
from bot.logs import mask
from bot.sms_text import to_gsm7
from flows.keywords import TWILIO_WORDS
from flows.types import Reply
from flows.words import fold

log = logging.getLogger(__name__)

CHANNEL = "sms"
DEFAULT_REGION = "CA"  # numbers written without a country code are read as North American

#: Twilio error codes we act on (platforms.md), in one place.
ERROR_STOPPED = 21610  # the recipient replied STOP at the carrier: record an opt-out
ERROR_INVALID_TO = 21211
ERROR_NOT_MOBILE = 21614
ERRORS_UNREACHABLE = frozenset({30003, 30005, 30006})
ERROR_FILTERED = 30007
ERRORS_RATE = frozenset({20429, 63018})

#: Twilio MessageStatus -> our delivery state, and the order states move forward in.
STATUS_MAPPING: dict[str, str] = {
    "accepted": "sent", "queued": "sent", "scheduled": "sent", "sending": "sent", "sent": "sent",
    "delivered": "delivered", "read": "delivered",
    "undelivered": "undelivered", "failed": "failed", "canceled": "failed",
}


def carrier_words(settings: Settings) -> frozenset[str]:
    """Words Twilio's opt-out handling answers itself (TWILIO_KEYWORDS=twilio), else none."""
    if settings.twilio_keywords != "twilio":
        return frozenset()
    return frozenset(fold(word) for word in TWILIO_WORDS)


def parse_form(body: bytes) -> dict[str, str]:
    """Form fields; bytes that are not UTF-8 become U+FFFD (the signature then fails)."""
    text = body.decode("latin-1")
    return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"))


def signature_ok(settings: Settings, url: str, form: dict[str, str], signature: str | None) -> bool:
    """X-Twilio-Signature over the public URL and the POST params, by twilio's own validator."""
    if not signature or not settings.twilio_auth_token:
        return False
    return bool(RequestValidator(settings.twilio_auth_token).validate(url, form, signature))


def normalize_number(raw: str) -> str | None:
    """`+1 416 555 0123`, `4165550123` -> `+14165550123`; None when it is not a phone number."""
    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_inbound(form: dict[str, str], settings: Settings) -> Inbound | None:
    """The message in a Twilio webhook, or None when it is not one we can use."""
    if settings.twilio_account_sid and form.get("AccountSid") != settings.twilio_account_sid:
        log.warning("sms: webhook for another account refused")
        return None
    sid = form.get("MessageSid") or form.get("SmsSid")
    sender = normalize_number(form.get("From", ""))
    if not sid or sender is None:
        log.warning("sms: webhook without a usable MessageSid or From (from %s)",
                    mask(form.get("From")))
        return None
    words = carrier_words(settings)
    if form.get("OptOutType") and settings.twilio_keywords == "twilio":
        words = words | {fold(form.get("Body", ""))}  # Twilio says it answered this one itself
    media = form.get("NumMedia", "0").strip() not in ("", "0")
    return Inbound(
        channel=CHANNEL,
        address=sender,
        text=form.get("Body", ""),
        platform_id=sid,
        carrier_words=words,
        media=media,
    )


def render(reply: Reply, campaign: Campaign) -> str:
    """The text a basic phone gets: numbered choices written out, GSM-7 where the campaign asks."""
    text = reply.plain()
    return to_gsm7(text) if reply.lang in campaign.gsm7_languages else text


def twiml(replies: Iterable[Reply], campaign: Campaign) -> str:
    response = MessagingResponse()
    for reply in replies:
        response.message(render(reply, campaign))
    return str(response)
