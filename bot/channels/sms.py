"""Twilio SMS and WhatsApp: signature check, form -> Inbound, replies -> TwiML, Twilio's words.

WhatsApp comes through the same webhook, with `From: whatsapp:+E164`; those contacts are
`whatsapp:+E164` on channel `whatsapp`, and the bot answers every keyword itself there
(Twilio's SMS opt-out handling does not apply) with no GSM-7 mapping or segment limits.

Receiving only parses and hands over (web.py calls the engine); replies to an inbound
message go back in the TwiML response, so they never wait behind a bulk send.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from functools import lru_cache

import httpx
from twilio.request_validator import RequestValidator

from bot.campaign import Campaign
from bot.config import Settings
from bot.delivery import Outcome, SendResult
from bot.engine import Inbound
from bot.logs import mask
from bot.phones import normalize_number
from bot.sms_text import to_gsm7
from flows.keywords import TWILIO_WORDS
from flows.types import Reply
from flows.words import fold

log = logging.getLogger(__name__)

CHANNEL = "sms"
WHATSAPP = "whatsapp"
WHATSAPP_PREFIX = "whatsapp:"
CHOICE_ID = "ub:"  # the ids of our WhatsApp buttons: this, then the choice's value

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
    return _carrier_words(settings.twilio_keywords)


@lru_cache(maxsize=4)
def _carrier_words(keywords: str) -> frozenset[str]:
    if keywords != "twilio":
        return frozenset()
    return frozenset(fold(word) for word in TWILIO_WORDS)


def signature_ok(settings: Settings, url: str, form: dict[str, str], signature: str | None) -> bool:
    """X-Twilio-Signature over the public URL and the POST params, by twilio's own validator."""
    if not signature or not settings.twilio_auth_token:
        return False
    return bool(_validator(settings.twilio_auth_token).validate(url, form, signature))


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


#: The shape of an E.164 number: what WhatsApp's ids are, valid by today's numbering plan or not.
E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def whatsapp_id(raw: str) -> str | None:
    """`whatsapp:+1416…` -> `+1416…`. WhatsApp keeps ids that numbering plans no longer
    allow (Mexico's mobiles as `+521…`, Argentina's as `+549…`): one Twilio sends is kept as
    it came, so replies go back to the same id; None only when it is not E.164 at all."""
    number = raw.removeprefix(WHATSAPP_PREFIX).strip()
    return normalize_number(number) or (number if E164.fullmatch(number) else None)


def _to_is_ours(form: dict[str, str], settings: Settings, whatsapp: bool) -> bool:
    """The message was sent to our number (or through our Messaging Service)."""
    if whatsapp:
        ours = settings.twilio_whatsapp_number or ""
        return normalize_number(form.get("To", "").removeprefix(WHATSAPP_PREFIX)) == \
            normalize_number(ours.removeprefix(WHATSAPP_PREFIX))
    service = settings.twilio_messaging_service_sid
    if service and form.get("MessagingServiceSid") == service:
        return True
    if not settings.twilio_phone_number:
        return bool(service)  # a Messaging Service's pool: any of its numbers
    return normalize_number(form.get("To", "")) == normalize_number(settings.twilio_phone_number)


def to_inbound(form: dict[str, str], settings: Settings) -> Inbound | None:
    """The message in a Twilio webhook, or None when it is not one we can use."""
    if settings.twilio_account_sid and form.get("AccountSid") != settings.twilio_account_sid:
        log.warning("sms: webhook for another account refused")
        return None
    raw_from = form.get("From", "")
    whatsapp = raw_from.startswith(WHATSAPP_PREFIX)
    if not (settings.whatsapp_enabled if whatsapp else settings.sms_enabled):
        log.warning("sms: a %s message arrived but that channel is off", WHATSAPP if whatsapp
                    else CHANNEL)
        return None
    sid = form.get("MessageSid") or form.get("SmsSid")
    sender = whatsapp_id(raw_from) if whatsapp else normalize_number(raw_from)
    if not sid or sender is None:
        log.warning("sms: webhook without a usable MessageSid or From (from %s)", mask(raw_from))
        return None
    if not _to_is_ours(form, settings, whatsapp):
        log.warning("sms: webhook for a number that is not ours (to %s) refused",
                    mask(form.get("To")))
        return None
    media = form.get("NumMedia", "0").strip() not in ("", "0") or bool(form.get("Latitude"))
    if whatsapp:
        # A tapped button or list item of ours carries the choice's value in its id
        # (bot.channels.whatsapp); any other (an organizer's template) counts as its text.
        tapped = form.get("ButtonPayload") or form.get("ListId") or ""
        text = tapped.removeprefix(CHOICE_ID) if tapped.startswith(CHOICE_ID) else \
            form.get("Body", "")
        return Inbound(channel=WHATSAPP, address=WHATSAPP_PREFIX + sender, text=text,
                       platform_id=sid, media=media)
    words = carrier_words(settings)
    if form.get("OptOutType") and settings.twilio_keywords == "twilio":
        words = words | {fold(form.get("Body", ""))}  # Twilio says it answered this one itself
    return Inbound(
        channel=CHANNEL,
        address=sender,
        text=form.get("Body", ""),
        platform_id=sid,
        carrier_words=words,
        media=media,
    )


