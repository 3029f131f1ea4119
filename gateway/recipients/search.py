"""Directory search with core PostgreSQL only: folded names and n-grams under a GIN index.

A name is stored with its *key* (:func:`name_key`: NFKD, combining marks removed, case-folded,
runs of white space made one space), so ``Álvaro`` is kept as ``alvaro`` and ``РУСЛАН`` as
``руслан``. ``search_grams`` holds every 3-character substring of the key, every character of
it, and, marked with ``#``, every 3-digit substring of the number's digits. A query becomes "rows
holding every gram of the query" (its 3-grams; its characters when it is shorter) plus an exact
substring check with ``LIKE``. :func:`store.recipients.search` first checks the next few
thousand rows in id order (a common match fills the page there) and only then asks the GIN
index (the matches are rare then, so there are few rows to fetch and sort). A digit query of
one or two digits has no grams: every directory has many numbers holding them.

The rule a caller sees: ``q`` matches a recipient whose folded name *contains* the folded query
(``al`` finds ``Alisher`` and ``Álvaro``; ``ali`` finds ``Alisher`` but not ``Álvaro``, which
does not contain it), or, when ``q`` is only digits and separators (`` +-().``), whose number's
digits contain the query's digits (``90 123`` finds ``+998901234567``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["SearchPlan", "name_key", "plan_search", "search_grams"]

_SPACES = re.compile(r"\s+")
_NUMBER_QUERY = re.compile(r"\A[0-9\s+\-().]+\Z")


def _fold(text: str) -> str:
    """NFKD, case-folded, combining marks removed (white space not yet collapsed)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_WORD_KEYS: dict[str, str] = {}
_WORD_KEYS_MAX = 100_000
"""Folded words remembered (names repeat their words: an import folds each distinct one once)."""


def name_key(name: str) -> str:
    """``name`` folded for search: no accents, no case, single spaces.

    Folding is character by character (decomposition, case folding and dropping marks look at
    one character at a time), so it is done per word, each distinct word once, and the spaces
    collapsed after (a word may fold to text with a space in it: ``¨`` is a space and a mark)."""
    if name.isascii():  # the common case, 5x faster (casefold is lower for ASCII)
        return " ".join(name.lower().split())
    keys = []
    for word in name.split():
        key = _WORD_KEYS.get(word)
        if key is None:
            key = _fold(word)
            if len(_WORD_KEYS) < _WORD_KEYS_MAX:
                _WORD_KEYS[word] = key
        keys.append(key)
    return " ".join(" ".join(keys).split())


def reference_name_key(name: str) -> str:
    """:func:`name_key` done the plain way, on the whole name at once (for tests)."""
    return _SPACES.sub(" ", _fold(name)).strip()


def _grams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def search_grams(key: str, phone: str) -> list[str]:
    """What ``search_grams`` stores for a recipient: 3-grams and the distinct characters
    (1-grams) of the name key, and ``#``-marked 3-grams of the number's digits. The three kinds
    differ in length (3, 1 and 4), so none can be mistaken for another."""
    digits = phone.lstrip("+")
    grams = {key[i : i + 3] for i in range(len(key) - 2)}
    grams.update(key)
    grams.discard(" ")
    grams.update(["#" + digits[i : i + 3] for i in range(len(digits) - 2)])
    return list(grams)


def _like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards and escape character taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """How to find ``q``: grams the rows must hold (None: no gram filter) and one LIKE pattern,
    on the name key or on the number."""

    grams: list[str] | None
    name_like: str | None
    phone_like: str | None


def plan_search(q: str) -> SearchPlan | None:
    """The plan for query ``q``; None when it matches everything (empty after folding)."""
    if _NUMBER_QUERY.match(q) and any("0" <= ch <= "9" for ch in q):
        digits = "".join(ch for ch in q if "0" <= ch <= "9")
        return SearchPlan(sorted("#" + g for g in _grams(digits)) or None, None, _like_pattern(digits))
    key = name_key(q)
    if not key:
        return None
    name_grams = _grams(key) if len(key) >= 3 else set(key) - {" "}
    return SearchPlan(sorted(name_grams), _like_pattern(key), None)
