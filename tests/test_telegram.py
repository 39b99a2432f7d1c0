"""The Telegram channel end to end: real bot processes talking to a local Bot API stand-in.

One stand-in for the module; one bot in webhook mode and one in long-polling mode, started
once each. `Member` is a Telegram user: it sends updates through the stand-in (POSTed to the
webhook with the registered secret, or queued for getUpdates) and reads what the bot sent.
The sending lanes (replies, and the bulk lane that broadcasts use) are also driven in this
process against the same stand-in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.campaign import load_campaign
from tests.harness import ROOT, BotProcess, wait_for
from tests.standins.telegram_api import Call, TelegramAPI

WEBHOOK_TOKEN = "1000001:webhook-token_ABCdef"
POLLING_TOKEN = "1000002:polling-token_ABCdef"
SECRET = "s3cret-Token_for-tests"
REFUSED_TOKEN = "1000009:NotAValidToken"
LANGUAGES = load_campaign(ROOT / "campaign.toml").languages  # the bundled campaign's

_user_ids = itertools.count(5_550_001_001)


# --- helpers ------------------------------------------------------------------------------

def telegram_bot(workdir: Path, api: TelegramAPI, token: str, **env: str) -> BotProcess:
    """A real `serve` process with Telegram on, pointed at the stand-in, once connected."""
    bot = BotProcess(workdir, {"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_URL": api.url, **env})
    return wait_connected(bot.start())


def health(bot: BotProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{bot.url}/healthz", timeout=5).json()
    return answer


def wait_connected(bot: BotProcess, timeout: float = 10) -> BotProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health(bot)["channels"]["telegram"]["reason"] is None:
            return bot
        time.sleep(0.05)
    raise AssertionError(f"Telegram did not connect: {health(bot)}\n{bot.logs()}")


class Member:
    """A Telegram user in a private chat with the bot."""

    def __init__(self, api: TelegramAPI, token: str, language_code: str | None = "en",
                 first_name: str = "Ana") -> None:
        self.api, self.token = api, token
        self.id = next(_user_ids)
        self.user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": first_name}
        if language_code:
            self.user["language_code"] = language_code
        self.chat = {"id": self.id, "type": "private", "first_name": first_name}
        self._message_ids = itertools.count(1)
        self._callbacks = itertools.count(1)

    @property
    def address(self) -> str:
        return f"telegram:{self.id}"

    def message(self, **content: Any) -> dict[str, Any]:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": self.chat, "from": self.user, **content}

    def push(self, update: dict[str, Any]) -> int | None:
        status = self.api.push(self.token, update)
        assert status in (None, 200), status
        return status

    def received(self) -> list[Call]:
        return self.api.sent(self.token, self.id)

    def wait(self, before: int, expect: int) -> list[Call]:
        got = self.api.wait_for(lambda: len(self.received()) >= before + expect and
                                self.received())
        return list(got[before:])

    def send(self, text: str, expect: int = 1) -> list[Call]:
        """Type a message; wait for `expect` messages back."""
        before = len(self.received())
        self.push({"message": self.message(text=text)})
        return self.wait(before, expect)

    def press(self, data: str, expect: int = 1, *, offered: bool = True) -> list[Call]:
        """Press a button; `offered`: it must be under one of the messages we were sent."""
        shown = [b for call in self.received() for b in call.buttons]
        if offered:
            assert data in [value for _, value in shown], (data, shown)
        before = len(self.received())
        query_id = f"{self.id}-{next(self._callbacks)}"
        last = self.received()[-1] if self.received() else None
        self.push({"callback_query": {
            "id": query_id, "from": self.user, "chat_instance": str(self.id), "data": data,
            "message": {"message_id": 1, "date": int(time.time()), "chat": self.chat,
                        "text": last.text if last else ""},
        }})
        replies = self.wait(before, expect) if expect else []
        self.api.wait_for(lambda: self.answered(query_id))
        return replies

    def answered(self, query_id: str) -> bool:
        return any(c.params.get("callback_query_id") == query_id
                   for c in self.api.calls(self.token, "answerCallbackQuery", ok=True))


def quiet(member: Member, count: int, wait: float = 0.2) -> None:
    """Nothing more than `count` messages reached the member (waits a little to be sure)."""
    time.sleep(wait)
    assert len(member.received()) == count, [c.text for c in member.received()[count:]]


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api() -> Iterator[TelegramAPI]:
    with TelegramAPI(refused_tokens=(REFUSED_TOKEN,)) as server:
        yield server


@pytest.fixture(scope="module")
def webhook_bot(api: TelegramAPI, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[BotProcess]:
    bot = telegram_bot(tmp_path_factory.mktemp("tg-webhook"), api, WEBHOOK_TOKEN,
                       TELEGRAM_WEBHOOK_SECRET=SECRET)
    yield bot
    assert bot.stop() == 0


@pytest.fixture(scope="module")
def polling_bot(api: TelegramAPI, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[BotProcess]:
    bot = telegram_bot(tmp_path_factory.mktemp("tg-polling"), api, POLLING_TOKEN)
    yield bot
    assert bot.stop() == 0


# --- reading updates and writing replies (no process) -------------------------------------

COMMAND_TEXTS = [
    pytest.param("/start", ("START", True), id="start"),
    pytest.param("/start campaign-flyer-7", ("START", True), id="start-deep-link"),
    pytest.param("/START", ("START", True), id="start-upper-case"),
    pytest.param("/sign@petition_bot", ("SIGN", False), id="sign-with-bot-name"),
    pytest.param("/language", ("LANGUAGE", False), id="language"),
    pytest.param("/help", ("HELP", False), id="help"),
    pytest.param("/menu", ("MENU", False), id="menu"),
    pytest.param("/stop", ("STOP", False), id="stop"),
    pytest.param("/delete", ("DELETE", False), id="delete"),
    pytest.param("/unknown", ("/unknown", False), id="unknown-command-as-typed"),
    pytest.param("start", ("start", False), id="plain-word-as-typed"),
    pytest.param("/ sign", ("/ sign", False), id="not-a-command"),
]


@pytest.mark.parametrize("text,expected", COMMAND_TEXTS)
def test_commands_map_to_keywords(text: str, expected: tuple[str, bool]) -> None:
    from bot.channels.telegram import read_command

    assert read_command(text) == expected


LANGUAGE_TAGS = [
    pytest.param("es", "es", id="es"),
    pytest.param("es-MX", "es", id="region-subtag"),
    pytest.param("fr_CA", "fr", id="underscore"),
    pytest.param("FR", "fr", id="upper-case"),
    pytest.param("fil", "tl", id="filipino-is-tagalog"),
    pytest.param("tl", "tl", id="tagalog"),
    pytest.param("pt-br", None, id="not-in-campaign"),
    pytest.param("", None, id="empty"),
    pytest.param(None, None, id="missing"),
]


@pytest.mark.parametrize("tag,code", LANGUAGE_TAGS)
def test_language_code_maps_to_a_campaign_language(tag: str | None, code: str | None) -> None:
    from bot.channels.telegram import map_language

    assert map_language(tag, ("en", "es", "fr", "tl")) == code


def test_replies_become_buttons_and_long_texts_are_split() -> None:
    from bot.channels.telegram import buttons, render, split_text
    from flows.types import Choice, Reply

    langs = tuple(Choice(n, f"lang:{c}") for n, c in
                  (("English", "en"), ("Español", "es"), ("Français", "fr"), ("Tagalog", "tl")))
    numbered = buttons(Reply("Reply with a number:", "en", langs, numbered=True))
    assert [[c.label for c in row] for row in numbered] == [
        ["1 English", "2 Español"], ["3 Français", "4 Tagalog"]]
    yes_no = buttons(Reply("Sign?", "en", (Choice("Yes", "1"), Choice("No", "2"))))
    assert [[(c.label, c.value) for c in row] for row in yes_no] == [[("Yes", "1"), ("No", "2")]]
    too_long = buttons(Reply("x", "en", (Choice("Long", "v" * 65),)))
    assert too_long == [], "callback_data over 64 bytes is never sent"
    text = "word " * 2000
    parts = split_text(text)
    assert all(len(p) <= 4096 for p in parts) and " ".join(parts).split() == text.split()
    messages = render(Reply(text, "en", (Choice("Yes", "1"),)))
    assert [m is None for _, m in messages] == [True] * (len(messages) - 1) + [False]


# The stand-in itself speaks the wire format: JSON, form and query bodies alike.
STANDIN_BODIES = [
    pytest.param({"json": {"chat_id": 5, "text": "hi"}}, 200, id="json"),
    pytest.param({"data": {"chat_id": "5", "text": "hi", "reply_markup": json.dumps(
        {"inline_keyboard": [[{"text": "Yes", "callback_data": "1"}]]})}}, 200, id="form"),
    pytest.param({"params": {"chat_id": "5", "text": "hi"}}, 200, id="query-string"),
    pytest.param({"json": {"chat_id": 5, "text": ""}}, 400, id="empty-text"),
    pytest.param({"json": {"chat_id": 5, "text": "hi", "reply_markup": {"inline_keyboard": [
        [{"text": "x", "callback_data": "v" * 65}]]}}}, 400, id="callback-data-too-long"),
]


@pytest.mark.parametrize("request_kwargs,status", STANDIN_BODIES)
def test_standin_speaks_the_wire_format(api: TelegramAPI, request_kwargs: dict[str, Any],
                                        status: int) -> None:
    r = httpx.post(f"{api.url}/bot1000301:wire/sendMessage", **request_kwargs)
    assert r.status_code == status
    body = r.json()
    assert body["ok"] is (status == 200)
    if status == 200:
        assert body["result"]["chat"]["id"] == 5 and body["result"]["text"] == "hi"
    else:
        assert body["error_code"] == status and body["description"]


# --- registration and health --------------------------------------------------------------

def test_webhook_mode_registers_our_url_secret_and_commands(api: TelegramAPI,
                                                            webhook_bot: BotProcess) -> None:
    account = api.account(WEBHOOK_TOKEN)
    assert account.webhook_url == f"{webhook_bot.public_url}/telegram/webhook"
    assert account.secret == SECRET
    assert set(account.allowed_updates or ()) == {"message", "edited_message", "callback_query"}
    assert api.calls(WEBHOOK_TOKEN, "getMe", ok=True)
    assert not api.calls(WEBHOOK_TOKEN, "getUpdates")
    check_command_menus(api, WEBHOOK_TOKEN)


def test_polling_mode_deletes_the_webhook_then_long_polls(api: TelegramAPI,
                                                          polling_bot: BotProcess) -> None:
    account = api.account(POLLING_TOKEN)
    api.wait_for(lambda: account.polls)
    first_poll, poll = account.polls[0]
    assert api.calls(POLLING_TOKEN, "deleteWebhook", ok=True)[0].at < first_poll
    assert poll["timeout"] > 0
    assert set(poll["allowed_updates"]) == {"message", "edited_message", "callback_query"}
    check_command_menus(api, POLLING_TOKEN)


def check_command_menus(api: TelegramAPI, token: str) -> None:
    """One command menu per campaign language (language_code), and a default one."""
    menus = api.account(token).commands
    api.wait_for(lambda: set(menus) == {None, *LANGUAGES})
    for commands in menus.values():
        assert [c["command"] for c in commands] == [
            "start", "sign", "language", "help", "menu", "stop", "delete"]
    assert menus["es"][1]["description"] == "Firmar la petición"
    assert menus["fr"][1]["description"] == "Signer la pétition"
    assert menus[None] == menus["en"]


HEALTH = [
    pytest.param("webhook", "webhook", id="webhook"),
    pytest.param("polling", "polling", id="polling"),
]


@pytest.mark.parametrize("which,expected", HEALTH)
def test_healthz_shows_mode_and_connection(webhook_bot: BotProcess, polling_bot: BotProcess,
                                           which: str, expected: str) -> None:
    bot = webhook_bot if which == "webhook" else polling_bot
    answer = health(bot)
    assert answer["channels"]["telegram"] == {"enabled": True, "connected": True,
                                              "mode": expected, "reason": None}
    assert answer["status"] == "ok"


def test_refused_token_shows_in_healthz(api: TelegramAPI, tmp_path: Path) -> None:
    bot = BotProcess(tmp_path, {"TELEGRAM_BOT_TOKEN": REFUSED_TOKEN,
                                "TELEGRAM_API_URL": api.url}).start()
    try:
        api.wait_for(lambda: api.calls(REFUSED_TOKEN, "getMe"))
        deadline = time.monotonic() + 5
        while "TELEGRAM_BOT_TOKEN" not in str(health(bot)["channels"]["telegram"]["reason"]):
            assert time.monotonic() < deadline, health(bot)
            time.sleep(0.05)
        answer = health(bot)
        assert answer["status"] == "degraded"
        assert answer["channels"]["telegram"]["mode"] == "polling"
        assert answer["channels"]["telegram"]["connected"] is False
    finally:
        assert bot.stop() == 0
    assert "NotAValidToken" not in bot.logs(), "the token never shows in the logs"


# --- the conversation ---------------------------------------------------------------------

# One whole signing flow per mode and language, buttons and typed answers interleaved:
# (mode, language_code, language, name, province typed, code stored, yes typed, thanks words).
FLOWS = [
    pytest.param("webhook", "en", "en", "Mary Smith", "Ontario", "ON", "yes", "of 20,000",
                 id="webhook-english"),
    pytest.param("webhook", "es-MX", "es", "María López", "on", "ON", "sí", "de 20.000",
                 id="webhook-spanish-from-es-MX"),
    pytest.param("polling", "fr", "fr", "Élise Tremblay", "Québec", "QC", "oui", "20\u202f000",
                 id="polling-french"),
    pytest.param("polling", "fil", "tl", "Jose Santos", "BC", "BC", "oo", "20,000",
                 id="polling-tagalog-from-fil"),
    # The other six languages, each typed in its own script (or as people type it).
    pytest.param("webhook", "pa", "pa", "Gurpreet Singh", "ਓਨਟਾਰੀਓ", "ON", "ਹਾਂ", "20,000",
                 id="webhook-punjabi"),
    pytest.param("polling", "hi-IN", "hi", "Priya Sharma", "ON", "ON", "haan", "20,000",
                 id="polling-hindi-romanized-yes"),
    pytest.param("webhook", "zh-hans", "zh", "李华", "安大略", "ON", "是", "20,000",
                 id="webhook-chinese"),
    pytest.param("polling", "vi", "vi", "Nguyễn Văn An", "Ontario", "ON", "có", "20.000",
                 id="polling-vietnamese"),
    pytest.param("webhook", "ar", "ar", "أحمد علي", "أونتاريو", "ON", "نعم", "20,000",
                 id="webhook-arabic"),
    pytest.param("polling", "uk", "uk", "Олена Коваль", "Онтаріо", "ON", "так", "20\xa0000",
                 id="polling-ukrainian"),
]


def signing_flow(api: TelegramAPI, token: str, bot: BotProcess, tag: str, lang: str, name: str,
                 region: str, code: str, yes: str, goal: str) -> None:
    member = Member(api, token, language_code=tag)
    welcome, petition_1, petition_2 = member.send("/start", expect=3)
    assert [b[1] for b in welcome.buttons] == [f"lang:{c}" for c in LANGUAGES]
    assert "1 English" not in welcome.text, "Telegram gets the text, not the numbered list"
    assert petition_2.buttons and petition_2.buttons[0][1] == "SIGN"
    (ask_name,) = member.press("SIGN")  # a button
    assert not ask_name.buttons
    (ask_region,) = member.send(name)  # typed
    assert [v for _, v in ask_region.buttons] == ["SKIP"]
    (confirm,) = member.send(region)  # typed
    assert name in confirm.text, "Telegram gets the original text, accents and all"
    assert [v for _, v in confirm.buttons] == ["1", "2"]
    (ask_updates,) = member.press("1")  # a button: yes, sign
    assert [v for _, v in ask_updates.buttons] == ["1", "2"]
    (thanks,) = member.send(yes)  # typed, in the member's language
    assert goal in thanks.text
    quiet(member, 8)
    assert all("parse_mode" not in c.params for c in member.received())
    check_chat_pace(member.received())

    rows = bot.query("SELECT * FROM signatures WHERE contact = ?", (member.address,))
    assert len(rows) == 1
    sig = rows[0]
    assert (sig["full_name"], sig["region"], sig["language"], sig["channel"]) == (
        name, code, lang, "telegram")
    assert sig["opted_in_updates"] == 1


def check_chat_pace(sent: list[Call], burst: int = 5, rate: float = 1.0) -> None:
    """Telegram's limit in one chat: a short burst, then about one message a second."""
    for i, first in enumerate(sent):
        for j in range(i + 1, len(sent)):
            allowed = burst + (sent[j].at - first.at) * rate + 0.05
            assert j - i + 1 <= allowed, f"{j - i + 1} messages in {sent[j].at - first.at:.2f} s"


