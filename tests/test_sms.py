"""The SMS conversation end to end: a real bot process, webhooks signed as Twilio signs them."""

from __future__ import annotations

import concurrent.futures

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse

from bot.campaign import load_campaign
from bot.channels.sms import render, twiml
from flows.types import Choice, Reply
from tests.harness import ROOT, BotProcess, Twilio, new_number, sms_env

# One full signing flow per language: (language, number to pick it, SIGN word, name,
# province answer, code stored, yes word, expected words in the thanks).
FLOWS = [
    pytest.param("en", "1", "SIGN", "Mary Smith", "Ontario", "ON", "1", "of 20,000", id="english"),
    pytest.param("es", "2", "FIRMAR", "María López", "on", "ON", "sí", "de 20.000", id="spanish"),
    pytest.param("fr", "3", "SIGNER", "Élise Tremblay", "Québec", "QC", "oui", "20 000",
                 id="french"),
    pytest.param("tl", "4", "PUMIRMA", "Jose Santos", "BC", "BC", "oo", "20,000", id="tagalog"),
]


@pytest.mark.parametrize("lang,pick,sign,name,region,code,yes,goal", FLOWS)
def test_whole_signing_flow(twilio: Twilio, sms_bot: BotProcess, lang: str, pick: str, sign: str,
                            name: str, region: str, code: str, yes: str, goal: str) -> None:
    phone = new_number()
    welcome = twilio.send(phone, "hello")
    assert len(welcome) == 1 and "1 English" in welcome[0] and "2 Español" in welcome[0]
    petition = twilio.send(phone, pick)
    assert len(petition) == 2, "the petition is explained in two short texts"
    assert sign in petition[1]
    assert twilio.send(phone, sign)  # asks the name
    assert twilio.send(phone, name)  # asks the province
    confirm = twilio.send(phone, region)
    assert "1" in confirm[0] and "2" in confirm[0]
    assert twilio.send(phone, yes)  # signed; asks about updates
    thanks = twilio.send(phone, "1")
    assert goal in thanks[0]

    rows = sms_bot.query("SELECT * FROM signatures WHERE contact = ?", (phone,))
    assert len(rows) == 1
    sig = rows[0]
    assert (sig["full_name"], sig["region"], sig["language"], sig["channel"]) == (
        name, code, lang, "sms")
    assert sig["opted_in_updates"] == 1
    ledger = [r["event"] for r in sms_bot.query(
        "SELECT event FROM consent c JOIN contacts k ON k.id = c.contact_id "
        "WHERE k.address = ? ORDER BY c.id", (phone,))]
    assert ledger == ["signed", "updates_yes"]
    outbox = sms_bot.query("SELECT kind FROM outbox WHERE signature_id = ?", (sig["signature_id"],))
    assert [r["kind"] for r in outbox] == ["upsert", "upsert"]


def sign_up(twilio: Twilio, phone: str, updates: str = "2", name: str = "Ana Cruz") -> None:
    for line in ("hi", "1", "SIGN", name, "SKIP", "1", updates):
        twilio.send(phone, line)


def test_signing_twice_counts_once(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    sign_up(twilio, phone)
    again = twilio.send(phone, "SIGN")
    assert "already signed" in again[0]
    assert len(sms_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,))) == 1
    region = sms_bot.query("SELECT region FROM signatures WHERE contact = ?", (phone,))[0][0]
    assert region is None  # SKIP stores no province


def test_no_at_confirmation_signs_nothing(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    replies = twilio.conversation(phone, "hi", "1", "SIGN", "Ana Cruz", "ON", "2")
    assert "did not sign" in replies[-1][0]
    assert "SIGN" in replies[-1][1]  # and the menu
    assert sms_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,)) == []


# Answers that are asked again with a hint: (step reached by these lines, bad answer, hint).
RETRIES = [
    pytest.param(("hi",), "11", "number from the list", id="language-out-of-range"),
    pytest.param(("hi",), "klingon", "number from the list", id="language-unknown"),
    pytest.param(("hi", "1", "SIGN"), "42", "your name", id="name-digits"),
    pytest.param(("hi", "1", "SIGN"), "   ", "your name", id="name-blank"),
    pytest.param(("hi", "1", "SIGN", "Ana Cruz"), "Atlantis", "2 letters", id="province-unknown"),
    pytest.param(("hi", "1", "SIGN", "Ana Cruz", "ON"), "maybe", "Reply 1", id="confirm-unclear"),
    pytest.param(("hi", "1", "SIGN", "Ana Cruz", "ON", "1"), "later", "1 for yes",
                 id="updates-unclear"),
    pytest.param(("hi", "1"), "what is this", "MENU", id="menu-free-text"),
]


