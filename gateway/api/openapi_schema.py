"""OpenAPI pieces made from one :class:`~gateway.api.routing.Endpoint` and msgspec's JSON Schema:
the operation object (parameters, body, answers per status, error codes, scope) and the
``webhooks`` section from :mod:`gateway.events`. :mod:`gateway.api.openapi` assembles them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec

from gateway.api.routing import Endpoint
from gateway.errors import STATUS_BY_CODE, ErrorEnvelope
from gateway.events import EVENT_STRUCTS

__all__ = ["REF", "components", "event_webhooks", "operation"]

REF = "#/components/schemas/{name}"
"""Where a named schema lives in the document."""


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is a string on the wire: drop the ``null`` branch of optional ones."""
    branches = schema.get("anyOf")
    if branches:
        rest = [b for b in branches if b.get("type") != "null"]
        if len(rest) == 1:
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            merged.update(rest[0])
            if merged.get("default", ...) is None:
                del merged["default"]
            return merged
    return schema


def _ref(kind: type[Any]) -> dict[str, str]:
    return {"$ref": REF.format(name=kind.__name__)}


def operation(e: Endpoint, components: dict[str, Any], examples: dict[type[Any], Any]) -> dict[str, Any]:
    """The operation object of ``e`` (``components``: the named schemas; ``examples``: an example
    instance per request/answer type)."""
    name = getattr(e.handler, "__name__", "op")
    op: dict[str, Any] = {
        "operationId": f"{e.tag}.{name}",
        "summary": e.summary,
        "tags": [e.tag],
        "security": [{"bearerAuth": []}] if e.scope else [],
    }
    doc = (getattr(e.handler, "__doc__", None) or "").strip()
    if doc:
        op["description"] = doc
    if e.scope:
        op["x-required-scope"] = e.scope
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 80}}
        for p in e.path_params
    ]
    if e.query is not None:
        props = components[e.query.__name__]["properties"]
        required = set(components[e.query.__name__].get("required", []))
        for field in msgspec.structs.fields(e.query):
            parameters.append(
                {
                    "name": field.encode_name,
                    "in": "query",
                    "required": field.encode_name in required,
                    "schema": _query_schema(props[field.encode_name]),
                }
            )
    if e.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes retries safe: the same key and body replay the first answer.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if parameters:
        op["parameters"] = parameters
    if e.body is not None:
        media: dict[str, Any] = {"schema": _ref(e.body)}
        if e.body in examples:
            media["example"] = msgspec.to_builtins(examples[e.body])
        op["requestBody"] = {"required": not e.body_optional, "content": {"application/json": media}}
    responses: dict[str, Any] = {}
    for status, kind in e.responses.items():
        media = {"schema": _ref(kind)}
        if kind in examples:
            media["example"] = msgspec.to_builtins(examples[kind])
        responses[str(status)] = {
            "description": (kind.__doc__ or kind.__name__).strip().splitlines()[0],
            "content": {"application/json": media},
        }
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in e.error_codes:
        by_status[STATUS_BY_CODE[code]].append(code)
    for status, codes in sorted(by_status.items()):
        if str(status) in responses:
            continue
        responses[str(status)] = {
            "description": "Error: " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": _ref(ErrorEnvelope)}},
        }
    op["responses"] = responses
    return op


def components(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The named schemas of every body, query and answer of ``endpoints``, the error envelope
    and every event (query Structs included: :func:`operation` reads them; drop them after)."""
    kinds: set[type[Any]] = {ErrorEnvelope, *EVENT_STRUCTS}
    for e in endpoints:
        kinds.update(e.responses.values())
        kinds.update(k for k in (e.body, e.query) if k is not None)
    ordered = sorted(kinds, key=lambda k: k.__name__)
    _, named = msgspec.json.schema_components(ordered, ref_template=REF)
    return named


def event_webhooks() -> dict[str, Any]:
    """The ``webhooks`` section: one POST per event type of :mod:`gateway.events`, and the
    envelope an endpoint with ``batch`` set receives instead."""
    hooks = {
        str(s.__struct_config__.tag): {
            "post": {
                "summary": (s.__doc__ or "").strip(),
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(s)}}},
                "responses": {
                    "200": {"description": "Any 2xx acknowledges the event; anything else is retried."}
                },
            }
        }
        for s in EVENT_STRUCTS
    }
    item = {
        "allOf": [
            {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string", "description": "The event id: de-duplicate by it."}},
            },
            {"oneOf": [_ref(s) for s in EVENT_STRUCTS]},
        ]
    }
    envelope = {
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": "batch"},
            "timestamp": {"type": "string", "format": "date-time", "description": "The newest event's."},
            "data": {
                "type": "object",
                "required": ["events"],
                "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 100, "items": item}},
            },
        },
    }
    hooks["batch"] = {
        "post": {
            "summary": "Up to batch.max_events events in one request, for an endpoint with batch set "
            "(webhook-id whb_…, the same for a retry of the same events).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": envelope}}},
            "responses": {
                "200": {"description": "Any 2xx acknowledges every event; anything else retries them all."}
            },
        }
    }
    return hooks