def sign_up(member: Member) -> Member:
    member.send("/start", expect=3)
    member.press("SIGN")
    member.send("Ana Cruz")
    member.press("SKIP")
    member.press("1")
    member.press("2")
    return member


Futures = dict[str, concurrent.futures.Future[Any]]


@pytest.fixture(scope="module")
def conversations(api: TelegramAPI, webhook_bot: BotProcess, polling_bot: BotProcess
                  ) -> Iterator[Futures]:
    """Every flow of FLOWS, and the sign-ups of members for later tests, all at once: the bot
    paces each chat on its own, so together they take as long as one conversation."""
    bots = {"webhook": (WEBHOOK_TOKEN, webhook_bot), "polling": (POLLING_TOKEN, polling_bot)}
    with concurrent.futures.ThreadPoolExecutor(len(FLOWS) + SIGNED) as pool:
        futures: Futures = {
            str(p.id): pool.submit(signing_flow, api, *bots[str(p.values[0])],
                                   *(str(v) for v in p.values[1:]))
            for p in FLOWS}
        futures.update({f"signed-{i}": pool.submit(sign_up, Member(api, POLLING_TOKEN))
                        for i in range(SIGNED)})
        yield futures


@pytest.mark.parametrize("flow", [pytest.param(p.id, id=p.id) for p in FLOWS])
def test_whole_signing_flow(conversations: Futures, flow: str) -> None:
    conversations[flow].result()


