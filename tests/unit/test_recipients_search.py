"""Search keys, query plans and the fast E.164 path of the recipients directory (no I/O)."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.recipients.importer import parse_csv
from gateway.recipients.numbers import InvalidNumber, _fast_e164, e164
from gateway.recipients.search import name_key, plan_search, reference_name_key, search_grams

_E164_SHAPE = re.compile(r"\+[1-9][0-9]{6,14}")


def test_name_key_folds_case_accents_and_spaces() -> None:
    """Accents and case go, Cyrillic stays Cyrillic, white space runs become one space."""
    assert name_key("Álvaro") == "alvaro"
    assert name_key("  ZOË   O'Neil ") == "zoe o'neil"
    assert name_key("РУСЛАН") == "руслан"
    assert name_key("Straße") == "strasse"
    assert name_key("İstanbul") == "istanbul"
    assert name_key("ﬁle") == "file"


def test_grams_of_names_and_numbers_are_kept_apart() -> None:
    """A recipient's grams: 3-grams and characters of the key, ``#``-marked 3-grams of the digits."""
    grams = search_grams("alvaro", "+99890")
    assert {"alv", "lva", "var", "aro", "a", "l", "v", "r", "o", "#998", "#989", "#890"} == set(grams)
    assert sorted(search_grams("al b", "+12")) == ["a", "al ", "b", "l", "l b"]


def test_query_plans() -> None:
    """Digits-only queries search numbers (separators ignored); others the folded name; LIKE
    wildcards are escaped; name queries under 3 characters carry their characters as grams."""
    plan = plan_search("+998 (90) 12")
    assert plan is not None and plan.phone_like == "%9989012%" and plan.name_like is None
    assert plan.grams is not None and "#998" in plan.grams
    plan = plan_search("ÁL")
    assert plan is not None and plan.name_like == "%al%" and plan.grams == ["a", "l"]
    plan = plan_search("12")
    assert plan is not None and plan.phone_like == "%12%" and plan.grams is None
    plan = plan_search("50%_a\\")
    assert plan is not None and plan.name_like == "%50\\%\\_a\\\\%"
    assert plan_search("   ") is None
    plan = plan_search("²³⁴")  # not ASCII digits: a name search
    assert plan is not None and plan.phone_like is None


CODES = [
    "1",
    "7",
    "20",
    "33",
    "39",
    "44",
    "49",
    "55",
    "61",
    "62",
    "86",
    "91",
    "225",
    "234",
    "358",
    "380",
    "800",
    "880",
    "882",
    "998",
]


def test_fast_e164_path_agrees_with_phonenumbers() -> None:
    """For ``+<digits>`` input the fast path gives phonenumbers' own verdict and format."""
    rng = random.Random(7)
    samples = [f"+{rng.choice(CODES)}{rng.randrange(10**9):09d}"
               for _ in range(8000)]  # fmt: skip
    samples += [f"+998{rng.choice('3789')}{rng.randrange(10**8):08d}" for _ in range(2000)]  # mostly valid
    samples += ["+390612345678", "+39312345678", "+2250701234567", "+4402079460000", "+10000000000"]
    for raw in samples:
        try:
            parsed = phonenumbers.parse(raw, None)
            expected = (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_valid_number(parsed)
                else None
            )
        except phonenumbers.NumberParseException:
            expected = None
        try:
            got: str | None = e164(raw, None)
        except InvalidNumber:
            got = None
        assert got == expected, raw


def test_national_numbers_need_a_region() -> None:
    """A national number is read in the region given, and refused without one."""
    assert e164("90 123 45 67", "UZ") == "+998901234567"
    with pytest.raises(InvalidNumber, match="default region"):
        e164("90 123 45 67", None)
    with pytest.raises(InvalidNumber):
        e164("+9", "UZ")


def test_parse_csv_counts_and_lines() -> None:
    """Line numbers count the header as 1 and quoted newlines as lines; blank lines are skipped."""
    data = b'name,phone,city\nAli,+998901234567,"Two\nLines"\n\n"Two\nLines",+998901234568,x\nBad,1,\n'
    parsed = parse_csv(data, "UZ")
    assert [(r[1], r[5]) for r in parsed.rows] == [("Ali", '{"city":"Two\\nLines"}')]
    assert [(e.line, e.reason.split()[0]) for e in parsed.errors] == [(6, "name"), (7, "phone:")]


def test_row_ceiling_refuses_the_file() -> None:
    """More data rows than ``max_rows`` is a file-level validation_error naming the line."""
    data = b"name,phone\nA,+998901234567\nB,+998901234568\n\nC,+998901234569\n"
    assert len(parse_csv(data, None, max_rows=3).rows) == 3
    with pytest.raises(ApiError) as caught:
        parse_csv(data, None, max_rows=2)
    assert caught.value.details == {"reason": "invalid_csv", "line": 5}


def _full_parse(raw: str) -> str | None:
    """phonenumbers' own verdict on ``raw``: its E.164 form, or None when it is not valid."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _ours(raw: str) -> str | None:
    try:
        return e164(raw, None)
    except InvalidNumber:
        return None


_CALLING_CODES = sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@settings(max_examples=3000, deadline=None)
@given(
    code=st.sampled_from(_CALLING_CODES),
    national=st.text(alphabet="0123456789", min_size=0, max_size=14),
)
def test_fast_e164_accepts_and_rejects_exactly_what_phonenumbers_does(code: str, national: str) -> None:
    """Any ``+<country code><digits>``: the fast path (and e164 as a whole) answers valid or
    not valid, and the E.164 form, exactly as phonenumbers.parse + is_valid_number do."""
    raw = f"+{code}{national}"
    expected = _full_parse(raw)
    assert _ours(raw) == expected, raw
    if _E164_SHAPE.fullmatch(raw):
        fast = _fast_e164(raw[1:])
        if fast is not None:
            assert (fast or None) == expected, raw


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\A\+[1-9][0-9]{0,17}\Z"))
def test_e164_agrees_on_any_digit_string(raw: str) -> None:
    """``+`` and digits of any length (short, long, unknown codes) get phonenumbers' verdict."""
    assert _ours(raw) == _full_parse(raw), raw


@settings(max_examples=2000, deadline=None)
@given(
    st.text(max_size=40)
    | st.lists(
        st.sampled_from(["Álvaro", "ZOË", "  ", "¨", "\u0301", "ﬁ", "Ω", "ς", "İ", "ß", "\u3000", "a"]),
        max_size=6,
    ).map("".join)
)
def test_name_key_per_word_equals_whole_name_folding(name: str) -> None:
    """Folding word by word (with the cache) gives the key folding the whole name gives."""
    assert name_key(name) == reference_name_key(name)
    assert name_key(name) == reference_name_key(name)  # again, from the cache
