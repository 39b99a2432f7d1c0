"""`python run_bot.py locales check`: passes on the bundled catalogs, fails on broken ones.

Broken catalogs live in a temporary copy of locales/ that BOT_LOCALES_DIR points the bot at;
keyword-table collisions are checked in-process with tables made for the case.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.campaign import load_campaign
from bot.i18n import Catalogs
from bot.locales_check import AnswerTable, Findings, Table, check_words
from flows.keywords import ANSWERS, KEYWORDS, Answer, Keyword
from tests.harness import ROOT

LANGUAGES = ("en", "es", "fr", "tl", "pa", "hi", "zh", "vi", "ar", "uk")


def locales_check(workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_",
                                                                        "BOT_LOCALES_DIR"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "locales", "check"],
        cwd=workdir, capture_output=True, text=True, timeout=60,
        env={**clean, "BOT_DB": str(workdir / "bot.sqlite3"), **env},
    )


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    return locales_check(tmp_path_factory.mktemp("bundled"))


def test_the_bundled_catalogs_pass(bundled: subprocess.CompletedProcess[str]) -> None:
    assert bundled.returncode == 0, bundled.stdout + bundled.stderr
    assert bundled.stdout.rstrip().endswith("locales check: ok")
    assert "error:" not in bundled.stderr and "Traceback" not in bundled.stderr


def test_it_states_the_budget(bundled: subprocess.CompletedProcess[str]) -> None:
    assert "GSM-7 1 segment" in bundled.stdout
    assert "UCS-2 2 segments (134 units)" in bundled.stdout
    assert "language list" in bundled.stdout and "3 segments (201 units)" in bundled.stdout


def test_it_prints_the_segments_of_a_whole_signing_per_language(
        bundled: subprocess.CompletedProcess[str]) -> None:
    table = bundled.stdout.split("Segments of one whole signing")[1].split("\n\n")[0]
    header, *rows = table.strip().splitlines()[1:]
    assert header.split() == ["lang", "welcome(en)", "petition", "ask_name", "ask_region",
                              "confirm", "ask_optin", "thanks", "total"]
    assert [row.split()[0] for row in rows] == list(LANGUAGES)
    after = [re.sub(r"\(\d+\)", "", row).split() for row in rows]  # drop "(before mapping)"
    totals = {cells[0]: int(cells[-1]) for cells in after}
    assert totals["en"] <= 11 and all(total <= 16 for total in totals.values()), totals


def test_it_shows_what_the_gsm7_mapping_saves(bundled: subprocess.CompletedProcess[str]) -> None:
    line = next(ln for ln in bundled.stdout.splitlines() if ln.startswith("GSM-7 mapping"))
    saved = dict(re.findall(r"(\w\w) (\d+ -> \d+)", line))
    assert set(saved) == {"es", "fr", "tl"}, "the campaign's gsm7_languages; not vi"
    before, after = (int(n) for n in saved["es"].split(" -> "))
    assert after < before


def test_it_lists_shared_and_intended_collisions(bundled: subprocess.CompletedProcess[str]) -> None:
    assert "shared keyword: 'menu'" in bundled.stdout
    assert "shared keyword: 'ruko' is STOP in hi, STOP in pa" in bundled.stdout
    assert "intended: 'hindi'" in bundled.stdout


# --- broken catalogs ----------------------------------------------------------------------

def po(locales: Path, lang: str) -> Path:
    return locales / lang / "LC_MESSAGES" / "bot.po"


def edit(locales: Path, lang: str, change: Callable[[str], str]) -> None:
    path = po(locales, lang)
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def msgstr(text: str, key: str, change: Callable[[str], str]) -> str:
    """The catalog `text` with the msgstr of `key` changed."""
    pattern = re.compile(rf'(msgid "{key}"\nmsgstr ")(.*)(")')
    return pattern.sub(lambda m: m[1] + change(m[2]) + m[3], text, count=1)


def drop_message(text: str, key: str) -> str:
    return re.sub(rf'\n(#\..*\n)*msgid "{key}"\nmsgstr ".*"\n', "\n", text, count=1)


def add_norwegian(locales: Path) -> None:
    """A draft Norwegian catalog: its code `no` is also the answer NO."""
    shutil.copytree(locales / "en", locales / "no")


# (what is broken, how, a fragment of the error).
BROKEN = [
    pytest.param(lambda d: edit(d, "pa", lambda t: drop_message(t, "help")),
                 "pa: missing text 'help'", id="missing-message"),
    pytest.param(lambda d: edit(d, "hi", lambda t: msgstr(
        t, "thanks_news", lambda s: s.replace("{count}", "{ginti}"))),
                 "hi: 'thanks_news' has placeholders ['ginti', 'goal']", id="placeholder-renamed"),
    pytest.param(lambda d: edit(d, "zh", lambda t: msgstr(
        t, "already_signed", lambda s: s.replace("{goal}", ""))),
                 "zh: 'already_signed' has placeholders ['count']", id="placeholder-dropped"),
    pytest.param(lambda d: edit(d, "vi", lambda t: msgstr(t, "help", lambda s: s + " " + s)),
                 "vi: 'help' takes 4 UCS-2 segments", id="ucs2-over-budget"),
    pytest.param(lambda d: edit(d, "en", lambda t: msgstr(
        t, "menu", lambda s: s + " Reply MENU to see this list again, any time you like it.")),
                 "en: 'menu' takes 2 GSM-7 segments", id="gsm7-over-budget"),
    pytest.param(lambda d: edit(d, "en", lambda t: msgstr(
        t, "welcome", lambda s: "Hello and welcome, friend! " + s)),
                 "en: 'welcome' takes 4 UCS-2 segments", id="welcome-with-list-over-budget"),
    pytest.param(add_norwegian, "collision: 'no' is an answer (NO in en, NO in es) and a "
                 "language name (no)", id="language-code-collides-with-an-answer"),
    pytest.param(lambda d: shutil.rmtree(d / "uk"),
                 "uk: the campaign has this language but", id="catalog-missing"),
    pytest.param(lambda d: po(d, "ar").write_text('msgid "x"\nmsgstr "unterminated\n'),
                 "ar: ", id="catalog-unreadable"),
]


@pytest.mark.parametrize("breaking,error", BROKEN)
def test_a_broken_catalog_fails_the_check(tmp_path: Path, breaking: Callable[[Path], None],
                                          error: str) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(ROOT / "locales", locales)
    breaking(locales)
    result = locales_check(tmp_path, BOT_LOCALES_DIR=str(locales))
    assert result.returncode == 1, result.stdout + result.stderr
    assert error in result.stderr
    assert "locales check: failed" in result.stdout
    assert "Traceback" not in result.stderr


# (what is off, how, a fragment of the warning): the check still passes.
WARNINGS = [
    pytest.param(lambda d: edit(d, "en", lambda t: msgstr(
        t, "ask_name", lambda s: s.replace("What is", "What’s"))),
                 "en: 'ask_name' is UCS-2 because of '’' U+2019", id="stray-curly-quote"),
    pytest.param(lambda d: edit(d, "es", lambda t: msgstr(
        t, "petition_2", lambda s: s.replace("FIRMAR", "FIRMEN"))),
                 "es: 'petition_2' asks for 'FIRMEN', which is no keyword",
                 id="text-asks-for-an-unknown-word"),
    pytest.param(lambda d: edit(d, "zh", lambda t: msgstr(
        t, "menu", lambda s: s.replace("“签名”", "“签到”"))),
                 "zh: 'menu' asks for '签到'", id="quoted-unknown-word"),
    pytest.param(lambda d: shutil.copytree(d / "en", d / "sw"),
                 "texts are still the English text", id="new-catalog-not-translated"),
    pytest.param(lambda d: shutil.copytree(d / "en", d / "sw"),
                 "sw: no keywords of its own", id="new-language-without-keywords"),
]


def test_mapping_vietnamese_to_gsm7_is_warned_against(tmp_path: Path) -> None:
    campaign = (ROOT / "campaign.toml").read_text(encoding="utf-8")
    campaign = campaign.replace('gsm7_languages = ["es", "fr", "tl"]',
                                'gsm7_languages = ["es", "fr", "tl", "vi"]')
    (tmp_path / "c.toml").write_text(campaign, encoding="utf-8")
    result = locales_check(tmp_path, CAMPAIGN_FILE=str(tmp_path / "c.toml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vi is in the campaign's gsm7_languages, but Vietnamese tone marks" in result.stderr
    assert "vi 16 -> " in result.stdout, "and the saving is shown, so the trade is visible"


@pytest.mark.parametrize("breaking,warning", WARNINGS)
def test_warnings_guide_without_failing(tmp_path: Path, breaking: Callable[[Path], None],
                                        warning: str) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(ROOT / "locales", locales)
    breaking(locales)
    result = locales_check(tmp_path, BOT_LOCALES_DIR=str(locales))
    assert result.returncode == 0, result.stdout + result.stderr
    assert warning in result.stderr


# --- keyword tables (in-process) ----------------------------------------------------------

@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs.load(load_campaign(ROOT / "campaign.toml"))


def more_keywords(lang: str, kind: Keyword, *words: str) -> Table:
    """KEYWORDS with `words` added to one language's `kind`."""
    changed = {code: dict(kinds) for code, kinds in KEYWORDS.items()}
    changed[lang][kind] = (*changed[lang][kind], *words)
    return changed


