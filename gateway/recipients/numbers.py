"""Phone numbers of the directory: E.164, checked with the same library as sends.

:func:`refused_numbers` applies an account's destination policy to a whole list's numbers
(E.164, as the directory holds them) at about 3 µs a number instead of ~15 µs: a number of a
single-region country code whose national number matches a permitted type's pattern and no
refused type's pattern is permitted without asking ``phonenumbers``; anything else gets the
exact check of :func:`gateway.sending.number_policy.check_destination`.

Import reads up to hundreds of thousands of numbers at once, and ``phonenumbers.parse`` costs
about 100 µs a number; a number already written ``+<digits>`` is split into country code and
national number directly (country codes are prefix-free) and only validated, about 10x faster,
with the same answer (a unit test compares both on many numbers).
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber, PhoneNumberFormat

from gateway.errors import ApiError
from gateway.sending.number_policy import check_destination

__all__ = ["InvalidNumber", "e164", "refused_numbers"]

_E164 = re.compile(r"\+([1-9][0-9]{6,14})")


class InvalidNumber(ValueError):
    """Not a valid phone number; the message says why, for the client."""


_PREFIX_FOR_PARSING: dict[int, re.Pattern[str] | None] = {}
_Desc = tuple[frozenset[int], re.Pattern[str]]
_VALIDATORS: dict[int, tuple[_Desc, list[_Desc]] | None] = {}


def _desc(desc: Any) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


_KindDescs = tuple[str, _Desc, dict[str, _Desc]]
_KIND_DESCS: dict[int, _KindDescs | None] = {}
_KIND_FIELDS = (
    "mobile", "fixed_line", "toll_free", "premium_rate", "shared_cost", "voip", "personal_number",
    "pager", "uan", "voicemail",
)  # fmt: skip


def _kind_descs(code: int) -> _KindDescs | None:
    """(region, general pattern, pattern per number type) of a single-region country code."""
    if code not in _KIND_DESCS:
        regions = COUNTRY_CODE_TO_REGION_CODE.get(code, ())
        meta = (
            phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
            if len(regions) == 1
            else None
        )
        general = _desc(meta.general_desc) if meta is not None else None
        if meta is None or general is None:
            _KIND_DESCS[code] = None
        else:
            kinds = {k: d for k in _KIND_FIELDS if (d := _desc(getattr(meta, k))) is not None}
            _KIND_DESCS[code] = (regions[0], general, kinds)
    return _KIND_DESCS[code]


def _validator(code: int) -> tuple[_Desc, list[_Desc]] | None:
    """The general and per-type patterns of a country code with one region (what
    ``phonenumbers.is_valid_number`` checks, compiled once); None for shared country codes."""
    if code not in _VALIDATORS:
        descs = _kind_descs(code)
        # any type's match makes the number valid: _KIND_FIELDS has the common kinds first
        _VALIDATORS[code] = None if descs is None else (descs[1], list(descs[2].values()))
    return _VALIDATORS[code]


def _matches(desc: _Desc, nsn: str) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _national_prefix(code: int) -> re.Pattern[str] | None:
    """The country's national (trunk) prefix as phonenumbers parses it, e.g. ``0`` in Germany."""
    if code not in _PREFIX_FOR_PARSING:
        region = phonenumbers.region_code_for_country_code(code)
        meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        prefix = meta.national_prefix_for_parsing if meta is not None else None
        _PREFIX_FOR_PARSING[code] = re.compile(prefix) if prefix else None
    return _PREFIX_FOR_PARSING[code]


def _split_e164(digits: str) -> PhoneNumber | None:
    """The number, or None when only ``phonenumbers.parse`` can say (a national prefix after
    the country code, which it may strip)."""
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            prefix = _national_prefix(code)
            if not national or (prefix is not None and prefix.match(national)):
                return None
            number = PhoneNumber(country_code=code, national_number=int(national))
            if len(national) > 1 and national[0] == "0":
                number.italian_leading_zero = True
                zeros = len(national) - len(national.lstrip("0"))
                if zeros > 1:
                    number.number_of_leading_zeros = zeros
            return number
    return None


_Fast = tuple[int, "re.Pattern[str] | None", frozenset[int], "re.Pattern[str]", list[_Desc]]
_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)
_FAST_BY_PREFIX: dict[str, _Fast | None] = {}
"""Per leading 1-3 digits that are a country code: (code, national prefix, general lengths,
general pattern, per-type patterns); None for a code shared by several regions."""


