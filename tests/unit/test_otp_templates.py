"""OTP texts: built-in templates per language, locale matching, custom template rules, codes."""

from __future__ import annotations

import pytest

from gateway.otp.service import generate_code, mask_code
from gateway.otp.templates import TEMPLATES, check_template, minutes_of, render, resolve_locale
from gateway.sending.sms_text import analyse

REQUIRED = ("en", "ru", "uz", "bn", "es", "fr", "pt", "ar", "hi", "id", "tr")


def test_required_languages_have_templates() -> None:
    """Every language the issue names has a built-in template."""
    assert set(REQUIRED) <= set(TEMPLATES)


@pytest.mark.parametrize("locale", sorted(TEMPLATES))
def test_builtin_template_renders_code_minutes_and_app(locale: str) -> None:
    """Each built-in text carries the code, the minutes and the app prefix, and fits one SMS."""
    check_template(TEMPLATES[locale])
    text = render(TEMPLATES[locale], code="480213", seconds=300, app_name="Acme")
    assert "480213" in text and "5" in text and text.startswith("Acme: ")
    assert analyse(text).segments == 1
    bare = render(TEMPLATES[locale], code="480213", seconds=300, app_name=None)
    assert bare == text.removeprefix("Acme: ")


def test_scripts_force_ucs2_and_latin_stays_gsm7() -> None:
    """Cyrillic, Bengali, Arabic and Devanagari texts are UCS-2; English and Uzbek Latin GSM-7."""
    encodings = {
        loc: analyse(render(TEMPLATES[loc], code="1234", seconds=60, app_name=None)).encoding
        for loc in REQUIRED
    }
    assert {loc for loc, enc in encodings.items() if enc == "UCS-2"} >= {"ru", "bn", "ar", "hi"}
    assert encodings["en"] == encodings["uz"] == encodings["fr"] == "GSM-7"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("en", "en"), ("RU", "ru"), ("pt-BR", "pt"), ("uz", "uz"), ("uz_Latn_UZ", "uz"), ("bn-BD", "bn")],
)
def test_locale_primary_subtag(tag: str, expected: str) -> None:
    """Only the primary subtag counts, case-insensitively."""
    assert resolve_locale(tag) == expected


def test_unknown_language_falls_back_to_english() -> None:
    """A well-formed tag of a language without a template gets English."""
    assert resolve_locale("xx") == "en" and resolve_locale("sw-KE") == "en"


@pytest.mark.parametrize("tag", ["e", "english!", "12", "en--US", "x" * 40])
def test_malformed_locale_is_refused(tag: str) -> None:
    """Something that is not a language tag is an error, not a silent fallback."""
    with pytest.raises(ValueError):
        resolve_locale(tag)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("Your code", "must contain {code}"),
        ("{code} {name}", "only the placeholders"),
        ("{code!r}", "only the placeholders"),
        ("{code:>10}", "only the placeholders"),
        ("{code} {", "unbalanced braces"),
        ("{code}" + "x" * 300, "at most 300"),
    ],
)
def test_bad_custom_templates(template: str, reason: str) -> None:
    """Custom templates need {code}, allow only the three placeholders, and are bounded."""
    with pytest.raises(ValueError, match=reason):
        check_template(template)


def test_custom_template_with_literal_braces() -> None:
    """Doubled braces are literal text."""
    check_template("{{Acme}} {code} ({minutes}m)")
    assert (
        render("{{Acme}} {code} ({minutes}m)", code="0042", seconds=90, app_name=None) == "{Acme} 0042 (2m)"
    )


def test_minutes_round_up() -> None:
    """A code's lifetime in the text is whole minutes, rounded up, at least one."""
    assert [minutes_of(s) for s in (30, 60, 61, 300, 600)] == [1, 1, 2, 5, 10]


def test_codes_are_digits_of_the_asked_length() -> None:
    """Codes keep leading zeros and have exactly the requested number of digits."""
    for length in range(4, 9):
        codes = {generate_code(length) for _ in range(200)}
        assert all(len(c) == length and c.isdigit() for c in codes)
        assert len(codes) > 150
    assert mask_code(6) == "••••••"