SIGNED = 5  # members signed up in advance: one for each test that takes one


@pytest.fixture(scope="module")
def signed(conversations: Futures) -> list[Member]:
    """Members who signed already (in the polling bot), for tests to take one each."""
    return [f.result() for key, f in conversations.items() if key.startswith("signed-")]


# Language preselection on /start: (language_code, fragment of the welcome, language stored).
PRESELECT = [
    pytest.param("es", "Hola", "es", id="spanish"),
    pytest.param("es-419", "Hola", "es", id="spanish-latin-america"),
    pytest.param("fr-CA", "Bonjour", "fr", id="french-canada"),
    pytest.param("tl", "Ito ang", "tl", id="tagalog"),
    pytest.param("de", "Hi!", "en", id="unknown-gets-default"),
    pytest.param(None, "Hi!", "en", id="missing-gets-default"),
]


@pytest.mark.parametrize("tag,fragment,lang", PRESELECT)
def test_start_preselects_the_language(api: TelegramAPI, webhook_bot: BotProcess,
                                       tag: str | None, fragment: str, lang: str) -> None:
    member = Member(api, WEBHOOK_TOKEN, language_code=tag)
    welcome, *_ = member.send("/start", expect=3)
    assert fragment in welcome.text
    row = webhook_bot.query("SELECT language, state FROM contacts WHERE address = ?",
                            (member.address,))[0]
    assert (row["language"], row["state"]) == (lang, "menu")


