"""Picking a language from a typed answer: a number, a code, or a name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flows.keywords import loosen
from flows.words import fold_name

#: Extra names people type for a language, besides its code and its English and own names
#: (which come from Babel): romanized own names, other spellings, names in other languages.
ALIASES: dict[str, tuple[str, ...]] = {
    "en": ("english", "ingles", "anglais", "inglés", "angrezi", "英语", "英文"),
    "fr": ("french", "francais", "frances", "francés"),
    "es": ("spanish", "espanol", "castellano", "espagnol", "kastila"),
    "tl": ("tagalog", "filipino", "pilipino", "tagalo"),
    "pa": ("punjabi", "panjabi", "punjabee", "ਪੰਜਾਬੀ", "पंजाबी", "gurmukhi"),
    "hi": ("hindi", "हिंदी", "हिन्दी"),
    "zh": ("chinese", "zhongwen", "中文", "汉语", "漢語", "华语", "華語", "普通话", "普通話",
           "mandarin", "putonghua", "hanyu", "简体中文", "chinois", "chino"),
    "vi": ("vietnamese", "tieng viet", "tiengviet", "tiếng việt", "viet", "việt", "vietnamien",
           "vietnamita"),
    "ar": ("arabic", "arabi", "3arabi", "عربي", "عربى", "العربيه", "arabe"),
    "uk": ("ukrainian", "ukrainska", "ukrainska mova", "українська", "українська мова",
           "ukrainien", "ucraniano", "ua"),
}

#: Codes that are also common words, so are not taken as the code: `hi` is a greeting (a new
#: contact who says hi twice must not land in Hindi). The number and the names still work.
NOT_CODES = frozenset({"hi"})


def _key(text: str) -> str:
    return loosen(fold_name(text))


def names_of(code: str, names: Mapping[str, Sequence[str]]) -> set[str]:
    """Every folded word that picks `code`: its code, aliases and names."""
    known = {_key(alias) for alias in ALIASES.get(code, ())}
    known.update(_key(name) for name in names.get(code, ()))
    if code.lower() not in NOT_CODES:
        known.add(code.lower())
    known.discard("")
    return known


def parse_language(
    text: str, languages: Sequence[str], names: Mapping[str, Sequence[str]]
) -> str | None:
    """The language code chosen by `text`, or None.

    `languages` is the campaign's numbered list; `names` gives, per code, the
    names it is known by (English name, own name, romanized own name).
    """
    answer = _key(text)
    if not answer:
        return None
    if answer.isdecimal():
        number = int(answer)
        return languages[number - 1] if 1 <= number <= len(languages) else None
    for code in languages:
        if answer in names_of(code, names):
            return code
    return None
