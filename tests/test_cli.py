"""The command line as an organizer runs it: real processes, real files."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT, BotProcess

EXPORT_HEADER = ["signature_id", "campaign", "full_name", "region", "channel", "language",
                 "opted_in_updates", "signed_at", "contact"]


def run(workdir: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), *args],
        cwd=workdir, input=stdin, capture_output=True, text=True, timeout=60,
        env={**clean, "BOT_DB": str(workdir / "bot.sqlite3"), **env},
    )


def blocks(stdout: str) -> list[str]:
    return stdout.rstrip("\n").split("\n\n")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database where two people signed through `chat` (one in Spanish, one in English)."""
    workdir = tmp_path_factory.mktemp("cli")
    es = run(workdir, "chat", "--contact", "+14165550123",
             stdin="hi\n2\nFIRMAR\nMaría López\nON\n1\n1\n")
    assert es.returncode == 0, es.stderr
    en = run(workdir, "chat", "--contact", "+1 (604) 555-0199",
             stdin="hello\n1\nSIGN\nJohn Doe\nskip\n1\n2\n")
    assert en.returncode == 0, en.stderr
    return workdir


def test_chat_piped_gives_one_block_per_line(tmp_path: Path) -> None:
    lines = ["hi", "2", "SIGN"]
    result = run(tmp_path, "chat", "--contact", "+14165550123", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = blocks(result.stdout)
    assert len(out) == len(lines)
    assert "2 Español" in out[0]
    assert "FIRMAR" in out[1]
    assert "nombre" in out[2]
    assert "+14165550123" not in result.stderr


def test_chat_piped_script_of_fifty_lines_is_answered_line_by_line(tmp_path: Path) -> None:
    """A script is not a flood: every line gets its block (the flood limit is for platforms)."""
    lines = ["hi", "1"] + ["MENU"] * 48
    result = run(tmp_path, "chat", "--contact", "+14165550124", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = blocks(result.stdout)
    assert len(out) == 50 and "(no reply)" not in out


@pytest.mark.parametrize("tag", ["es", "es-MX", "ES_mx"])
def test_chat_lang_takes_telegram_style_tags(tmp_path: Path, tag: str) -> None:
    result = run(tmp_path, "chat", "--channel", "telegram", "--contact", "43", "--lang", tag,
                 stdin="/start\n")
    assert result.returncode == 0, result.stderr
    assert "Firmar" in result.stdout


@pytest.mark.parametrize("choose", ["[1 English]", "1"])
def test_language_while_signing_on_telegram_asks_the_same_question(tmp_path: Path,
                                                                   choose: str) -> None:
    """/language at the name question, then a language button (or its number): the name
    question again, in English; then the signing goes on."""
    result = run(tmp_path, "chat", "--channel", "telegram", "--contact", "44", "--lang", "es",
                 stdin=f"/start\n[Firmar]\n/language\n{choose}\nAna Cruz\n")
    assert result.returncode == 0, result.stderr
    out = blocks(result.stdout)
    assert "nombre" in out[1]
    assert "What is your name" in out[3], out[3]
    assert "province" in out[4]


def test_chat_telegram_channel_shows_buttons(tmp_path: Path) -> None:
    result = run(tmp_path, "chat", "--channel", "telegram", "--contact", "42", "--lang", "es",
                 stdin="hola\n")
    assert result.returncode == 0, result.stderr
    assert "[" in result.stdout and "]" in result.stdout


def test_chat_state_survives_between_runs(tmp_path: Path) -> None:
    run(tmp_path, "chat", "--contact", "+14165550111", stdin="hi\n1\nSIGN\n")
    result = run(tmp_path, "chat", "--contact", "+14165550111", stdin="Ana Cruz\n")
    assert "province" in result.stdout


@pytest.mark.parametrize("args,fragment", [
    pytest.param(["chat", "--contact", "hello"], "not a valid sms contact", id="bad-contact"),
    pytest.param(["chat", "--lang", "xx"], "not one of the campaign's languages", id="bad-lang"),
    pytest.param(["export", "people"], "invalid choice", id="bad-export"),
    pytest.param(["frobnicate"], "invalid choice", id="unknown-command"),
])
def test_bad_usage_exits_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("env,fragment", [
    pytest.param({"BOT_PORT": "http"}, "BOT_PORT", id="port"),
    pytest.param({"TWILIO_KEYWORDS": "carrier"}, "TWILIO_KEYWORDS", id="keywords"),
    pytest.param({"ORGANIZERS": "bob"}, "ORGANIZERS", id="organizers"),
    pytest.param({"ORGANIZERS": "sms:call-me"}, "ORGANIZERS", id="organizer-not-a-number"),
    pytest.param({"CAMPAIGN_FILE": "missing.toml"}, "CAMPAIGN_FILE", id="campaign-missing"),
    pytest.param({"CENTRAL_STORE_URL": "ftp://x"}, "CENTRAL_STORE_URL", id="central-store"),
    pytest.param({"BROADCAST_HOURS": "9am-9pm"}, "BROADCAST_HOURS", id="hours"),
])
def test_bad_configuration_exits_2_with_the_setting_named(tmp_path: Path, env: dict[str, str],
                                                          fragment: str) -> None:
    result = run(tmp_path, "stats", **env)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_campaign_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('id = "x"\norganization = "U"\ngoal = "many"\n'
                                     'default_language = "en"\nlanguages = ["en"]\n')
    result = run(tmp_path, "stats", CAMPAIGN_FILE="c.toml")
    assert result.returncode == 2 and "goal" in result.stderr


def test_campaign_file_changes_text_goal_and_languages_without_code(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        'id = "local-2027"\norganization = "Local 42"\ngoal = 500\n'
        'default_language = "es"\nlanguages = ["es", "en"]\n'
        '[text.es]\npetition_1 = "Local 42 pide estatus para todos. Meta: {goal}."\n')
    result = run(tmp_path, "chat", stdin="hola\n1\n", CAMPAIGN_FILE="c.toml")
    out = blocks(result.stdout)
    assert "Local 42" in out[0] and "1 Español" in out[0] and "2 English" in out[0]
    assert "Meta: 500" in out[1]


def test_export_csv_has_the_central_store_columns(signed: Path) -> None:
    result = run(signed, "export", "signatures", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == EXPORT_HEADER
    records = [dict(zip(EXPORT_HEADER, r, strict=True)) for r in rows[1:]]
    assert len(records) == 2
    by_name = {r["full_name"]: r for r in records}
    maria, john = by_name["María López"], by_name["John Doe"]
    assert (maria["region"], maria["language"], maria["opted_in_updates"],
            maria["contact"], maria["channel"]) == ("ON", "es", "true", "+14165550123", "sms")
    assert (john["region"], john["opted_in_updates"], john["contact"]) == ("", "false",
                                                                            "+16045550199")
    assert maria["campaign"] == "mwac-pathway-pr"
    assert maria["signed_at"].endswith("Z") and "T" in maria["signed_at"]


def test_export_jsonl(signed: Path) -> None:
    result = run(signed, "export", "signatures", "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["full_name"] for r in records} == {"María López", "John Doe"}
    assert {r["opted_in_updates"] for r in records} == {True, False}


def test_stats_show_what_was_signed(signed: Path) -> None:
    result = run(signed, "stats", "--json")
    data = json.loads(result.stdout)
    assert data["signatures"] == 2 and data["goal"] == 20000
    assert data["signatures_by_language"] == {"en": 1, "es": 1}
    assert data["signatures_by_region"] == {"-": 1, "ON": 1}
    assert data["signatures_by_channel"] == {"sms": 2}
    assert data["opted_in_updates"] == 1
    text = run(signed, "stats")
    assert text.returncode == 0 and "2 of 20000 signatures" in text.stdout
    assert "Signatures per language" in text.stdout


def test_backup_copies_the_database(signed: Path) -> None:
    result = run(signed, "backup", "copy.sqlite3")
    assert result.returncode == 0, result.stderr
    exported = run(signed, "export", "signatures", BOT_DB=str(signed / "copy.sqlite3"))
    assert "María López" in exported.stdout


def test_backup_onto_the_database_itself_is_refused(signed: Path) -> None:
    result = run(signed, "backup", str(signed / "bot.sqlite3"))
    assert result.returncode == 2


@pytest.mark.parametrize("where", ["a-file/copy.sqlite3", "/proc/copy.sqlite3"])
def test_backup_to_a_path_that_cannot_be_written_says_so(signed: Path, where: str) -> None:
    (signed / "a-file").write_text("not a folder")
    result = run(signed, "backup", where)
    assert result.returncode == 1
    assert "cannot write the backup" in result.stderr and "Traceback" not in result.stderr


def test_locales_check_passes_on_the_bundled_catalogs(tmp_path: Path) -> None:
    result = run(tmp_path, "locales", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "locales check: ok" in result.stdout


def test_locales_check_fails_on_a_broken_catalog(tmp_path: Path) -> None:
    broken = tmp_path / "locales"
    import shutil
    shutil.copytree(ROOT / "locales", broken)
    po = broken / "es" / "LC_MESSAGES" / "bot.po"
    text = po.read_text(encoding="utf-8")
    start = text.index('msgid "already_signed"')
    text = text[:start] + text[start:].replace("{count}", "{cuenta}", 1)
    po.write_text(text, encoding="utf-8")
    result = run(tmp_path, "locales", "check", BOT_LOCALES_DIR=str(broken))
    assert result.returncode == 1
    assert "placeholders" in result.stderr


def test_serve_without_credentials_starts_and_says_why(tmp_path: Path) -> None:
    bot = BotProcess(tmp_path, {}).start()
    try:
        import httpx
        health = httpx.get(bot.url + "/healthz").json()
        assert health["status"] in ("ok", "degraded")
        assert health["channels"]["sms"]["enabled"] is False
        assert "TWILIO_ACCOUNT_SID" in health["channels"]["sms"]["reason"]
        assert health["channels"]["telegram"]["enabled"] is False
        assert "TELEGRAM_BOT_TOKEN" in health["channels"]["telegram"]["reason"]
        assert health["outbox"] == {"pending": 0, "parked": 0, "parked_reasons": []}
        assert httpx.post(bot.url + "/twilio/sms", data={"Body": "hi"}).status_code == 404
        assert httpx.post(bot.url + "/telegram/webhook", json={}).status_code == 404
    finally:
        assert bot.stop() == 0
    logs = bot.logs()
    assert "channel sms is off" in logs and "channel telegram is off" in logs


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\nexport BOT_PORT='http'\n")
    result = run(tmp_path, "stats")
    assert result.returncode == 2 and "BOT_PORT" in result.stderr
