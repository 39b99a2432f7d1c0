"""Floods, and organizer commands that only organizers can reach."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest

from bot.throttle import Throttle
from tests.harness import BotProcess, Twilio, new_number, sms_env

ORGANIZER = "+14165559999"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    process = BotProcess(tmp_path_factory.mktemp("abuse"),
                         # written as people write numbers: read as +E.164
                         sms_env(ORGANIZERS="sms:+1 (416) 555-9999,telegram:42")).start()
    yield process
    process.stop()


def test_a_flooding_number_is_throttled_without_slowing_others(bot: BotProcess,
                                                               twilio: Twilio) -> None:
    flooder, other = new_number(), new_number()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: twilio.post(twilio.form(flooder, f"spam {i}")),
                                range(200)))
    assert all(a.status == 200 for a in answers)
    answered = sum(1 for a in answers if a.messages)
    assert 1 <= answered <= 30
    assert twilio.send(other, "hi"), "another contact is answered as usual"
    rows = bot.query("SELECT count(*) FROM inbound i JOIN contacts c ON c.id = i.contact_id "
                     "WHERE c.address = ?", (flooder,))[0][0]
    assert rows <= 30, "a flood leaves a bounded trace in the database"


def test_throttle_resumes_after_a_pause() -> None:
    throttle = Throttle(burst=3, per_minute=60)
    assert [throttle.allow("a", now=0.0) for _ in range(5)] == [True, True, True, False, False]
    assert throttle.allow("b", now=0.0)
    assert throttle.allow("a", now=1.5)  # one token back per second


def test_throttle_memory_is_bounded() -> None:
    throttle = Throttle(capacity=100)
    for i in range(10_000):
        throttle.allow(f"+1416555{i:04d}", now=float(i))
    assert len(throttle) == 100


STATS_CASES = [
    pytest.param(ORGANIZER, True, id="organizer-gets-numbers"),
    pytest.param("+14165550000", False, id="member-gets-normal-answer"),
]


@pytest.mark.parametrize("sender,organizer", STATS_CASES)
def test_stats_by_sms_only_for_organizers(twilio: Twilio, sender: str, organizer: bool) -> None:
    twilio.send(sender, "hi")
    twilio.send(sender, "1")
    answer = twilio.send(sender, "STATS")
    if organizer:
        assert "signed" in answer[0] and "/20000" in answer[0]
    else:
        assert "signed" not in " ".join(answer) and "stats" not in " ".join(answer).lower()