def test_start_with_a_deep_link_payload_works_the_same_and_is_not_logged(
        api: TelegramAPI, webhook_bot: BotProcess) -> None:
    member = Member(api, WEBHOOK_TOKEN, language_code="es")
    welcome, *_ = member.send("/start flyer-toronto-XYZ", expect=3)
    assert "Hola" in welcome.text
    assert "flyer-toronto-XYZ" not in webhook_bot.logs()


@pytest.mark.usefixtures("webhook_bot")
def test_first_message_that_is_not_start_offers_the_language_list(api: TelegramAPI) -> None:
    member = Member(api, WEBHOOK_TOKEN, language_code="de")
    (welcome,) = member.send("hello")
    labels = [label for label, _ in welcome.buttons]
    assert len(labels) == len(LANGUAGES)
    assert labels[:4] == ["1 English", "2 Español", "3 Français", "4 Tagalog"], \
        "numbered, as the text says"
    petition = member.send("2", expect=2)  # typing the number works too
    assert "FIRMAR" in petition[1].text


@pytest.mark.usefixtures("webhook_bot")
def test_language_button_switches_and_goes_on(api: TelegramAPI) -> None:
    member = Member(api, WEBHOOK_TOKEN, language_code="en")
    member.send("/start", expect=3)
    member.press("SIGN")
    (again,) = member.press("lang:fr")  # from the welcome message: still works
    assert "nom" in again.text, "the name question again, in French"


# Commands after the welcome: (command, fragment of the first reply).
COMMANDS = [
    pytest.param("/sign", "What is your name?", id="sign"),
    pytest.param("/help", "NUPGE", id="help"),
    pytest.param("/menu", "Reply SIGN", id="menu"),
    pytest.param("/start", "Reply SIGN", id="start-later-is-menu"),
    pytest.param("/language", "Choose your language", id="language"),
    pytest.param("/delete", "Erase", id="delete-asks-first"),
    pytest.param("/stop", "no more messages", id="stop"),
]


@pytest.mark.parametrize("command,fragment", COMMANDS)
@pytest.mark.usefixtures("webhook_bot")
def test_commands(api: TelegramAPI, command: str, fragment: str) -> None:
    member = Member(api, WEBHOOK_TOKEN)
    member.send("/start", expect=3)
    assert fragment in member.send(command)[0].text


def test_stop_then_start_lifts_the_stop(api: TelegramAPI, polling_bot: BotProcess) -> None:
    member = Member(api, POLLING_TOKEN)
    member.send("/start", expect=3)
    member.send("/stop")
    before = len(member.received())
    member.push({"message": member.message(text="hello?")})
    member.press("SIGN", expect=0)  # the button is answered, but nothing is said
    quiet(member, before)
    welcome_back, menu = member.send("/start", expect=2)
    assert "Welcome back" in welcome_back.text and "SIGN" in menu.text
    row = polling_bot.query("SELECT stopped FROM contacts WHERE address = ?", (member.address,))
    assert row[0][0] == 0


