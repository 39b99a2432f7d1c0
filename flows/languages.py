"""Picking a language from a typed answer: a number, a code, or a name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flows.words import fold_name

#: Extra names people type for a language, besides its code and its English and own names.
ALIASES: dict[str, tuple[str, ...]] = {
    "en": ("english", "ingles", "anglais", "ingles"),
    "fr": ("french", "francais", "frances"),
    "es": ("spanish", "espanol", "castellano", "espagnol", "kastila"),
    "tl": ("tagalog", "filipino", "pilipino", "tagalo"),
}


def parse_language(
    text: str, languages: Sequence[str], names: Mapping[str, Sequence[str]]
) -> str | None:
    """The language code chosen by `text`, or None.

    `languages` is the campaign's numbered list; `names` gives, per code, the
    names it is known by (English name, own name, romanized own name).
    """
    answer = fold_name(text)
    if not answer:
        return None
    if answer.isdigit():
        number = int(answer)
        return languages[number - 1] if 1 <= number <= len(languages) else None
    for code in languages:
        known = {code.lower(), *ALIASES.get(code, ())}
        known.update(fold_name(name) for name in names.get(code, ()))
        if answer in known:
            return code
    return None
