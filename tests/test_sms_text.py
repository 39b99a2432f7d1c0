"""SMS cost: encoding and segments against known cases, and the GSM-7 mapping."""

from __future__ import annotations

import pytest

from bot.sms_text import cost, is_gsm7, to_gsm7

SEGMENTS = [
    pytest.param("", "GSM-7", 0, id="empty"),
    pytest.param("a" * 160, "GSM-7", 1, id="gsm7-160-one"),
    pytest.param("a" * 161, "GSM-7", 2, id="gsm7-161-two"),
    pytest.param("a" * 306, "GSM-7", 2, id="gsm7-306-two"),
    pytest.param("a" * 307, "GSM-7", 3, id="gsm7-307-three"),
    pytest.param("€" * 80, "GSM-7", 1, id="euro-counts-two-80-fits"),
    pytest.param("€" * 81, "GSM-7", 2, id="euro-counts-two-81-splits"),
    pytest.param("[]{}" * 20, "GSM-7", 1, id="brackets-count-two-80-fits"),
    pytest.param("[]{}" * 21, "GSM-7", 2, id="brackets-count-two-84-splits"),
    pytest.param("é" * 160, "GSM-7", 1, id="e-acute-is-gsm7"),
    pytest.param("á" * 70, "UCS-2", 1, id="a-acute-ucs2-70-one"),
    pytest.param("á" * 71, "UCS-2", 2, id="ucs2-71-two"),
    pytest.param("á" * 134, "UCS-2", 2, id="ucs2-134-two"),
    pytest.param("á" * 135, "UCS-2", 3, id="ucs2-135-three"),
    pytest.param("a" * 159 + "’", "UCS-2", 3, id="one-curly-quote-makes-ucs2"),
    pytest.param("🙂" * 35, "UCS-2", 1, id="emoji-two-units-each"),
    pytest.param("中文" * 35, "UCS-2", 1, id="chinese-70"),
]


@pytest.mark.parametrize("text,encoding,segments", SEGMENTS)
def test_segments(text: str, encoding: str, segments: int) -> None:
    c = cost(text)
    assert (c.encoding, c.segments) == (encoding, segments)


MAPPING = [
    pytest.param("Canadá", "Canada", id="a-acute"),
    pytest.param("“sí”", '"si"', id="curly-quotes-i-acute"),
    pytest.param("l’équipe", "l'équipe", id="apostrophe-keeps-e-acute"),
    pytest.param("Français", "Francais", id="c-cedilla"),
    pytest.param("ñandú", "ñandu", id="n-tilde-is-gsm7"),
    pytest.param("a – b…", "a - b...", id="dash-ellipsis"),
    pytest.param("中文", "中文", id="no-near-form-stays"),
]


@pytest.mark.parametrize("text,expected", MAPPING)
def test_to_gsm7(text: str, expected: str) -> None:
    assert to_gsm7(text) == expected


def test_mapping_makes_latin_text_gsm7_and_cheaper() -> None:
    text = "¿Firmarás la petición? Sí, por favor – gracias, Canadá."
    assert not is_gsm7(text)
    mapped = to_gsm7(text)
    assert is_gsm7(mapped)
    assert cost(mapped).segments <= cost(text).segments
