"""Field types shared by the API's request bodies.

Patterns match the *whole* string (``\\A…\\Z``; ``$`` would let a trailing newline through).
A *label* is one line of text a person reads (a name, a purpose, a description): no control
characters and no line or paragraph separators. U+0000 is refused in every string of every
body by :mod:`gateway.bodies`, labels or not.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["LABEL_PATTERN", "Label32", "Label40", "Label64", "Label100", "Label200", "Locale", "OtpCode"]

LABEL_PATTERN = r"\A[^\x00-\x1f\x7f-\x9f\u2028\u2029]*\Z"

Label32 = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=LABEL_PATTERN)]
Label40 = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=LABEL_PATTERN)]
Label64 = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=LABEL_PATTERN)]
Label100 = Annotated[str, msgspec.Meta(max_length=100, pattern=LABEL_PATTERN)]
"""May be empty."""
Label200 = Annotated[str, msgspec.Meta(max_length=200, pattern=LABEL_PATTERN)]
"""May be empty."""
Locale = Annotated[str, msgspec.Meta(min_length=2, max_length=35, pattern=r"\A[A-Za-z0-9_-]+\Z")]
"""A language tag such as ``uz``, ``pt-BR`` or ``en_US``."""
OtpCode = Annotated[str, msgspec.Meta(pattern=r"\A[0-9]{4,8}\Z")]
"""4-8 ASCII digits, nothing else."""