# Buttons from old messages: (button pressed later, fragment of the answer).
OLD_BUTTONS = [
    pytest.param("1", "did not understand", id="yes-from-an-old-question-gets-the-hint"),
    pytest.param("SKIP", "did not understand", id="skip-from-an-old-question-gets-the-hint"),
    pytest.param("SIGN", "already signed", id="sign-again-says-signed"),
    pytest.param("lang:es", "FIRMAR", id="language-button-still-works"),
]


@pytest.mark.parametrize("data,fragment", OLD_BUTTONS)
def test_buttons_of_old_messages(signed: list[Member], data: str, fragment: str) -> None:
    member = signed.pop()
    answer = member.press(data)
    assert fragment in answer[0].text


def test_delete_with_buttons_erases(signed: list[Member], polling_bot: BotProcess) -> None:
    member = signed.pop()
    assert polling_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (member.address,))
    member.send("/delete")
    (done,) = member.press("1")
    assert "erased" in done.text
    assert polling_bot.query("SELECT 1 FROM signatures WHERE contact = ?",
                             (member.address,)) == []
    assert len(member.send("/start", expect=3)) == 3, "a new start after erasure"


# --- retries, forgeries, bad and unusable updates -----------------------------------------

def test_redelivered_update_id_sends_nothing_again(api: TelegramAPI,
                                                   webhook_bot: BotProcess) -> None:
    member = Member(api, WEBHOOK_TOKEN)
    member.send("/start", expect=3)
    member.press("SIGN")
    update = {"update_id": 900_000_001, "message": member.message(text="Ana Cruz")}
    assert member.push(update) == 200
    member.wait(4, 1)
    assert member.push(update) == 200, "Telegram's retry gets 200"
    press = {"update_id": 900_000_002, "callback_query": {
        "id": "redelivered-press", "from": member.user, "chat_instance": "x", "data": "SKIP",
        "message": {"message_id": 1, "date": 0, "chat": member.chat, "text": "x"}}}
    assert member.push(press) == 200
    member.wait(5, 1)
    assert member.push(press) == 200
    quiet(member, 6)
    answers = api.calls(WEBHOOK_TOKEN, "answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answers].count("redelivered-press") == 1
    state = webhook_bot.query("SELECT state FROM contacts WHERE address = ?", (member.address,))
    assert state[0][0] == "confirm"


FORGED = [
    pytest.param(None, id="missing-secret"),
    pytest.param("wrong-secret", id="wrong-secret"),
    pytest.param("", id="empty-secret"),
    pytest.param(SECRET + "x", id="secret-with-more"),
    pytest.param(SECRET.upper(), id="secret-other-case"),
]


@pytest.mark.parametrize("secret", FORGED)
def test_forged_webhooks_are_refused(api: TelegramAPI, webhook_bot: BotProcess,
                                     secret: str | None) -> None:
    member = Member(api, WEBHOOK_TOKEN)
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    r = httpx.post(f"{webhook_bot.url}/telegram/webhook", headers=headers,
                   json={"update_id": 1, "message": member.message(text="/start")})
    assert r.status_code == 403
    assert webhook_bot.query("SELECT 1 FROM contacts WHERE address = ?", (member.address,)) == []
    quiet(member, 0, wait=0.1)


def test_webhook_route_refuses_updates_in_polling_mode(polling_bot: BotProcess) -> None:
    r = httpx.post(f"{polling_bot.url}/telegram/webhook",
                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, json={"update_id": 1})
    assert r.status_code == 403


# Authenticated bodies we cannot use: 200 (Telegram must not retry them), nothing happens.
BAD_BODIES = [
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"\xff\xfe\x00", id="not-utf8"),
    pytest.param(b"[1, 2, 3]", id="json-list"),
    pytest.param(b"{}", id="no-update-id"),
    pytest.param(b'{"update_id": "12"}', id="update-id-a-string"),
    pytest.param(b'{"update_id": true}', id="update-id-a-bool"),
    pytest.param(b'{"update_id": 5, "message": {"text": "hi"}}', id="message-without-chat"),
    pytest.param(b'{"update_id": 6, "message": 7}', id="message-not-an-object"),
    pytest.param(b'{"update_id": 7, "inline_query": {"id": "1"}}', id="unused-update-type"),
    pytest.param(b'{"update_id": 8, "message": {"message_id": 1, "date": 0, "chat": '
                 b'{"id": 9, "type": "private"}, "text": 12}}', id="text-a-number"),
    pytest.param(b'{"update_id": 9, "message": {"message_id": 1, "date": 0, "chat": '
                 b'{"id": 9, "type": "private"}, "from": {"id": 9, "is_bot": false, '
                 b'"first_name": "A"}, "pinned_message": {"message_id": 2, "date": 0, '
                 b'"chat": {"id": 9, "type": "private"}}}}', id="service-message"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_get_200_and_change_nothing(api: TelegramAPI, webhook_bot: BotProcess,
                                               body: bytes) -> None:
    contacts = webhook_bot.query("SELECT count(*) FROM contacts")[0][0]
    sent = len(api.calls(WEBHOOK_TOKEN, "sendMessage"))
    r = httpx.post(f"{webhook_bot.url}/telegram/webhook", content=body,
                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                            "Content-Type": "application/json"})
    assert r.status_code == 200
    time.sleep(0.05)
    assert webhook_bot.query("SELECT count(*) FROM contacts")[0][0] == contacts
    assert len(api.calls(WEBHOOK_TOKEN, "sendMessage")) == sent


def test_oversized_body_is_not_read(webhook_bot: BotProcess) -> None:
    r = httpx.post(f"{webhook_bot.url}/telegram/webhook", content=b"{" + b" " * 300_000 + b"}",
                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert r.status_code == 200
    r = httpx.post(f"{webhook_bot.url}/telegram/webhook", content=b"{" + b" " * 300_000 + b"}")
    assert r.status_code == 403


def _group(member: Member, kind: str) -> dict[str, Any]:
    return {"message": {**member.message(text="/start"),
                        "chat": {"id": -100123, "type": kind, "title": "Union local"}}}


# Updates a person sends privately that we cannot read: a short answer, in their language.
# Updates from groups, channels or bots: nothing at all. (update maker, answered?)
UNUSABLE = [
    pytest.param(lambda m: {"message": m.message(sticker={
        "file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512,
        "height": 512, "is_animated": False, "is_video": False})}, True, id="sticker"),
    pytest.param(lambda m: {"message": m.message(photo=[
        {"file_id": "p1", "file_unique_id": "u2", "width": 90, "height": 90}])}, True,
                 id="photo"),
    pytest.param(lambda m: {"message": m.message(voice={
        "file_id": "v1", "file_unique_id": "u3", "duration": 3})}, True, id="voice"),
    pytest.param(lambda m: {"edited_message": {**m.message(text="Ana Cruz"),
                                               "edit_date": int(time.time())}}, True,
                 id="edited-message"),
    pytest.param(lambda m: _group(m, "group"), False, id="group-chat"),
    pytest.param(lambda m: _group(m, "supergroup"), False, id="supergroup-chat"),
    pytest.param(lambda m: {"channel_post": {"message_id": 1, "date": 0, "text": "/start",
                                             "chat": {"id": -100777, "type": "channel"}}},
                 False, id="channel-post"),
    pytest.param(lambda m: {"message": {**m.message(text="/start"),
                                        "from": {**m.user, "is_bot": True}}}, False,
                 id="from-a-bot"),
]


@pytest.mark.parametrize("make,answered", UNUSABLE)
def test_unusable_updates(api: TelegramAPI, webhook_bot: BotProcess, make: Any,
                          answered: bool) -> None:
    member = Member(api, WEBHOOK_TOKEN, language_code="es")
    member.send("/start", expect=3)
    contacts = webhook_bot.query("SELECT count(*) FROM contacts")[0][0]
    member.push(make(member))
    if answered:
        (answer,) = member.wait(3, 1)
        assert "texto" in answer.text, "in the member's language"
    quiet(member, 4 if answered else 3)
    assert webhook_bot.query("SELECT count(*) FROM contacts")[0][0] == contacts
    assert not api.calls(WEBHOOK_TOKEN, "sendMessage", chat_id=-100123)


@pytest.mark.usefixtures("webhook_bot")
def test_a_button_in_a_group_is_answered_and_nothing_else(api: TelegramAPI) -> None:
    member = Member(api, WEBHOOK_TOKEN)
    group = {"id": -100555, "type": "group", "title": "Union local"}
    member.push({"callback_query": {
        "id": "group-press", "from": member.user, "chat_instance": "g", "data": "SIGN",
        "message": {"message_id": 3, "date": 0, "chat": group, "text": "x"}}})
    api.wait_for(lambda: member.answered("group-press"))
    quiet(member, 0, wait=0.1)
    assert not api.calls(WEBHOOK_TOKEN, "sendMessage", chat_id=-100555)


# --- limits, failures, restarts -----------------------------------------------------------

@pytest.mark.parametrize("which", ["webhook", "polling"])
def test_429_is_waited_out_and_the_message_delivered(api: TelegramAPI, webhook_bot: BotProcess,
                                                     polling_bot: BotProcess,
                                                     which: str) -> None:
    token = WEBHOOK_TOKEN if which == "webhook" else POLLING_TOKEN
    member = Member(api, token)
    api.fail(token, "sendMessage", status=429, retry_after=1, chat_id=member.id)
    replies = member.send("/start", expect=3)
    attempts = api.calls(token, "sendMessage", chat_id=member.id)
    assert [c.status for c in attempts] == [429, 200, 200, 200]
    assert attempts[1].at - attempts[0].at >= 0.95, "retry_after was honoured"
    assert attempts[0].params["text"] == attempts[1].params["text"] == replies[0].text
    assert "Migrant Workers" in replies[1].text, "the order is kept"


def test_a_member_who_blocked_the_bot_is_not_retried(api: TelegramAPI,
                                                     webhook_bot: BotProcess) -> None:
    member = Member(api, WEBHOOK_TOKEN)
    api.block(WEBHOOK_TOKEN, member.id)
    member.push({"message": member.message(text="/start")})
    api.wait_for(lambda: api.calls(WEBHOOK_TOKEN, "sendMessage", chat_id=member.id))
    time.sleep(0.3)
    attempts = api.calls(WEBHOOK_TOKEN, "sendMessage", chat_id=member.id)
    assert [c.status for c in attempts] == [403], "one try; the rest of the turn is dropped"
    logs = webhook_bot.logs()
    assert "blocked the bot" in logs and str(member.id) not in logs
    # Recorded, so broadcasts skip them; writing to us again makes them reachable.
    wait_for(lambda: webhook_bot.query("SELECT unreachable FROM contacts WHERE address = ?",
                                       (member.address,))[0][0])
    api.account(WEBHOOK_TOKEN).blocked.discard(member.id)
    member.send("/help")
    assert webhook_bot.query("SELECT unreachable FROM contacts WHERE address = ?",
                             (member.address,))[0][0] is None


@pytest.mark.usefixtures("webhook_bot")
def test_replies_to_members_are_not_delayed_by_other_members(api: TelegramAPI) -> None:
    members = [Member(api, WEBHOOK_TOKEN) for _ in range(12)]
    started = time.monotonic()
    for member in members:
        member.push({"message": member.message(text="/start")})
    for member in members:
        member.wait(0, 3)
    assert time.monotonic() - started < 3, "36 messages to 12 chats go out at once"


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process: python-telegram-bot's future retry_after (it warns on every 429)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def outlet_for(api: TelegramAPI, token: str, tmp_path: Path, client: httpx.AsyncClient) -> Any:
    from bot.channels.telegram import TelegramOutlet
    from bot.config import load_settings

    settings = load_settings({"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_URL": api.url},
                             cwd=tmp_path)
    return TelegramOutlet(settings, client)


# The bulk lane (broadcasts): the Bot API's answer as a delivery outcome.
# (address, fault on sendMessage: (status, retry_after) or None, outcome).
OUTLET = [
    pytest.param("telegram:61", None, "sent", id="sent"),
    pytest.param("telegram:62", (429, 3), "retry", id="flood-429-retry-after"),
    pytest.param("telegram:63", (403, None), "unreachable", id="blocked-403"),
    pytest.param("telegram:64", (400, None), "failed", id="refused-400"),
    pytest.param("telegram:65", (500, None), "retry", id="server-error-500"),
    pytest.param("telegram:abc", None, "unreachable", id="not-a-chat-id"),
]


@pytest.mark.usefixtures("ptb_timedelta")
@pytest.mark.parametrize("address,fault,outcome", OUTLET)
async def test_broadcast_outlet_maps_the_answer(api: TelegramAPI, tmp_path: Path, address: str,
                                                fault: tuple[int, int | None] | None,
                                                outcome: str) -> None:
    token = f"1000202:outlet-{address.split(':')[1]}"  # its own budget: a 429 pauses it
    if fault is not None:
        status, retry_after = fault
        if status == 403:
            api.block(token, int(address.split(":")[1]))
        else:
            api.fail(token, "sendMessage", status=status, retry_after=retry_after,
                     chat_id=int(address.split(":")[1]))
    async with httpx.AsyncClient(timeout=5) as client:
        result = await outlet_for(api, token, tmp_path, client).send(
            address, "News: we reached 10,000!")
    assert result.outcome == outcome
    if outcome == "sent":
        assert result.platform_id and api.sent(token, 61)[-1].text == "News: we reached 10,000!"
    if fault == (429, 3):
        assert result.retry_after == 3
    assert token not in str(result.error)


@pytest.mark.usefixtures("ptb_timedelta")
async def test_replies_overtake_a_broadcast_in_progress(api: TelegramAPI, tmp_path: Path) -> None:
    """The two lanes in one process against the stand-in: while the bulk lane sends a
    broadcast as fast as the overall budget allows, a reply to a member goes out at once,
    and both together stay within about 30 messages a second."""
    from telegram import Bot as BotAPI

    from bot.channels.telegram import Sender
    from flows.types import Reply

    token = "1000201:lanes"
    async with httpx.AsyncClient(timeout=5) as http, \
            BotAPI(token, base_url=f"{api.url}/bot") as client:
        outlet = outlet_for(api, token, tmp_path, http)
        broadcast = [asyncio.create_task(outlet.send(f"telegram:{chat}", "News"))
                     for chat in range(100, 140)]
        sender = Sender(client, report=lambda *_: None, scrub=str)
        await asyncio.sleep(0.4)  # the bulk lane is busy: its burst is gone, the rest waits
        queued = time.monotonic()
        sender.reply(999, [Reply("Your answer", "en")])
        await asyncio.to_thread(api.wait_for, lambda: api.sent(token, 999), 2)
        assert time.monotonic() - queued < 0.25, "the reply did not wait for the broadcast"
        assert sum(not task.done() for task in broadcast) >= 10
        results = await asyncio.gather(*broadcast)
    assert {r.outcome for r in results} == {"sent"}
    sent = [c.at for c in api.calls(token, "sendMessage")]
    for i, first in enumerate(sent):
        within = [at for at in sent[i:] if at - first < 1.0]
        assert len(within) <= 31, f"{len(within)} messages in one second"


@pytest.mark.usefixtures("ptb_timedelta")
async def test_polling_waits_while_the_reply_lines_are_full(api: TelegramAPI) -> None:
    """`room()` (what polling awaits before each getUpdates) holds while the queued replies
    reach the limit (here a 429 pauses all sending), and lets go as they leave."""
    from telegram import Bot as BotAPI

    from bot.channels.telegram import Sender
    from flows.types import Reply

    token = "1000203:backlog"
    # Each chat's first message meets a 429 (they all start at once): nothing leaves before
    # the pause it asks for.
    api.fail(token, "sendMessage", status=429, retry_after=2, times=10)
    async with BotAPI(token, base_url=f"{api.url}/bot") as client:
        sender = Sender(client, report=lambda *_: None, scrub=str)
        for chat in range(300, 310):
            sender.reply(chat, [Reply(f"Answer {i}", "en") for i in range(4)])
        assert sender.backlog == 40
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sender.room(30), 1.0)  # the 429's pause holds them all
        await asyncio.wait_for(sender.room(30), 10)
        assert sender.backlog < 30
        await asyncio.wait_for(sender.room(1), 40)
        assert sender.backlog == 0
        await sender.close()
    assert sum(len(api.sent(token, chat)) for chat in range(300, 310)) == 40


def test_broadcast_command_reaches_members_who_want_news(api: TelegramAPI,
                                                         polling_bot: BotProcess,
                                                         conversations: Futures) -> None:
    """`broadcast` (its own process, on the polling bot's database) sends through the bulk
    lane: members who opted in get it in their language; the others get nothing."""
    for future in conversations.values():
        future.result()
    rows = polling_bot.query("SELECT contact, language, opted_in_updates FROM signatures "
                             "WHERE channel = 'telegram'")
    wanted = {int(r["contact"].split(":")[1]): r["language"] for r in rows
              if r["opted_in_updates"]}
    unwanted = {int(r["contact"].split(":")[1]) for r in rows if not r["opted_in_updates"]}
    assert wanted and unwanted
    workdir = polling_bot.workdir
    (workdir / "news.toml").write_text('[en]\ntext = "We reached 10,000 signatures!"\n'
                                       '[fr]\ntext = "Nous avons 10 000 signatures!"\n',
                                       encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "broadcast", "--message-file", "news.toml",
         "--yes"], cwd=workdir, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, env={**polling_bot.env, "BROADCAST_HOURS": "00-24"})
    assert result.returncode == 0, result.stderr
    for chat, lang in wanted.items():
        (news,) = api.sent(POLLING_TOKEN, chat)[-1:]
        assert ("Nous avons" if lang == "fr" else "We reached") in news.text
        assert not news.buttons
    for chat in unwanted:
        assert "signatures!" not in api.sent(POLLING_TOKEN, chat)[-1].text


