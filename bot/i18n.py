"""Message catalogs (gettext .po files read with Babel), language names and number formats."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from bot import ROOT
from bot.campaign import Campaign
from bot.config import ConfigError
from flows.keywords import add_words
from flows.regions import add_names

#: The catalogs: `locales/<lang>/LC_MESSAGES/bot.po`. BOT_LOCALES_DIR points elsewhere (tests,
#: a translator trying a draft).
LOCALES_DIR = Path(os.environ.get("BOT_LOCALES_DIR") or ROOT / "locales")
DOMAIN = "bot"
log = logging.getLogger(__name__)
SOURCE_LANGUAGE = "en"

#: Our language codes -> the CLDR locale Babel formats them with.
BABEL_LOCALES: dict[str, str] = {"tl": "fil", "pa": "pa_Guru", "zh": "zh_Hans"}
#: Own names where CLDR's differs from what speakers call the language.
OWN_NAMES: dict[str, str] = {"tl": "Tagalog", "pa": "ਪੰਜਾਬੀ", "zh": "中文"}
#: Right-to-left languages.
RTL = frozenset({"ar", "fa", "ur", "he"})
#: U+200F RIGHT-TO-LEFT MARK. Every text in an RTL language starts with it, so a phone or
#: Telegram lays the message out right to left even when it begins with a Latin name, a number
#: or `STOP`; Latin words and numbers inside then keep their place. One UCS-2 unit per text,
#: and understood by every phone that shows Arabic (isolates, U+2066-2069, are not).
RLM = "\u200f"

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def rtl(text: str) -> str:
    """`text` marked to be laid out right to left (once)."""
    return text if text.startswith(RLM) else RLM + text


def babel_locale(lang: str) -> Locale:
    try:
        return Locale.parse(BABEL_LOCALES.get(lang, lang))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def read_catalog(path: Path) -> dict[str, str]:
    """msgid -> msgstr for every translated, non-fuzzy entry of one .po file."""
    with path.open("rb") as handle:
        catalog = read_po(handle, abort_invalid=True)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }


def learn_words(texts: dict[str, dict[str, str]]) -> list[str]:
    """The keywords, answers and province names catalogs give (`words_*`), into the flows'
    tables; returns the province pairs that could not be read."""
    bad = []
    for lang, entries in texts.items():
        add_words(lang, entries)
        bad += [f"{lang}: {pair!r}" for pair in add_names(entries)]
    return bad


@dataclass
class Catalogs:
    """Texts for one campaign in each of its languages; a missing text falls back to English."""

    campaign: Campaign
    texts: dict[str, dict[str, str]]

    @classmethod
    def load(cls, campaign: Campaign, locales_dir: Path = LOCALES_DIR) -> Catalogs:
        texts: dict[str, dict[str, str]] = {}
        for lang in {*campaign.languages, SOURCE_LANGUAGE}:
            path = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            if not path.exists():
                raise ConfigError(
                    f"language {lang!r} is in the campaign but {path} is missing: "
                    "add the catalog or remove the language from the campaign file"
                )
            try:
                texts[lang] = read_catalog(path)
            except Exception as exc:  # Babel raises several kinds on a broken file
                raise ConfigError(f"catalog {path} cannot be read: {exc}") from exc
        for lang, overrides in campaign.texts.items():
            texts.setdefault(lang, {}).update(overrides)
        for problem in learn_words(texts):
            log.warning("words_provinces: %s is not `CODE = name` with one of the 13 codes, or "
                        "the name is another province's; run `locales check`", problem)
        return cls(campaign, texts)

    def has(self, lang: str, key: str) -> bool:
        return key in self.texts.get(lang, {})

    def text(self, lang: str, key: str, **values: object) -> str:
        """The text `key` in `lang` with {placeholders} filled; campaign values always are."""
        template = (
            self.texts.get(lang, {}).get(key)
            or self.texts.get(self.campaign.default_language, {}).get(key)
            or self.texts[SOURCE_LANGUAGE].get(key)
        )
        if template is None:
            raise KeyError(f"no text {key!r} in any catalog")
        fill = {
            "org": self.campaign.organization,
            "petition_org": self.campaign.petition_organization,
            "target": self.campaign.target_in(lang),
            "goal": self.number(self.campaign.goal, lang),
            # a value that is itself a text (the summary) keeps no mark of its own inside
            **{k: str(v).removeprefix(RLM) for k, v in values.items()},
        }
        text = PLACEHOLDER.sub(lambda m: fill.get(m.group(1), m.group(0)), template)
        return rtl(text) if lang in RTL else text

    def number(self, value: int, lang: str) -> str:
        return format_decimal(value, locale=babel_locale(lang))

    def language_name(self, lang: str) -> str:
        """The language's name in itself: `Español`, `Français`, `Tagalog`."""
        if lang in OWN_NAMES:
            return OWN_NAMES[lang]
        name = babel_locale(lang).get_display_name(babel_locale(lang)) or lang
        name = name.split(" (")[0]
        return name[:1].upper() + name[1:]

    def language_names(self, lang: str) -> list[str]:
        """Every name `lang` is known by: its own name and its English name."""
        english = babel_locale(lang).get_display_name("en") or lang
        return [self.language_name(lang), english, english.split(" (")[0]]