@pytest.mark.parametrize("before,bad,hint", RETRIES)
def test_unclear_answers_get_a_hint(twilio: Twilio, before: tuple[str, ...], bad: str,
                                    hint: str) -> None:
    phone = new_number()
    twilio.conversation(phone, *before)
    assert hint in twilio.send(phone, bad)[0]


@pytest.mark.parametrize("word", ["LANGUAGE", "lang", "idioma", "Langue.", "WIKA"])
def test_language_keyword_shows_the_list_at_any_step(twilio: Twilio, word: str) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1")
    answer = twilio.send(phone, word)
    assert "4 Tagalog" in answer[0]
    petition = twilio.send(phone, "espanol")
    assert "FIRMAR" in petition[1]


# LANGUAGE while signing: after the choice, the same question in the new language, and
# what was given so far is kept. (steps before LANGUAGE, the question's fragment, the rest)
RESUMED = [
    pytest.param(["SIGN"], "nombre", ["Ana Cruz", "ON", "1", "2"], id="at-the-name"),
    pytest.param(["SIGN", "Ana Cruz"], "provincia", ["ON", "1", "2"], id="at-the-province"),
    pytest.param(["SIGN", "Ana Cruz", "ON"], "Ana Cruz", ["1", "2"], id="at-the-confirmation"),
    pytest.param(["SIGN", "Ana Cruz", "ON", "1"], "noticias", ["2"], id="at-the-updates"),
]


@pytest.mark.parametrize("steps,question,rest", RESUMED)
def test_language_while_signing_asks_the_same_question_again(
        twilio: Twilio, steps: list[str], question: str, rest: list[str]) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1", *steps)
    assert "2 Español" in twilio.send(phone, "LANGUAGE")[0]
    (again,) = twilio.send(phone, "2")
    assert question in again
    *_, thanks = twilio.conversation(phone, *rest)
    assert "de 20.000" in thanks[0]


def test_help_as_a_first_message_then_the_welcome(tmp_path_factory) -> None:
    """A new contact's HELP is the keyword; their next message still gets the welcome and
    the language list (HELP does not skip the language choice)."""
    bot = BotProcess(tmp_path_factory.mktemp("help"), sms_env(TWILIO_KEYWORDS="bot")).start()
    try:
        with Twilio(bot) as twilio:
            phone = new_number()
            assert "NUPGE" in twilio.send(phone, "HELP")[0]
            assert "2 Español" in twilio.send(phone, "hi")[0]
            assert "FIRMAR" in twilio.send(phone, "2")[1]
    finally:
        bot.stop()


@pytest.mark.parametrize("choice", ["2", "es", "Spanish", "Español", "espanol", " ESPAÑOL! "])
def test_language_choice_by_number_code_or_name(twilio: Twilio, choice: str) -> None:
    phone = new_number()
    twilio.send(phone, "hi")
    assert "FIRMAR" in twilio.send(phone, choice)[1]


# Keywords as a first message: (text, expected fragment of the answer).
FIRST_KEYWORDS = [
    pytest.param("AYUDA", "PARAR", id="spanish-help-answers-in-spanish"),
    pytest.param("aide", "ARRET", id="french-help"),
    pytest.param("TULONG", "TIGIL", id="tagalog-help"),
    pytest.param("FIRMAR", "nombre", id="spanish-sign-asks-name-in-spanish"),
    pytest.param("MENU", "SIGN", id="menu"),
    pytest.param("Menú", "SIGN", id="menu-with-accent"),
    pytest.param("IDIOMA", "4 Tagalog", id="spanish-language"),
]


@pytest.mark.parametrize("text,fragment", FIRST_KEYWORDS)
def test_keyword_as_first_message_is_that_keyword(twilio: Twilio, text: str,
                                                  fragment: str) -> None:
    answer = twilio.send(new_number(), text)
    assert fragment in answer[0]


def test_help_keeps_the_step(twilio: Twilio) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1", "SIGN")
    assert "AYUDA" not in twilio.send(phone, "INFO")  # Twilio answers INFO itself: silent
    assert "NUPGE" in twilio.send(phone, "AYUDA")[0]
    assert "province" in twilio.send(phone, "Ana Cruz")[0]  # still at the name step