def test_logs_never_hold_a_telegram_id_or_name(api: TelegramAPI,
                                               polling_bot: BotProcess) -> None:
    member = Member(api, POLLING_TOKEN, first_name="Zenobia")
    member.send("/start", expect=3)
    member.send("/sign")
    member.send("Zenobia Quillfeather")
    logs = polling_bot.logs()
    assert str(member.id) not in logs
    assert "Zenobia" not in logs
    assert str(member.id)[-4:] in logs, "the last four digits name the contact"


# A restart mid-flow: SIGKILL, then a new process on the same database. In polling mode the
# next message is sent while the bot is down: it waits at Telegram until the bot polls again.
@pytest.mark.parametrize("which", ["webhook", "polling"])
def test_restart_mid_flow_continues(api: TelegramAPI, tmp_path: Path, which: str) -> None:
    token = f"100010{1 if which == 'webhook' else 2}:restart-{which}"
    env = {"TELEGRAM_WEBHOOK_SECRET": SECRET} if which == "webhook" else {}
    bot = telegram_bot(tmp_path, api, token, **env)
    try:
        member = Member(api, token, language_code="es")
        member.send("/start", expect=3)
        member.press("SIGN")
        member.send("María López")
        # Its reply has left and is marked sent (else the restart would send it again).
        wait_for(lambda: not bot.query("SELECT 1 FROM inbound WHERE unsent = 1"), 5)
        bot.stop(signal.SIGKILL)
        if which == "polling":
            member.push({"message": member.message(text="ON")})
            wait_connected(bot.start())
            (confirm,) = member.wait(5, 1)
        else:
            wait_connected(bot.start())
            (confirm,) = member.send("ON")
        assert "María López" in confirm.text
        member.press("1")
        (thanks,) = member.send("no")
        assert "de 20.000" in thanks.text
        assert len(bot.query("SELECT 1 FROM signatures WHERE contact = ?",
                             (member.address,))) == 1
    finally:
        assert bot.stop() == 0


