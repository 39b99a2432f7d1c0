"""Syncing signatures to the central store (SQLite, PostgreSQL or an OSDI endpoint).

Placeholder until the [sync] issue lands: `serve` starts `run_worker`, `sync` calls `run_command`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.app import Bot


async def run_worker(bot: Bot, health: dict[str, Any]) -> None:
    """The background sync loop inside `serve` (not yet built: returns at once)."""
    return None


async def run_command(bot: Bot, args: argparse.Namespace) -> int:
    print("error: sync is not built yet in this version", file=sys.stderr)
    return 1
