"""`serve`: the HTTP server and the background workers, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import uvicorn

from bot import broadcast, replies, sync
from bot.app import Bot, open_bot
from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppReplies
from bot.config import Settings
from bot.web import create_app

log = logging.getLogger("bot.server")

INBOUND_KEEP = timedelta(days=3)  # platforms retry for minutes or hours, never days
#: uvicorn's options for `serve` (bench/ceiling.py runs its bare app with the same ones). The
#: protocol is uvicorn's "auto": httptools when installed (uvicorn[standard]).
UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None, "access_log": False, "lifespan": "off", "server_header": False,
    "timeout_graceful_shutdown": 5,
}


async def prune_loop(bot: Bot, every: float = 3600) -> None:
    """Forget old processed platform ids so the table stays bounded."""
    while True:
        cutoff = (datetime.now(UTC) - INBOUND_KEEP).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            removed = await bot.store.prune_inbound(cutoff)
            if removed:
                log.info("pruned %d processed message ids older than %s", removed, cutoff)
        except Exception:
            log.exception("pruning processed message ids failed; will try again")
        await asyncio.sleep(every)


def settle_heap() -> None:
    """Put what start-up loaded (modules, catalogs, phone-number metadata: some 60,000
    objects) out of the garbage collector's sight. A full collection then walks only what
    requests create: without it each one stalls every request in flight for 25-50 ms, a few
    times a second under load (docs/performance.md)."""
    gc.collect()
    gc.freeze()


def announce(settings: Settings) -> None:
    channels = (("sms", settings.sms_off_reason), ("whatsapp", settings.whatsapp_off_reason),
                ("telegram", settings.telegram_off_reason))
    for name, reason in channels:
        if reason:
            log.warning("channel %s is off: %s", name, reason)
        else:
            log.info("channel %s is on", name)


async def serve(settings: Settings) -> int:
    announce(settings)
    health: dict[str, Any] = {}
    async with open_bot(settings) as bot:
        app = create_app(bot, health)
        config = uvicorn.Config(app, host=settings.host, port=settings.port, **UVICORN_OPTIONS)
        server = uvicorn.Server(config)
        # Our own signal handling: SIGTERM/SIGINT stop the server gracefully (in-flight requests
        # finish) and `serve` then exits 0, instead of uvicorn re-raising the signal.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.handle_exit, sig, None)
        workers = [
            asyncio.create_task(prune_loop(bot), name="prune"),
            asyncio.create_task(sync.run_worker(bot, health), name="sync"),
            asyncio.create_task(broadcast.run_worker(bot), name="broadcast"),
        ]
        whatsapp_client = None
        if settings.whatsapp_enabled and settings.whatsapp_buttons:
            whatsapp_client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
            bot.whatsapp = WhatsAppReplies(bot, whatsapp_client)
        if settings.telegram_enabled:
            bot.telegram = TelegramChannel(bot, health)
        # What a crash left unsent goes on the lines before anything new can come in.
        await replies.resend(bot)
        bot.engine.replies_later = partial(replies.later, bot)
        if bot.telegram is not None:
            await bot.telegram.start()
        log.info("campaign %s, languages %s; listening on http://%s:%d (public URL %s)",
                 bot.campaign.id, ",".join(bot.campaign.languages), settings.host, settings.port,
                 settings.public_url)
        settle_heap()
        try:
            await server.serve()
        finally:
            # Both reply lanes get their grace at once (a container stop allows ~10 s).
            stopping = []
            if bot.telegram is not None:
                stopping.append(bot.telegram.stop())
            if bot.whatsapp is not None:
                stopping.append(bot.whatsapp.close())
            await asyncio.gather(*stopping)
            if whatsapp_client is not None:
                await whatsapp_client.aclose()
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return 0 if server.started else 1
