"""Reading request bodies: a size limit enforced while streaming, and msgspec decoding whose
validation errors name every bad field.

``details`` of a ``validation_error`` is ``{"fields": {"<field>": "<what is wrong>", ...}}``
(or ``{"body": "..."}`` when the body itself is not a JSON object).

Beyond what each Struct declares, every body is held to rules no field may break: no string
(key or value, at any depth) may contain U+0000, which PostgreSQL cannot store (lone UTF-16
surrogates are already refused by the JSON decoder); nesting deeper than the decoder's
recursion limit and numbers out of range are a ``validation_error``, never a 500.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from gateway.errors import ApiError

__all__ = ["decode_json", "field_errors", "nul_field", "read_body"]

T = TypeVar("T")

_NUL_ESCAPE = b"\\u0000"
_NUL_REASON = "must not contain the NUL character (U+0000)"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise ApiError("validation_error", "invalid Content-Length header")
        if int(declared) > limit:
            raise ApiError("payload_too_large", f"request body over {limit} bytes", {"limit_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("payload_too_large", f"request body over {limit} bytes", {"limit_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(details: dict[str, Any], message: str = "request body is invalid") -> ApiError:
    return ApiError("validation_error", message, details)


def decode_json(data: bytes, shape: type[T]) -> T:
    """Decode ``data`` as ``shape``; on failure raise a validation_error naming each bad field.

    The body is parsed as JSON whatever the Content-Type says: clients that forget the header
    (``curl -d``) still work, and a body that is not JSON gets a clear validation_error."""
    try:
        value = msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as exc:
        raise _field_error_report(data, shape, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _invalid({"body": str(exc)[:200]}, "request body is not valid JSON") from None
    except RecursionError:
        raise _invalid({"body": "nested too deeply"}, "request body is nested too deeply") from None
    if _NUL_ESCAPE in data:  # cheap test first: only such a body can hold a NUL
        field = nul_field(msgspec.json.decode(data))
        if field is not None:
            raise _invalid({"fields": {field: _NUL_REASON}})
    return value


def nul_field(value: Any, name: str = "body") -> str | None:
    """The top-level field (``name`` for a non-object) under which a NUL hides, or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key) or _holds_nul(item):
                return str(key).replace("\x00", "\\u0000")[:64]
        return None
    return name if _holds_nul(value) else None


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _field_error_report(data: bytes, shape: type[Any], first: str) -> ApiError:
    """The validation_error for a body the typed decoder refused, naming every bad field."""
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return _invalid({"body": first[:200]})  # e.g. a number out of range, or deep nesting
    if not isinstance(raw, dict):
        return _invalid({"body": first[:200]}, "request body must be a JSON object")
    fields = field_errors(raw, shape, _decode_as)
    if not fields:  # a cross-field rule (``__post_init__``) failed
        fields = {"body": first[:200]}
    return _invalid({"fields": fields})


def _decode_as(value: Any, kind: Any) -> object:
    """A JSON value as ``kind``, with JSON's own rules (what a body field must pass)."""
    return msgspec.json.decode(msgspec.json.encode(value), type=kind)


def field_errors(
    raw: dict[str, Any], shape: type[Any], convert: Callable[[Any, Any], object]
) -> dict[str, str]:
    """Check each field of ``raw`` against ``shape`` on its own (``convert(value, type)`` raises
    msgspec's ValidationError), so the client learns every problem at once. Used for bodies and
    query strings alike."""
    errors: dict[str, str] = {}
    hints = typing.get_type_hints(shape, include_extras=True)
    info = msgspec.structs.fields(shape)
    known = {f.encode_name for f in info}
    for f in info:
        if f.encode_name not in raw:
            if f.required:
                errors[f.encode_name] = "required"
            continue
        try:
            convert(raw[f.encode_name], hints[f.name])
        except msgspec.ValidationError as exc:
            errors[f.encode_name] = str(exc).replace(" - at `$`", "")[:200]
        except RecursionError:
            errors[f.encode_name] = "nested too deeply"
    config = getattr(shape, "__struct_config__", None)
    if config is not None and config.forbid_unknown_fields:
        for name in raw:
            if name not in known:
                errors[name[:64].replace("\x00", "\\u0000")] = "unknown field"
    return errors