def test_replies_a_crash_left_unsent_go_out_after_the_restart(api: TelegramAPI,
                                                              tmp_path: Path) -> None:
    """The turn is committed, its reply held up (a 429 asking for 30 s), then SIGKILL: the
    next `serve` sends that reply once connected, and the member carries on."""
    token = "1000103:unsent-replies"
    bot = telegram_bot(tmp_path, api, token, TELEGRAM_WEBHOOK_SECRET=SECRET)
    try:
        member = Member(api, token, language_code="es")
        member.send("/start", expect=3)
        member.press("SIGN")
        api.fail(token, "sendMessage", status=429, retry_after=30, chat_id=member.id)
        before = len(member.received())
        member.push({"message": member.message(text="María López")})
        wait_for(lambda: bot.query("SELECT 1 FROM inbound WHERE unsent = 1"), 5)
        time.sleep(0.2)  # the 429 has come back: all sending waits
        assert len(member.received()) == before, "the reply was held up"
        bot.stop(signal.SIGKILL)
        wait_connected(bot.start())
        (region,) = member.wait(before, 1)
        assert "provincia" in region.text.lower() and region.buttons
        wait_for(lambda: not bot.query("SELECT 1 FROM inbound WHERE unsent = 1"), 5)
        (confirm,) = member.send("ON")
        assert "María López" in confirm.text
        assert "sending the replies of 1 messages" in bot.logs()
    finally:
        assert bot.stop() == 0


# --- the terminal goes the same way -------------------------------------------------------

def test_chat_telegram_uses_the_same_commands_and_buttons(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "chat", "--channel", "telegram",
         "--contact", "4242", "--lang", "es"],
        cwd=tmp_path, input="/start\n[Firmar]\nAna Cruz\n[Saltar]\n[Sí]\n/stop\n",
        capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))},
             "BOT_DB": str(tmp_path / "bot.sqlite3")},
    )
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.rstrip("\n").split("\n\n")
    assert "Hola" in blocks[0] and "[Español]" in blocks[0] and "[Firmar]" in blocks[0]
    assert "nombre" in blocks[1]
    assert "[Saltar]" in blocks[2]
    assert "Ana Cruz" in blocks[3] and "[Sí]  [No]" in blocks[3]
    assert "noticias" in blocks[4]
    assert "PARAR" not in blocks[5] and "INICIO" in blocks[5]
