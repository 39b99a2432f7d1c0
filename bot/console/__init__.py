"""The organizer console: server-rendered pages under /console/, served by `serve`.

Sign-in by one-time link (`console-link`, or `/console` from an organizer on Telegram, which
calls `issue_link`); see auth.py for sessions and CSRF, views.py for the pages, sandbox.py for
the simulator's contacts.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from bot.app import Bot
from bot.console.auth import issue_link

__all__ = ["issue_link", "routes"]


def routes(bot: Bot, health: dict[str, Any]) -> list[Route]:
    """Every /console route, for bot/web.py's route list."""
    from bot.console.views import build_routes

    return build_routes(bot, health)
