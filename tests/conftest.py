from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BotProcess, Twilio, sms_env


@pytest.fixture(scope="module")
def sms_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    """One real bot process per test module, SMS on, Twilio's keyword handling on (default)."""
    bot = BotProcess(tmp_path_factory.mktemp("sms"), sms_env()).start()
    yield bot
    bot.stop()


@pytest.fixture(scope="module")
def twilio(request: pytest.FixtureRequest) -> Iterator[Twilio]:
    """Signed webhooks to the module's bot: its own `bot` fixture if it has one, else `sms_bot`."""
    try:
        bot = request.getfixturevalue("bot")
    except pytest.FixtureLookupError:
        bot = request.getfixturevalue("sms_bot")
    with Twilio(bot) as client:
        yield client


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
