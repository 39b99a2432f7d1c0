"""Keywords (STOP, HELP, SIGN, …) and short answers (yes, no, skip) in every language.

A keyword is a message that is exactly one of these words once folded (case, accents,
surrounding spaces and punctuation ignored). English words work for everyone; each
language's own words work too; every language's stop words stop any contact.

The ten bundled languages' words are in the tables below. A language's catalog can add words
(`words_stop`, `words_yes`, … in its .po file: `add_words`, at start-up), so a new language
needs only its catalog and a line in the campaign file.
"""

from __future__ import annotations

from collections.abc import Mapping
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

#: Each language's keywords, written as people type them. Folding (case, accents, surrounding
#: punctuation, `đ`/`d`, `ة`/`ه`, `ى`/`ي`) is applied to both sides, so `ARRÊT` covers `arret`,
#: but a romanized form (`ruko`, `dopomoha`) or a second spelling is a word of its own.
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
    # Punjabi: Gurmukhi, and the romanized words people type on an English keyboard.
    "pa": {
        Keyword.STOP: ("ਰੁਕੋ", "ਬੰਦ", "ਬੰਦ ਕਰੋ", "RUKO", "BAND", "BAND KARO"),
        Keyword.START: ("ਸ਼ੁਰੂ", "ਸ਼ੁਰੂ ਕਰੋ", "SHURU"),
        Keyword.HELP: ("ਮਦਦ", "ਸਹਾਇਤਾ", "MADAD"),
        Keyword.SIGN: ("ਦਸਤਖਤ", "ਦਸਤਖ਼ਤ", "ਸਾਈਨ", "DASTKHAT", "DASTAKHAT"),
        Keyword.LANGUAGE: ("ਭਾਸ਼ਾ", "ਬੋਲੀ", "BHASHA", "BOLI"),
        Keyword.MENU: ("ਮੀਨੂ", "ਮੇਨੂ"),
        Keyword.DELETE: ("ਮਿਟਾਓ", "ਹਟਾਓ", "MITAO", "HATAO"),
    },
    # Hindi: Devanagari (with and without chandrabindu/nukta), and romanized.
    "hi": {
        Keyword.STOP: ("रुको", "रुकें", "बंद", "बंद करो", "RUKO", "BAND", "BAND KARO"),
        Keyword.START: ("शुरू", "शुरु", "शुरू करो", "SHURU"),
        Keyword.HELP: ("मदद", "सहायता", "MADAD", "SAHAYTA"),
        Keyword.SIGN: ("साइन", "हस्ताक्षर", "दस्तखत", "दस्तख़त", "HASTAKSHAR", "DASTKHAT"),
        Keyword.LANGUAGE: ("भाषा", "BHASHA", "BHASA"),
        Keyword.MENU: ("मेनू", "मेन्यू"),
        Keyword.DELETE: ("मिटाओ", "मिटाएँ", "हटाओ", "MITAO", "HATAO"),
    },
    # Chinese: simplified, the traditional forms many Canadian readers type, and `TD`
    # (退订), the unsubscribe reply every Chinese SMS user knows.
    "zh": {
        Keyword.STOP: ("停止", "退订", "退訂", "TD", "TINGZHI"),
        Keyword.START: ("开始", "開始"),
        Keyword.HELP: ("帮助", "幫助", "帮忙", "幫忙", "BANGZHU"),
        Keyword.SIGN: ("签名", "簽名", "签字", "簽字", "QIANMING"),
        Keyword.LANGUAGE: ("语言", "語言", "YUYAN"),
        Keyword.MENU: ("菜单", "菜單", "选单", "選單"),
        Keyword.DELETE: ("删除", "刪除", "SHANCHU"),
    },
    # Vietnamese: folding drops the tone marks (`DỪNG` covers `dung`), not the bar of `đ`
    # (`đúng`, "right", must not become `dung`, "stop"): words with `đ` are also written with
    # `d`. `DUNG` is also a given name (Dũng): someone typing only that at the name question is
    # stopped, and told how to come back; STOP words come first.
    "vi": {
        Keyword.STOP: ("DỪNG", "DỪNG LẠI", "NGỪNG", "HỦY ĐĂNG KÝ", "HUỶ ĐĂNG KÝ",
                       "HUY DANG KY"),
        Keyword.START: ("BẮT ĐẦU", "BAT DAU"),
        Keyword.HELP: ("GIÚP", "GIÚP ĐỠ", "GIUP DO", "TRỢ GIÚP"),
        Keyword.SIGN: ("KÝ", "KÝ TÊN", "KÍ", "KÍ TÊN"),
        Keyword.LANGUAGE: ("NGÔN NGỮ", "NGONNGU"),
        Keyword.MENU: ("MENU",),
        Keyword.DELETE: ("XÓA", "XOÁ", "XÓA DỮ LIỆU"),
    },
    # Arabic, and Arabizi (Latin letters, 2 for ء, 3 for ع, 7 for ح). Not `ابدأ` for START: it
    # folds to `ابدا`, which is also أبداً, "never".
    "ar": {
        Keyword.STOP: ("قف", "توقف", "إيقاف", "أوقف", "وقف", "2IF", "WA2IF"),
        Keyword.START: ("عودة", "رجوع", "استئناف"),
        Keyword.HELP: ("مساعدة", "ساعدني", "MOSA3DA", "MUSA3ADA", "MOSA3ADA"),
        Keyword.SIGN: ("وقّع", "توقيع", "أوقّع", "TAWQI3", "WA22E3"),
        Keyword.LANGUAGE: ("اللغة", "لغة", "LUGHA", "LOGHA"),
        Keyword.MENU: ("القائمة", "قائمة", "منيو"),
        Keyword.DELETE: ("حذف", "امسح", "مسح", "7AZF", "HAZF"),
    },
    # Ukrainian: Cyrillic and Latin transliteration (`й` and `ї` fold to `и` and `і`).
    "uk": {
        Keyword.STOP: ("СТОП", "ЗУПИНИТИ", "ЗУПИНИ", "ZUPYNYTY"),
        Keyword.START: ("СТАРТ", "ПОЧАТИ", "POCHATY"),
        Keyword.HELP: ("ДОПОМОГА", "ДОПОМОЖІТЬ", "DOPOMOHA", "DOPOMOGA"),
        Keyword.SIGN: ("ПІДПИС", "ПІДПИСАТИ", "PIDPYS", "PIDPYSATY"),
        Keyword.LANGUAGE: ("МОВА", "MOVA"),
        Keyword.MENU: ("МЕНЮ", "MENIU", "MENYU"),
        Keyword.DELETE: ("ВИДАЛИТИ", "СТЕРТИ", "VYDALYTY"),
    },
}

