"""Reading request bodies: a size limit enforced while streaming, and msgspec decoding whose
validation errors name every bad field.

``details`` of a ``validation_error`` is ``{"fields": {"<field>": "<what is wrong>", ...}}``
(or ``{"body": "..."}`` when the body itself is not a JSON object).
"""

from __future__ import annotations

import typing
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from gateway.errors import ApiError

__all__ = ["decode_json", "read_body", "read_json"]

T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
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


async def read_json(request: Request, shape: type[T], limit: int) -> T:
    """Read and decode the body as ``shape`` (a msgspec Struct).

    The body is parsed as JSON whatever the Content-Type says: clients that forget the header
    (``curl -d``) still work, and a body that is not JSON gets a clear validation_error.
    """
    return decode_json(await read_body(request, limit), shape)


def decode_json(data: bytes, shape: type[T]) -> T:
    """Decode ``data`` as ``shape``; on failure raise a validation_error naming each bad field."""
    try:
        return msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as exc:
        first = str(exc)
    except msgspec.DecodeError as exc:
        raise ApiError("validation_error", "request body is not valid JSON", {"body": str(exc)}) from None
    raw = msgspec.json.decode(data)
    if not isinstance(raw, dict):
        raise ApiError("validation_error", "request body must be a JSON object", {"body": first})
    fields = _field_errors(raw, shape)
    if not fields:  # a cross-field rule (``__post_init__``) failed
        fields = {"body": first}
    raise ApiError("validation_error", "request body is invalid", {"fields": fields})


def _field_errors(raw: dict[str, Any], shape: type[Any]) -> dict[str, str]:
    """Check each field on its own so the client learns every problem at once."""
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
            msgspec.json.decode(msgspec.json.encode(raw[f.encode_name]), type=hints[f.name])
        except msgspec.ValidationError as exc:
            errors[f.encode_name] = str(exc).replace(" - at `$`", "")
    config = getattr(shape, "__struct_config__", None)
    if config is not None and config.forbid_unknown_fields:
        for name in raw:
            if name not in known:
                errors[name] = "unknown field"
    return errors
