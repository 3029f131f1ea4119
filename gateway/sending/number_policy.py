"""Where an account may send: number types and destination countries (toll-fraud protection).

SMS pumping ("toll fraud") makes a gateway send to numbers whose owner earns per message —
premium-rate, shared-cost and "personal" redirect numbers — or floods countries the customer
never serves. Every send path (SMS, OTP, anything that queues a message: they all go through
:func:`gateway.sending.messages.build_message`) checks the destination here, after the number is
parsed and valid:

* its type, as ``phonenumbers.number_type`` classifies it, must be one the account may reach:
  :data:`ALWAYS_ALLOWED` types always, the types in :data:`REFUSED_BY_DEFAULT` only when the
  operator allowed them for the account (``relaygate accounts update --allow-number-types``);
* its region (``phonenumbers.region_code_for_number``: ISO 3166 codes, where Guernsey, Jersey
  and the Isle of Man are ``GG``, ``JE``, ``IM``, not ``GB``) must be in the account's
  ``allowed_countries`` when that list is not empty. Non-geographic numbers (satellite, ``+800``
  …, region ``001``) are refused by any non-empty list.

Pure code: no I/O; the refusal is a ``validation_error`` naming the field ``to``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import phonenumbers
from phonenumbers import PhoneNumberType

from gateway.errors import ApiError

__all__ = [
    "ALLOWABLE",
    "ALWAYS_ALLOWED",
    "NUMBER_TYPES",
    "REFUSED_BY_DEFAULT",
    "check_destination",
    "effective_number_types",
    "number_type_name",
    "parse_countries",
    "parse_number_types",
]

NUMBER_TYPES: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
"""Our name of each ``phonenumbers`` number type (the library's constant, lowercased)."""

ALWAYS_ALLOWED: tuple[str, ...] = (
    "mobile",
    "fixed_line",
    "fixed_line_or_mobile",
    "toll_free",
    "voip",
    "pager",
)
"""Types a login code or a shop notice plausibly goes to; never refused by type."""

REFUSED_BY_DEFAULT: tuple[str, ...] = (
    "premium_rate",
    "shared_cost",
    "personal_number",
    "uan",
    "voicemail",
    "unknown",
)
"""Types refused unless the account allows them. ``personal_number`` (UK 070, Swiss 0878, …)
forwards to any phone at the caller's cost and is a known pumping vector, so it is here too."""

ALLOWABLE: tuple[str, ...] = REFUSED_BY_DEFAULT[:-1]
"""Types an operator may allow. ``unknown`` is not one: a number of unknown type is not a
valid number for ``phonenumbers`` and is refused before its type is looked at."""


def number_type_name(number: phonenumbers.PhoneNumber) -> str:
    """Our name of ``number``'s type (``unknown`` for anything the library does not classify)."""
    return NUMBER_TYPES.get(phonenumbers.number_type(number), "unknown")


def effective_number_types(extra: Iterable[str]) -> list[str]:
    """Every type an account may reach: :data:`ALWAYS_ALLOWED` plus its allowed ``extra`` ones."""
    chosen = set(extra)
    return [*ALWAYS_ALLOWED, *(t for t in ALLOWABLE if t in chosen)]


def check_destination(
    number: phonenumbers.PhoneNumber, allowed_types: Sequence[str], allowed_countries: Sequence[str]
) -> None:
    """Raise ``validation_error`` (field ``to``) unless the account may send to ``number``."""
    kind = number_type_name(number)
    if kind not in allowed_types:
        raise _refused(f"{kind} numbers are not allowed")
    if allowed_countries:
        region = phonenumbers.region_code_for_number(number) or "001"
        if region not in allowed_countries:
            where = "non-geographic" if region == "001" else region
            raise _refused(
                f"{where} numbers are not allowed for this account (allowed countries: "
                f"{','.join(allowed_countries)})"
            )


def _refused(reason: str) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {"to": reason}})


def parse_number_types(text: str) -> list[str]:
    """The refused-by-default types named in ``text`` (comma-separated) that are to be allowed.

    Always-allowed types may be named and are dropped; an empty ``text`` means none. Raises
    ValueError naming a type that does not exist or cannot be allowed.
    """
    chosen: set[str] = set()
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name or name in ALWAYS_ALLOWED:
            continue
        if name == "unknown":
            raise ValueError("'unknown' cannot be allowed: such numbers are not valid phone numbers")
        if name not in ALLOWABLE:
            raise ValueError(f"unknown number type {raw.strip()!r}; types: {','.join(NUMBER_TYPES.values())}")
        chosen.add(name)
    return [t for t in ALLOWABLE if t in chosen]


def parse_countries(text: str) -> list[str]:
    """ISO 3166 region codes from ``text`` (comma-separated, any case), sorted, deduplicated.

    Raises ValueError naming a code ``phonenumbers`` does not know; an empty list is refused
    (say ``--all-countries`` for no restriction).
    """
    codes: set[str] = set()
    for raw in text.split(","):
        code = raw.strip().upper()
        if not code:
            continue
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown country code {raw.strip()!r} (ISO 3166 alpha-2, e.g. UZ, BD, GB)")
        codes.add(code)
    if not codes:
        raise ValueError("no country given (use --all-countries to allow every country)")
    return sorted(codes)