# Stop words in every language stop any contact; Twilio's own words get no reply of ours.
STOPS = [
    pytest.param("STOP", [], id="twilio-word-silent"),
    pytest.param("Stop.", [], id="twilio-word-punctuated-silent"),
    pytest.param("unsubscribe", [], id="twilio-unsubscribe-silent"),
    pytest.param("PARAR", ["START"], id="spanish-answers-once"),
    pytest.param("ARRÊT", ["START"], id="french-accented"),
    pytest.param("arret", ["START"], id="french-bare"),
    pytest.param("TIGIL", ["START"], id="tagalog"),
]


@pytest.mark.parametrize("word,expect", STOPS)
def test_stop_silences_until_start(twilio: Twilio, sms_bot: BotProcess, word: str,
                                   expect: list[str]) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1")
    answer = twilio.send(phone, word)
    assert len(answer) == len(expect)
    for fragment, text in zip(expect, answer, strict=True):
        assert fragment in text
    for line in ("hello?", "SIGN", "HELP", "2", "PARAR"):
        assert twilio.send(phone, line) == [], f"stopped contact got an answer to {line!r}"
    assert sms_bot.query("SELECT stopped FROM contacts WHERE address = ?", (phone,))[0][0] == 1
    # START: Twilio answers it itself, so we only record it; the next message is answered.
    assert twilio.send(phone, "START") == []
    assert sms_bot.query("SELECT stopped FROM contacts WHERE address = ?", (phone,))[0][0] == 0
    assert "SIGN" in twilio.send(phone, "MENU")[0]


def test_yes_after_stop_restarts_and_yes_in_a_question_is_an_answer(twilio: Twilio,
                                                                     sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1", "SIGN", "Ana Cruz", "ON")
    assert twilio.send(phone, "YES"), "YES answers the open confirmation"
    assert len(sms_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,))) == 1
    twilio.send(phone, "2")
    twilio.send(phone, "STOP")
    assert twilio.send(phone, "YES") == []  # Twilio re-subscribes and tells them itself
    assert sms_bot.query("SELECT stopped FROM contacts WHERE address = ?", (phone,))[0][0] == 0


def test_stop_withdraws_updates_consent(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    sign_up(twilio, phone, updates="1")
    twilio.send(phone, "PARAR")
    row = sms_bot.query("SELECT opted_in_updates FROM signatures WHERE contact = ?", (phone,))[0]
    assert row[0] == 0
    events = [r[0] for r in sms_bot.query(
        "SELECT event FROM consent c JOIN contacts k ON k.id = c.contact_id "
        "WHERE k.address = ? ORDER BY c.id", (phone,))]
    assert events == ["signed", "updates_yes", "stop"]


def test_delete_erases_after_confirmation(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    sign_up(twilio, phone, name="Zoe Erasable")
    before = sms_bot.query("SELECT count(*) FROM signatures")[0][0]
    sid = sms_bot.query("SELECT signature_id FROM signatures WHERE contact = ?", (phone,))[0][0]
    ask = twilio.send(phone, "DELETE")
    assert "1" in ask[0] and "2" in ask[0]
    assert "erased" in twilio.send(phone, "1")[0]
    assert sms_bot.query("SELECT count(*) FROM signatures")[0][0] == before - 1
    assert sms_bot.query("SELECT * FROM contacts WHERE address = ?", (phone,)) == []
    assert sms_bot.query("SELECT * FROM signatures WHERE contact = ?", (phone,)) == []
    assert sms_bot.query("SELECT kind FROM outbox WHERE signature_id = ?", (sid,))[-1][0] == "erase"
    leftovers = sms_bot.query("SELECT replies FROM inbound WHERE replies LIKE '%Zoe Erasable%'")
    assert leftovers == [], "no reply naming the person is kept after erasure"
    # Signing again later is a new signature.
    sign_up(twilio, phone)
    new_sid = sms_bot.query("SELECT signature_id FROM signatures WHERE contact = ?", (phone,))
    assert len(new_sid) == 1 and new_sid[0][0] != sid


def test_delete_answered_no_keeps_everything(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    sign_up(twilio, phone)
    twilio.send(phone, "BORRAR")
    assert "nothing was erased" in twilio.send(phone, "2")[0]
    assert len(sms_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,))) == 1


def test_twilio_retry_of_a_message_sid_gets_the_same_twiml_and_changes_nothing(
        twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1", "SIGN", "Ana Cruz", "ON")
    form = twilio.form(phone, "1")
    first = twilio.post(form)
    second = twilio.post(form)
    assert first.status == second.status == 200
    assert first.body == second.body
    assert len(sms_bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,))) == 1
    state = sms_bot.query("SELECT state FROM contacts WHERE address = ?", (phone,))[0][0]
    assert state == "ask_updates"