#: yes / no / skip: read only at their questions, in the contact's language and English.
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
    "pa": {
        Answer.YES: ("੧", "ਹਾਂ", "ਹਾਂ ਜੀ", "ਹਾਂਜੀ", "ਜੀ", "HAAN", "HAN", "HA", "HANJI", "HAANJI",
                     "JI"),
        Answer.NO: ("੨", "ਨਹੀਂ", "ਨਹੀ", "ਨਾ", "ਨਾਂਹ", "ਜੀ ਨਹੀਂ", "NAHIN", "NAHI", "NA", "NAH"),
        Answer.SKIP: ("ਛੱਡੋ", "ਅੱਗੇ", "CHHADO", "AGGE"),  # not "chado"/"chodo": vulgar
    },
    "hi": {
        Answer.YES: ("१", "हाँ", "हां", "हा", "जी", "जी हाँ", "हाँ जी", "HAAN", "HAN", "HA", "JI",
                     "HAANJI"),
        Answer.NO: ("२", "नहीं", "नही", "ना", "जी नहीं", "NAHI", "NAHIN", "NA"),
        Answer.SKIP: ("छोड़ें", "छोड़ो", "आगे", "CHHODO", "AAGE"),
    },
    "zh": {
        Answer.YES: ("是", "是的", "好", "好的", "对", "對", "要", "SHI", "HAO"),
        Answer.NO: ("不", "不是", "否", "不要", "不用", "BU", "BUYAO"),
        Answer.SKIP: ("跳过", "跳過", "略过", "TIAOGUO"),
    },
    "vi": {
        Answer.YES: ("CÓ", "VÂNG", "DẠ", "Ừ", "ĐỒNG Ý", "DONG Y", "ĐÚNG"),
        Answer.NO: ("KHÔNG", "KO", "K", "KHG", "HÔNG"),
        Answer.SKIP: ("BỎ QUA",),
    },
    "ar": {
        Answer.YES: ("١", "۱", "نعم", "أيوه", "أيوة", "اه", "آه", "أجل", "NA3AM", "NAAM", "AYWA",
                     "AIWA"),
        Answer.NO: ("٢", "۲", "لا", "كلا", "LA", "LAA", "LA2"),
        Answer.SKIP: ("تخطي", "تخطى", "تجاوز", "SKIP"),
    },
    "uk": {
        Answer.YES: ("ТАК", "АГА", "ЗВИЧАЙНО", "TAK"),
        Answer.NO: ("НІ", "NI"),
        Answer.SKIP: ("ПРОПУСТИТИ", "ДАЛІ", "PROPUSTYTY", "DALI"),
    },
}

