"""What an SMS costs: GSM-7 or UCS-2, how many segments, and a cheaper GSM-7 form of a text."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import smsutil

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

#: Common characters outside GSM-7 and their nearest GSM-7 form.
_NEAREST = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "…": "...", "\u00a0": " ", "\u202f": " ",
    "¿": "¿", "¡": "¡", "ç": "c", "Á": "A", "á": "a", "í": "i", "Í": "I", "ó": "o", "Ó": "O",
    "ú": "u", "Ú": "U", "â": "a", "ê": "e", "î": "i", "ô": "o", "û": "u", "ë": "e", "ï": "i",
    "œ": "oe", "Œ": "OE", "È": "E", "Ê": "E", "À": "A", "Â": "A", "Ô": "O", "Î": "I", "Û": "U",
})


#: Latin-script languages whose accents carry meaning: never map them to GSM-7
#: (`locales check` warns when a campaign lists one in `gsm7_languages`).
KEEP_ACCENTS: dict[str, str] = {
    "vi": "Vietnamese tone marks carry meaning (ma, má, mà, mả, mã, mạ are six words)",
}


@dataclass(frozen=True)
class Cost:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets for GSM-7 (extension characters count two), UTF-16 units for UCS-2


def is_gsm7(text: str) -> bool:
    return bool(smsutil.is_valid_gsm(text))


def cost(text: str) -> Cost:
    """Segments Twilio will bill for `text` (160/153 GSM-7, 70/67 UCS-2)."""
    if not text:
        return Cost("GSM-7", 0, 0)
    if is_gsm7(text):
        units = len(text.encode("gsm03.38"))
        single, multi, encoding = GSM7_SINGLE, GSM7_MULTI, "GSM-7"
    else:
        units = len(text.encode("utf-16-be")) // 2
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "UCS-2"
    segments = 1 if units <= single else -(-units // multi)
    return Cost(encoding, segments, units)


def to_gsm7(text: str) -> str:
    """The nearest GSM-7 text: `Canadá’s` -> `Canada's`. Characters with no near form stay."""
    mapped = text.translate(_NEAREST)
    if is_gsm7(mapped):
        return mapped
    out = []
    for ch in mapped:
        if is_gsm7(ch):
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and is_gsm7(base) else ch)
    return "".join(out)
