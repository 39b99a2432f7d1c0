"""Logging that never shows a full phone number, Telegram id or name.

Code logs contacts through `mask()`; the filter below is a second net that masks any
long digit run (a phone number or an id) that slipped into a message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_DIGITS = re.compile(r"\+?\d[\d ()-]{5,}\d")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def mask(address: str | None) -> str:
    """`+14165550123` -> `…0123`; `telegram:123456789` -> `telegram:…6789`."""
    if not address:
        return "-"
    kind, sep, ident = address.rpartition(":")
    digits = re.sub(r"\D", "", ident)
    tail = digits[-4:] if len(digits) > 4 else ""
    return f"{kind}{sep}…{tail}"


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = re.sub(r"\D", "", run)
    if len(digits) < 7 or _DATE.match(run):
        return run  # a port, a count, a date: not a number that names someone
    return "…" + digits[-4:]


def scrub(text: str) -> str:
    """Long digit runs (phone numbers, ids) in `text` down to their last four."""
    return _DIGITS.sub(_mask_run, text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line a record; a traceback goes through the same masking as the message (an
    exception's text can hold a number or a name)."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return scrub(super().formatException(ei))


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access", "telegram", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
