"""OTP message texts: built-in templates per language, custom templates, and locale matching.

A template is a ``str.format`` string with three placeholders: ``{code}`` (required),
``{minutes}`` (how long the code lives, rounded up) and ``{app}`` (the caller's ``app_name``
followed by ``": "``, or nothing). The built-in texts keep to the GSM-7 alphabet where the
language allows it; languages written in other scripts (Russian, Bengali, Arabic, Hindi, …)
and letters such as Turkish ``ğ`` force UCS-2, which the send answer shows in ``encoding`` and
``segments``.

Locales are BCP 47-ish tags; only the primary subtag counts (``pt-BR`` → ``pt``). ``uz`` is
Uzbek in Latin script. An unknown language falls back to English.
"""

# The texts are translations: Cyrillic and Turkish letters that look Latin are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import math
import re
import string

__all__ = [
    "DEFAULT_LOCALE",
    "MAX_TEMPLATE_CHARS",
    "TEMPLATES",
    "check_template",
    "minutes_of",
    "render",
    "resolve_locale",
]

DEFAULT_LOCALE = "en"
MAX_TEMPLATE_CHARS = 300
PLACEHOLDERS = frozenset({"code", "minutes", "app"})

TEMPLATES: dict[str, str] = {
    "en": "{app}Your verification code is {code}. It expires in {minutes} min. Do not share it.",
    "ru": "{app}Ваш код: {code}. Действует {minutes} мин. Никому его не сообщайте.",
    "uz": "{app}Tasdiqlash kodingiz: {code}. {minutes} daqiqa amal qiladi. Uni hech kimga aytmang.",
    "bn": "{app}আপনার কোড {code}। {minutes} মিনিট বৈধ। কাউকে জানাবেন না।",
    "es": "{app}Tu clave de acceso es {code}. Vence en {minutes} min. No la compartas con nadie.",
    "fr": "{app}Votre code de vérification est {code}. Il expire dans {minutes} min. Ne le partagez pas.",
    "pt": "{app}Seu código é {code}. Expira em {minutes} min. Não o compartilhe.",
    "ar": "{app}رمز التحقق: {code}. صالح لمدة {minutes} دقيقة. لا تشاركه مع أحد.",
    "hi": "{app}आपका कोड {code} है। {minutes} मिनट तक मान्य। किसी से साझा न करें।",
    "id": "{app}Kode verifikasi Anda {code}. Berlaku {minutes} menit. Jangan berikan kepada siapa pun.",
    "tr": "{app}Doğrulama kodunuz: {code}. {minutes} dk geçerli. Kimseyle paylaşmayın.",
    "de": "{app}Ihr Bestätigungscode ist {code}. Gültig für {minutes} Min. Nicht weitergeben.",
    "it": "{app}Il tuo codice di verifica è {code}. Scade tra {minutes} min. Non condividerlo.",
}

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_formatter = string.Formatter()


def resolve_locale(tag: str) -> str:
    """The built-in template's key for ``tag``: its primary subtag lowercased, or English.

    Raises ValueError when ``tag`` is not shaped like a language tag at all.
    """
    if len(tag) > 35 or not _LOCALE.match(tag):
        raise ValueError("a language tag such as en, ru, uz, pt-BR")
    primary = re.split(r"[-_]", tag, maxsplit=1)[0].lower()
    return primary if primary in TEMPLATES else DEFAULT_LOCALE


def check_template(template: str) -> None:
    """Raise ValueError (with a reason for the client) unless ``template`` is usable."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"at most {MAX_TEMPLATE_CHARS} characters")
    try:
        parts = list(_formatter.parse(template))
    except ValueError:
        raise ValueError("unbalanced braces: write {{ and }} for literal braces") from None
    names: set[str] = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError("only the placeholders {code}, {minutes} and {app} are allowed")
        names.add(name)
    if "code" not in names:
        raise ValueError("must contain {code}")


def minutes_of(seconds: int) -> int:
    """Whole minutes a code of ``seconds`` lives, rounded up (a 90 s code says 2 min)."""
    return max(1, math.ceil(seconds / 60))


def render(template: str, *, code: str, seconds: int, app_name: str | None) -> str:
    """The SMS text: ``template`` (already checked) filled in."""
    app = f"{app_name}: " if app_name else ""
    return template.format(code=code, minutes=minutes_of(seconds), app=app)
