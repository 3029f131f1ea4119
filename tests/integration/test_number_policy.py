"""Toll-fraud protection through the real server: number types refused by default and allowed
per account, the per-account country allow-list for SMS and OTP, and the per-number OTP caps
across purposes (with ``Retry-After`` and ``details.reason``).

Settings change through :func:`gateway.access.accounts.update_number_policy` (what the CLI calls),
then the gateway's auth cache forgets the account (the CLI test shows the 2 s TTL instead).
Time is mocked only where a window must roll (a fake clock handed to the OTP service).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from gateway.access.accounts import update_number_policy
from gateway.errors import ApiError
from gateway.otp.service import OtpRequest
from gateway.timefmt import utcnow
from tests.harness import ApiClient, RunningGateway, make_account
from tests.integration.test_otp import FakeClock, service_with_clock

UZ_MOBILE = "+998901234567"
BD_MOBILE = "+8801712345678"

REFUSED = [
    ("+19005550123", "premium_rate"),  # US 1-900
    ("+33899123456", "premium_rate"),  # France 089
    ("+447098765432", "personal_number"),  # UK 070: forwards anywhere, a known pumping vector
    ("+33810123456", "shared_cost"),  # France 0810
    ("+443001234567", "uan"),  # UK 03 (universal access)
    ("+49177991234567", "voicemail"),  # Germany mobile voicemail access
]


async def set_policy(gateway: RunningGateway, account_id: str, **settings: Any) -> None:
    """Change the account's destination settings as the CLI does; the gateway sees it now."""
    svc = gateway.gateway.services
    assert svc is not None
    assert await update_number_policy(svc.pool, account_id, **settings) is not None
    svc.authenticator.forget_account(account_id)


async def queued_count(api: ApiClient) -> int:
    """How many messages the account has."""
    status, listing, _ = await api.get("/v1/messages")
    assert status == 200
    return len(listing["messages"])


def refused_to(status: int, body: Any) -> str:
    """The reason given for field ``to`` of a validation_error."""
    assert status == 422 and body["error"]["code"] == "validation_error", body
    assert set(body["error"]["details"]["fields"]) == {"to"}, body
    return str(body["error"]["details"]["fields"]["to"])