def _fast(prefix: str) -> _Fast | None:
    if prefix not in _FAST_BY_PREFIX:
        code = int(prefix)
        validator = _validator(code)
        if validator is None:
            _FAST_BY_PREFIX[prefix] = None
        else:
            (lengths, pattern), kinds = validator
            _FAST_BY_PREFIX[prefix] = (code, _national_prefix(code), lengths, pattern, kinds)
    return _FAST_BY_PREFIX[prefix]


def _fast_e164(digits: str) -> str | None:
    """``+digits`` when it is a valid number, ``""`` when it is not, None when only the general
    path can say: a number of a single-region country code whose national part is neither all
    zeros nor starts with the national prefix is valid exactly when its national significant
    number (the national part itself) matches the general pattern and one type's pattern, which
    is what ``phonenumbers.is_valid_number`` checks (the unit and property tests compare both)."""
    for size in (1, 2, 3):
        prefix = digits[:size]
        if prefix in _CODES:
            fast = _fast(prefix)
            if fast is None:
                return None
            _, national_prefix, lengths, pattern, kinds = fast
            national = digits[size:]
            if not national.strip("0") or (national_prefix is not None and national_prefix.match(national)):
                return None
            length = len(national)
            if (lengths and length not in lengths) or pattern.fullmatch(national) is None:
                return ""
            for kind_lengths, kind_pattern in kinds:
                if (not kind_lengths or length in kind_lengths) and kind_pattern.fullmatch(
                    national
                ) is not None:
                    return "+" + digits
            return ""
    return None


def e164(raw: str, region: str | None) -> str:
    """``raw`` in E.164 form; national numbers are read in ``region`` (the account's default).
    Raises :class:`InvalidNumber`."""
    text = raw.strip()
    match = _E164.fullmatch(text)
    if match is not None:
        fast = _fast_e164(match.group(1))
        if fast:
            return fast
        if fast is not None:
            raise InvalidNumber("not a valid phone number")
    number = _split_e164(match.group(1)) if match is not None else None
    if number is not None:
        validator = _validator(number.country_code or 0)
        if validator is not None:
            general, kinds = validator
            nsn = phonenumbers.national_significant_number(number)
            if _matches(general, nsn) and any(_matches(kind, nsn) for kind in kinds):
                return f"+{number.country_code}{nsn}"
            raise InvalidNumber("not a valid phone number")
    else:
        if len(text) > 40:
            raise InvalidNumber("not a phone number")
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            hint = (
                "" if text.startswith("+") or region else " (use +E.164 or set the account's default region)"
            )
            raise InvalidNumber(f"not a phone number{hint}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber("not a valid phone number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _fast_permitted(phone: str, allowed: set[str], countries: set[str]) -> bool | None:
    """The policy's verdict on ``phone`` (E.164) without asking ``phonenumbers``: True
    (permitted: its national number matches the general pattern and an allowed type's pattern and
    no refused type's), False (its country is not allowed), None (only the exact check can say:
    a shared country code, a national prefix after the code, no or a refused type's match)."""
    digits = phone[1:]
    for size in (1, 2, 3):
        prefix = digits[:size]
        if prefix in _CODES:
            descs = _kind_descs(int(prefix))
            if descs is None:
                return None
            region, general, kinds = descs
            if countries and region not in countries:
                return False
            national = digits[size:]  # the national significant number (see _split_e164)
            national_prefix = _national_prefix(int(prefix))
            if not national or (national_prefix is not None and national_prefix.match(national)):
                return None
            if not _matches(general, national):
                return None
            permitted = False
            for kind, desc in kinds.items():
                if _matches(desc, national):
                    if kind not in allowed:
                        return None
                    permitted = True
            return permitted or None
    return None


def refused_numbers(phones: list[str], allowed_types: list[str], allowed_countries: list[str]) -> list[str]:
    """The numbers of ``phones`` (E.164) that the destination policy refuses, or that are not
    valid numbers (any more: the library's data changes with its releases)."""
    allowed = set(allowed_types)
    countries = set(allowed_countries)
    refused: list[str] = []
    for phone in phones:
        verdict = _fast_permitted(phone, allowed, countries) if _E164.fullmatch(phone) else None
        if verdict is not None:
            if not verdict:
                refused.append(phone)
            continue
        try:
            parsed = phonenumbers.parse(phone, None)
            if not phonenumbers.is_valid_number(parsed):
                refused.append(phone)
                continue
            check_destination(parsed, allowed_types, allowed_countries)
        except (phonenumbers.NumberParseException, ApiError):
            refused.append(phone)
    return refused
