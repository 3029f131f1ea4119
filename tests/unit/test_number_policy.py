"""The destination policy's pure parts: number type names, the check itself, and parsing of the
operator's ``accounts update`` flags."""

from __future__ import annotations

import phonenumbers
import pytest

from gateway.cli.accounts import number_policy_changes
from gateway.cli.main import _parser
from gateway.errors import ApiError
from gateway.sending.number_policy import (
    ALWAYS_ALLOWED,
    check_destination,
    effective_number_types,
    number_type_name,
    parse_countries,
    parse_number_types,
)


@pytest.mark.parametrize(
    ("number", "kind", "region"),
    [
        ("+998901234567", "mobile", "UZ"),
        ("+442071838750", "fixed_line", "GB"),
        ("+14155552671", "fixed_line_or_mobile", "US"),
        ("+18005550199", "toll_free", "US"),
        ("+19005550123", "premium_rate", "US"),
        ("+33899123456", "premium_rate", "FR"),
        ("+33810123456", "shared_cost", "FR"),
        ("+447098765432", "personal_number", "GB"),
        ("+443001234567", "uan", "GB"),
        ("+49177991234567", "voicemail", "DE"),
        ("+881612345678", "mobile", "001"),
    ],
)
def test_example_numbers_are_valid_and_of_their_type(number: str, kind: str, region: str) -> None:
    """The numbers the tests and docs use are valid for phonenumbers and of the stated type."""
    parsed = phonenumbers.parse(number)
    assert phonenumbers.is_valid_number(parsed)
    assert number_type_name(parsed) == kind
    assert phonenumbers.region_code_for_number(parsed) == region


def test_check_destination_names_type_then_country() -> None:
    """A refused type is named; with a country list, other regions and non-geographic numbers
    are refused; an empty list allows every country."""
    defaults = effective_number_types([])
    with pytest.raises(ApiError) as refused:
        check_destination(phonenumbers.parse("+19005550123"), defaults, ["US"])
    assert refused.value.details == {"fields": {"to": "premium_rate numbers are not allowed"}}
    check_destination(phonenumbers.parse("+19005550123"), effective_number_types(["premium_rate"]), [])
    with pytest.raises(ApiError) as refused:
        check_destination(phonenumbers.parse("+8801712345678"), defaults, ["UZ"])
    assert "BD numbers are not allowed" in refused.value.details["fields"]["to"]
    with pytest.raises(ApiError) as refused:
        check_destination(phonenumbers.parse("+881612345678"), defaults, ["UZ"])
    assert "non-geographic" in refused.value.details["fields"]["to"]
    check_destination(phonenumbers.parse("+8801712345678"), defaults, [])


def test_effective_types_keep_a_fixed_order() -> None:
    """Always-allowed types first, then allowed extras in their documented order."""
    assert effective_number_types(["voicemail", "premium_rate"]) == [
        *ALWAYS_ALLOWED,
        "premium_rate",
        "voicemail",
    ]
    assert effective_number_types(["bogus"]) == list(ALWAYS_ALLOWED)


def test_parse_number_types() -> None:
    """Names are case-insensitive; always-allowed ones are dropped; unknown and 'unknown' refused."""
    assert parse_number_types(" Premium_Rate,mobile,shared_cost,premium_rate ") == [
        "premium_rate",
        "shared_cost",
    ]
    assert parse_number_types("") == []
    with pytest.raises(ValueError, match="'premium'"):
        parse_number_types("premium")
    with pytest.raises(ValueError, match="not valid phone numbers"):
        parse_number_types("unknown")


def test_parse_countries() -> None:
    """Codes are upper-cased, sorted and deduplicated; unknown codes and an empty list refused."""
    assert parse_countries("uz, BD,uz") == ["BD", "UZ"]
    with pytest.raises(ValueError, match="'XX'"):
        parse_countries("UZ,XX")
    with pytest.raises(ValueError, match="--all-countries"):
        parse_countries(" , ")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--otp-per-number-hour", "0"], "--otp-per-number-hour must be 1-1000"),
        (["--otp-per-number-day", "10001"], "--otp-per-number-day must be 1-10000"),
        (["--countries", "ZZ"], "'ZZ'"),
        ([], "nothing to update"),
    ],
)
def test_update_flags_are_checked(flags: list[str], needle: str) -> None:
    """accounts update refuses out-of-range caps, unknown codes and an empty change."""
    args = _parser().parse_args(["accounts", "update", "acc_x", *flags])
    with pytest.raises(ValueError, match=needle):
        number_policy_changes(args)


def test_update_flags_become_changes() -> None:
    """Only the given settings change; --all-countries clears the list."""
    args = _parser().parse_args(
        ["accounts", "update", "acc_x", "--all-countries", "--otp-per-number-day", "50"]
    )
    assert number_policy_changes(args) == {"allowed_countries": [], "otp_per_number_day": 50}
