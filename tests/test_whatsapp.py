"""WhatsApp through Twilio: same webhook, same engine and flows, contacts `whatsapp:+E164`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import BOT_NUMBER, BotProcess, Twilio, new_number, sms_env

WA_NUMBER = "whatsapp:+14155238886"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    process = BotProcess(tmp_path_factory.mktemp("wa"),
                         sms_env(TWILIO_WHATSAPP_NUMBER=WA_NUMBER)).start()
    yield process
    process.stop()


def wa(twilio: Twilio, phone: str, body: str, **extra: str) -> list[str]:
    answer = twilio.post(twilio.form(f"whatsapp:{phone}", body, To=WA_NUMBER, **extra))
    assert answer.status == 200, answer.body
    return answer.messages


FLOWS = [
    pytest.param("2", "FIRMAR", "María López", "sí", "de 20.000", "es", id="spanish"),
    pytest.param("4", "PUMIRMA", "Jose Santos", "oo", "20,000", "tl", id="tagalog"),
]


@pytest.mark.parametrize("pick,sign,name,yes,goal,lang", FLOWS)
def test_whole_flow_over_whatsapp(twilio: Twilio, bot: BotProcess, pick: str, sign: str,
                                  name: str, yes: str, goal: str, lang: str) -> None:
    phone = new_number()
    assert "2 Español" in wa(twilio, phone, "hola")[0]
    petition = wa(twilio, phone, pick)
    assert sign in petition[1]
    for line in (sign, name, "ON", yes):
        assert wa(twilio, phone, line)
    assert goal in wa(twilio, phone, "1")[0]
    rows = bot.query("SELECT channel, contact, full_name, language FROM signatures "
                     "WHERE contact = ?", (f"whatsapp:{phone}",))
    assert [tuple(r) for r in rows] == [("whatsapp", f"whatsapp:{phone}", name, lang)]


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
        assert wa(twilio, phone, "STOP") == [], "answered exactly once"
        assert wa(twilio, phone, "hello") == []
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
    import json
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
