"""Organizer commands on Telegram (/stats, /export, /broadcast) for the ORGANIZERS list only."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ACCOUNT_SID, AUTH_TOKEN, BotProcess, sms_env
from tests.standins.telegram_api import TelegramAPI
from tests.standins.twilio_api import TwilioAPI
from tests.test_broadcast import seed
from tests.test_telegram import SECRET, Member, wait_connected

TOKEN = "1000077:organizer-token_ABC"
ORGANIZER_ID = 4242


@pytest.fixture(scope="module")
def apis() -> Iterator[tuple[TelegramAPI, TwilioAPI]]:
    with TelegramAPI() as telegram, TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as twilio:
        yield telegram, twilio


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory,
        apis: tuple[TelegramAPI, TwilioAPI]) -> Iterator[BotProcess]:
    telegram, twilio = apis
    workdir: Path = tmp_path_factory.mktemp("organizer")
    seed(workdir / "bot.sqlite3", [
        {"address": "+14165551001", "language": "en", "region": "ON"},
        {"address": "+14165551002", "language": "es", "region": "ON"},
        {"address": "+14165551003", "language": "en", "region": "BC"},
    ])
    process = BotProcess(workdir, sms_env(
        TWILIO_API_URL=twilio.url, BROADCAST_HOURS="00-24", TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.url, TELEGRAM_WEBHOOK_SECRET=SECRET,
        ORGANIZERS=f"telegram:{ORGANIZER_ID}"))
    yield wait_connected(process.start())
    process.stop()


@pytest.fixture
def organizer(apis: tuple[TelegramAPI, TwilioAPI], bot: BotProcess) -> Member:
    member = Member(apis[0], TOKEN)
    member.id = ORGANIZER_ID
    member.user["id"] = member.chat["id"] = ORGANIZER_ID
    return member


def test_stats_sends_numbers_and_a_chart(organizer: Member,
                                         apis: tuple[TelegramAPI, TwilioAPI]) -> None:
    telegram = apis[0]
    reply = organizer.send("/stats")
    assert "3 of 20000 signatures" in reply[0].text and "Per language" in reply[0].text
    photos = telegram.wait_for(lambda: telegram.calls(TOKEN, "sendPhoto", ORGANIZER_ID, ok=True))
    assert photos[-1].params["photo"]["content"].startswith(b"\x89PNG\r\n\x1a\n")
    assert "Signatures per day" in photos[-1].params["caption"]


def test_export_sends_the_csv(organizer: Member, apis: tuple[TelegramAPI, TwilioAPI]) -> None:
    telegram = apis[0]
    before = len(telegram.calls(TOKEN, "sendDocument", ORGANIZER_ID, ok=True))
    organizer.push({"message": organizer.message(text="/export")})
    docs = telegram.wait_for(lambda: telegram.calls(TOKEN, "sendDocument", ORGANIZER_ID,
                                                    ok=True)[before:])
    content = docs[-1].params["document"]["content"].decode("utf-8")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][0] == "signature_id" and len(rows) == 4


def test_broadcast_from_telegram_with_dry_run_confirm_and_progress(
        organizer: Member, apis: tuple[TelegramAPI, TwilioAPI], bot: BotProcess) -> None:
    telegram, twilio = apis
    twilio.reset()
    assert "Send the update" in organizer.send("/broadcast region=ON")[0].text
    dry = organizer.send("News: we delivered the petition!\nes: ¡Entregamos la petición!")
    assert "Dry run" in dry[0].text and "recipients" in dry[0].text
    assert twilio.requests == 0
    send = [value for _, value in dry[0].buttons if value.startswith("org:send:")][0]
    status = organizer.press(send)
    assert "starting, 2 recipients" in status[0].text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        edits = telegram.calls(TOKEN, "editMessageText", ORGANIZER_ID, ok=True)
        if edits and "done" in edits[-1].text:
            break
        time.sleep(0.1)
    assert edits and "done" in edits[-1].text and "2 sent" in edits[-1].text
    assert sorted(s.to for s in twilio.sent) == ["+14165551001", "+14165551002"]
    assert "Entregamos" in [s.body for s in twilio.sent if s.to == "+14165551002"][0]


def test_cancel_sends_nothing(organizer: Member, apis: tuple[TelegramAPI, TwilioAPI]) -> None:
    twilio = apis[1]
    twilio.reset()
    organizer.send("/broadcast")
    dry = organizer.send("A test that will be cancelled")
    assert "Nothing was sent" in organizer.press("org:cancel")[0].text
    stale = [value for _, value in dry[0].buttons if value.startswith("org:send:")][0]
    assert "Nothing was sent" in organizer.press(stale, offered=False)[0].text
    time.sleep(0.5)
    assert twilio.requests == 0


@pytest.mark.parametrize("command", ["/stats", "/broadcast", "/export", "/console"])
def test_members_get_member_answers_and_no_hint(apis: tuple[TelegramAPI, TwilioAPI],
                                                bot: BotProcess, command: str) -> None:
    telegram, twilio = apis
    member = Member(telegram, TOKEN)
    member.send("/start", expect=3)
    reply = member.send(command)
    text = " ".join(c.text for c in reply).lower()
    assert "signatures" not in text and "broadcast" not in text and "console" not in text
    assert telegram.calls(TOKEN, "sendDocument", member.id) == []
    assert telegram.calls(TOKEN, "sendPhoto", member.id) == []


def test_console_link_from_telegram_signs_in_once(organizer: Member, bot: BotProcess) -> None:
    import httpx

    reply = organizer.send("/console")
    assert "/console/login?token=" in reply[0].text
    assert reply[0].params["link_preview_options"]["is_disabled"] is True
    link = reply[0].text.split()[-1]
    with httpx.Client(base_url=bot.url) as http:
        opened = http.get(link.removeprefix(bot.public_url), follow_redirects=False)
        assert opened.status_code == 303 and "console_session=" in opened.headers["set-cookie"]
        again = http.get(link.removeprefix(bot.public_url), follow_redirects=False)
        assert again.status_code == 403
