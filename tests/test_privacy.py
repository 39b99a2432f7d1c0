"""Logs never hold a full number, id or name; JSON logs are one object a line."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import JsonFormatter, MaskingFilter, mask
from tests.harness import AUTH_TOKEN, BotProcess, Twilio, new_number, sms_env


@pytest.mark.parametrize("address,expected", [
    pytest.param("+14165550123", "…0123", id="e164"),
    pytest.param("telegram:123456789", "telegram:…6789", id="telegram"),
    pytest.param("whatsapp:+14165550123", "whatsapp:…0123", id="whatsapp"),
    pytest.param("", "-", id="empty"),
    pytest.param("+123", "…", id="short"),
])
def test_mask(address: str, expected: str) -> None:
    assert mask(address) == expected


@pytest.mark.parametrize("message,leak", [
    pytest.param("from +1 416 555 0123 today", "416 555", id="spaced-number"),
    pytest.param("chat 987654321 said", "98765", id="telegram-id"),
    pytest.param("call (416) 555-0123", "555-01", id="dashed"),
])
def test_filter_masks_numbers_that_slip_into_a_log_line(message: str, leak: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, None, None)
    MaskingFilter().filter(record)
    assert leak not in record.getMessage()


def test_filter_keeps_ports_dates_and_counts() -> None:
    text = "listening on 127.0.0.1:8080 since 2026-11-28T10:00:00Z, 1234 sent"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)
    MaskingFilter().filter(record)
    assert record.getMessage() == text


def test_json_logs_of_a_real_conversation(tmp_path_factory: pytest.TempPathFactory) -> None:
    bot = BotProcess(tmp_path_factory.mktemp("json"), sms_env(LOG_FORMAT="json")).start()
    phone = new_number()
    try:
        with Twilio(bot) as twilio:
            twilio.conversation(phone, "hi", "1", "SIGN", "Zed Private", "ON", "1", "1",
                                "DELETE", "1")
    finally:
        bot.stop()
    lines = [line for line in bot.logs().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
    text = bot.logs()
    assert phone not in text and phone[2:] not in text and "Zed Private" not in text
    assert AUTH_TOKEN not in text


def test_text_formatter_masks_exceptions() -> None:
    from bot.logs import TextFormatter

    try:
        raise ValueError("bad number +14165550123")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = TextFormatter("%(message)s").format(record)
    assert "Traceback" in line and "+14165550123" not in line and "…0123" in line


def test_json_formatter_masks_exceptions() -> None:
    try:
        raise ValueError("bad number +14165550123")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "+14165550123" not in line and "…0123" in line