# Forged requests: refused with 403, nothing stored.
FORGED = [
    pytest.param(None, "/twilio/sms", id="missing-signature"),
    pytest.param("bm90IGEgc2lnbmF0dXJl", "/twilio/sms", id="wrong-signature"),
    pytest.param("", "/twilio/sms", id="empty-signature"),
]


@pytest.mark.parametrize("signature,path", FORGED)
def test_forged_webhooks_are_refused(twilio: Twilio, sms_bot: BotProcess, signature: str | None,
                                     path: str) -> None:
    phone = new_number()
    answer = twilio.post(twilio.form(phone, "SIGN"), signature=signature, path=path)
    assert answer.status == 403
    assert sms_bot.query("SELECT 1 FROM contacts WHERE address = ?", (phone,)) == []


def test_signature_for_other_params_is_refused(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    form = twilio.form(phone, "hi")
    signed = twilio.validator.compute_signature(sms_bot.public_url + "/twilio/sms", form)
    tampered = {**form, "Body": "FIRMAR"}
    assert twilio.post(tampered, signature=signed).status == 403
    with Twilio(sms_bot, auth_token="someone-else") as other:
        other_key = other.post(form)
    assert other_key.status == 403
    assert sms_bot.query("SELECT 1 FROM contacts WHERE address = ?", (phone,)) == []


# Bad input: a sensible reply or none, never a 500, nothing corrupted.
BAD_BODIES = [
    pytest.param("", id="empty"),
    pytest.param("   \n\t ", id="whitespace"),
    pytest.param("x" * 2000, id="2000-characters"),
    pytest.param("🙂🙏🏽✊", id="emoji"),
    pytest.param("\x00\x01\x1b[31m\x7f", id="control-characters"),
    pytest.param("'; DROP TABLE contacts; --", id="sql"),
    pytest.param("<Response><Message>x</Message></Response>", id="xml"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_at_every_step(twilio: Twilio, sms_bot: BotProcess, body: str) -> None:
    phone = new_number()
    for before in ((), ("1",), ("SIGN",), ("Ana Cruz",), ("ON",)):
        for line in before:
            twilio.send(phone, line)
        answer = twilio.post(twilio.form(phone, body))
        assert answer.status == 200
        for message in answer.messages:
            assert "Traceback" not in message and 0 < len(message) <= 1600
    assert len(sms_bot.query("SELECT 1 FROM contacts WHERE address = ?", (phone,))) == 1


def test_name_is_cleaned_and_capped(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1", "SIGN", "  Ana\x00\x07   Cruz " + "z" * 500, "ON", "1")
    name = sms_bot.query("SELECT full_name FROM signatures WHERE contact = ?", (phone,))[0][0]
    assert name.startswith("Ana Cruz") and len(name) <= 80 and "\x00" not in name


# Malformed webhooks: (form overrides, expected status). None removes the field.
MALFORMED = [
    pytest.param({"From": "not a phone"}, 200, id="from-not-a-number"),
    pytest.param({"From": None}, 200, id="no-from"),
    pytest.param({"MessageSid": None}, 200, id="no-message-sid"),
    pytest.param({"Body": None}, 200, id="no-body"),
    pytest.param({"AccountSid": "AC" + "9" * 32}, 200, id="other-account"),
]


@pytest.mark.parametrize("change,status", MALFORMED)
def test_malformed_webhooks(twilio: Twilio, change: dict[str, str | None], status: int) -> None:
    form = twilio.form(new_number(), "hi")
    for key, value in change.items():
        if value is None:
            form.pop(key)
        else:
            form[key] = value
    answer = twilio.post(form)
    assert answer.status == status
    if "Body" not in change:
        assert answer.messages == []


def test_invalid_utf8_and_oversized_bodies(twilio: Twilio, sms_bot: BotProcess) -> None:
    raw = b"From=%2B14165550999&Body=%FF%FE%80&MessageSid=SMbad&AccountSid=" + b"x"
    r = twilio.client.post(sms_bot.url + "/twilio/sms", content=raw,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": "abc"})
    assert r.status_code == 403
    binary = bytes(range(256)) * 4
    r = twilio.client.post(sms_bot.url + "/twilio/sms", content=binary,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403
    huge = twilio.form(new_number(), "y" * 200_000)
    assert twilio.post(huge).status == 413
    assert sms_bot.query("SELECT 1 FROM contacts WHERE address = '+14165550999'") == []


def test_signed_invalid_utf8_gets_an_answer_not_a_500(twilio: Twilio, sms_bot: BotProcess) -> None:
    # Twilio would sign the decoded text; what we decode is U+FFFD, so sign that.
    phone = new_number()
    form = twilio.form(phone, "\ufffd\ufffd")
    sig = twilio.validator.compute_signature(sms_bot.public_url + "/twilio/sms", form)
    from urllib.parse import urlencode
    raw = urlencode({k: v for k, v in form.items() if k != "Body"}).encode() + b"&Body=%FF%FE"
    r = twilio.client.post(sms_bot.url + "/twilio/sms", content=raw,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": sig})
    assert r.status_code == 200 and "<Response>" in r.text


def test_racing_messages_of_one_contact_apply_in_order(twilio: Twilio,
                                                       sms_bot: BotProcess) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1", "SIGN")
    # Two copies of the same message race, plus different contacts in parallel.
    form = twilio.form(phone, "Ana Cruz")
    others = [new_number() for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        same = [pool.submit(twilio.post, form) for _ in range(2)]
        rest = [pool.submit(twilio.send, other, "hi") for other in others]
        answers = [f.result() for f in same]
        assert all(r.result() for r in rest)
    assert answers[0].body == answers[1].body
    state = sms_bot.query("SELECT state FROM contacts WHERE address = ?", (phone,))[0][0]
    assert state == "ask_region"
    marks = ",".join("?" * len(others))
    found = sms_bot.query(f"SELECT 1 FROM contacts WHERE address IN ({marks})", tuple(others))
    assert len(found) == len(others)


def test_media_without_text_asks_to_type(twilio: Twilio) -> None:
    phone = new_number()
    twilio.conversation(phone, "hi", "1")
    answer = twilio.send(phone, "", NumMedia="1", MediaUrl0="https://example.invalid/a.jpg")
    assert "text" in answer[0].lower()


def test_phone_numbers_never_logged_in_full(twilio: Twilio, sms_bot: BotProcess) -> None:
    phone = new_number()
    sign_up(twilio, phone)
    logs = sms_bot.logs()
    assert phone not in logs and phone[1:] not in logs
    assert "Ana Cruz" not in logs
    assert phone[-4:] in logs


def test_restart_mid_flow_continues_at_the_same_step(tmp_path_factory) -> None:
    bot = BotProcess(tmp_path_factory.mktemp("restart"), sms_env()).start()
    try:
        with Twilio(bot) as twilio:
            phone = new_number()
            twilio.conversation(phone, "hola", "2", "FIRMAR", "María López")
            bot.restart()  # SIGKILL, then a new process on the same database
            confirm = twilio.send(phone, "ON")
            assert "María López" in confirm[0] or "Maria Lopez" in confirm[0]
            twilio.send(phone, "1")
            assert "de 20.000" in twilio.send(phone, "2")[0]
            assert len(bot.query("SELECT 1 FROM signatures WHERE contact = ?", (phone,))) == 1
    finally:
        bot.stop()


def test_bot_keyword_mode_answers_twilio_words(tmp_path_factory) -> None:
    bot = BotProcess(tmp_path_factory.mktemp("kw"), sms_env(TWILIO_KEYWORDS="bot")).start()
    try:
        with Twilio(bot) as twilio:
            phone = new_number()
            twilio.conversation(phone, "hi", "1")
            assert "START" in twilio.send(phone, "STOP")[0]
            assert twilio.send(phone, "hi") == []
            started = twilio.send(phone, "START")
            assert "Welcome back" in started[0] and "SIGN" in started[1]
            assert "NUPGE" in twilio.send(phone, "HELP")[0]
    finally:
        bot.stop()


def test_sms_route_is_404_when_sms_is_off(tmp_path_factory) -> None:
    bot = BotProcess(tmp_path_factory.mktemp("off"), {}).start()
    try:
        with Twilio(bot) as twilio:
            assert twilio.post(twilio.form(new_number(), "hi")).status == 404
    finally:
        bot.stop()


CAMPAIGN = load_campaign(ROOT / "campaign.toml")
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=30)
reply = st.builds(Reply, any_text, st.sampled_from(["en", "es", "fr", "zh"]),
                  st.lists(st.builds(Choice, any_text, st.just("1")), max_size=2).map(tuple),
                  st.booleans())


@given(st.lists(reply, max_size=3), st.sampled_from(["sms", "whatsapp"]))
def test_twiml_is_what_twilios_messagingresponse_writes(replies: list[Reply],
                                                        channel: str) -> None:
    response = MessagingResponse()
    for r in replies:
        response.message(render(r, CAMPAIGN, channel))
    assert twiml(replies, CAMPAIGN, channel) == str(response)
