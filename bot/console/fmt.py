"""Numbers, dates and names for the organizer's language (Babel, CLDR data)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from bot.i18n import RTL, babel_locale
from flows.regions import PROVINCES

CHANNEL_NAMES = {"sms": "SMS", "telegram": "Telegram", "whatsapp": "WhatsApp"}


class Fmt:
    """Formats for one organizer language; times are shown in the campaign's time zone."""

    def __init__(self, lang: str, timezone: str) -> None:
        self.lang = lang
        self.locale = babel_locale(lang)
        self.zone = ZoneInfo(timezone)

    @property
    def dir(self) -> str:
        return "rtl" if self.lang in RTL else "ltr"

    def num(self, value: float) -> str:
        return format_decimal(value, locale=self.locale)

    def share(self, part: float, whole: float) -> str:
        """`part` of `whole` as a percentage with at most one decimal: `12.5%`, `12,5 %`."""
        ratio = part / whole if whole else 0.0
        digits = 3
        while 0 < ratio and round(ratio, digits) == 0 and digits < 6:
            digits += 1  # 5 of 20,000 is 0.03%, not 0%
        return format_percent(round(ratio, digits), locale=self.locale,
                              decimal_quantization=False)

    def money(self, usd: float, precise: bool = False) -> str:
        """US dollars: to the cent, or `precise` to a hundredth of a cent (a price per SMS)."""
        if precise:
            return format_currency(round(usd, 4), "USD", locale=self.locale,
                                   decimal_quantization=False)
        return format_currency(round(usd, 2), "USD", locale=self.locale)

    def day(self, value: date) -> str:
        """A short day: `Mar 5`, `5 mars`."""
        return format_skeleton("MMMd", value, locale=self.locale)

    def date(self, value: date) -> str:
        return format_date(value, "medium", locale=self.locale)

    def when(self, iso: str | None) -> str:
        """`2026-11-28T14:03:07Z` as a local date and time; `—` when there is none."""
        if not iso:
            return "—"
        try:
            moment = datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return iso
        local = moment.astimezone(self.zone)
        pattern = str(self.locale.datetime_formats.get("medium", "{1} {0}"))
        return pattern.replace("{1}", format_date(local.date(), "medium", locale=self.locale)) \
            .replace("{0}", format_time(local, "short", locale=self.locale))


def language_label(code: str, own_name: str) -> str:
    return f"{own_name} ({code})" if own_name != code else code


def province_name(code: str) -> str:
    if code in ("-", "", None):
        return "Skipped or unknown"
    names = PROVINCES.get(code)
    return f"{names[0]} ({code})" if names else code


def channel_name(code: str) -> str:
    return CHANNEL_NAMES.get(code, code)
