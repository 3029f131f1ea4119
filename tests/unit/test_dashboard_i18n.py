"""The dashboard's languages: every string of every template (and of the dashboard's code) is
translated into Uzbek, Russian and Bengali; placeholders survive translation; the language
comes from the switcher's cookie, else Accept-Language, else English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.requests import Request

from gateway.dashboard.i18n import DYNAMIC_STRINGS, LANGUAGES, catalogue, choose_language
from gateway.dashboard.web import ERROR_TITLES, NAV, NOTICES

DASHBOARD = Path(__file__).resolve().parents[2] / "gateway" / "dashboard"
TEMPLATES = sorted((DASHBOARD / "templates").glob("*.html"))
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
_MARKED = re.compile(r'\b_\(\s*"((?:[^"\\]|\\.)*)"\s*\)')


def marked(path: Path) -> set[str]:
    """The English strings ``_("...")`` marks in one file."""
    return set(_MARKED.findall(path.read_text(encoding="utf-8")))


def code_strings() -> set[str]:
    """Strings the dashboard's Python code shows: marked ones and its tables of labels."""
    found = set().union(*(marked(p) for p in DASHBOARD.glob("*.py")))
    return (
        found
        | {label for _, label, _ in NAV}
        | set(NOTICES.values())
        | set(ERROR_TITLES.values())
        | set(DYNAMIC_STRINGS)
    )


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_template_string_is_translated(template: Path, lang: str) -> None:
    """Each string a template shows has a non-empty translation in the catalogue of ``lang``."""
    table = catalogue(lang)
    missing = sorted(s for s in marked(template) if not table.get(s, "").strip())
    assert not missing, f"{template.name} lacks {lang} for: {missing}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_code_strings_translated_and_no_stale_entries(lang: str) -> None:
    """The code's strings are translated too, and a catalogue holds nothing no page shows."""
    table = catalogue(lang)
    wanted = code_strings().union(*(marked(t) for t in TEMPLATES))
    assert sorted(s for s in wanted if not table.get(s, "").strip()) == []
    assert sorted(set(table) - wanted) == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_placeholders_survive_translation(lang: str) -> None:
    """``{name}`` placeholders of an English string appear in its translation."""
    for english, translated in catalogue(lang).items():
        assert set(re.findall(r"\{\w+\}", english)) == set(re.findall(r"\{\w+\}", translated)), english


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "en"),
        ({"Accept-Language": "uz-UZ,uz;q=0.9,en;q=0.5"}, "uz"),
        ({"Accept-Language": "de-DE, ru;q=0.8, en;q=0.7"}, "ru"),
        ({"Accept-Language": "en;q=0.4, bn-BD;q=0.9"}, "bn"),
        ({"Accept-Language": "ru;q=0, fr"}, "en"),
        ({"Accept-Language": "ru;q=x,,;;"}, "en"),
        ({"Accept-Language": "ru", "Cookie": "rg_lang=bn"}, "bn"),
        ({"Accept-Language": "ru", "Cookie": "rg_lang=xx"}, "ru"),
    ],
)
def test_language_from_cookie_then_accept_language(headers: dict[str, str], expected: str) -> None:
    """The switcher's cookie wins; else the best supported Accept-Language tag; else English."""
    assert choose_language(_request(headers)) == expected