#: Words that mean one thing as a keyword or answer and another as a language name, kept on
#: purpose; `locales check` lists them instead of failing. Folded word -> why it is safe.
INTENDED_COLLISIONS: dict[str, str] = {
    "hindi": "Tagalog NO and the name of Hindi: answers are read only at yes/no questions, "
             "language names only at the language question and in the menu (where a word that "
             "answers yes/no in the contact's language does not switch the language)",
    "hi": "the code of Hindi and an English greeting: `hi` is not taken as Hindi's code "
          "(flows/languages.py NOT_CODES); Hindi is 6, `hindi` or `हिंदी`",
}

#: Letters people type either way for the same word: Arabic ta marbuta and alif maqsura
#: (often typed as ه and ي). Not Vietnamese đ: `đúng` (right) and `dừng` (stop) would meet.
_LOOSE = str.maketrans({"ة": "ه", "ى": "ي"})


def loosen(folded: str) -> str:
    """A folded word with the letters above made plain: `مساعدة` -> `مساعده`."""
    return folded.translate(_LOOSE)


def fold_word(text: str) -> str:
    """How typed text is compared with the words in these tables."""
    return loosen(fold(text))


T = TypeVar("T", Keyword, Answer)


def index_words(table: dict[str, dict[T, tuple[str, ...]]]) -> dict[str, dict[str, T]]:
    """language -> folded word -> what it means, for KEYWORDS or ANSWERS."""
    return {lang: {fold_word(w): key for key, words in kinds.items() for w in words}
            for lang, kinds in table.items()}


_KEYWORD_INDEX = index_words(KEYWORDS)
_ANSWER_INDEX = index_words(ANSWERS)

#: Catalog entries that hold a language's own words, `|` between them:
#: msgid "words_stop" / msgstr "PARE | PARAR".
WORD_ENTRIES: dict[str, Keyword | Answer] = {
    **{f"words_{k.value}": k for k in Keyword},
    **{f"words_{a.value}": a for a in Answer},
}


def split_words(raw: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in raw.split("|") if w.strip())


def add_words(lang: str, catalog: Mapping[str, str]) -> None:
    """Take the words a language's catalog gives (`words_stop`, …) into the tables."""
    global _KEYWORD_INDEX, _ANSWER_INDEX
    changed = False
    for entry, meaning in WORD_ENTRIES.items():
        words = split_words(catalog.get(entry, ""))
        if not words:
            continue
        table: dict[str, dict[Keyword | Answer, tuple[str, ...]]] = (
            KEYWORDS if isinstance(meaning, Keyword) else ANSWERS)  # type: ignore[assignment]
        have = table.setdefault(lang, {}).get(meaning, ())
        new = tuple(w for w in words if w not in have)
        if new:
            table[lang][meaning] = have + new
            changed = True
    if changed:
        _KEYWORD_INDEX, _ANSWER_INDEX = index_words(KEYWORDS), index_words(ANSWERS)


def match_keyword(text: str, lang: str | None) -> tuple[Keyword, str] | None:
    """The keyword a message is, and the language of the word, or None.

    The contact's own language is tried first, then English, then the others,
    so a word that means different things in two languages means what the
    contact's language says. A word that several other languages share (`madad`
    in Punjabi and Hindi) comes back with language "": it says nothing about
    which language the contact reads.
    """
    word = fold_word(text)
    if not word:
        return None
    for code in (lang, "en"):
        found = _KEYWORD_INDEX.get(code or "", {}).get(word)
        if found is not None:
            return found, code or ""
    others = [(code, index[word]) for code, index in _KEYWORD_INDEX.items() if word in index]
    if not others:
        return None
    keyword, word_lang = others[0][1], others[0][0]
    return keyword, word_lang if len(others) == 1 else ""


def match_answer(text: str, lang: str | None) -> Answer | None:
    """yes / no / skip in the contact's language or English (`1`, `2` always work)."""
    word = fold_word(text)
    for code in (lang, "en"):
        if code in _ANSWER_INDEX and word in _ANSWER_INDEX[code]:
            return _ANSWER_INDEX[code][word]
    return None


def words_for(keyword: Keyword, lang: str) -> tuple[str, ...]:
    return KEYWORDS.get(lang, {}).get(keyword, ())