async def test_refused_types_by_default_and_allowed_by_the_account(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """Premium-rate, personal, shared-cost, UAN and voicemail numbers are refused (SMS and OTP)
    with the type named and nothing queued; allowed once the account allows that type."""
    for number, kind in REFUSED:
        status, body, _ = await api.post("/v1/sms/send", json={"to": number, "message": "hi"})
        assert refused_to(status, body) == f"{kind} numbers are not allowed"
        status, body, _ = await api.post("/v1/otp/send", json={"to": number, "purpose": "login"})
        assert refused_to(status, body) == f"{kind} numbers are not allowed"
    assert await queued_count(api) == 0

    await set_policy(gateway, account[0], extra_number_types=["premium_rate", "voicemail"])
    status, body, _ = await api.get("/v1/account")
    assert body["account"]["allowed_number_types"][-2:] == ["premium_rate", "voicemail"]
    for number, kind in REFUSED:
        status, body, _ = await api.post("/v1/sms/send", json={"to": number, "message": "hi"})
        if kind in ("premium_rate", "voicemail"):
            assert status == 200 and body["status"] == "queued", body
        else:
            assert refused_to(status, body) == f"{kind} numbers are not allowed"
    assert await queued_count(api) == 3


async def test_ordinary_numbers_pass_and_other_accounts_keep_the_default(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """Mobile, fixed-line and toll-free numbers pass; one account's allowance is not another's."""
    for number in (UZ_MOBILE, "+442071838750", "+14155552671", "+18005550199"):
        status, body, _ = await api.post("/v1/sms/send", json={"to": number, "message": "hi"})
        assert status == 200, (number, body)
    await set_policy(gateway, account[0], extra_number_types=["premium_rate"])
    _, other_token = await make_account(gateway.database_url, "other")
    other = api.with_token(other_token)
    status, body, _ = await other.post("/v1/sms/send", json={"to": "+19005550123", "message": "hi"})
    assert refused_to(status, body) == "premium_rate numbers are not allowed"


async def test_account_shows_the_default_policy(api: ApiClient) -> None:
    """GET /v1/account shows the destination policy, read-only, with its defaults."""
    status, body, _ = await api.get("/v1/account")
    assert status == 200
    account = body["account"]
    assert account["allowed_number_types"] == [
        "mobile",
        "fixed_line",
        "fixed_line_or_mobile",
        "toll_free",
        "voip",
        "pager",
    ]
    assert account["allowed_countries"] == []
    assert (account["otp_per_number_hour"], account["otp_per_number_day"]) == (10, 20)


async def test_country_allow_list_for_sms_and_otp(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """With allowed countries set, other countries are refused for SMS and OTP alike (naming the
    country, storing nothing); listed ones pass; an empty list allows every country again."""
    await set_policy(gateway, account[0], allowed_countries=["UZ"])
    status, body, _ = await api.post("/v1/sms/send", json={"to": BD_MOBILE, "message": "hi"})
    reason = refused_to(status, body)
    assert "BD" in reason and "UZ" in reason
    status, body, _ = await api.post("/v1/otp/send", json={"to": BD_MOBILE, "purpose": "login"})
    assert "BD" in refused_to(status, body)
    # A non-geographic number (Inmarsat/Iridium-style +88x) is outside every country.
    status, body, _ = await api.post("/v1/sms/send", json={"to": "+881612345678", "message": "hi"})
    assert "non-geographic" in refused_to(status, body)
    assert await queued_count(api) == 0

    status, body, _ = await api.post("/v1/sms/send", json={"to": UZ_MOBILE, "message": "hi"})
    assert status == 200, body
    status, body, _ = await api.post("/v1/otp/send", json={"to": UZ_MOBILE, "purpose": "login"})
    assert status == 200, body

    await set_policy(gateway, account[0], allowed_countries=["BD", "UZ"])
    status, body, _ = await api.post("/v1/otp/send", json={"to": BD_MOBILE, "purpose": "login"})
    assert status == 200, body
    await set_policy(gateway, account[0], allowed_countries=[])
    status, body, _ = await api.post("/v1/sms/send", json={"to": "+442071838750", "message": "hi"})
    assert status == 200, body


async def test_type_is_checked_before_country(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A premium-rate number in an allowed country is still refused for its type."""
    await set_policy(gateway, account[0], allowed_countries=["US"])
    status, body, _ = await api.post("/v1/sms/send", json={"to": "+19005550123", "message": "hi"})
    assert refused_to(status, body) == "premium_rate numbers are not allowed"


# --- per-number OTP caps ---------------------------------------------------------------------


async def otp(api: ApiClient, purpose: str, to: str = UZ_MOBILE) -> tuple[int, Any, Mapping[str, str]]:
    """POST /v1/otp/send for ``purpose``."""
    return await api.post("/v1/otp/send", json={"to": to, "purpose": purpose})


async def test_default_cap_of_ten_codes_per_number_per_hour_across_purposes(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """Ten codes to one number under ten purposes pass; the eleventh purpose is rate_limited
    with Retry-After until the first leaves the hour and reason otp_per_number_hour; another
    number and another account are not affected, and nothing is stored for the refusal."""
    for i in range(10):
        status, body, _ = await otp(api, f"purpose-{i}")
        assert status == 200, body
    status, body, headers = await otp(api, "purpose-10")
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    details = body["error"]["details"]
    assert details["reason"] == "otp_per_number_hour"
    retry = int(headers["Retry-After"])
    assert 3500 <= retry <= 3600 and details["retry_after_seconds"] == retry
    assert await queued_count(api) == 10
    status, body, _ = await otp(api, "purpose-10", to="+998901234599")
    assert status == 200, body
    _, other_token = await make_account(gateway.database_url, "other")
    status, body, _ = await otp(api.with_token(other_token), "purpose-10")
    assert status == 200, body


async def test_daily_cap_answers_with_its_own_reason(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """With a day cap below the hour cap, the day cap refuses, naming otp_per_number_day, with a
    Retry-After of about a day."""
    await set_policy(gateway, account[0], otp_per_number_hour=5, otp_per_number_day=2)
    for purpose in ("login", "reset"):
        status, body, _ = await otp(api, purpose)
        assert status == 200, body
    status, body, headers = await otp(api, "signup")
    assert status == 429 and body["error"]["details"]["reason"] == "otp_per_number_day", body
    assert 86300 <= int(headers["Retry-After"]) <= 86400


async def test_caps_roll_with_the_clock(gateway: RunningGateway, account: tuple[str, str]) -> None:
    """The hour cap frees a slot when the oldest send leaves the hour; the day cap then holds
    until the oldest send of the day leaves its 24 hours, to the second."""
    await set_policy(gateway, account[0], otp_per_number_hour=2, otp_per_number_day=3)
    clock = FakeClock(utcnow())
    service, acct = await service_with_clock(gateway, account[0], clock)
    await service.send(acct, OtpRequest(to=UZ_MOBILE, purpose="a"))
    clock.advance(600)
    await service.send(acct, OtpRequest(to=UZ_MOBILE, purpose="b"))
    with pytest.raises(ApiError) as refused:
        await service.send(acct, OtpRequest(to=UZ_MOBILE, purpose="c"))
    assert refused.value.details == {"retry_after_seconds": 3000, "reason": "otp_per_number_hour"}
    assert refused.value.headers == {"Retry-After": "3000"}
    clock.advance(3001)
    await service.send(acct, OtpRequest(to=UZ_MOBILE, purpose="c"))
    clock.advance(60)
    with pytest.raises(ApiError) as refused:
        await service.send(acct, OtpRequest(to=UZ_MOBILE, purpose="d"))
    elapsed = 600 + 3001 + 60
    assert refused.value.details == {
        "retry_after_seconds": int(timedelta(days=1).total_seconds()) - elapsed,
        "reason": "otp_per_number_day",
    }
    clock.advance(86400 - elapsed + 1)
    await service.send(acct, OtpRequest(to=UZ_MOBILE, purpose="d"))


async def test_concurrent_sends_under_many_purposes_respect_the_cap(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """Twenty concurrent sends to one number under twenty purposes: exactly the cap pass."""
    await set_policy(gateway, account[0], otp_per_number_hour=4)
    answers = await asyncio.gather(*(otp(api, f"p{i}") for i in range(20)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 4 + [429] * 16
