"""Sign-in without passwords: one-time links, signed session cookies, CSRF tokens.

- A link (`console-link`, or `/console` from an organizer on Telegram) carries a random
  token; the database keeps only its SHA-256, an expiry 15 minutes out and when it was used.
  Opening the link marks the token used and starts a session, in one transaction, so a link
  starts one session at most (the bot sends it on Telegram with link previews off, so no
  preview fetch uses it up).
- A session is a random id in a cookie `<id>.<HMAC-SHA256(secret, id)>` (HttpOnly,
  SameSite=Lax so the first page after the link, a cross-site navigation, carries it;
  Path=/console, Secure when PUBLIC_URL is https). The database keeps the
  id's hash, its expiry and whether it was ended (sign out), so a cookie stops working on
  sign out even before it expires. The secret is made once, on first use, and kept in the
  database, so every process of the bot (`serve`, `console-link`) signs alike.
- Every state-changing request carries a CSRF token, HMAC(secret, "csrf:" + id): a hidden
  `csrf` field in each form, or the `X-CSRF-Token` header of the page's script.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosqlite

from bot.app import Bot

COOKIE = "console_session"
LINK_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _at(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime(FORMAT)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _sign(secret: bytes, message: str) -> str:
    mac = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


async def secret(bot: Bot) -> bytes:
    """The console's signing key, made on first use and kept in the database."""
    row = await bot.store.fetchone("SELECT secret FROM console_secret WHERE id = 1")
    if row is None:
        async def job(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT OR IGNORE INTO console_secret (id, secret, created_at) VALUES (1, ?, ?)",
                (secrets.token_hex(32), _at()))

        await bot.store.write(job)
        row = await bot.store.fetchone("SELECT secret FROM console_secret WHERE id = 1")
    assert row is not None
    return bytes.fromhex(str(row["secret"]))


# --- one-time links -----------------------------------------------------------------------

async def issue_link(bot: Bot, issued_to: str | None = None) -> str:
    """A one-time sign-in link, `PUBLIC_URL/console/login?token=…`, valid 15 minutes.

    `console-link` prints it; the Telegram channel answers an organizer's `/console` with it.
    """
    token = secrets.token_urlsafe(32)
    now = _at()

    async def job(conn: aiosqlite.Connection) -> None:
        await conn.execute("DELETE FROM console_links WHERE expires_at < ?",
                           (_at(-timedelta(days=1)),))
        await conn.execute(
            "INSERT INTO console_links (token_hash, issued_to, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)", (digest(token), issued_to or "cli", now, _at(LINK_TTL)))

    await bot.store.write(job)
    return f"{bot.settings.public_url}/console/login?token={token}"


async def link_usable(bot: Bot, token: str) -> bool:
    """Whether `token` is a link not used yet and not expired (a GET does not use it)."""
    if not token or len(token) > 200:
        return False
    row = await bot.store.fetchone(
        "SELECT 1 FROM console_links WHERE token_hash = ? AND used_at IS NULL "
        "AND expires_at > ?", (digest(token), _at()))
    return row is not None


async def start_session(bot: Bot, token: str) -> str | None:
    """Use the link's token up and start a session: its cookie value, or None when the
    token is unknown, used or expired."""
    if not token or len(token) > 200:
        return None
    key = await secret(bot)
    sid = secrets.token_urlsafe(32)
    now = _at()

    async def job(conn: aiosqlite.Connection) -> bool:
        cursor = await conn.execute(
            "UPDATE console_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL "
            "AND expires_at > ? RETURNING token_hash", (now, digest(token), now))
        used = await cursor.fetchone()
        await cursor.close()
        if used is None:
            return False
        await conn.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
        await conn.execute(
            "INSERT INTO console_sessions (id_hash, created_at, expires_at, lang) "
            "VALUES (?, ?, ?, ?)", (digest(sid), now, _at(SESSION_TTL),
                                    bot.campaign.default_language))
        return True

    if not await bot.store.write(job):
        return None
    return f"{sid}.{_sign(key, 'session:' + sid)}"


# --- sessions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    id_hash: str
    csrf: str
    lang: str
    sim_channel: str
    sim_lang: str | None
    sim_n: int

    @property
    def sandbox(self) -> str:
        """The simulator's contact: apart from real contacts, never counted or synced."""
        return f"sandbox:{self.id_hash[:12]}:{self.sim_n}"


async def load_session(bot: Bot, cookie: str | None) -> Session | None:
    """The session a cookie names, if its signature holds and it is live."""
    if not cookie or len(cookie) > 200:
        return None
    sid, _, mac = cookie.rpartition(".")
    if not sid:
        return None
    key = await secret(bot)
    if not hmac.compare_digest(mac, _sign(key, "session:" + sid)):
        return None
    row = await bot.store.fetchone(
        "SELECT * FROM console_sessions WHERE id_hash = ? AND ended_at IS NULL "
        "AND expires_at > ?", (digest(sid), _at()))
    if row is None:
        return None
    languages = bot.campaign.languages
    lang = row["lang"] if row["lang"] in languages else bot.campaign.default_language
    sim_lang = row["sim_lang"] if row["sim_lang"] in languages else None
    return Session(str(row["id_hash"]), _sign(key, "csrf:" + sid), lang,
                   str(row["sim_channel"]), sim_lang, int(row["sim_n"]))


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent), session.csrf)


async def end_session(bot: Bot, session: Session) -> None:
    async def job(conn: aiosqlite.Connection) -> None:
        await conn.execute("UPDATE console_sessions SET ended_at = ? WHERE id_hash = ?",
                           (_at(), session.id_hash))

    await bot.store.write(job)


async def update_session(bot: Bot, session: Session, **values: object) -> None:
    """Set the organizer's language or the simulator's settings of this session."""
    allowed = {"lang", "sim_channel", "sim_lang", "sim_n"}
    assert values and set(values) <= allowed
    assignments = ", ".join(f"{name} = ?" for name in values)

    async def job(conn: aiosqlite.Connection) -> None:
        await conn.execute(f"UPDATE console_sessions SET {assignments} WHERE id_hash = ?",
                           (*values.values(), session.id_hash))

    await bot.store.write(job)
