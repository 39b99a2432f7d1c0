"""Helpers of the console tests: sign-in links from the real command, sessions, seeded signers."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bot.store import migrate
from tests.harness import ROOT, BotProcess, Twilio

CAMPAIGN = "mwac-pathway-pr"
LINK = re.compile(r"^(?P<base>\S+)/console/login\?token=(?P<token>[A-Za-z0-9_-]{40,})$")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_link(bot: BotProcess, **env: str) -> str:
    """`python run_bot.py console-link` on the bot's database: the link it prints."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "console-link"], cwd=bot.workdir,
        env={**bot.env, **env}, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def token_of(link: str) -> str:
    match = LINK.match(link)
    assert match, link
    return match["token"]


@contextmanager
def sign_in(bot: BotProcess) -> Iterator[httpx.Client]:
    """A client holding a fresh session cookie (the link's form posted, as a browser does)."""
    with httpx.Client(base_url=bot.url, timeout=30, follow_redirects=False) as client:
        answer = client.post("/console/login", data={"token": token_of(console_link(bot))})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/console/")
    assert page.status_code == 200, page.status_code
    match = CSRF.search(page.text)
    assert match
    return match[1]


def sign_by_sms(twilio: Twilio, number: str, *, lang_choice: str = "2", sign: str = "FIRMAR",
                name: str = "Ana Cruz", region: str = "ON", updates: str = "1") -> None:
    """A whole signing conversation over the Twilio webhook (Spanish by default)."""
    for text in ("hola", lang_choice, sign, name, region, "1", updates):
        twilio.send(number, text)


def seed(db: Path, days: int = 21) -> list[str]:
    """Signers spread over the last `days` days, in several languages, channels and provinces;
    returns the SMS numbers of those who want updates and live in Ontario."""
    migrate(db)
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    langs = ["en", "es", "en", "fr", "tl", "es", "en", "ar", "zh", "pa"]
    regions = ["ON", "ON", "BC", "QC", "AB", "ON", "MB", None, "BC", "ON", "NS"]
    ontario: list[str] = []
    with sqlite3.connect(db) as conn:
        n = 0
        for day in range(days):
            for _ in range(1 + (day * 7) % 5 + (3 if day in (2, 9) else 0)):
                n += 1
                lang, region = langs[n % len(langs)], regions[n % len(regions)]
                telegram = n % 6 == 0
                address = f"telegram:{900000 + n}" if telegram else f"+1416555{2000 + n:04d}"
                stopped, updates = n % 13 == 0, n % 4 != 0
                at = (now - timedelta(days=day, minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
                cur = conn.execute(
                    "INSERT INTO contacts (address, channel, language, state, stopped, "
                    "created_at, updated_at) VALUES (?, ?, ?, 'menu', ?, ?, ?)",
                    (address, "telegram" if telegram else "sms", lang, int(stopped), at, at))
                conn.execute(
                    "INSERT INTO signatures (signature_id, contact_id, campaign, full_name, "
                    "region, channel, language, opted_in_updates, signed_at, contact) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(uuid.uuid4()), cur.lastrowid, CAMPAIGN, f"Signer {n}", region,
                     "telegram" if telegram else "sms", lang, int(updates and not stopped), at,
                     address))
                if region == "ON" and updates and not stopped and not telegram:
                    ontario.append(address)
    return ontario
