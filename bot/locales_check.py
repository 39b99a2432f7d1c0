"""`locales check`: what a translator (or a campaign change) has to get right before it ships.

- every catalog has every message of the English one, with the same {placeholders};
- no keyword means two things, and no keyword or yes/no answer is also a language name, in a
  way that changes meaning (except the collisions flows/keywords.py documents on purpose);
- each SMS text, as the bot sends it, fits its segment budget:

  GSM-7 text                                   1 segment  (160 characters)
  UCS-2 text (Gurmukhi, Devanagari, Chinese,   2 segments (134 UTF-16 units)
    Vietnamese, Arabic, Cyrillic)
  a text with the numbered language list       3 segments (201 units): the list of ten
    (the welcome, language_prompt,               languages in their own scripts is UCS-2
    language_retry)                              and alone takes 100 units

- and it prints what one whole signing costs in each language, and what the GSM-7 mapping
  (campaign `gsm7_languages`) saves.

Exit 1 on any error; warnings do not fail the check.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.campaign import Campaign, load_campaign
from bot.config import Settings
from bot.i18n import (
    DOMAIN,
    LOCALES_DIR,
    PLACEHOLDER,
    SOURCE_LANGUAGE,
    Catalogs,
    learn_words,
    read_catalog,
)
from bot.sms_text import KEEP_ACCENTS, Cost, cost, to_gsm7
from flows.keywords import (
    ANSWERS,
    INTENDED_COLLISIONS,
    KEYWORDS,
    WORD_ENTRIES,
    Answer,
    Keyword,
    fold_word,
    index_words,
)
from flows.languages import NOT_CODES, names_of
from flows.regions import NAMES_ENTRY, PROVINCES
from flows.types import Choice, Reply

#: Segments one SMS text may take, by encoding; texts carrying the language list get more.
BUDGET = {"GSM-7": 1, "UCS-2": 2}
LIST_BUDGET = 3
#: Texts that are never an SMS of their own: Telegram buttons and command descriptions.
NOT_SMS = ("button_", "command_")
#: Texts sent with the numbered language list under them.
LIST_TEXTS = ("welcome", "language_prompt", "language_retry")
#: One whole signing over SMS: (column, the texts sent for it).
FLOW: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("welcome", ("welcome",)),
    ("petition", ("petition_1", "petition_2")),
    ("ask_name", ("ask_name",)),
    ("ask_region", ("ask_region",)),
    ("confirm", ("confirm",)),
    ("ask_optin", ("ask_optin",)),
    ("thanks", ("thanks_news",)),
)
SAMPLE_NAME = "Maria Lopez Cruz"  # 16 characters: the budget leaves room for most names
SAMPLE_COUNT = 12345
#: Capitalised words in texts that are not keywords and need not be.
NOT_KEYWORDS = frozenset({"pr", "ok", "sms", "id"})


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    """One SMS as the bot sends it: its text before and after the GSM-7 mapping."""

    key: str
    raw: Cost
    sent: Cost
    budget: int
    text: str


# --- loading ------------------------------------------------------------------------------

def catalog_path(locales_dir: Path, lang: str) -> Path:
    return locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def languages_to_check(campaign: Campaign, locales_dir: Path) -> list[str]:
    """The campaign's languages in its order, then any other catalog found on disk."""
    on_disk = sorted(p.parent.parent.name for p in locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return [*campaign.languages, *(lang for lang in on_disk if lang not in campaign.languages)]


def load_all(campaign: Campaign, locales_dir: Path, found: Findings) -> tuple[Catalogs, list[str]]:
    """Every catalog that can be read (campaign texts applied), and the languages read."""
    texts: dict[str, dict[str, str]] = {}
    for lang in languages_to_check(campaign, locales_dir):
        path = catalog_path(locales_dir, lang)
        if not path.exists():
            found.errors.append(f"{lang}: the campaign has this language but {path} is missing: "
                                f"copy locales/{SOURCE_LANGUAGE} there and translate it")
            continue
        try:
            texts[lang] = read_catalog(path)
        except Exception as exc:  # Babel raises several kinds on a broken file
            found.errors.append(f"{lang}: {path} cannot be read: {exc}")
    for lang, overrides in campaign.texts.items():
        texts.setdefault(lang, {}).update(overrides)
    for pair in learn_words(texts):
        found.errors.append(f"{pair} in {NAMES_ENTRY}: write `CODE = name` with one of the "
                            "13 two-letter codes, a name no other province has")
    readable = [lang for lang in languages_to_check(campaign, locales_dir) if lang in texts]
    return Catalogs(dataclasses.replace(campaign, languages=tuple(readable)), texts), readable


# --- completeness and placeholders --------------------------------------------------------

def check_messages(catalogs: Catalogs, lang: str, source: dict[str, str], found: Findings) -> None:
    texts = catalogs.texts[lang]
    for key in sorted(set(source) - set(texts)):
        found.errors.append(f"{lang}: missing text {key!r} (English: {source[key]!r})")
    for key in sorted(set(texts) - set(source) - set(WORD_ENTRIES) - {NAMES_ENTRY}):
        found.warnings.append(f"{lang}: {key!r} is not in the English catalog (unused)")
    if lang != SOURCE_LANGUAGE:
        same = [key for key in source if texts.get(key) == source[key] and len(source[key]) > 8]
        if same:  # `pybabel init` from the English catalog copies its texts
            found.warnings.append(f"{lang}: {len(same)} texts are still the English text "
                                  f"(not translated yet?): {', '.join(same[:5])}"
                                  f"{' …' if len(same) > 5 else ''}")
    for key in sorted(set(texts) & set(source)):
        want = sorted(PLACEHOLDER.findall(source[key]))
        got = sorted(PLACEHOLDER.findall(texts[key]))
        if want != got:
            found.errors.append(f"{lang}: {key!r} has placeholders {got}, English has {want}: "
                                "keep every {name} exactly as in English")


# --- SMS cost -----------------------------------------------------------------------------

def sample(catalogs: Catalogs, lang: str, key: str, with_list: bool,
           campaign: Campaign) -> Sent:
    """`key` in `lang` as an SMS: sample values filled, the language list under it if sent so."""
    text = catalogs.text(lang, key, name=SAMPLE_NAME,
                         count=catalogs.number(SAMPLE_COUNT, lang),
                         summary=catalogs.text(lang, "petition_summary"))
    choices = tuple(Choice(catalogs.language_name(c), c) for c in campaign.languages)
    plain = Reply(text, lang, choices if with_list else (), numbered=with_list).plain()
    sent = to_gsm7(plain) if lang in campaign.gsm7_languages else plain
    c = cost(sent)
    budget = LIST_BUDGET if with_list else BUDGET[c.encoding]
    return Sent(key, cost(plain), c, budget, sent)


def why_ucs2(text: str) -> str:
    """The characters that keep a text out of GSM-7, for the translator."""
    odd = sorted({ch for ch in text if cost(ch).encoding == "UCS-2"})
    shown = " ".join(f"{ch!r} U+{ord(ch):04X}" for ch in odd[:4])
    return shown + (" …" if len(odd) > 4 else "")


def check_costs(catalogs: Catalogs, lang: str, source: dict[str, str], campaign: Campaign,
                found: Findings) -> list[Sent]:
    sent: list[Sent] = []
    for key in source:
        if key.startswith(NOT_SMS) or not catalogs.has(lang, key):
            continue
        with_list = key in LIST_TEXTS and (key != "welcome" or lang == campaign.default_language)
        s = sample(catalogs, lang, key, with_list, campaign)
        sent.append(s)
        if s.sent.segments > s.budget:
            found.errors.append(
                f"{lang}: {key!r} takes {s.sent.segments} {s.sent.encoding} segments "
                f"({s.sent.units} units{', with the language list' if with_list else ''}; "
                f"budget {s.budget}): shorten it")
        if key == "welcome" and not with_list:
            as_default = sample(catalogs, lang, key, True, campaign)
            if as_default.sent.segments > LIST_BUDGET:
                found.warnings.append(
                    f"{lang}: 'welcome' with the language list takes {as_default.sent.segments} "
                    f"segments; shorten it before making {lang} the default language")
    gsm = [s for s in sent if s.sent.encoding == "GSM-7"]
    if len(gsm) * 2 > len(sent):  # a GSM-7 language: a stray character doubles a text's cost
        for s in sent:
            if s.sent.encoding == "UCS-2" and s.key not in LIST_TEXTS:
                found.warnings.append(f"{lang}: {s.key!r} is UCS-2 because of {why_ucs2(s.text)}")
    return sent


# --- keywords, answers and language names -------------------------------------------------

def _owners(pairs: Iterable[tuple[str, str, str]]) -> dict[str, set[tuple[str, str]]]:
    owners: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for word, lang, meaning in pairs:
        owners[word].add((lang, meaning))
    return owners


def _said(owners: set[tuple[str, str]]) -> str:
    """`STOP in hi, STOP in pa`; for language names (no meaning) just the codes."""
    return ", ".join(f"{meaning} in {lang}" if meaning else lang
                     for lang, meaning in sorted(owners))


Table = dict[str, dict[Keyword, tuple[str, ...]]]
AnswerTable = dict[str, dict[Answer, tuple[str, ...]]]


def check_words(catalogs: Catalogs, languages: list[str], found: Findings,
                keyword_table: Table = KEYWORDS, answer_table: AnswerTable = ANSWERS) -> None:
    """Collisions that change what a word does (see the module docstring)."""
    keyword_index, answer_index = index_words(keyword_table), index_words(answer_table)
    keywords = _owners((w, lang, k.name) for lang, words in keyword_index.items()
                       for w, k in words.items())
    answers = _owners((w, lang, a.name) for lang, words in answer_index.items()
                      for w, a in words.items())
    names = _owners((w, code, "") for code in languages
                    for w in names_of(code, {code: catalogs.language_names(code)}))

    def fail(word: str, what: str) -> None:
        if word in INTENDED_COLLISIONS:
            found.notes.append(f"intended: {word!r} is {what} ({INTENDED_COLLISIONS[word]})")
        else:
            found.errors.append(f"collision: {word!r} is {what}")

    for word, owners in sorted(keywords.items()):
        meanings = {meaning for _, meaning in owners}
        if len(meanings) > 1:
            fail(word, f"a keyword meaning {_said(owners)}")
        elif len(owners) > 1:
            found.notes.append(f"shared keyword: {word!r} is {_said(owners)} (same meaning)")
        if word in names:
            fail(word, f"a keyword ({_said(owners)}) and a language name ({_said(names[word])})")
        if word in answers:
            fail(word, f"a keyword ({_said(owners)}) and an answer ({_said(answers[word])}): "
                       "keywords are read first, so the answer could never be given")
    english = answer_index.get("en", {})
    for lang, mine in answer_index.items():
        if lang == "en":
            continue
        for word in sorted(set(mine) & set(english)):
            if mine[word] is not english[word]:
                fail(word, f"{mine[word].name} in {lang} but {english[word].name} in en")
    for word, owners in sorted(answers.items()):
        if word in names:
            fail(word, f"an answer ({_said(owners)}) and a language name ({_said(names[word])})")
    for word, owners in sorted(names.items()):
        if len({lang for lang, _ in owners}) > 1:
            fail(word, f"a name of several languages ({_said(owners)})")
    for code in sorted(NOT_CODES & set(languages)):
        found.notes.append(f"intended: {code!r} is not read as a language code "
                           f"({INTENDED_COLLISIONS.get(code, 'a common word')})")
    for lang in languages:
        if lang not in keyword_table:
            found.warnings.append(f"{lang}: no keywords of its own: only English STOP/HELP/… "
                                  "will work for these contacts; add words_stop, words_help, "
                                  "… to its catalog (docs/translating.md)")


#: Words a text tells people to send: capitalised Latin or Cyrillic words, and words in quotes.
_CAPS = "A-Z\u0400-\u042F"  # Latin and Cyrillic capitals
_TOLD = re.compile(rf"\b([{_CAPS}][{_CAPS} ]*[{_CAPS}])\b|[“«]([^”»]+)[”»]")


def check_told_words(catalogs: Catalogs, lang: str, found: Findings) -> None:
    """A word a text asks for (`Reply FIRMAR`, «وقّع», “签名”) should be a keyword or answer."""
    keywords, answers = index_words(KEYWORDS), index_words(ANSWERS)
    known = {w for words in keywords.values() for w in words}
    known |= set(answers.get(lang, {})) | set(answers.get("en", {}))
    known |= {code.lower() for code in PROVINCES} | NOT_KEYWORDS
    for key, template in catalogs.texts[lang].items():
        if key.startswith(NOT_SMS):
            continue
        for caps, quoted in _TOLD.findall(PLACEHOLDER.sub(" ", template)):
            phrase = quoted or caps
            words = [phrase] if fold_word(phrase) in known else phrase.split(" ")
            for word in words:
                if len(word) > 1 and fold_word(word) not in known:
                    found.warnings.append(f"{lang}: {key!r} asks for {word!r}, which is no "
                                          "keyword or answer (add it to flows/keywords.py)")


# --- output -------------------------------------------------------------------------------

def _table(rows: list[list[str]], left: int = 1) -> str:
    """Rows as aligned columns: the first `left` to the left, numbers to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w)
                  in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows)


def flow_table(catalogs: Catalogs, campaign: Campaign) -> tuple[str, dict[str, tuple[int, int]]]:
    """Segments of one whole signing per language, and (before, after) GSM-7 mapping totals."""
    default = campaign.default_language
    rows = [["lang", f"welcome({default})", *(name for name, _ in FLOW[1:]), "total"]]
    totals: dict[str, tuple[int, int]] = {}
    for lang in campaign.languages:
        if lang not in catalogs.texts:
            continue
        row, before, after = [lang], 0, 0
        for column, keys in FLOW:
            texts = [sample(catalogs, default if column == "welcome" else lang, key,
                            column == "welcome", campaign) for key in keys]
            b = sum(t.raw.segments for t in texts)
            a = sum(t.sent.segments for t in texts)
            before, after = before + b, after + a
            row.append(str(a) if a == b else f"{a} ({b})")
        row.append(str(after) if after == before else f"{after} ({before})")
        rows.append(row)
        totals[lang] = (before, after)
    return _table(rows), totals


def check(settings: Settings, locales_dir: Path | None = None) -> int:
    locales_dir = locales_dir or LOCALES_DIR
    campaign = load_campaign(settings.campaign_file)
    found = Findings()
    source_path = catalog_path(locales_dir, SOURCE_LANGUAGE)
    if not source_path.exists():
        print(f"error: the English catalog {source_path} is missing", file=sys.stderr)
        return 1
    source = read_catalog(source_path)
    catalogs, languages = load_all(campaign, locales_dir, found)

    print(f"Catalogs in {locales_dir}: {' '.join(languages)}")
    print(f"SMS budget per text: GSM-7 {BUDGET['GSM-7']} segment (160 characters), "
          f"UCS-2 {BUDGET['UCS-2']} segments (134 units); with the numbered language list "
          f"(welcome, language_prompt, language_retry) {LIST_BUDGET} segments (201 units).")
    rows = [["lang", "name", "texts", "encoding", "max seg"]]
    for lang in languages:
        check_messages(catalogs, lang, source, found)
        check_told_words(catalogs, lang, found)
        sent = check_costs(catalogs, lang, source, campaign, found)
        encodings = "/".join(sorted({s.sent.encoding for s in sent if s.key not in LIST_TEXTS}))
        worst = max((s.sent.segments for s in sent), default=0)
        rows.append([lang, catalogs.language_name(lang), str(len(catalogs.texts[lang])),
                     encodings, str(worst)])
    print(_table(rows, left=2))
    check_words(catalogs, languages, found)
    for lang in sorted(campaign.gsm7_languages & set(KEEP_ACCENTS)):
        found.warnings.append(f"{lang} is in the campaign's gsm7_languages, but "
                              f"{KEEP_ACCENTS[lang]}: take it out")

    table, totals = flow_table(catalogs, campaign)
    print(f"\nSegments of one whole signing over SMS (the welcome and its list are in "
          f"{campaign.default_language}, the default language; (n) = before the GSM-7 mapping):")
    print(table)
    mapped = [lang for lang in campaign.languages if lang in campaign.gsm7_languages]
    if mapped:
        print("\nGSM-7 mapping (campaign gsm7_languages), one signing before -> after: " +
              ", ".join(f"{lang} {totals[lang][0]} -> {totals[lang][1]}"
                        for lang in mapped if lang in totals))
    for line in found.notes:
        print(f"note: {line}")
    sys.stdout.flush()
    for line in found.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in found.errors:
        print(f"error: {line}", file=sys.stderr)
    sys.stderr.flush()
    print("locales check: " + (f"failed ({len(found.errors)} errors)" if found.errors else "ok"))
    return 1 if found.errors else 0
