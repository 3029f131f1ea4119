"""SMS encoding and segments: the fast path for all-basic GSM-7 texts agrees with GSM 03.38
counted character by character, for every kind of text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sending.sms_text import GSM_BASIC, GSM_EXTENDED, TextInfo, analyse


def reference(text: str) -> TextInfo:
    """GSM 03.38 by the book: septets per character, or UCS-2 code units for the whole text."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        septets = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        return TextInfo("GSM-7", septets, 1 if septets <= 160 else -(-septets // 153))
    units = len(text.encode("utf-16-le")) // 2
    return TextInfo("UCS-2", units, 1 if units <= 70 else -(-units // 67))


_ALPHABET = st.sampled_from([*sorted(GSM_BASIC | GSM_EXTENDED), "é", "Ж", "😀", "\u200b", "ç"])


@given(st.text(alphabet=_ALPHABET, max_size=400) | st.text(max_size=200))
def test_analyse_matches_the_reference(text: str) -> None:
    """Any text: the same encoding, units and segments as the character-by-character count."""
    assert analyse(text) == reference(text)


def test_boundaries() -> None:
    """160 basic septets are one segment, 161 are two; an extension character counts two; one
    character outside the alphabet makes the text UCS-2."""
    assert analyse("a" * 160) == TextInfo("GSM-7", 160, 1)
    assert analyse("a" * 161) == TextInfo("GSM-7", 161, 2)
    assert analyse("a" * 159 + "€") == TextInfo("GSM-7", 161, 2)
    assert analyse("line\nbreak\r@£$") == TextInfo("GSM-7", 14, 1)
    assert analyse("a" * 70 + "Ж") == TextInfo("UCS-2", 71, 2)
    assert analyse("") == TextInfo("GSM-7", 0, 1)
