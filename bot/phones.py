"""Phone numbers as people and platforms write them, read as E.164 (`+14165550123`)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "CA"  # numbers written without a country code are read as North American


def normalize_number(raw: str) -> str | None:
    """`+1 416 555 0123`, `4165550123` -> `+14165550123`; None when it is not a phone number."""
    return _normalize_cached(raw) if len(raw) <= 32 else _normalize(raw)


#: Numbers read recently, parsed once: every webhook names our own number in `To` (and the
#: settings hold it), and a person's messages come one after another. Bounded (1024 short
#: strings, about 150 KB).
@lru_cache(maxsize=1024)
def _normalize_cached(raw: str) -> str | None:
    return _normalize(raw)


def _normalize(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
