"""List-send rules without a database: the template split into literals and placeholders, and
the fast destination-policy check of a list's numbers, which must agree with the send path's."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from gateway.errors import ApiError
from gateway.recipients.batches import parse_template
from gateway.recipients.numbers import refused_numbers
from gateway.sending.number_policy import check_destination, effective_number_types


@pytest.mark.parametrize(
    ("text", "literals", "keys"),
    [
        ("hello", ["hello"], [""]),
        ("Hi {name}!", ["Hi ", "!"], ["name", ""]),
        ("{name}{city}", ["", "", ""], ["name", "city", ""]),
        ("{{name}} is {name}", ["{name} is ", ""], ["name", ""]),
        ("a { b } {9x} {x-y} {", ["a { b } {9x} {x-y} {"], [""]),
        ("{{{name}}}", ["{", "}"], ["name", ""]),
    ],
)
def test_template_split(text: str, literals: list[str], keys: list[str]) -> None:
    """Placeholders are {identifier}; {{ and }} are literal braces; any other brace is text."""
    assert parse_template(text) == (literals, keys)


def _exact(phone: str, types: list[str], countries: list[str]) -> bool:
    """The send path's verdict: True when refused."""
    number = phonenumbers.parse(phone, None)
    if not phonenumbers.is_valid_number(number):
        return True
    try:
        check_destination(number, types, countries)
    except ApiError:
        return True
    return False


def _sample_numbers(count: int, seed: int) -> list[str]:
    """E.164 numbers of many countries and types (valid ones, as the directory holds)."""
    rng = random.Random(seed)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    kinds = list(phonenumbers.PhoneNumberType.values())
    numbers: list[str] = []
    while len(numbers) < count:
        example = phonenumbers.example_number_for_type(rng.choice(regions), rng.choice(kinds))
        if example is None:
            continue
        text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        # Vary the last digits: most variants stay valid, some become invalid.
        tail = "".join(rng.choice("0123456789") for _ in range(2))
        numbers.append(text[:-2] + tail)
    numbers += [
        "+998901234567",
        "+447011223344",
        "+447911123456",
        "+18005550100",
        "+19005550100",
        "+80012345678",
    ]
    return numbers


@pytest.mark.parametrize(
    ("extra", "countries"),
    [((), ()), (("premium_rate", "personal_number"), ()), ((), ("UZ", "GB")), (("shared_cost",), ("US",))],
)
def test_fast_policy_check_agrees_with_the_send_path(
    extra: tuple[str, ...], countries: tuple[str, ...]
) -> None:
    """refused_numbers refuses exactly the numbers a single send to them would refuse."""
    types = effective_number_types(extra)
    numbers = _sample_numbers(1500, seed=len(extra) * 7 + len(countries))
    refused = set(refused_numbers(numbers, types, list(countries)))
    expected = {n for n in numbers if _exact(n, types, list(countries))}
    assert refused == expected
    assert expected and expected != set(numbers)  # the sample has both kinds
