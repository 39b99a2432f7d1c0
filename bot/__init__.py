"""Union outreach bot: explains a campaign over SMS and Telegram, collects petition signatures."""

from __future__ import annotations

from pathlib import Path

#: The project folder: the bundled campaign and the catalogs live here, wherever the bot is started.
ROOT = Path(__file__).resolve().parent.parent
