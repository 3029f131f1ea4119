"""The dashboard's languages: English (the keys), Uzbek, Russian and Bengali.

Every string a page shows is written in English inside ``_()`` in a template or in the
dashboard's Python code; ``locales/<lang>.json`` maps each to its translation (a unit test
checks that every such string is in every catalogue). The language is the ``rg_lang`` cookie
set by the switcher, else the best match of ``Accept-Language``, else English.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from starlette.requests import Request

__all__ = ["DYNAMIC_STRINGS", "LANGUAGES", "LANG_COOKIE", "catalogue", "choose_language", "translator"]

LANGUAGES: dict[str, str] = {"en": "English", "uz": "O\u02bbzbekcha", "ru": "Русский", "bn": "বাংলা"}
"""Language code → its own name, as the switcher shows it."""
LANG_COOKIE = "rg_lang"
DYNAMIC_STRINGS: tuple[str, ...] = (
    *("scheduled", "queued", "dispatched", "sent", "delivered", "failed", "cancelled"),
    *("pass", "warn", "fail"),
    *("pending", "succeeded", "blocked"),
)
"""Words the templates translate from data (``_(m.status)``): message, check and delivery states."""
_LOCALES = Path(__file__).parent / "locales"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """English → ``lang`` (empty for English)."""
    if lang == "en" or lang not in LANGUAGES:
        return {}
    data: dict[str, str] = json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def translator(lang: str) -> Callable[[str], str]:
    """``_`` for ``lang``: the translation, or the English text when there is none."""
    table = catalogue(lang)
    return lambda text: table.get(text, text)


def _accept_language(header: str) -> list[str]:
    """Primary language tags of an ``Accept-Language`` header, best first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary and quality > 0:
            ranked.append((-quality, index, primary))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(request: Request) -> str:
    """The page's language: the switcher's cookie, else ``Accept-Language``, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for tag in _accept_language(request.headers.get("accept-language", "")):
        if tag in LANGUAGES:
            return tag
    return "en"
