"""Settings, read once from the environment and a `.env` file in the working folder.

Every name here is part of the outside interface (see the README's Configuration table).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bot import ROOT


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (with optional quotes and `export `); comments and blanks ignored."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return values
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _organizers(raw: str) -> frozenset[str]:
    out = set()
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, ident = item.partition(":")
        if not sep or kind not in ("telegram", "sms", "whatsapp") or not ident:
            raise ConfigError(
                f"ORGANIZERS entry {item!r} is not 'telegram:<user id>' or 'sms:<+E.164 number>'"
            )
        ident = ident.strip()
        if kind in ("sms", "whatsapp"):  # `sms:+1 (416) 555-0123` names +14165550123
            from bot.phones import normalize_number  # phonenumbers: only when it is needed

            number = normalize_number(ident)
            if number is None:
                raise ConfigError(f"ORGANIZERS entry {item!r}: {ident!r} is not a phone number "
                                  "(write it as +E.164, e.g. sms:+14165550123)")
            ident = number
        out.add(f"{kind}:{ident}")
    return frozenset(out)



def _hours(raw: str) -> tuple[int, int]:
    try:
        start, end = (int(p) for p in raw.split("-", 1))
    except ValueError as exc:
        raise ConfigError(f"BROADCAST_HOURS={raw!r} must look like 09-21") from exc
    if not (0 <= start <= 24 and 0 <= end <= 24):
        raise ConfigError(f"BROADCAST_HOURS={raw!r}: hours must be between 00 and 24")
    return start, end


def _rate(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} must be a number of messages per second") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be above 0")
    return value


@dataclass(frozen=True)
class Settings:
    db_path: Path
    host: str
    port: int
    public_url: str
    campaign_file: Path
    telegram_token: str | None
    telegram_api_url: str
    telegram_webhook_secret: str | None
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_phone_number: str | None
    twilio_messaging_service_sid: str | None
    twilio_api_url: str
    twilio_whatsapp_number: str | None
    twilio_keywords: str
    whatsapp_buttons: bool  # choices as tappable Twilio Content, else numbered text
    central_store_url: str
    central_store_api_key: str | None
    organizers: frozenset[str]
    send_rate_telegram: float
    send_rate_sms: float
    broadcast_hours: tuple[int, int]
    log_format: str
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def sms_enabled(self) -> bool:
        return self.sms_off_reason is None

    @property
    def sms_off_reason(self) -> str | None:
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
            )
            if not value
        ]
        if not (self.twilio_phone_number or self.twilio_messaging_service_sid):
            missing.append("TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        return f"not configured: set {', '.join(missing)}" if missing else None

    @property
    def whatsapp_off_reason(self) -> str | None:
        if not self.twilio_whatsapp_number:
            return "not configured: set TWILIO_WHATSAPP_NUMBER"
        if not (self.twilio_account_sid and self.twilio_auth_token):
            return "not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"
        return None

    @property
    def whatsapp_enabled(self) -> bool:
        return self.whatsapp_off_reason is None

    @property
    def twilio_content_url(self) -> str:
        """The Content API: content.twilio.com beside the real REST API, else (a stand-in)
        the same base URL."""
        if self.twilio_api_url == "https://api.twilio.com":
            return "https://content.twilio.com"
        return self.twilio_api_url

    @property
    def twilio_enabled(self) -> bool:
        """Twilio's webhooks are served: SMS, WhatsApp or both are configured."""
        return self.sms_enabled or self.whatsapp_enabled

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token)

    @property
    def telegram_off_reason(self) -> str | None:
        return None if self.telegram_token else "not configured: set TELEGRAM_BOT_TOKEN"


def is_organizer(organizers: frozenset[str], address: str) -> bool:
    """Is the contact `address` (`+1416…`, `telegram:123`, `whatsapp:+1…`) on ORGANIZERS?"""
    if address.startswith(("telegram:", "whatsapp:")):
        return address in organizers
    return f"sms:{address}" in organizers


def load_settings(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings: the process environment wins over `.env` in the working folder."""
    cwd = cwd or Path.cwd()
    env = {**read_dotenv(cwd / ".env"), **(os.environ if environ is None else environ)}

    def get(name: str, default: str | None = None) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() else default

    def path(name: str, default: Path) -> Path:
        raw = get(name)
        p = Path(raw) if raw else default
        return p if p.is_absolute() else cwd / p

    host = get("BOT_HOST", "127.0.0.1") or "127.0.0.1"
    raw_port = get("BOT_PORT", "8080") or "8080"
    try:
        port = int(raw_port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError as exc:
        raise ConfigError(f"BOT_PORT={raw_port!r} must be a port number (0-65535)") from exc
    public_url = (get("PUBLIC_URL") or f"http://{host}:{port}").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"PUBLIC_URL={public_url!r} must start with http:// or https://")
    keywords = (get("TWILIO_KEYWORDS", "twilio") or "twilio").lower()
    if keywords not in ("twilio", "bot"):
        raise ConfigError(f"TWILIO_KEYWORDS={keywords!r} must be 'twilio' or 'bot'")
    log_format = (get("LOG_FORMAT", "text") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT={log_format!r} must be 'text' or 'json'")
    whatsapp = get("TWILIO_WHATSAPP_NUMBER")
    if whatsapp and not (whatsapp.startswith("whatsapp:+") and whatsapp[10:].isdigit()):
        raise ConfigError(
            f"TWILIO_WHATSAPP_NUMBER={whatsapp!r} must look like whatsapp:+14155238886"
        )
    buttons = (get("WHATSAPP_BUTTONS", "on") or "on").lower()
    if buttons not in ("on", "off"):
        raise ConfigError(f"WHATSAPP_BUTTONS={buttons!r} must be 'on' or 'off'")
    central = get("CENTRAL_STORE_URL") or f"sqlite:///{cwd / 'data' / 'central.sqlite3'}"
    if not central.startswith(("sqlite:///", "postgresql://", "postgres://", "https://", "http://")):
        raise ConfigError(
            f"CENTRAL_STORE_URL={central!r} must start with sqlite:///, postgresql:// or https://"
        )
    return Settings(
        db_path=path("BOT_DB", Path("data/bot.sqlite3")),
        host=host,
        port=port,
        public_url=public_url,
        campaign_file=path("CAMPAIGN_FILE", ROOT / "campaign.toml"),
        telegram_token=get("TELEGRAM_BOT_TOKEN"),
        telegram_api_url=(get("TELEGRAM_API_URL") or "https://api.telegram.org").rstrip("/"),
        telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
        twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
        twilio_phone_number=get("TWILIO_PHONE_NUMBER"),
        twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID"),
        twilio_api_url=(get("TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
        twilio_whatsapp_number=whatsapp,
        twilio_keywords=keywords,
        whatsapp_buttons=buttons == "on",
        central_store_url=central,
        central_store_api_key=get("CENTRAL_STORE_API_KEY"),
        organizers=_organizers(get("ORGANIZERS", "") or ""),
        send_rate_telegram=_rate("SEND_RATE_TELEGRAM", get("SEND_RATE_TELEGRAM", "25") or "25"),
        send_rate_sms=_rate("SEND_RATE_SMS", get("SEND_RATE_SMS", "1") or "1"),
        broadcast_hours=_hours(get("BROADCAST_HOURS", "09-21") or "09-21"),
        log_format=log_format,
        env=env,
    )
