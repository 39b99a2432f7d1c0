"""Keyword, yes/no, language and province parsing: pure functions, labelled cases."""

from __future__ import annotations

import pytest

from flows.keywords import KEYWORDS, Answer, Keyword, match_answer, match_keyword
from flows.languages import parse_language
from flows.regions import PROVINCES, parse_region
from flows.words import clean_free_text, fold

KEYWORD_CASES = [
    pytest.param("STOP", None, Keyword.STOP, id="stop"),
    pytest.param("  stop  ", None, Keyword.STOP, id="stop-spaces"),
    pytest.param("Stop.", None, Keyword.STOP, id="stop-punctuated"),
    pytest.param("¡PARAR!", "es", Keyword.STOP, id="parar-exclaimed"),
    pytest.param("arret", None, Keyword.STOP, id="arret-bare"),
    pytest.param("ARRÊT", "tl", Keyword.STOP, id="arret-any-language"),
    pytest.param("tigil", "fr", Keyword.STOP, id="tigil-from-french-contact"),
    pytest.param("Opt out", None, Keyword.STOP, id="opt-out-two-words"),
    pytest.param("unstop", None, Keyword.START, id="unstop"),
    pytest.param("Info", None, Keyword.HELP, id="info"),
    pytest.param("AYUDA", "es", Keyword.HELP, id="ayuda"),
    pytest.param("firmar", None, Keyword.SIGN, id="firmar"),
    pytest.param("Signer", None, Keyword.SIGN, id="signer"),
    pytest.param("PUMIRMA", None, Keyword.SIGN, id="pumirma"),
    pytest.param("lang", None, Keyword.LANGUAGE, id="lang"),
    pytest.param("Menú", "es", Keyword.MENU, id="menu-accented"),
    pytest.param("borrar", None, Keyword.DELETE, id="borrar"),
    pytest.param("SUPPRIMER", None, Keyword.DELETE, id="supprimer"),
    pytest.param("BURAHIN", None, Keyword.DELETE, id="burahin"),
]


@pytest.mark.parametrize("text,lang,expected", KEYWORD_CASES)
def test_keywords(text: str, lang: str | None, expected: Keyword) -> None:
    found = match_keyword(text, lang)
    assert found is not None and found[0] is expected


NOT_KEYWORDS = [
    pytest.param("stop it", id="longer-message"),
    pytest.param("please stop", id="word-inside"),
    pytest.param("", id="empty"),
    pytest.param("...", id="punctuation-only"),
    pytest.param("yes", id="yes-is-an-answer-not-a-keyword"),
    pytest.param("stopp", id="typo"),
]


@pytest.mark.parametrize("text", NOT_KEYWORDS)
def test_not_keywords(text: str) -> None:
    assert match_keyword(text, "en") is None


def test_every_language_stop_word_stops_any_contact() -> None:
    for words in KEYWORDS.values():
        for word in words[Keyword.STOP]:
            for lang in KEYWORDS:
                found = match_keyword(word, lang)
                assert found is not None and found[0] is Keyword.STOP, (word, lang)


ANSWER_CASES = [
    pytest.param("1", "es", Answer.YES, id="one"),
    pytest.param("2", "tl", Answer.NO, id="two"),
    pytest.param("Y", None, Answer.YES, id="y"),
    pytest.param("n", "fr", Answer.NO, id="n-english-everywhere"),
    pytest.param("SÍ", "es", Answer.YES, id="si-accented"),
    pytest.param("si", "es", Answer.YES, id="si-bare"),
    pytest.param("Oui!", "fr", Answer.YES, id="oui"),
    pytest.param("non", "fr", Answer.NO, id="non"),
    pytest.param("OO", "tl", Answer.YES, id="oo"),
    pytest.param("hindi", "tl", Answer.NO, id="hindi-is-no-in-tagalog"),
    pytest.param("saltar", "es", Answer.SKIP, id="saltar"),
    pytest.param("SKIP", "fr", Answer.SKIP, id="skip-english"),
    pytest.param("laktaw", "tl", Answer.SKIP, id="laktaw"),
]


@pytest.mark.parametrize("text,lang,expected", ANSWER_CASES)
def test_answers(text: str, lang: str | None, expected: Answer) -> None:
    assert match_answer(text, lang) is expected


@pytest.mark.parametrize("text,lang", [
    pytest.param("3", "en", id="three"),
    pytest.param("oui", "es", id="french-yes-for-a-spanish-contact"),
    pytest.param("maybe", "en", id="maybe"),
])
def test_not_answers(text: str, lang: str) -> None:
    assert match_answer(text, lang) is None


LANGS = ("en", "es", "fr", "tl")
NAMES = {"en": ["English"], "es": ["Español", "Spanish"], "fr": ["Français", "French"],
         "tl": ["Tagalog", "Filipino"]}


@pytest.mark.parametrize("text,expected", [
    pytest.param("2", "es", id="number"),
    pytest.param(" 4 ", "tl", id="number-spaced"),
    pytest.param("es", "es", id="code"),
    pytest.param("Spanish", "es", id="english-name"),
    pytest.param("ESPAÑOL", "es", id="own-name"),
    pytest.param("espanol", "es", id="own-name-unaccented"),
    pytest.param("francais", "fr", id="francais"),
    pytest.param("Filipino", "tl", id="filipino"),
    pytest.param("5", None, id="out-of-range"),
    pytest.param("0", None, id="zero"),
    pytest.param("klingon", None, id="unknown"),
    pytest.param("", None, id="empty"),
])
def test_language_choice(text: str, expected: str | None) -> None:
    assert parse_language(text, LANGS, NAMES) == expected


@pytest.mark.parametrize("text,expected", [
    pytest.param("ON", "ON", id="code"),
    pytest.param("on", "ON", id="code-lower"),
    pytest.param("Ontario", "ON", id="name"),
    pytest.param("Ontário", "ON", id="accented"),
    pytest.param("québec", "QC", id="quebec-fr"),
    pytest.param("Colombie-Britannique", "BC", id="bc-fr"),
    pytest.param("Columbia Británica", "BC", id="bc-es"),
    pytest.param("b.c.", "BC", id="bc-dotted"),
    pytest.param("Île-du-Prince-Édouard", "PE", id="pei-fr"),
    pytest.param("Nueva Escocia", "NS", id="ns-es"),
    pytest.param("nwt", "NT", id="nwt"),
    pytest.param("Atlantis", None, id="unknown"),
    pytest.param("O N", None, id="split-code"),
])
def test_regions(text: str, expected: str | None) -> None:
    assert parse_region(text) == expected


def test_thirteen_regions() -> None:
    assert len(PROVINCES) == 13
    for code in PROVINCES:
        assert parse_region(code) == code


@pytest.mark.parametrize("text,expected", [
    pytest.param("  Arrêt. ", "arret", id="accents-and-edges"),
    pytest.param("हिन्दी!", fold("हिन्दी"), id="devanagari-keeps-vowel-signs"),
    pytest.param("a   b", "a b", id="inner-spaces"),
    pytest.param("🙂 hi 🙂", "hi", id="emoji-edges"),
])
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_fold_keeps_devanagari_vowel_signs() -> None:
    assert fold("हिन्दी").endswith("ी")


def test_clean_free_text() -> None:
    assert clean_free_text(" Ana\x00\u200b  Cruz\n", 80) == "Ana Cruz"
    assert len(clean_free_text("x" * 500, 80)) == 80
