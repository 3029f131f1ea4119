"""Blank texts through the real server: a message (or an OTP app_name, purpose or template) of
only whitespace and invisible characters is refused as blank and queues nothing; text with one
visible character among invisible ones is accepted.
"""

from __future__ import annotations

import pytest

from tests.harness import ApiClient

TO = "+998901234567"

BLANK = {
    "spaces and newlines": " \t\r\n ",
    "no-break and ideographic spaces": "\u00a0\u3000\u2007",
    "line and paragraph separators": "\u2028\u2029",
    "zero-width space": "\u200b",
    "zwnj and zwj": "\u200c\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "bidi controls": "\u202e\u2066\u200f",
    "mongolian vowel separator": "\u180e",
    "tag characters": "\U000e0001\U000e0041",
    "hangul filler": "\u3164",
    "hangul choseong and jungseong fillers": "\u115f\u1160",
    "halfwidth hangul filler": "\uffa0",
    "braille blank": "\u2800\u2800",
    "variation selectors": "\ufe0f\ufe0e\U000e0100",
    "combining grapheme joiner": "\u034f",
    "khmer inherent vowels": "\u17b4\u17b5",
    "mix of all": " \u200b\u3164\u2800\ufe0f\ufeff\u00a0",
}

VISIBLE = {
    "letter among zero-width": "\u200bok\u200b",
    "emoji with variation selector": "\u2764\ufe0f",
    "joined emoji": "\U0001f469\u200d\U0001f4bb",
    "braille letter": "\u2801",
    "digit after filler": "\u31641",
}


@pytest.mark.parametrize("text", BLANK.values(), ids=BLANK.keys())
async def test_blank_message_is_refused_and_queues_nothing(api: ApiClient, text: str) -> None:
    """A message of only whitespace/invisible characters is validation_error naming message."""
    status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": text})
    assert status == 422 and body["error"]["code"] == "validation_error", body
    assert body["error"]["details"]["fields"] == {"message": "must not be empty or blank"}
    _, listing, _ = await api.get("/v1/messages")
    assert listing["messages"] == []


async def test_text_with_something_visible_is_accepted(api: ApiClient) -> None:
    """Invisible characters around visible ones do not make a text blank."""
    for name, text in VISIBLE.items():
        status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": text})
        assert status == 200, (name, body)
    _, listing, _ = await api.get("/v1/messages")
    assert len(listing["messages"]) == len(VISIBLE)


@pytest.mark.parametrize("field", ["app_name", "purpose", "template"])
async def test_blank_otp_fields_are_refused(api: ApiClient, field: str) -> None:
    """A blank app_name (which would print ": " before the text), purpose or template is refused
    naming the field; no code is stored."""
    for text in ("\u200b", "\u3164", "\u2800\ufe0f", "\ufeff\u2060"):
        payload = {"to": TO, "purpose": "login", field: text}
        status, body, _ = await api.post("/v1/otp/send", json=payload)
        assert status == 422 and body["error"]["code"] == "validation_error", body
        assert body["error"]["details"]["fields"] == {field: "must not be empty or blank"}, body
    _, listing, _ = await api.get("/v1/messages")
    assert listing["messages"] == []