def render(reply: Reply, campaign: Campaign, channel: str = CHANNEL) -> str:
    """The text a basic phone gets: numbered choices written out, GSM-7 where the campaign asks
    (SMS only: WhatsApp has no segments and gets the original text)."""
    text = reply.plain()
    if channel == CHANNEL and reply.lang in campaign.gsm7_languages:
        return to_gsm7(text)
    return text


def twiml(replies: Iterable[Reply], campaign: Campaign, channel: str = CHANNEL) -> str:
    """`<Response><Message>…</Message>…</Response>`, exactly as twilio's MessagingResponse
    writes it (tests/test_sms.py holds the two equal), without building an element tree."""
    texts = (render(reply, campaign, channel) for reply in replies)
    messages = "".join(f"<Message>{_xml_text(text)}</Message>" if text else "<Message />"
                       for text in texts)
    body = f"<Response>{messages}</Response>" if messages else "<Response />"
    return XML_DECLARATION + body


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _xml_text(text: str) -> str:
    """Character data as ElementTree writes it in UTF-8 (& < > escaped; a lone surrogate as a
    character reference)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.encode("utf-8", "xmlcharrefreplace").decode("utf-8")


# --- sending through the REST API (broadcasts; replies to members go back in TwiML) -------

def error_outcome(status: int, code: int | None) -> Outcome:
    """Twilio's answer to a create-message call, as a delivery outcome."""
    if status == 429 or code in ERRORS_RATE:
        return Outcome.RETRY
    if code == ERROR_STOPPED:
        return Outcome.STOPPED
    if code in (ERROR_INVALID_TO, ERROR_NOT_MOBILE) or code in ERRORS_UNREACHABLE:
        return Outcome.UNREACHABLE
    if status >= 500:
        return Outcome.RETRY
    return Outcome.FAILED


class SmsOutlet:
    """Creates messages at `TWILIO_API_URL/2010-04-01/Accounts/<sid>/Messages.json`."""

    channel = CHANNEL

    def __init__(self, settings: Settings, client: httpx.AsyncClient, *,
                 status_callback: bool = True) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        self.settings = settings
        self.client = client
        # Broadcasts follow delivery; replies to members do not (nothing reads it).
        self.callback = f"{settings.public_url}/twilio/status" if status_callback else None
        self.url = (f"{settings.twilio_api_url}/2010-04-01/Accounts/"
                    f"{settings.twilio_account_sid}/Messages.json")
        self.auth = (settings.twilio_account_sid, settings.twilio_auth_token)

    def sender(self) -> dict[str, str]:
        if self.settings.twilio_messaging_service_sid:
            return {"MessagingServiceSid": self.settings.twilio_messaging_service_sid}
        return {"From": self.settings.twilio_phone_number or ""}

    async def send(self, address: str, text: str) -> SendResult:
        return await self.create({"To": address, "Body": text, **self.sender()})

    async def create(self, form: dict[str, str]) -> SendResult:
        if self.callback:
            form = {**form, "StatusCallback": self.callback}
        try:
            response = await self.client.post(self.url, data=form, auth=self.auth)
        except httpx.ConnectError as exc:
            return SendResult(Outcome.RETRY, error=f"cannot reach Twilio: {exc}")
        except httpx.TimeoutException:
            return SendResult(Outcome.AMBIGUOUS, error="Twilio did not answer in time")
        except httpx.HTTPError as exc:
            return SendResult(Outcome.AMBIGUOUS, error=f"Twilio request failed: {exc}")
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code in (200, 201) and isinstance(data, dict) and data.get("sid"):
            return SendResult(Outcome.SENT, platform_id=str(data["sid"]))
        code = data.get("code") if isinstance(data, dict) else None
        code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        retry_after = response.headers.get("retry-after", "")
        message = data.get("message") if isinstance(data, dict) else None
        error = f"Twilio {response.status_code}" + (f" error {code}" if code else "")
        return SendResult(
            error_outcome(response.status_code, code),
            error=error + (f": {message}" if message else ""),
            retry_after=float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None,
        )


class WhatsAppOutlet(SmsOutlet):
    """WhatsApp through the same Messages API, from TWILIO_WHATSAPP_NUMBER: free text inside
    the 24-hour window, a pre-approved template (Content API) outside it."""

    channel = WHATSAPP

    def __init__(self, settings: Settings, client: httpx.AsyncClient, *,
                 status_callback: bool = True) -> None:
        assert settings.twilio_whatsapp_number
        super().__init__(settings, client, status_callback=status_callback)

    def sender(self) -> dict[str, str]:
        return {"From": self.settings.twilio_whatsapp_number or ""}

    async def send_template(self, address: str, content_sid: str,
                            variables: dict[str, str]) -> SendResult:
        return await self.create({"To": address, "ContentSid": content_sid,
                                  "ContentVariables": json.dumps(variables), **self.sender()})


def status_update(form: dict[str, str]) -> tuple[str, str, int | None] | None:
    """A status callback as (MessageSid, our delivery state, error code), or None."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    state = STATUS_MAPPING.get(form.get("MessageStatus") or form.get("SmsStatus") or "")
    if not sid or state is None:
        return None
    code = form.get("ErrorCode", "")
    return sid, state, int(code) if code.isdigit() else None