def more_answers(lang: str, kind: Answer, *words: str) -> AnswerTable:
    changed = {code: dict(kinds) for code, kinds in ANSWERS.items()}
    changed[lang][kind] = (*changed[lang][kind], *words)
    return changed


# (keyword table, answer table, a fragment of the error).
COLLISIONS = [
    pytest.param(more_keywords("vi", Keyword.HELP, "ruko"), ANSWERS,
                 "'ruko' is a keyword meaning STOP in hi, STOP in pa, HELP in vi",
                 id="keyword-means-two-things"),
    pytest.param(more_keywords("uk", Keyword.SIGN, "так"), ANSWERS,
                 "'так' is a keyword (SIGN in uk) and an answer (YES in uk)",
                 id="keyword-is-an-answer-in-its-own-language"),
    pytest.param(more_keywords("zh", Keyword.MENU, "OO"), ANSWERS,
                 "'oo' is a keyword (MENU in zh) and an answer (YES in tl)",
                 id="keyword-is-an-answer-in-another-language"),
    pytest.param(more_keywords("pa", Keyword.LANGUAGE, "punjabi"), ANSWERS,
                 "'punjabi' is a keyword (LANGUAGE in pa) and a language name (pa)",
                 id="keyword-is-a-language-name"),
    pytest.param(KEYWORDS, more_answers("vi", Answer.YES, "arabi"),
                 "'arabi' is an answer (YES in vi) and a language name (ar)",
                 id="answer-is-a-language-name"),
    pytest.param(KEYWORDS, more_answers("hi", Answer.YES, "no"),
                 "'no' is YES in hi but NO in en", id="answer-contradicts-english"),
]


@pytest.mark.parametrize("keywords,answers,error", COLLISIONS)
def test_keyword_collisions_are_errors(catalogs: Catalogs, keywords: Table,
                                       answers: AnswerTable, error: str) -> None:
    found = Findings()
    check_words(catalogs, list(LANGUAGES), found, keywords, answers)
    assert any(error in line for line in found.errors), found.errors


def test_the_bundled_tables_have_no_collisions(catalogs: Catalogs) -> None:
    found = Findings()
    check_words(catalogs, list(LANGUAGES), found)
    assert found.errors == []
    assert any(line.startswith("intended: 'hindi'") for line in found.notes)
