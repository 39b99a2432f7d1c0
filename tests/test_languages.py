"""All ten languages: the whole signing flow over SMS, keywords, language choice, provinces,
numbers and right-to-left Arabic. End-to-end cases drive one real bot process (this module's
`sms_bot`); pure cases call the parsing functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.campaign import load_campaign
from bot.i18n import RLM, Catalogs
from bot.sms_text import cost
from flows.keywords import ANSWERS, KEYWORDS, Answer, Keyword, match_answer, match_keyword
from flows.languages import parse_language
from flows.regions import PROVINCES, parse_region
from flows.words import fold_name
from tests.harness import ROOT, BotProcess, Twilio, new_number

LANGUAGES = ("en", "es", "fr", "tl", "pa", "hi", "zh", "vi", "ar", "uk")
NEW = ("pa", "hi", "zh", "vi", "ar", "uk")
UCS2_BUDGET, LIST_BUDGET = 2, 3


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs.load(load_campaign(ROOT / "campaign.toml"))


def segments(text: str) -> int:
    return cost(text).segments


# --- the whole signing flow, every language, over SMS -------------------------------------

# (language, number to pick it, its SIGN word, name, province typed, code stored, its yes word,
#  the goal as the thanks writes it, a word petition_2 must show).
FLOWS = [
    pytest.param("en", "1", "SIGN", "Mary Smith", "Ontario", "ON", "yes", "20,000", "SIGN",
                 id="english"),
    pytest.param("es", "2", "FIRMAR", "María López", "Ontário", "ON", "sí", "20.000", "FIRMAR",
                 id="spanish"),
    pytest.param("fr", "3", "SIGNER", "Élise Tremblay", "Québec", "QC", "oui", "20 000",
                 "SIGNER", id="french"),
    pytest.param("tl", "4", "PUMIRMA", "Jose Santos", "BC", "BC", "oo", "20,000", "PUMIRMA",
                 id="tagalog"),
    pytest.param("pa", "5", "ਦਸਤਖਤ", "ਗੁਰਪ੍ਰੀਤ ਕੌਰ", "ਓਨਟਾਰੀਓ", "ON", "ਹਾਂ", "20,000", "SIGN",
                 id="punjabi"),
    pytest.param("hi", "6", "साइन", "सुनीता शर्मा", "ओंटारियो", "ON", "haan", "20,000", "SIGN",
                 id="hindi"),
    pytest.param("zh", "7", "签名", "王小明", "卑诗", "BC", "是", "20,000", "签名", id="chinese"),
    pytest.param("vi", "8", "ky", "Nguyễn Văn An", "Quebec", "QC", "có", "20.000", "KY",
                 id="vietnamese"),
    pytest.param("ar", "9", "وقّع", "أحمد علي", "أونتاريو", "ON", "نعم", "20,000", "وقّع",
                 id="arabic"),
    pytest.param("uk", "10", "підпис", "Олена Коваль", "Альберта", "AB", "так", "20\xa0000",
                 "ПІДПИС", id="ukrainian"),
]


@pytest.mark.parametrize("lang,pick,sign,name,region,code,yes,goal,shown", FLOWS)
def test_whole_signing_flow_over_sms(twilio: Twilio, sms_bot: BotProcess, lang: str, pick: str,
                                     sign: str, name: str, region: str, code: str, yes: str,
                                     goal: str, shown: str) -> None:
    phone = new_number()
    (welcome,) = twilio.send(phone, "hello")
    assert "1 English" in welcome and "10 Українська" in welcome
    assert segments(welcome) <= LIST_BUDGET
    petition = twilio.send(phone, pick)
    assert len(petition) == 2 and shown in petition[1]
    (ask_name,) = twilio.send(phone, sign)
    (ask_region,) = twilio.send(phone, name)
    (confirm,) = twilio.send(phone, region)
    assert name in confirm or lang in ("es", "fr"), "the name as typed (GSM-7 mapped in es/fr)"
    (ask_optin,) = twilio.send(phone, yes)
    (thanks,) = twilio.send(phone, "1")
    assert goal in thanks

    sent = [*petition, ask_name, ask_region, confirm, ask_optin, thanks]
    for text in sent:
        assert segments(text) <= (1 if cost(text).encoding == "GSM-7" else UCS2_BUDGET), text
        assert text.startswith(RLM) == (lang == "ar"), "Arabic, and only Arabic, reads RTL"
    assert len({*sent}) == len(sent)

    (sig,) = sms_bot.query("SELECT * FROM signatures WHERE contact = ?", (phone,))
    assert (sig["full_name"], sig["region"], sig["language"], sig["opted_in_updates"]) == (
        name, code, lang, 1)


def test_the_language_list_shows_every_language_in_its_own_script(twilio: Twilio) -> None:
    (welcome,) = twilio.send(new_number(), "hi")
    for line in ("1 English", "2 Español", "3 Français", "4 Tagalog", "5 ਪੰਜਾਬੀ", "6 हिन्दी",
                 "7 中文", "8 Tiếng Việt", "9 العربية", "10 Українська"):
        assert line in welcome.splitlines()


# --- language choice ----------------------------------------------------------------------

# (typed at the language question, language picked, a word its petition_2 shows).
CHOICES = [
    pytest.param("5", "pa", "MADAD", id="punjabi-number"),
    pytest.param("pa", "pa", "MADAD", id="punjabi-code"),
    pytest.param("Punjabi", "pa", "MADAD", id="punjabi-english-name"),
    pytest.param("ਪੰਜਾਬੀ", "pa", "MADAD", id="punjabi-own-name"),
    pytest.param("panjabi", "pa", "MADAD", id="punjabi-romanized"),
    pytest.param("6", "hi", "MADAD", id="hindi-number"),
    pytest.param("HINDI", "hi", "MADAD", id="hindi-english-name"),
    pytest.param("हिन्दी", "hi", "MADAD", id="hindi-own-name"),
    pytest.param("हिंदी", "hi", "MADAD", id="hindi-own-name-anusvara"),
    pytest.param("7", "zh", "签名", id="chinese-number"),
    pytest.param("zh", "zh", "签名", id="chinese-code"),
    pytest.param("Chinese", "zh", "签名", id="chinese-english-name"),
    pytest.param("中文", "zh", "签名", id="chinese-own-name"),
    pytest.param("zhongwen", "zh", "签名", id="chinese-romanized"),
    pytest.param("普通话", "zh", "签名", id="chinese-putonghua"),
    pytest.param("8", "vi", "GIUP", id="vietnamese-number"),
    pytest.param("VI", "vi", "GIUP", id="vietnamese-code"),
    pytest.param("Vietnamese", "vi", "GIUP", id="vietnamese-english-name"),
    pytest.param("Tiếng Việt", "vi", "GIUP", id="vietnamese-own-name"),
    pytest.param("tieng viet", "vi", "GIUP", id="vietnamese-romanized"),
    pytest.param("9", "ar", "مساعدة", id="arabic-number"),
    pytest.param("٩", "ar", "مساعدة", id="arabic-number-in-arabic-digits"),
    pytest.param("ar", "ar", "مساعدة", id="arabic-code"),
    pytest.param("Arabic", "ar", "مساعدة", id="arabic-english-name"),
    pytest.param("العربية", "ar", "مساعدة", id="arabic-own-name"),
    pytest.param("عربي", "ar", "مساعدة", id="arabic-colloquial-name"),
    pytest.param("arabi", "ar", "مساعدة", id="arabic-romanized"),
    pytest.param("10", "uk", "ДОПОМОГА", id="ukrainian-number"),
    pytest.param("uk", "uk", "ДОПОМОГА", id="ukrainian-code"),
    pytest.param("Ukrainian", "uk", "ДОПОМОГА", id="ukrainian-english-name"),
    pytest.param("українська", "uk", "ДОПОМОГА", id="ukrainian-own-name"),
    pytest.param("ukrainska", "uk", "ДОПОМОГА", id="ukrainian-romanized"),
]


@pytest.mark.parametrize("typed,lang,shown", CHOICES)
def test_language_choice(twilio: Twilio, sms_bot: BotProcess, typed: str, lang: str,
                         shown: str) -> None:
    phone = new_number()
    twilio.send(phone, "hello")
    petition = twilio.send(phone, typed)
    assert len(petition) == 2 and shown in petition[1]
    stored = sms_bot.query("SELECT language FROM contacts WHERE address = ?", (phone,))
    assert stored[0][0] == lang


def test_hi_twice_is_a_greeting_not_hindi(twilio: Twilio) -> None:
    phone = new_number()
    twilio.send(phone, "hi")
    (again,) = twilio.send(phone, "hi")
    assert "number from the list" in again and "6 हिन्दी" in again


# Tagalog HINDI means no; `hindi` at the language question means Hindi. Both work.
def test_hindi_at_a_yes_no_question_from_a_tagalog_contact_means_no(twilio: Twilio,
                                                                    sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "4", "PUMIRMA", "Jose Santos", "ON")
    not_signed, menu = twilio.send(phone, "Hindi")
    assert "hindi ka pumirma" in not_signed and "PUMIRMA" in menu
    assert sms_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,)) == []
    assert sms_bot.query("SELECT language FROM contacts WHERE address = ?", (phone,))[0][0] == "tl"


def test_hindi_at_the_language_question_picks_hindi(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "4")  # a Tagalog contact ...
    assert "6 हिन्दी" in twilio.send(phone, "WIKA")[0]  # ... asks for the list again
    petition = twilio.send(phone, "hindi")
    assert "MADAD" in petition[1]
    assert sms_bot.query("SELECT language FROM contacts WHERE address = ?", (phone,))[0][0] == "hi"


def test_hindi_in_the_menu_from_a_tagalog_contact_is_not_a_language_switch(
        twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "4")
    (hint,) = twilio.send(phone, "hindi")
    assert "MENU" in hint and "naintindihan" in hint
    assert sms_bot.query("SELECT language FROM contacts WHERE address = ?", (phone,))[0][0] == "tl"


def test_hindi_in_the_menu_from_an_english_contact_switches_to_hindi(twilio: Twilio) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1")
    assert "MADAD" in twilio.send(phone, "Hindi")[1]


def test_nahi_from_a_hindi_contact_means_no_and_madad_keeps_the_step(twilio: Twilio) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "6", "SIGN", "सुनीता शर्मा")
    (help_text,) = twilio.send(phone, "madad")
    assert "RUKO" in help_text and "स्टेटस" in help_text
    (confirm,) = twilio.send(phone, "बीसी")
    assert "सुनीता शर्मा" in confirm
    not_signed, _menu = twilio.send(phone, "nahi")
    assert "नहीं किया" in not_signed


# --- keywords -----------------------------------------------------------------------------

# (typed, contact language or None, keyword). Every language's own words, with and without
# accents, in its script and in the Latin forms its speakers type.
KEYWORD_CASES = [
    pytest.param("ruko", None, Keyword.STOP, id="hi-pa-ruko"),
    pytest.param("BAND", "pa", Keyword.STOP, id="pa-band"),
    pytest.param("ਰੁਕੋ", None, Keyword.STOP, id="pa-ruko-gurmukhi"),
    pytest.param("ਬੰਦ ਕਰੋ", None, Keyword.STOP, id="pa-band-karo-gurmukhi"),
    pytest.param("madad", "pa", Keyword.HELP, id="pa-madad"),
    pytest.param("ਮਦਦ", None, Keyword.HELP, id="pa-madad-gurmukhi"),
    pytest.param("ਦਸਤਖ਼ਤ", None, Keyword.SIGN, id="pa-sign-with-nukta"),
    pytest.param("ਦਸਤਖਤ", None, Keyword.SIGN, id="pa-sign-without-nukta"),
    pytest.param("ਭਾਸ਼ਾ", None, Keyword.LANGUAGE, id="pa-language"),
    pytest.param("shuru", "pa", Keyword.START, id="pa-shuru"),
    pytest.param("ਮਿਟਾਓ", None, Keyword.DELETE, id="pa-delete"),
    pytest.param("रुको", None, Keyword.STOP, id="hi-ruko-devanagari"),
    pytest.param("madad", "hi", Keyword.HELP, id="hi-madad"),
    pytest.param("मदद!", None, Keyword.HELP, id="hi-madad-devanagari"),
    pytest.param("साइन", None, Keyword.SIGN, id="hi-sign"),
    pytest.param("bhasha", "hi", Keyword.LANGUAGE, id="hi-bhasha"),
    pytest.param("मेनू", None, Keyword.MENU, id="hi-menu"),
    pytest.param("mitao", "hi", Keyword.DELETE, id="hi-mitao"),
    pytest.param("停止", None, Keyword.STOP, id="zh-stop"),
    pytest.param("TD", None, Keyword.STOP, id="zh-td"),
    pytest.param("退訂", None, Keyword.STOP, id="zh-unsubscribe-traditional"),
    pytest.param("帮助。", None, Keyword.HELP, id="zh-help-fullwidth-stop"),
    pytest.param("签名", None, Keyword.SIGN, id="zh-sign"),
    pytest.param("語言", None, Keyword.LANGUAGE, id="zh-language-traditional"),
    pytest.param("菜单", None, Keyword.MENU, id="zh-menu"),
    pytest.param("删除", None, Keyword.DELETE, id="zh-delete"),
    pytest.param("开始", None, Keyword.START, id="zh-start"),
    pytest.param("dừng", None, Keyword.STOP, id="vi-stop"),
    pytest.param("DUNG", None, Keyword.STOP, id="vi-stop-no-marks"),
    pytest.param("dung lai", None, Keyword.STOP, id="vi-stop-two-words"),
    pytest.param("giúp", None, Keyword.HELP, id="vi-help"),
    pytest.param("giup", None, Keyword.HELP, id="vi-help-no-marks"),
    pytest.param("ký", None, Keyword.SIGN, id="vi-sign"),
    pytest.param("ky ten", None, Keyword.SIGN, id="vi-sign-two-words"),
    pytest.param("ngon ngu", None, Keyword.LANGUAGE, id="vi-language"),
    pytest.param("xóa", None, Keyword.DELETE, id="vi-delete"),
    pytest.param("bắt đầu", None, Keyword.START, id="vi-start"),
    pytest.param("bat dau", None, Keyword.START, id="vi-start-no-marks"),
    pytest.param("قف", None, Keyword.STOP, id="ar-stop"),
    pytest.param("إيقاف", None, Keyword.STOP, id="ar-stop-with-hamza"),
    pytest.param("ايقاف", None, Keyword.STOP, id="ar-stop-without-hamza"),
    pytest.param("مساعدة", None, Keyword.HELP, id="ar-help"),
    pytest.param("مساعده", None, Keyword.HELP, id="ar-help-ha-for-ta-marbuta"),
    pytest.param("mosa3da", None, Keyword.HELP, id="ar-help-arabizi"),
    pytest.param("وقّع", None, Keyword.SIGN, id="ar-sign-shadda"),
    pytest.param("وقع", None, Keyword.SIGN, id="ar-sign-bare"),
    pytest.param("اللغة", None, Keyword.LANGUAGE, id="ar-language"),
    pytest.param("القائمة", None, Keyword.MENU, id="ar-menu"),
    pytest.param("حذف", None, Keyword.DELETE, id="ar-delete"),
    pytest.param("عودة", None, Keyword.START, id="ar-start"),
    pytest.param("СТОП", None, Keyword.STOP, id="uk-stop"),
    pytest.param("зупинити", None, Keyword.STOP, id="uk-stop-verb"),
    pytest.param("допомога", None, Keyword.HELP, id="uk-help"),
    pytest.param("dopomoha", None, Keyword.HELP, id="uk-help-latin"),
    pytest.param("Підпис", None, Keyword.SIGN, id="uk-sign"),
    pytest.param("pidpys", None, Keyword.SIGN, id="uk-sign-latin"),
    pytest.param("мова", None, Keyword.LANGUAGE, id="uk-language"),
    pytest.param("меню", None, Keyword.MENU, id="uk-menu"),
    pytest.param("видалити", None, Keyword.DELETE, id="uk-delete"),
    pytest.param("старт", None, Keyword.START, id="uk-start"),
]


@pytest.mark.parametrize("text,lang,expected", KEYWORD_CASES)
def test_keywords_in_every_language(text: str, lang: str | None, expected: Keyword) -> None:
    found = match_keyword(text, lang)
    assert found is not None and found[0] is expected


@pytest.mark.parametrize("text,lang,word_lang", [
    pytest.param("ਮਦਦ", None, "pa", id="gurmukhi-is-punjabi"),
    pytest.param("मदद", None, "hi", id="devanagari-is-hindi"),
    pytest.param("madad", None, "", id="romanized-shared-by-two-says-nothing"),
    pytest.param("madad", "hi", "hi", id="romanized-in-the-contacts-own-language"),
    pytest.param("帮助", None, "zh", id="chinese"),
    pytest.param("giup", None, "vi", id="vietnamese"),
    pytest.param("مساعدة", None, "ar", id="arabic"),
    pytest.param("dopomoha", None, "uk", id="ukrainian-latin"),
    pytest.param("MENU", None, "en", id="menu-is-english-first"),
])
def test_the_language_a_keyword_belongs_to(text: str, lang: str | None, word_lang: str) -> None:
    found = match_keyword(text, lang)
    assert found is not None and found[1] == word_lang


def test_every_stop_word_stops_every_contact() -> None:
    for words in KEYWORDS.values():
        for word in words[Keyword.STOP]:
            for lang in LANGUAGES:
                found = match_keyword(word, lang)
                assert found is not None and found[0] is Keyword.STOP, (word, lang)


def test_every_language_has_every_keyword_and_answer() -> None:
    for lang in LANGUAGES:
        assert set(KEYWORDS[lang]) == set(Keyword), lang
        assert set(ANSWERS[lang]) == set(Answer), lang


# (typed, contact language, answer): only at yes/no and province questions.
ANSWER_CASES = [
    pytest.param("ਹਾਂ", "pa", Answer.YES, id="pa-haan"),
    pytest.param("haanji", "pa", Answer.YES, id="pa-haanji-romanized"),
    pytest.param("ਨਹੀਂ", "pa", Answer.NO, id="pa-nahin"),
    pytest.param("nahin", "pa", Answer.NO, id="pa-nahin-romanized"),
    pytest.param("੨", "pa", Answer.NO, id="pa-two-gurmukhi-digit"),
    pytest.param("haan", "hi", Answer.YES, id="hi-haan"),
    pytest.param("हाँ", "hi", Answer.YES, id="hi-haan-chandrabindu"),
    pytest.param("हां", "hi", Answer.YES, id="hi-haan-anusvara"),
    pytest.param("nahi", "hi", Answer.NO, id="hi-nahi"),
    pytest.param("नहीं", "hi", Answer.NO, id="hi-nahin-devanagari"),
    pytest.param("१", "hi", Answer.YES, id="hi-one-devanagari-digit"),
    pytest.param("छोड़ो", "hi", Answer.SKIP, id="hi-skip"),
    pytest.param("是", "zh", Answer.YES, id="zh-shi"),
    pytest.param("不要", "zh", Answer.NO, id="zh-buyao"),
    pytest.param("跳過", "zh", Answer.SKIP, id="zh-skip-traditional"),
    pytest.param("１", "zh", Answer.YES, id="zh-fullwidth-one"),
    pytest.param("có", "vi", Answer.YES, id="vi-co"),
    pytest.param("co", "vi", Answer.YES, id="vi-co-no-marks"),
    pytest.param("đúng", "vi", Answer.YES, id="vi-dung-right-is-yes"),
    pytest.param("không", "vi", Answer.NO, id="vi-khong"),
    pytest.param("khong", "vi", Answer.NO, id="vi-khong-no-marks"),
    pytest.param("ko", "vi", Answer.NO, id="vi-ko"),
    pytest.param("bo qua", "vi", Answer.SKIP, id="vi-skip"),
    pytest.param("نعم", "ar", Answer.YES, id="ar-naam"),
    pytest.param("na3am", "ar", Answer.YES, id="ar-naam-arabizi"),
    pytest.param("لا", "ar", Answer.NO, id="ar-la"),
    pytest.param("٢", "ar", Answer.NO, id="ar-two-arabic-digit"),
    pytest.param("تخطي", "ar", Answer.SKIP, id="ar-skip"),
    pytest.param("так", "uk", Answer.YES, id="uk-tak"),
    pytest.param("tak", "uk", Answer.YES, id="uk-tak-latin"),
    pytest.param("ні", "uk", Answer.NO, id="uk-ni"),
    pytest.param("далі", "uk", Answer.SKIP, id="uk-skip"),
    pytest.param("yes", "uk", Answer.YES, id="english-everywhere"),
    pytest.param("hindi", "tl", Answer.NO, id="tl-hindi-is-no"),
]


@pytest.mark.parametrize("text,lang,expected", ANSWER_CASES)
def test_answers_in_every_language(text: str, lang: str, expected: Answer) -> None:
    assert match_answer(text, lang) is expected


@pytest.mark.parametrize("text,lang", [
    pytest.param("hindi", "hi", id="hindi-is-not-no-for-a-hindi-contact"),
    pytest.param("haan", "zh", id="hindi-yes-not-for-a-chinese-contact"),
    pytest.param("dung", "vi", id="dung-without-marks-is-stop-not-yes"),
    pytest.param("так", "ar", id="ukrainian-yes-not-for-an-arabic-contact"),
])
def test_not_answers(text: str, lang: str) -> None:
    assert match_answer(text, lang) is None


# Keywords as a first message over SMS: answered in the word's language.
FIRST_WORDS = [
    pytest.param("ਮਦਦ", "ਸਟੇਟਸ", id="punjabi-help-in-punjabi"),
    pytest.param("मदद", "स्टेटस", id="hindi-help-in-hindi"),
    pytest.param("帮助", "停止", id="chinese-help-in-chinese"),
    pytest.param("giúp", "DUNG", id="vietnamese-help-in-vietnamese"),
    pytest.param("مساعدة", "«قف»", id="arabic-help-in-arabic"),
    pytest.param("допомога", "СТОП", id="ukrainian-help-in-ukrainian"),
    pytest.param("madad", "STOP to stop", id="shared-romanized-help-in-the-default"),
    pytest.param("签名", "名字", id="chinese-sign-asks-the-name-in-chinese"),
]


@pytest.mark.parametrize("text,fragment", FIRST_WORDS)
def test_keyword_as_first_message(twilio: Twilio, text: str, fragment: str) -> None:
    (answer,) = twilio.send(new_number(), text)
    assert fragment in answer


# (number picking the language, stop word, what the confirmation says to send, word sent back).
STOPS = [
    pytest.param("5", "ruko", "SHURU", "shuru", id="punjabi-ruko"),
    pytest.param("6", "रुको", "SHURU", "शुरू", id="hindi-ruko-devanagari"),
    pytest.param("7", "TD", "开始", "开始", id="chinese-td"),
    pytest.param("8", "dung", "BAT DAU", "bắt đầu", id="vietnamese-dung"),
    pytest.param("9", "قف", "«عودة»", "عودة", id="arabic-qif"),
    pytest.param("10", "стоп", "СТАРТ", "старт", id="ukrainian-stop"),
    pytest.param("1", "停止", "START", "INICIO", id="chinese-stop-stops-an-english-contact"),
]


@pytest.mark.parametrize("pick,word,told,restart", STOPS)
def test_stop_words_stop_and_start_words_restart(twilio: Twilio, sms_bot: BotProcess, pick: str,
                                                 word: str, told: str, restart: str) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", pick)
    (stopped,) = twilio.send(phone, word)
    assert told in stopped
    assert twilio.send(phone, "madad") == []
    assert sms_bot.query("SELECT stopped FROM contacts WHERE address = ?", (phone,))[0][0] == 1
    started = twilio.send(phone, restart)
    assert len(started) == 2
    assert sms_bot.query("SELECT stopped FROM contacts WHERE address = ?", (phone,))[0][0] == 0


# --- provinces ----------------------------------------------------------------------------

REGIONS = [
    pytest.param("ON", "ON", id="code"),
    pytest.param("Ontário", "ON", id="pt-accent"),
    pytest.param("ਓਨਟਾਰੀਓ", "ON", id="pa-ontario"),
    pytest.param("ਬ੍ਰਿਟਿਸ਼ ਕੋਲੰਬੀਆ", "BC", id="pa-bc"),
    pytest.param("ਅਲਬਰਟਾ", "AB", id="pa-alberta"),
    pytest.param("ओंटारियो", "ON", id="hi-ontario"),
    pytest.param("ब्रिटिश कोलंबिया", "BC", id="hi-bc"),
    pytest.param("क्यूबेक", "QC", id="hi-quebec"),
    pytest.param("安大略", "ON", id="zh-ontario"),
    pytest.param("安大略省", "ON", id="zh-ontario-province"),
    pytest.param("卑詩省", "BC", id="zh-bc-canadian-traditional"),
    pytest.param("不列颠哥伦比亚", "BC", id="zh-bc-mainland"),
    pytest.param("魁北克", "QC", id="zh-quebec"),
    pytest.param("曼尼托巴", "MB", id="zh-manitoba"),
    pytest.param("Ontario", "ON", id="vi-ontario"),
    pytest.param("Đảo Hoàng tử Edward", "PE", id="vi-pei"),
    pytest.param("dao hoang tu edward", "PE", id="vi-pei-no-marks"),
    pytest.param("أونتاريو", "ON", id="ar-ontario"),
    pytest.param("اونتاريو", "ON", id="ar-ontario-without-hamza"),
    pytest.param("كولومبيا البريطانية", "BC", id="ar-bc"),
    pytest.param("كولومبيا البريطانيه", "BC", id="ar-bc-ha-for-ta-marbuta"),
    pytest.param("ألبرتا", "AB", id="ar-alberta"),
    pytest.param("Онтаріо", "ON", id="uk-ontario"),
    pytest.param("Британська Колумбія", "BC", id="uk-bc"),
    pytest.param("Нова Шотландія", "NS", id="uk-nova-scotia"),
    pytest.param("Онтарио", "ON", id="ru-ontario"),
    pytest.param("安大", None, id="zh-partial"),
]


@pytest.mark.parametrize("text,expected", REGIONS)
def test_provinces_in_every_language(text: str, expected: str | None) -> None:
    assert parse_region(text) == expected


def test_every_province_name_means_one_province() -> None:
    seen: dict[str, str] = {}
    for code, names in PROVINCES.items():
        for name in names:
            key = fold_name(name)
            assert seen.setdefault(key, code) == code, (name, seen[key], code)
            assert parse_region(name) == code, name


@pytest.mark.parametrize("script,pattern", [
    pytest.param("pa", "\u0a00-\u0a7f", id="gurmukhi"),
    pytest.param("hi", "\u0900-\u097f", id="devanagari"),
    pytest.param("zh", "\u4e00-\u9fff", id="chinese"),
    pytest.param("ar", "\u0600-\u06ff", id="arabic"),
    pytest.param("uk", "\u0400-\u04ff", id="cyrillic"),
])
def test_all_thirteen_provinces_have_a_name_in_each_script(script: str, pattern: str) -> None:
    import re

    in_script = re.compile(f"[{pattern}]")
    for code, names in PROVINCES.items():
        assert any(in_script.search(name) for name in names), (script, code)


# --- numbers, names and right-to-left -----------------------------------------------------

NUMBERS = [
    pytest.param("en", 20000, "20,000", id="en"),
    pytest.param("es", 20000, "20.000", id="es"),
    pytest.param("fr", 20000, "20\u202f000", id="fr-narrow-nbsp"),
    pytest.param("tl", 20000, "20,000", id="tl"),
    pytest.param("pa", 20000, "20,000", id="pa"),
    pytest.param("hi", 20000, "20,000", id="hi"),
    pytest.param("hi", 1234567, "12,34,567", id="hi-lakh-grouping"),
    pytest.param("zh", 20000, "20,000", id="zh"),
    pytest.param("vi", 20000, "20.000", id="vi"),
    pytest.param("ar", 20000, "20,000", id="ar-latin-digits"),
    pytest.param("uk", 20000, "20\xa0000", id="uk-nbsp"),
]


@pytest.mark.parametrize("lang,value,expected", NUMBERS)
def test_numbers_are_formatted_for_each_locale(catalogs: Catalogs, lang: str, value: int,
                                               expected: str) -> None:
    assert catalogs.number(value, lang) == expected


def test_the_goal_in_a_text_is_formatted_for_the_locale(catalogs: Catalogs) -> None:
    assert "20\xa0000" in catalogs.text("uk", "thanks_news", count="5")
    assert "20.000" in catalogs.text("vi", "thanks_news", count="5")


@pytest.mark.parametrize("lang,name", [
    pytest.param("pa", "ਪੰਜਾਬੀ", id="pa"), pytest.param("hi", "हिन्दी", id="hi"),
    pytest.param("zh", "中文", id="zh"), pytest.param("vi", "Tiếng Việt", id="vi"),
    pytest.param("ar", "العربية", id="ar"), pytest.param("uk", "Українська", id="uk"),
])
def test_language_names_in_their_own_script(catalogs: Catalogs, lang: str, name: str) -> None:
    assert catalogs.language_name(lang) == name


def test_every_arabic_text_starts_with_one_rtl_mark(catalogs: Catalogs) -> None:
    for key in catalogs.texts["en"]:
        text = catalogs.text("ar", key, name="Maria Lopez", count="7", summary="x")
        assert text.startswith(RLM) and not text.startswith(RLM * 2), key
        assert RLM not in catalogs.text("en", key, name="x", count="7", summary="x")


def test_an_arabic_text_that_begins_with_a_latin_name_still_reads_rtl(twilio: Twilio) -> None:
    phone = new_number()
    (confirm,) = twilio.conversation(phone, "hi", "9", "SIGN", "Maria Lopez", "ON")[-1]
    assert confirm.startswith(RLM + "Maria Lopez،")


def test_telegram_gets_the_original_text_and_sms_the_mapped_one(catalogs: Catalogs) -> None:
    from bot.channels.sms import render
    from flows.types import Reply

    for lang in NEW:
        text = catalogs.text(lang, "ask_region")
        assert render(Reply(text, lang), catalogs.campaign) == text, "no GSM-7 mapping"
    spanish = catalogs.text("es", "ask_name")
    assert "¿Cómo" in spanish and render(Reply(spanish, "es"), catalogs.campaign) != spanish


@pytest.mark.parametrize("typed,expected", [
    pytest.param("11", None, id="past-the-end"),
    pytest.param("hi", None, id="hi-is-a-greeting"),
    pytest.param("6", "hi", id="six-is-hindi"),
    pytest.param("ua", "uk", id="ua-for-ukrainian"),
    pytest.param("Mandarin", "zh", id="mandarin"),
])
def test_parse_language_edges(catalogs: Catalogs, typed: str, expected: str | None) -> None:
    names = {code: catalogs.language_names(code) for code in LANGUAGES}
    assert parse_language(typed, LANGUAGES, names) == expected


# --- a new language: its catalog and one line in the campaign file, no code --------------

PT_WORDS = '''
msgid "words_stop"
msgstr "PARE | SAIR"

msgid "words_help"
msgstr "AJUDA"

msgid "words_sign"
msgstr "ASSINAR"

msgid "words_yes"
msgstr "SIM"

msgid "words_no"
msgstr "NÃO"

msgid "words_skip"
msgstr "PULAR"

msgid "words_provinces"
msgstr "QC = Quebeque | NS = Nova Escócia"
'''


def new_language(tmp_path: Path, words: str = PT_WORDS) -> dict[str, str]:
    """Portuguese added the way a translator would: a catalog (here the Spanish texts stand
    in for a translation) with its words, and `pt` in a copy of the campaign file."""
    import shutil

    locales = tmp_path / "locales"
    shutil.copytree(ROOT / "locales", locales)
    (locales / "pt" / "LC_MESSAGES").mkdir(parents=True)
    spanish = (locales / "es" / "LC_MESSAGES" / "bot.po").read_text(encoding="utf-8")
    (locales / "pt" / "LC_MESSAGES" / "bot.po").write_text(spanish + words, encoding="utf-8")
    campaign = (ROOT / "campaign.toml").read_text(encoding="utf-8").replace(
        'languages = ["en", "es", "fr", "tl", "pa", "hi", "zh", "vi", "ar", "uk"]',
        'languages = ["en", "pt"]').replace('gsm7_languages = ["es", "fr", "tl"]',
                                             'gsm7_languages = ["es", "fr", "tl", "pt"]')
    (tmp_path / "c.toml").write_text(campaign, encoding="utf-8")
    return {"CAMPAIGN_FILE": str(tmp_path / "c.toml"), "BOT_LOCALES_DIR": str(locales)}


def run_bot(tmp_path: Path, *args: str, stdin: str = "",
            **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))}
    return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), *args], cwd=tmp_path,
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env={**clean, "BOT_DB": str(tmp_path / "bot.sqlite3"), **env})


def test_a_new_language_needs_only_its_catalog_and_the_campaign_line(tmp_path: Path) -> None:
    env = new_language(tmp_path)
    steps = ["oi", "2", "ASSINAR", "Ana Cruz", "Quebeque", "SIM", "NÃO", "PARE"]
    chat = run_bot(tmp_path, "chat", "--contact", "+14165550777", stdin="\n".join(steps) + "\n",
                   **env)
    assert chat.returncode == 0, chat.stderr
    out = chat.stdout.rstrip("\n").split("\n\n")
    assert len(out) == len(steps) and "(no reply)" not in out[:-1]
    assert "2 Português" in out[0]
    assert "Ana Cruz" in out[4], "Quebeque was read as a province: the confirmation came"
    export = run_bot(tmp_path, "export", "signatures", "--format", "jsonl", **env)
    (row,) = [json.loads(line) for line in export.stdout.splitlines()]
    assert (row["language"], row["region"], row["opted_in_updates"]) == ("pt", "QC", False)
    assert "PARE" not in out[-1] and out[-1] != "(no reply)", "PARE stopped the contact"
    check = run_bot(tmp_path, "locales", "check", **env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "pt: no keywords of its own" not in check.stderr


@pytest.mark.parametrize("words,expected", [
    pytest.param("", "pt: no keywords of its own", id="no-words-a-warning"),
    pytest.param('\nmsgid "words_provinces"\nmsgstr "XX = Nowhere"\n', "'XX = Nowhere'",
                 id="unknown-province-code-an-error"),
    pytest.param('\nmsgid "words_stop"\nmsgstr "SIGN"\n', "collision: 'sign'",
                 id="a-stop-word-that-signs-an-error"),
])
def test_locales_check_guides_the_new_languages_words(tmp_path: Path, words: str,
                                                     expected: str) -> None:
    check = run_bot(tmp_path, "locales", "check", **new_language(tmp_path, words))
    assert expected in check.stderr
    assert check.returncode == (0 if words == "" else 1)
