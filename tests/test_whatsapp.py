"""WhatsApp through Twilio: same webhook, same engine and flows, contacts `whatsapp:+E164`.

Replies come back in TwiML, or (a turn with choices: buttons) through the local Twilio REST
stand-in as Content; `wa` returns what the member reads either way."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BOT_NUMBER,
    BotProcess,
    Twilio,
    new_number,
    new_sid,
    sms_env,
    wait_for,
)
from tests.standins.twilio_api import Sent, TwilioAPI

WA_NUMBER = "whatsapp:+14155238886"


@pytest.fixture(scope="module")
def api() -> Iterator[TwilioAPI]:
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as stand_in:
        stand_in.strict_content = True
        yield stand_in


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, api: TwilioAPI) -> Iterator[BotProcess]:
    process = BotProcess(tmp_path_factory.mktemp("wa"),
                         sms_env(TWILIO_WHATSAPP_NUMBER=WA_NUMBER,
                                 TWILIO_API_URL=api.url)).start()
    yield process
    process.stop()


#: the module's stand-in, for `wa` (set by the autouse fixture below)
_API: list[TwilioAPI] = []


@pytest.fixture(autouse=True)
def _stand_in(api: TwilioAPI) -> None:
    api.refuse_content = 0
    _API[:] = [api]


def rest_replies(phone: str, before: int, timeout: float = 5.0) -> list[Sent]:
    """The REST messages to `phone` after the first `before`, once the turn's last one (the
    one with buttons) has come, or whatever came within `timeout`."""
    api = _API[0]
    deadline = time.monotonic() + timeout
    while True:
        new = api.to(f"whatsapp:{phone}")[before:]
        if (new and new[-1].content_sid) or time.monotonic() > deadline:
            return new
        time.sleep(0.01)


def wa(twilio: Twilio, phone: str, body: str, quiet: bool = False, **extra: str) -> list[str]:
    """Send as the member; what they read back (TwiML, or REST messages for a turn with
    buttons: then the webhook's own answer is empty). `quiet`: no answer is expected, so
    do not wait long for one."""
    before = len(_API[0].to(f"whatsapp:{phone}"))
    answer = twilio.post(twilio.form(f"whatsapp:{phone}", body, To=WA_NUMBER, **extra))
    assert answer.status == 200, answer.body
    if answer.messages:
        return answer.messages
    return [sent.text for sent in rest_replies(phone, before, timeout=0.5 if quiet else 10)]


def buttons(api: TwilioAPI, sent: Sent) -> tuple[str, list[tuple[str, str]]]:
    """(content type, [(label, id)]) of a message sent as Content."""
    assert sent.content_sid, f"no buttons on {sent.text!r}"
    ((kind, spec),) = api.contents[sent.content_sid]["types"].items()
    pairs = [(a["title"], a["id"]) for a in spec.get("actions", [])] or \
        [(i["item"], i["id"]) for i in spec.get("items", [])]
    return kind, pairs


FLOWS = [
    pytest.param("2", "FIRMAR", "María López", "sí", "de 20.000", "es", id="spanish"),
    pytest.param("4", "PUMIRMA", "Jose Santos", "oo", "20,000", "tl", id="tagalog"),
]


@pytest.mark.parametrize("pick,sign,name,yes,goal,lang", FLOWS)
def test_whole_flow_over_whatsapp(twilio: Twilio, bot: BotProcess, pick: str, sign: str,
                                  name: str, yes: str, goal: str, lang: str) -> None:
    """Typed, as on a basic phone: the buttons are there, but the words and numbers work."""
    phone = new_number()
    assert len(wa(twilio, phone, "hola")) == 1
    petition = wa(twilio, phone, pick)
    assert sign in petition[1]
    for line in (sign, name, "ON", yes):
        assert wa(twilio, phone, line)
    assert goal in wa(twilio, phone, "1")[0]
    rows = bot.query("SELECT channel, contact, full_name, language FROM signatures "
                     "WHERE contact = ?", (f"whatsapp:{phone}",))
    assert [tuple(r) for r in rows] == [("whatsapp", f"whatsapp:{phone}", name, lang)]


def tap(twilio: Twilio, api: TwilioAPI, phone: str, label: str) -> tuple[list[str], list[Sent]]:
    """Tap the button (or list item) labelled `label` on the last message with buttons, as
    WhatsApp reports it: its title in Body, its id in ButtonPayload or ListId. Returns the
    answer: (TwiML messages, REST messages)."""
    last = [s for s in api.to(f"whatsapp:{phone}") if s.content_sid][-1]
    kind, pairs = buttons(api, last)
    (value,) = [v for lab, v in pairs if lab == label]
    field = "ListId" if kind == "twilio/list-picker" else "ButtonPayload"
    before = len(api.to(f"whatsapp:{phone}"))
    answer = twilio.post(twilio.form(f"whatsapp:{phone}", label, To=WA_NUMBER,
                                     **{field: value}))
    assert answer.status == 200
    if answer.messages:
        return answer.messages, []
    return [], rest_replies(phone, before)


def test_signing_by_tapping_buttons(twilio: Twilio, api: TwilioAPI, bot: BotProcess) -> None:
    """Every choice is a button (a list for the ten languages); tapping signs."""
    phone = new_number()
    before = len(api.to(f"whatsapp:{phone}"))
    answer = twilio.post(twilio.form(f"whatsapp:{phone}", "hola", To=WA_NUMBER))
    assert answer.messages == [], "a turn with buttons answers through the REST API"
    (welcome,) = rest_replies(phone, before)
    kind, pairs = buttons(api, welcome)
    assert kind == "twilio/list-picker" and len(pairs) == 10
    assert ("2 Español", "ub:lang:es") in pairs and "number" in welcome.text
    assert welcome.sender == WA_NUMBER
    assert api.contents[welcome.content_sid]["types"][kind]["button"] == "Choose"

    _, petition = tap(twilio, api, phone, "2 Español")
    assert len(petition) == 2 and petition[0].content_sid is None  # text, then the button
    assert buttons(api, petition[1]) == ("twilio/quick-reply", [("Firmar", "ub:SIGN")])
    ask_name, _ = tap(twilio, api, phone, "Firmar")  # "your name?" has no buttons: TwiML
    assert len(ask_name) == 1
    assert wa(twilio, phone, "María López")
    region = api.to(f"whatsapp:{phone}")[-1]
    assert buttons(api, region)[1] == [("Saltar", "ub:SKIP")]
    _, (confirm,) = tap(twilio, api, phone, "Saltar")
    assert "María López" in confirm.text
    kind, pairs = buttons(api, confirm)
    assert kind == "twilio/quick-reply" and [label for label, _ in pairs] == ["Sí", "No"]
    _, (optin,) = tap(twilio, api, phone, "Sí")
    assert [label for label, _ in buttons(api, optin)[1]] == ["Sí", "No"]
    (thanks,), _ = tap(twilio, api, phone, "No")
    assert "de 20.000" in thanks
    rows = bot.query("SELECT language, region, opted_in_updates FROM signatures "
                     "WHERE contact = ?", (f"whatsapp:{phone}",))
    assert [tuple(r) for r in rows] == [("es", None, 0)]


def test_a_repeated_message_sid_sends_nothing_again(twilio: Twilio, api: TwilioAPI,
                                                    bot: BotProcess) -> None:
    phone = new_number()
    form = twilio.form(f"whatsapp:{phone}", "hi", sid=new_sid(), To=WA_NUMBER)
    first = twilio.post(form)
    wait_for(lambda: api.to(f"whatsapp:{phone}"), 10)
    again = twilio.post(form)
    assert again.body == first.body and again.messages == []
    # The member's next message is answered on the same line, after anything the repeat
    # would wrongly have sent: once it is there, the count is final.
    assert len(wa(twilio, phone, "1")) == 2
    assert len(api.to(f"whatsapp:{phone}")) == 3


def fresh_bot(workdir, api: TwilioAPI, **env: str) -> BotProcess:
    """A bot of its own (nothing made or paused yet), on the module's stand-in."""
    return BotProcess(workdir, sms_env(TWILIO_WHATSAPP_NUMBER=WA_NUMBER,
                                       TWILIO_API_URL=api.url, **env)).start()


def test_contents_made_once_at_once_and_again_when_twilio_lost_them(tmp_path,
                                                                    api: TwilioAPI) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bot = fresh_bot(tmp_path, api)
    try:
        with Twilio(bot) as twilio:
            made = api.content_requests
            phones = [new_number() for _ in range(6)]
            with ThreadPoolExecutor(6) as pool:  # six new members at the same moment
                list(pool.map(lambda p: twilio.post(twilio.form(f"whatsapp:{p}", "hi",
                                                                To=WA_NUMBER)), phones))
            for phone in phones:
                (welcome,) = wait_for(lambda p=phone: api.to(f"whatsapp:{p}"), 10)
                assert welcome.content_sid
            assert api.content_requests == made + 1, "one list, made once"
            (kept,) = bot.query("SELECT sid FROM whatsapp_contents")
            assert kept[0] == welcome.content_sid

            api.contents.pop(kept[0])  # deleted in Twilio's console: messages naming it fail
            phone = new_number()
            twilio.post(twilio.form(f"whatsapp:{phone}", "hi", To=WA_NUMBER))
            (welcome,) = wait_for(lambda: api.to(f"whatsapp:{phone}"), 10)
            assert welcome.content_sid is None and "2 Español" in welcome.body
            assert bot.query("SELECT sid FROM whatsapp_contents") == []
            phone = new_number()
            twilio.post(twilio.form(f"whatsapp:{phone}", "hi", To=WA_NUMBER))
            (welcome,) = wait_for(lambda: api.to(f"whatsapp:{phone}"), 10)
            assert welcome.content_sid in api.contents, "made again"
    finally:
        bot.stop()


def test_content_api_refused_falls_back_to_numbered_text(tmp_path, api: TwilioAPI) -> None:
    """With the Content API refusing, the member gets the numbered list (and can type)."""
    bot = fresh_bot(tmp_path, api)
    try:
        api.refuse_content = 403
        made = len(api.contents)
        with Twilio(bot) as twilio:
            phone = new_number()
            twilio.post(twilio.form(f"whatsapp:{phone}", "hola", To=WA_NUMBER))
            (welcome,) = wait_for(lambda: api.to(f"whatsapp:{phone}"), 10)
            assert welcome.content_sid is None and "2 Español" in welcome.body
            assert len(api.contents) == made
            twilio.post(twilio.form(f"whatsapp:{phone}", "2", To=WA_NUMBER))
            petition = wait_for(lambda: api.to(f"whatsapp:{phone}")[1:3]
                                if len(api.to(f"whatsapp:{phone}")) >= 3 else None, 10)
            assert "FIRMAR" in petition[-1].body
        assert "Content API answered 403" in bot.logs()
    finally:
        bot.stop()


def test_replies_a_crash_left_unsent_go_out_after_the_restart(tmp_path,
                                                              api: TwilioAPI) -> None:
    """Twilio keeps answering 429 to a reply with buttons; the bot is killed meanwhile: the
    next `serve` sends it, once, and the member carries on."""
    import signal

    bot = fresh_bot(tmp_path, api)
    try:
        with Twilio(bot) as twilio:
            phone = new_number()
            asked = api.requests
            api.rate_limit_next = 1000
            twilio.post(twilio.form(f"whatsapp:{phone}", "hola", To=WA_NUMBER))
            wait_for(lambda: api.requests > asked, 10)  # refused once: the lane waits
            assert bot.query("SELECT 1 FROM inbound WHERE unsent = 1")
            bot.stop(signal.SIGKILL)
            api.rate_limit_next = 0
            bot.start()
            (welcome,) = wait_for(lambda: api.to(f"whatsapp:{phone}"), 10)
            assert buttons(api, welcome)[0] == "twilio/list-picker"
            wait_for(lambda: not bot.query("SELECT 1 FROM inbound WHERE unsent = 1"), 5)
            assert "FIRMAR" in wa(twilio, phone, "2")[-1]
            assert len([s for s in api.to(f"whatsapp:{phone}") if s.content_sid and
                        buttons(api, s)[0] == "twilio/list-picker"]) == 1, "sent once"
    finally:
        api.rate_limit_next = 0
        bot.stop()


def test_buttons_off_answers_in_twiml_with_numbers(tmp_path, api: TwilioAPI) -> None:
    bot = fresh_bot(tmp_path, api, WHATSAPP_BUTTONS="off")
    try:
        with Twilio(bot) as twilio:
            phone = new_number()
            answer = twilio.post(twilio.form(f"whatsapp:{phone}", "hola", To=WA_NUMBER))
            assert "2 Español" in answer.messages[0]
            petition = twilio.post(twilio.form(f"whatsapp:{phone}", "2", To=WA_NUMBER))
            assert "FIRMAR" in petition.messages[-1]
    finally:
        bot.stop()
    assert api.to(f"whatsapp:{phone}") == []


def test_spanish_keeps_its_accents_on_whatsapp(twilio: Twilio) -> None:
    phone = new_number()
    wa(twilio, phone, "hola")
    petition = wa(twilio, phone, "2")
    assert "á" in petition[0] + petition[1] or "í" in petition[0] + petition[1]


@pytest.mark.parametrize("word,fragment", [
    pytest.param("STOP", "START", id="stop-answered-by-the-bot"),
    pytest.param("HELP", "NUPGE", id="help-answered-by-the-bot"),
])
def test_bot_answers_twilio_keywords_on_whatsapp(twilio: Twilio, word: str,
                                                 fragment: str) -> None:
    phone = new_number()
    wa(twilio, phone, "hi")
    wa(twilio, phone, "1")
    answer = wa(twilio, phone, word)
    assert len(answer) == 1 and fragment in answer[0]
    if word == "STOP":
        assert wa(twilio, phone, "STOP", quiet=True) == [], "answered exactly once"
        assert wa(twilio, phone, "hello", quiet=True) == []
        started = wa(twilio, phone, "START")
        assert started and "back" in started[0].lower()


@pytest.mark.parametrize("extra", [
    pytest.param({"NumMedia": "1", "MediaContentType0": "audio/ogg",
                  "MediaUrl0": "https://example.invalid/voice.ogg"}, id="voice-note"),
    pytest.param({"NumMedia": "1", "MediaContentType0": "image/jpeg",
                  "MediaUrl0": "https://example.invalid/a.jpg"}, id="image"),
    pytest.param({"Latitude": "43.65", "Longitude": "-79.38"}, id="location"),
])
def test_media_gets_a_kind_answer_and_is_not_stored(twilio: Twilio, bot: BotProcess,
                                                    extra: dict[str, str]) -> None:
    phone = new_number()
    wa(twilio, phone, "hola")
    wa(twilio, phone, "2")
    answer = wa(twilio, phone, "", **extra)
    assert len(answer) == 1 and "escrib" in answer[0].lower()
    stored = bot.query("SELECT replies FROM inbound WHERE replies LIKE '%example.invalid%'")
    assert stored == []


def test_sms_and_whatsapp_from_one_number_are_two_contacts(twilio: Twilio,
                                                           bot: BotProcess) -> None:
    phone = new_number()
    for send in (lambda b: twilio.send(phone, b), lambda b: wa(twilio, phone, b)):
        for line in ("hi", "1", "SIGN", "Ana Cruz", "ON", "1", "2"):
            send(line)
    rows = bot.query("SELECT channel FROM signatures WHERE contact IN (?, ?) ORDER BY channel",
                     (phone, f"whatsapp:{phone}"))
    assert [r[0] for r in rows] == ["sms", "whatsapp"]
    assert "already" in wa(twilio, phone, "SIGN")[0]


@pytest.mark.parametrize("change", [
    pytest.param({"To": "whatsapp:+15550009999"}, id="not-our-whatsapp-number"),
    pytest.param({"To": BOT_NUMBER}, id="whatsapp-to-the-sms-number"),
    pytest.param({"AccountSid": "AC" + "7" * 32}, id="other-account"),
])
def test_messages_for_someone_else_are_refused(twilio: Twilio, bot: BotProcess,
                                               change: dict[str, str]) -> None:
    phone = new_number()
    form = {**twilio.form(f"whatsapp:{phone}", "hi", To=WA_NUMBER), **change}
    answer = twilio.post(form)
    assert answer.status == 200 and answer.messages == []
    assert bot.query("SELECT 1 FROM contacts WHERE address = ?", (f"whatsapp:{phone}",)) == []


def test_forged_whatsapp_webhook_is_403(twilio: Twilio, bot: BotProcess) -> None:
    phone = new_number()
    form = twilio.form(f"whatsapp:{phone}", "FIRMAR", To=WA_NUMBER)
    assert twilio.post(form, signature="forged").status == 403
    assert twilio.post(form, signature=None).status == 403
    assert bot.query("SELECT 1 FROM contacts WHERE address = ?", (f"whatsapp:{phone}",)) == []


def test_healthz_lists_whatsapp(bot: BotProcess) -> None:
    import httpx
    health = httpx.get(bot.url + "/healthz").json()
    assert health["channels"]["whatsapp"] == {"enabled": True, "reason": None}


def test_sms_to_another_number_is_refused_too(twilio: Twilio, bot: BotProcess) -> None:
    phone = new_number()
    answer = twilio.post(twilio.form(phone, "hi", To="+15550002222"))
    assert answer.status == 200 and answer.messages == []


@pytest.mark.parametrize("phone", [
    pytest.param("+5215512345678", id="mexico-mobile-with-the-old-1"),
    pytest.param("+5491123456789", id="argentina-mobile-with-9"),
])
def test_whatsapp_ids_outside_todays_numbering_plan_are_answered(twilio: Twilio,
                                                                 api: TwilioAPI,
                                                                 bot: BotProcess,
                                                                 phone: str) -> None:
    """WhatsApp still names many Mexican mobiles +521…: they are members like any other,
    answered at the id WhatsApp gave."""
    before = len(api.to(f"whatsapp:{phone}"))
    assert wa(twilio, phone, "hola")
    (welcome,) = api.to(f"whatsapp:{phone}")[before:]
    assert buttons(api, welcome)[0] == "twilio/list-picker"
    assert "FIRMAR" in wa(twilio, phone, "2")[-1]
    assert bot.query("SELECT channel FROM contacts WHERE address = ?",
                     (f"whatsapp:{phone}",))[0][0] == "whatsapp"


@pytest.mark.parametrize("sender", ["whatsapp:12345", "whatsapp:+0123456789",
                                    "whatsapp:+1234567890123456", "whatsapp:hello"])
def test_whatsapp_ids_that_are_not_numbers_are_refused(twilio: Twilio, bot: BotProcess,
                                                       sender: str) -> None:
    answer = twilio.post(twilio.form(sender, "hola", To=WA_NUMBER))
    assert answer.status == 200 and answer.messages == []
    assert bot.query("SELECT 1 FROM contacts WHERE address = ?", (sender,)) == []


# --- broadcasts within WhatsApp's rules ---------------------------------------------------

WA_MESSAGE = """
[en]
text = "Update: the petition reached Parliament."
[en.whatsapp_template]
content_sid = "HX0123456789abcdef0123456789abcdef"
variables = { "1" = "Parliament" }
[es]
text = "Novedad: la petición llegó al Parlamento."
"""


def test_whatsapp_broadcast_free_text_in_window_template_or_skip_outside(tmp_path) -> None:
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from tests.harness import ACCOUNT_SID, AUTH_TOKEN
    from tests.standins.twilio_api import TwilioAPI
    from tests.test_broadcast import broadcast, seed

    recent = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    people = {  # address: (language, last message)
        "whatsapp:+14165552001": ("en", recent),
        "whatsapp:+14165552002": ("en", old),  # outside the window: English template
        "whatsapp:+14165552003": ("es", recent),
        "whatsapp:+14165552004": ("tl", old),  # outside, tl falls back to the en template
        "+14165552005": ("es", old),  # SMS has no window
    }
    db = tmp_path / "bot.sqlite3"
    seed(db, [{"address": a, "language": lang, "channel": "whatsapp" if a[0] == "w" else "sms"}
              for a, (lang, _) in people.items()])
    with sqlite3.connect(db) as conn:
        for address, (_, at) in people.items():
            conn.execute("UPDATE contacts SET updated_at = ? WHERE address = ?", (at, address))
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as api:
        extra = {"TWILIO_WHATSAPP_NUMBER": WA_NUMBER}
        dry = broadcast(tmp_path, api, "--dry-run", message=WA_MESSAGE, **extra)
        assert dry.returncode == 0, dry.stderr
        assert "outside WhatsApp's 24-hour window: 1 by template" in dry.stdout
        assert api.requests == 0
        sent = broadcast(tmp_path, api, "--yes", message=WA_MESSAGE, **extra)
        assert sent.returncode == 0, sent.stderr
        by_to = {s.to: s for s in api.sent}
    assert set(by_to) == set(people)
    free = by_to["whatsapp:+14165552001"]
    assert "Parliament" in free.body and free.sender == WA_NUMBER and free.content_sid is None
    assert "á" in by_to["whatsapp:+14165552003"].body  # WhatsApp keeps accents
    for late in ("whatsapp:+14165552002", "whatsapp:+14165552004"):
        assert by_to[late].content_sid == "HX0123456789abcdef0123456789abcdef"
        assert json.loads(by_to[late].content_variables or "{}") == {"1": "Parliament"}
        assert by_to[late].body == ""
    assert by_to["+14165552005"].sender == BOT_NUMBER


def test_whatsapp_outside_window_without_template_is_skipped_and_counted(tmp_path) -> None:
    import sqlite3

    from tests.harness import ACCOUNT_SID, AUTH_TOKEN
    from tests.standins.twilio_api import TwilioAPI
    from tests.test_broadcast import broadcast, seed

    db = tmp_path / "bot.sqlite3"
    seed(db, [{"address": "whatsapp:+14165553001", "language": "es", "channel": "whatsapp"}])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE contacts SET updated_at = '2020-01-01T00:00:00Z'")
    message = '[en]\ntext = "Hello"\n[es]\ntext = "Hola"\n'
    with TwilioAPI(ACCOUNT_SID, AUTH_TOKEN) as api:
        extra = {"TWILIO_WHATSAPP_NUMBER": WA_NUMBER}
        dry = broadcast(tmp_path, api, "--dry-run", message=message, **extra)
        assert "1 skipped (no template)" in dry.stdout and "will be skipped" in dry.stdout
        result = broadcast(tmp_path, api, "--yes", message=message, **extra)
        assert result.returncode == 0 and api.requests == 0
    with sqlite3.connect(db) as conn:
        state, error = conn.execute("SELECT state, error FROM broadcast_recipients").fetchone()
    assert state == "skipped" and "24-hour" in error


# --- which content a reply's choices become ----------------------------------------------

def _reply(n: int, label: str = "Sí", numbered: bool = False, text: str = "¿Firmas?"):
    from flows.types import Choice, Reply
    return Reply(text, "es", tuple(Choice(f"{label}{i}" if n > 1 else label, str(i))
                                   for i in range(n)), numbered=numbered)


CONTENTS = [
    # (reply, content type or None for numbered text)
    pytest.param(_reply(1), "twilio/quick-reply", id="one-button"),
    pytest.param(_reply(3), "twilio/quick-reply", id="three-buttons"),
    pytest.param(_reply(4), "twilio/list-picker", id="four-choices-a-list"),
    pytest.param(_reply(10, numbered=True), "twilio/list-picker", id="ten-languages-a-list"),
    pytest.param(_reply(11), None, id="eleven-too-many"),
    pytest.param(_reply(2, label="A" * 21), "twilio/list-picker", id="long-title-in-a-list"),
    pytest.param(_reply(2, label="A" * 25), None, id="too-long-even-for-a-list"),
    pytest.param(_reply(2, text="x" * 1025), None, id="text-over-1024"),
    pytest.param(_reply(0), None, id="no-choices"),
]


@pytest.mark.parametrize("reply,kind", CONTENTS)
def test_choices_become_the_content_that_fits(reply, kind: str | None) -> None:
    from bot.channels.whatsapp import content_for
    from tests.standins.twilio_api import content_problem

    content = content_for(reply, "Elegir")
    assert (content and next(iter(content["types"]))) == kind
    if content:
        assert content_problem(content) is None, "Twilio would refuse it"
        assert content["types"][kind]["body"] == "{{1}}"
        if reply.numbered:
            assert content["types"][kind]["items"][1]["item"].startswith("2 ")
        assert content_for(reply, "Elegir") == content, "the same choices, the same content"
