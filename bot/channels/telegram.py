"""Telegram (Bot API) channel. Placeholder until the [telegram] issue lands."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bot.app import Bot


class TelegramChannel:
    def __init__(self, bot: Bot, health: dict[str, Any]) -> None:
        self.bot, self.health = bot, health

    async def start(self) -> None:
        self.health["telegram_mode"] = None
        self.health["telegram_error"] = "the Telegram channel is not built yet in this version"

    async def stop(self) -> None:
        return None

    async def webhook(self, request: Request) -> Response:
        return Response("not found", status_code=404)
