"""SMS text facts: which encoding a text needs (GSM-7 or UCS-2) and how many segments it takes.

GSM 03.38: a single SMS holds 160 GSM-7 septets (153 per part when concatenated; characters
of the extension table such as ``€`` or ``{`` take two), or 70 UCS-2 code units (67 per part).
One character outside the GSM alphabet forces UCS-2 for the whole message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GSM_BASIC", "GSM_EXTENDED", "TextInfo", "analyse"]

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("\f^{}\\[~]|€")
GSM_BASIC, GSM_EXTENDED = _GSM_BASIC, _GSM_EXTENDED
"""The GSM 03.38 alphabets (one septet, two septets); list sends compute segments in SQL with them."""
_ALL_BASIC = re.compile("[" + "".join(re.escape(ch) for ch in sorted(_GSM_BASIC)) + "]*")


@dataclass(frozen=True, slots=True)
class TextInfo:
    """Encoding, length in encoding units, and the number of SMS segments."""

    encoding: str
    units: int
    segments: int


def analyse(text: str) -> TextInfo:
    """How ``text`` travels as SMS."""
    if _ALL_BASIC.fullmatch(text):  # the usual case, checked in C (~10x the loop): a septet each
        septets = len(text)
        return TextInfo("GSM-7", septets, 1 if septets <= 160 else -(-septets // 153))
    septets = 0
    for ch in text:
        if ch in _GSM_BASIC:
            septets += 1
        elif ch in _GSM_EXTENDED:
            septets += 2
        else:
            units = len(text.encode("utf-16-le")) // 2
            return TextInfo("UCS-2", units, 1 if units <= 70 else -(-units // 67))
    return TextInfo("GSM-7", septets, 1 if septets <= 160 else -(-septets // 153))
