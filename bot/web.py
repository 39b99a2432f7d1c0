"""The HTTP routes, nothing else: each one checks, parses through its channel, and hands over."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import broadcast, console
from bot.app import Bot
from bot.channels import sms
from bot.http import BodyTooLarge, read_body, read_form
from bot.store import StoreError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # Twilio and Telegram send a few KB; anything far larger is not theirs
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def xml(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml")


def public_url(bot: Bot, request: Request) -> str:
    """The URL Twilio signed: PUBLIC_URL + path (+ query), never a Host header we were sent."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{bot.settings.public_url}{request.url.path}{query}"


def create_app(bot: Bot, health: dict[str, Any] | None = None) -> Starlette:
    settings = bot.settings
    status = health if health is not None else {}

    async def signed_twilio_form(request: Request, what: str) -> dict[str, str] | Response:
        """The form Twilio posted, or the refusal: 404 (off), 413, 400, 403 (signature)."""
        if not settings.twilio_enabled:
            return Response("SMS is not configured", status_code=404)
        try:
            form = await read_form(request, MAX_BODY)
        except BodyTooLarge:
            return Response("request body too large", status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        signature = request.headers.get("x-twilio-signature")
        if not sms.signature_ok(settings, public_url(bot, request), form, signature):
            log.warning("sms: refused a %s with a missing or wrong signature", what)
            return Response("invalid signature", status_code=403)
        return form

    async def twilio_sms(request: Request) -> Response:
        form = await signed_twilio_form(request, "webhook")
        if isinstance(form, Response):
            return form
        msg = sms.to_inbound(form, settings)
        if msg is None:
            return xml(EMPTY_TWIML)
        try:
            outcome = await bot.engine.handle(msg)
        except StoreError:
            log.exception("sms: could not record a message; Twilio may retry it")
            return xml(EMPTY_TWIML, status=503)
        except Exception:
            log.exception("sms: a message could not be handled")
            return xml(EMPTY_TWIML)
        lane = bot.whatsapp if msg.channel == sms.WHATSAPP else None
        if lane is not None and await lane.answers(msg.address, outcome.replies,
                                                   outcome.duplicate, msg.platform_id):
            return xml(EMPTY_TWIML)
        return xml(sms.twiml(outcome.replies, bot.campaign, msg.channel))

    async def twilio_status(request: Request) -> Response:
        form = await signed_twilio_form(request, "status callback")
        if isinstance(form, Response):
            return form
        update = sms.status_update(form)
        if update is not None and form.get("AccountSid") == settings.twilio_account_sid:
            try:
                await broadcast.apply_status(bot, *update)
            except StoreError:
                return Response(status_code=503)  # Twilio retries a status callback
        return Response(status_code=204)

    async def telegram_webhook(request: Request) -> Response:
        channel = bot.telegram
        if channel is None:
            return Response("Telegram is not configured", status_code=404)
        if not channel.secret_ok(request.headers.get("x-telegram-bot-api-secret-token")):
            log.warning("telegram: refused a webhook with a missing or wrong secret token")
            return Response("invalid secret token", status_code=403)
        try:
            body = await read_body(request, channel.max_body)
        except BodyTooLarge:
            # From Telegram itself (the secret matched): a 4xx would be retried for hours.
            log.warning("telegram: an update over %d bytes was ignored", channel.max_body)
            return Response(status_code=200)
        except ClientDisconnect:
            return Response(status_code=400)
        return Response(status_code=await channel.receive(body))

    async def healthz(request: Request) -> Response:
        counts = await bot.store.outbox_counts()
        sync_error = status.get("sync_error")
        channels = {
            "sms": {"enabled": settings.sms_enabled, "reason": settings.sms_off_reason},
            "whatsapp": {"enabled": settings.whatsapp_enabled,
                         "reason": settings.whatsapp_off_reason},
            "telegram": {
                "enabled": settings.telegram_enabled,
                "connected": bool(settings.telegram_enabled and bot.telegram is not None and
                                  not status.get("telegram_error")),
                "mode": status.get("telegram_mode") if settings.telegram_enabled else None,
                "reason": settings.telegram_off_reason or status.get("telegram_error"),
            },
        }
        degraded = bool(sync_error or counts["parked"] or status.get("telegram_error"))
        return JSONResponse({
            "status": "degraded" if degraded else "ok",
            "channels": channels,
            "outbox": {"pending": counts["pending"], "parked": counts["parked"],
                       # why the latest parked rows were refused (retrying cannot fix them)
                       "parked_reasons": await bot.store.parked_reasons() if counts["parked"]
                       else []},
            "sync": {
                "last_error": sync_error,
                "backend": status.get("sync_backend"),
                "last_pass": status.get("sync_last_pass"),
                # erasures the store could not carry out (an OSDI petition cannot delete a
                # signature): the outbox notes name each one for an organizer to delete
                "erase_supported": status.get("sync_erase_supported", True),
                "cannot_erase": status.get("sync_cannot_erase", 0),
                # the campaign's count in the central store, every bot's signatures
                "central_total": status.get("central_total"),
            },
            "campaign": bot.campaign.id,
        })

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response("not found", status_code=404)

    routes = [
        Route("/twilio/sms", twilio_sms, methods=["POST"]),
        Route("/twilio/status", twilio_status, methods=["POST"]),
        Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *console.routes(bot, status),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found})
