"""Edge pieces without I/O: settings, request-body decoding, the error shape, rate buckets."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from starlette.requests import Request

from gateway.access.ratelimit import KeyedTokenBuckets
from gateway.access.scopes import ALL_SCOPES, parse_scopes
from gateway.app import _internal
from gateway.bodies import decode_json
from gateway.config import Settings, SettingsError
from gateway.errors import STATUS_BY_CODE, ApiError, error_body


class Shape(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=5)]
    count: int
    tag: str = "x"


def test_settings_from_env_and_overrides() -> None:
    """Environment variables are read, CLI overrides win, bad values name their variable."""
    s = Settings.from_env(
        {"RELAYGATE_HTTP_PORT": "9000", "RELAYGATE_WEBHOOK_ALLOW_PRIVATE": "1"}, host="0.0.0.0"
    )
    assert (s.http_port, s.host, s.webhook_allow_private) == (9000, "0.0.0.0", True)
    assert s.api_base_url() == "http://127.0.0.1:9000/api"
    with pytest.raises(SettingsError, match="RELAYGATE_HTTP_PORT"):
        Settings.from_env({"RELAYGATE_HTTP_PORT": "eighty"})
    with pytest.raises(SettingsError, match="http_port"):
        Settings.from_env({"RELAYGATE_HTTP_PORT": "70000"})
    with pytest.raises(SettingsError, match="log_format"):
        Settings.from_env({"RELAYGATE_LOG_FORMAT": "xml"})


def test_decode_names_every_bad_field() -> None:
    """A validation error lists each wrong, missing or unknown field at once."""
    with pytest.raises(ApiError) as info:
        decode_json(b'{"name": "toolong", "extra": 1}', Shape)
    err = info.value
    assert err.code == "validation_error" and err.status == 422
    fields = err.details["fields"]
    assert set(fields) == {"name", "count", "extra"}
    assert fields["count"] == "required" and fields["extra"] == "unknown field"


@pytest.mark.parametrize(
    ("data", "key"), [(b"{nope", "body"), (b"[1, 2]", "body"), (b'"text"', "body"), (b"", "body")]
)
def test_decode_rejects_non_objects(data: bytes, key: str) -> None:
    """Malformed JSON and non-object bodies are validation errors about the body."""
    with pytest.raises(ApiError) as info:
        decode_json(data, Shape)
    assert info.value.code == "validation_error" and key in info.value.details


def test_every_error_code_has_the_one_shape() -> None:
    """Each code maps to its documented status and encodes as {ok:false,error:{code,message,details}}."""
    expected = {
        "unauthorized": 401,
        "forbidden": 403,
        "not_found": 404,
        "validation_error": 422,
        "invalid_device": 422,
        "conflict": 409,
        "rate_limited": 429,
        "subscription_expired": 402,
        "queue_blocked": 503,
        "internal": 500,
    }
    for code, status in expected.items():
        assert STATUS_BY_CODE[code] == status
    for code in STATUS_BY_CODE:
        body = msgspec.json.decode(error_body(ApiError(code, "m", {"k": 1})))
        assert body == {"ok": False, "error": {"code": code, "message": "m", "details": {"k": 1}}}
    limited = ApiError.rate_limited(0.2)
    assert limited.headers == {"Retry-After": "1"} and limited.status == 429


async def test_internal_errors_hide_the_trace() -> None:
    """An unexpected exception becomes a 500 'internal' without any trace in the body."""
    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""})
    response = await _internal(request, RuntimeError("secret detail"))
    body = msgspec.json.decode(bytes(response.body))
    assert response.status_code == 500 and body["error"]["code"] == "internal"
    assert "secret" not in bytes(response.body).decode() and "Traceback" not in bytes(response.body).decode()


def test_token_buckets_refill_with_time() -> None:
    """A bucket allows its burst, then reports the wait until the next token."""
    now = [0.0]
    buckets = KeyedTokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0
    now[0] = 0.5
    assert buckets.take("a") == 0.0


def test_parse_scopes() -> None:
    """Scope lists are validated, de-duplicated and put in canonical order."""
    assert parse_scopes("tokens.manage, account.read,account.read") == ["account.read", "tokens.manage"]
    assert parse_scopes(list(ALL_SCOPES)) == list(ALL_SCOPES)
    with pytest.raises(ValueError, match="bogus"):
        parse_scopes("account.read,bogus")
    with pytest.raises(ValueError):
        parse_scopes("")


def test_gcra_allows_bursts_then_paces() -> None:
    """GCRA: a full burst at once, then one request per interval; headers count down and reset."""
    from gateway.access.ratelimit import Gcra

    now = [100.0]
    gcra = Gcra(rate=2.0, burst=3, clock=lambda: now[0])
    verdicts = [gcra.take("t") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].retry_after == pytest.approx(0.5)
    assert verdicts[2].headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "2",
    }
    now[0] += 0.5
    assert gcra.take("t").allowed and not gcra.take("t").allowed
    assert gcra.take("other").allowed  # keys are independent
    now[0] += 10
    assert gcra.take("t").remaining == 2
