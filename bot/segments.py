"""Audience segments: `signed=true and region=ON and language=es and channel=sms`."""

from __future__ import annotations

from dataclasses import dataclass

from flows.regions import PROVINCES

KEYS = ("language", "channel", "signed", "region")
CHANNELS = ("sms", "telegram", "whatsapp")


class SegmentError(ValueError):
    """The expression is not `key=value [and key=value …]`; the message says what is wrong."""


@dataclass(frozen=True)
class Segment:
    language: frozenset[str] = frozenset()
    channel: frozenset[str] = frozenset()
    region: frozenset[str] = frozenset()
    signed: bool | None = None
    text: str = ""

    def sql(self) -> tuple[str, list[object]]:
        """A WHERE fragment over `c` (contacts) and `s` (signatures), with its parameters."""
        parts: list[str] = []
        params: list[object] = []
        for column, values in (("c.language", self.language), ("c.channel", self.channel),
                               ("s.region", self.region)):
            if values:
                parts.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(sorted(values))
        if self.signed is True:
            parts.append("s.signature_id IS NOT NULL")
        elif self.signed is False:
            parts.append("s.signature_id IS NULL")
        return (" AND ".join(parts) or "1"), params


def parse_segment(expr: str | None, languages: tuple[str, ...] = ()) -> Segment:
    """Parse an expression; repeated keys mean "any of" (`region=ON and region=BC`)."""
    if expr is None or not expr.strip():
        return Segment()
    found: dict[str, set[str]] = {}
    signed: bool | None = None
    for raw in expr.replace(" AND ", " and ").split(" and "):
        term = raw.strip()
        key, sep, value = term.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise SegmentError(f"segment term {term!r} is not key=value (e.g. region=ON)")
        if key not in KEYS:
            raise SegmentError(f"segment key {key!r} is unknown; use one of {', '.join(KEYS)}")
        if key == "signed":
            if value.lower() not in ("true", "false"):
                raise SegmentError(f"signed={value!r} must be true or false")
            signed = value.lower() == "true"
            continue
        for item in value.split(","):
            item = item.strip()
            if key == "region":
                item = item.upper()
                if item not in PROVINCES:
                    raise SegmentError(f"region={item!r} is not a province code like ON or BC")
            elif key == "channel" and item not in CHANNELS:
                raise SegmentError(f"channel={item!r} must be one of {', '.join(CHANNELS)}")
            elif key == "language" and languages and item not in languages:
                raise SegmentError(
                    f"language={item!r} is not one of the campaign's: {', '.join(languages)}"
                )
            found.setdefault(key, set()).add(item)
    return Segment(
        language=frozenset(found.get("language", ())),
        channel=frozenset(found.get("channel", ())),
        region=frozenset(found.get("region", ())),
        signed=signed,
        text=expr.strip(),
    )
