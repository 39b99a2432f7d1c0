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


@pytest.fixture(scope="module")
def twilio(bot: BotProcess) -> Iterator[Twilio]:
    with Twilio(bot) as client:
        yield client


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
