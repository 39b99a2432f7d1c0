"""Keywords (STOP, HELP, SIGN, …) and short answers (yes, no, skip) in every language.

A keyword is a message that is exactly one of these words once folded (case, accents,
surrounding spaces and punctuation ignored). English words work for everyone; each
language's own words work too; every language's stop words stop any contact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from flows.words import fold


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    SIGN = "sign"
    LANGUAGE = "language"
    MENU = "menu"
    DELETE = "delete"


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    SKIP = "skip"


#: Twilio's default opt-out handling answers these exact English words itself over SMS.
TWILIO_WORDS: dict[str, Keyword] = {
    **{w: Keyword.STOP for w in "stop stopall unsubscribe cancel end quit revoke optout".split()},
    **{w: Keyword.START for w in "start unstop yes".split()},
    **{w: Keyword.HELP for w in "help info".split()},
}

KEYWORDS: dict[str, dict[Keyword, tuple[str, ...]]] = {
    "en": {
        Keyword.STOP: ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                       "OPTOUT", "OPT OUT"),
        Keyword.START: ("START", "UNSTOP"),
        Keyword.HELP: ("HELP", "INFO"),
        Keyword.SIGN: ("SIGN",),
        Keyword.LANGUAGE: ("LANGUAGE", "LANG"),
        Keyword.MENU: ("MENU",),
        Keyword.DELETE: ("DELETE",),
    },
    "es": {
        Keyword.STOP: ("PARAR", "ALTO", "BAJA"),
        Keyword.START: ("INICIO", "INICIAR", "EMPEZAR"),
        Keyword.HELP: ("AYUDA",),
        Keyword.SIGN: ("FIRMAR", "FIRMA"),
        Keyword.LANGUAGE: ("IDIOMA",),
        Keyword.MENU: ("MENÚ",),
        Keyword.DELETE: ("BORRAR", "ELIMINAR"),
    },
    "fr": {
        Keyword.STOP: ("ARRÊT", "ARRETER", "ARRÊTER"),
        Keyword.START: ("REPRENDRE",),
        Keyword.HELP: ("AIDE",),
        Keyword.SIGN: ("SIGNER",),
        Keyword.LANGUAGE: ("LANGUE",),
        Keyword.MENU: ("MENU",),
        Keyword.DELETE: ("SUPPRIMER", "EFFACER"),
    },
    "tl": {
        Keyword.STOP: ("TIGIL", "HINTO"),
        Keyword.START: ("SIMULA",),
        Keyword.HELP: ("TULONG",),
        Keyword.SIGN: ("PUMIRMA", "PIRMA"),
        Keyword.LANGUAGE: ("WIKA",),
        Keyword.MENU: ("MENU",),
        Keyword.DELETE: ("BURAHIN",),
    },
}

ANSWERS: dict[str, dict[Answer, tuple[str, ...]]] = {
    "en": {
        Answer.YES: ("1", "Y", "YES", "YEP", "YEAH", "OK", "OKAY"),
        Answer.NO: ("2", "N", "NO", "NOPE"),
        Answer.SKIP: ("SKIP",),
    },
    "es": {Answer.YES: ("SÍ", "S", "CLARO"), Answer.NO: ("NO",), Answer.SKIP: ("SALTAR", "OMITIR")},
    "fr": {Answer.YES: ("OUI", "O"), Answer.NO: ("NON",), Answer.SKIP: ("PASSER", "SAUTER")},
    "tl": {
        Answer.YES: ("OO", "OPO", "SIGE"),
        Answer.NO: ("HINDI", "HINDE", "AYOKO", "AYAW"),
        Answer.SKIP: ("LAKTAW",),
    },
}


T = TypeVar("T", Keyword, Answer)


def _index(table: dict[str, dict[T, tuple[str, ...]]]) -> dict[str, dict[str, T]]:
    return {lang: {fold(w): key for key, words in kinds.items() for w in words}
            for lang, kinds in table.items()}


_KEYWORD_INDEX = _index(KEYWORDS)
_ANSWER_INDEX = _index(ANSWERS)


def match_keyword(text: str, lang: str | None) -> tuple[Keyword, str] | None:
    """The keyword a message is, and the language of the word, or None.

    The contact's own language is tried first, then English, then the others,
    so a word that means different things in two languages means what the
    contact's language says.
    """
    word = fold(text)
    if not word:
        return None
    order = [code for code in (lang, "en") if code in _KEYWORD_INDEX]
    order += [code for code in _KEYWORD_INDEX if code not in order]
    for code in order:
        found = _KEYWORD_INDEX[code].get(word)
        if found is not None:
            return found, code
    return None


def match_answer(text: str, lang: str | None) -> Answer | None:
    """yes / no / skip in the contact's language or English (`1`, `2` always work)."""
    word = fold(text)
    for code in (lang, "en"):
        if code in _ANSWER_INDEX and word in _ANSWER_INDEX[code]:
            return _ANSWER_INDEX[code][word]
    return None


def words_for(keyword: Keyword, lang: str) -> tuple[str, ...]:
    return KEYWORDS.get(lang, {}).get(keyword, ())
