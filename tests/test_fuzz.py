"""Property tests: any sequence of messages leaves a valid state and never counts twice;
random and hostile webhooks never get a 500."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot.app import load_texts
from bot.config import load_settings
from bot.engine import Engine, Inbound
from bot.store import Store
from bot.throttle import Throttle
from flows.signing import State
from tests.harness import BotProcess, Twilio, sms_env

WORDS = ["hi", "1", "2", "3", "9", "SIGN", "FIRMAR", "STOP", "PARAR", "START", "YES", "yes",
         "NO", "HELP", "MENU", "DELETE", "BORRAR", "LANGUAGE", "SKIP", "SALTAR", "ON", "qc",
         "Ana Cruz", "María", "es", "Español", "lang:fr", "lang:xx", "", " ", "🙂", "x" * 300,
         "\x00\x1b", "STATS", "oui", "oo", "hindi"]
message = st.one_of(st.sampled_from(WORDS), st.text(max_size=40))


class Conversation(RuleBasedStateMachine):
    """One store, a few contacts, any messages in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        settings_ = load_settings(environ={}, cwd=Path(self.tmp.name))
        campaign, catalogs = load_texts(settings_)
        self.store = Store(Path(self.tmp.name) / "bot.sqlite3")
        self.loop.run_until_complete(self.store.open())
        self.engine = Engine(self.store, campaign, catalogs, throttle=Throttle(burst=10**9))
        self.sid = 0

    def teardown(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()
        self.tmp.cleanup()

    @rule(who=st.sampled_from(["+14165550101", "+14165550102", "telegram:7"]), text=message,
          retry=st.booleans())
    def send(self, who: str, text: str, retry: bool) -> None:
        if not retry:
            self.sid += 1
        channel = "telegram" if who.startswith("telegram:") else "sms"
        msg = Inbound(channel, who, text, platform_id=f"id{self.sid}")
        outcome = self.loop.run_until_complete(self.engine.handle(msg))
        for reply in outcome.replies:
            assert reply.text and len(reply.text) <= 1600

    @invariant()
    def states_are_valid_and_signatures_unique(self) -> None:
        async def check() -> None:
            for row in await self.store.fetchall("SELECT state, language FROM contacts"):
                assert row["state"] in set(State)
                assert row["language"] in (None, *self.engine.campaign.languages)
            dupes = await self.store.fetchall(
                "SELECT contact_id FROM signatures GROUP BY contact_id HAVING count(*) > 1")
            assert dupes == []
            orphans = await self.store.fetchall(
                "SELECT s.signature_id FROM signatures s LEFT JOIN contacts c "
                "ON c.id = s.contact_id WHERE c.id IS NULL")
            assert orphans == []

        self.loop.run_until_complete(check())


TestConversation = Conversation.TestCase
TestConversation.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    process = BotProcess(tmp_path_factory.mktemp("fuzz"), sms_env()).start()
    yield process
    process.stop()


NO_FIXTURE_CHECK = [HealthCheck.function_scoped_fixture]
fields = st.dictionaries(
    st.sampled_from(["From", "To", "Body", "MessageSid", "AccountSid", "NumMedia", "OptOutType",
                     "X"]),
    st.text(max_size=200), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=NO_FIXTURE_CHECK)
@given(form=fields)
def test_random_signed_forms_never_500(bot: BotProcess, form: dict[str, str]) -> None:
    with Twilio(bot) as twilio:
        answer = twilio.post(form)
    assert answer.status in (200, 403), answer.body
    assert "Traceback" not in answer.body


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


@settings(max_examples=80, deadline=None, suppress_health_check=NO_FIXTURE_CHECK)
@given(raw=st.binary(max_size=3000), content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]))
def test_random_bytes_on_every_route_never_500(bot: BotProcess, client: httpx.Client, raw: bytes,
                                               content_type: str) -> None:
    for path in ("/twilio/sms", "/twilio/status", "/telegram/webhook", "/healthz", "/nope"):
        r = client.post(bot.url + path, content=raw, headers={"Content-Type": content_type})
        assert r.status_code < 500, (path, r.status_code, r.text)
        assert "Traceback" not in r.text
