"""The Postman collection (v2.1) and its environment, generated from the OpenAPI document.

Our own small converter, no dependency: one folder per OpenAPI tag, one request per operation
with the document's example body, ``Authorization: Bearer {{token}}`` from the collection (an
operation with empty ``security`` is ``noauth``) and a test script checking the success status
and ``ok``. Path parameters are collection variables that earlier requests' scripts set
(:data:`CAPTURES`), so :data:`RUN_ORDER` runs the whole collection green against a fresh
account. A "First run" folder comes first: health → send SMS → status → send OTP → verify.

Output is deterministic: ids are uuid5 of names, order is the table's. Regenerate with
``python -m gateway.api.postman docs/postman`` (a test fails when the committed files differ).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any, Final

__all__ = [
    "COLLECTION_FILE",
    "ENVIRONMENT_FILE",
    "build_collection",
    "build_environment",
    "main",
    "render",
]

SCHEMA: Final = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
COLLECTION_FILE: Final = "relaygate.postman_collection.json"
ENVIRONMENT_FILE: Final = "relaygate.postman_environment.json"
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/relaygate/relaygate/postman")

RUN_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "health": ("health.health",),
    "account": ("account.get_account", "account.update_account", "account.launch_readiness"),
    "queue": ("queue.pause", "queue.resume", "queue.get_queue"),
    "tokens": ("tokens.list_tokens", "tokens.create", "tokens.revoke"),
    "devices": (
        "devices.list_devices",
        "devices.create_pairing",
        "devices.pair",
        "devices.update_device",
        "devices.delete_device",
    ),
    # the folder's send is scheduled an hour ahead (FOLDER_BODIES), so the cancel finds it waiting
    "messages": (
        "messages.send_sms",
        "messages.message_status",
        "messages.list_messages",
        "messages.cancel_message",
        "messages.list_inbound",
    ),
    "otp": ("otp.send_otp", "otp.verify_otp", "otp.otp_status"),
    "webhooks": (
        "webhooks.list_webhooks",
        "webhooks.create",
        "webhooks.get",
        "webhooks.update",
        "webhooks.rotate_secret",
        "webhooks.send_test",
        "webhooks.list_deliveries",
        "webhooks.get_delivery",
        "webhooks.retry_delivery",
        "webhooks.delete",
    ),
    # last: its update opts `to` out until the recipient is deleted at the end of the folder
    "recipients": (
        "recipients.create",
        "recipients.search",
        "recipients.get",
        "recipients.update",
        "recipients.import_file",
        "recipients.create_list",
        "recipients.list_lists",
        "recipients.get_list",
        "recipients.update_list",
        "recipients.add_members",
        "recipients.list_members",
        # list sends (tag recipients): a list with members exists here, before they are removed
        "recipients.queue_list",
        "recipients.get_batch",
        "recipients.cancel_batch",
        "recipients.remove_members",
        "recipients.delete_list",
        "recipients.delete",
    ),
}
"""Folders (tags) and requests in run order: create before use, rotate/test before delete,
unpair last. Every operation of the document is here exactly once (checked)."""

CAPTURES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "tokens.create": {"token_id": ("token_info", "id")},
    "devices.create_pairing": {"pairing_code": ("code",)},
    "devices.pair": {"device_id": ("device_id",)},
    "messages.send_sms": {"request_id": ("request_id",)},
    "otp.send_otp": {"otp_id": ("otp_id",)},
    "webhooks.create": {"webhook_id": ("webhook", "id")},
    "webhooks.send_test": {"delivery_id": ("delivery_id",)},
    "recipients.create": {"recipient_id": ("recipient", "id")},
    "recipients.create_list": {"list_id": ("list", "id")},
    "recipients.queue_list": {"batch_id": ("batch_id",)},
}
"""Collection variables an operation's success answer sets: variable → field path. A request
body or required query value equal to the field's example value becomes ``{{variable}}``."""

ENVIRONMENT: Final[dict[str, tuple[str, str | None]]] = {
    "base_url": ("http://127.0.0.1:8080/api", None),
    "token": ("", None),
    "to": ("+998901234567", "+998901234567"),
    "webhook_url": ("https://example.com/hooks/relaygate", "https://shop.example.com/hooks/sms"),
}
"""Environment variables: name → (default, the example value it stands for in bodies). The
gateway resolves a webhook URL's host when it is registered, so it must be one that resolves."""

EXPECT: Final[dict[str, dict[str, str]]] = {
    "otp.verify_otp": {"status": "failed"},
    "messages.cancel_message": {"status": "cancelled"},
}
"""Fields checked beyond ``ok``: Postman cannot know the code (it arrives by SMS), so the
collection verifies a wrong one and expects ``failed``; the messages folder schedules its SMS
and cancels it."""

FOLDER_BODIES: Final[dict[str, dict[str, Any]]] = {"messages.send_sms": {"send_at": "{{send_at}}"}}
"""Body fields overriding the example in the folders (not in "First run")."""
FOLDER_EXPECT: Final[dict[str, dict[str, str]]] = {"messages.send_sms": {"status": "scheduled"}}
"""Fields checked in the folders only (with :data:`EXPECT`)."""

PRE_REQUEST: Final[dict[str, tuple[str, ...]]] = {
    "messages.send_sms": (
        "// an hour from now: the message waits (status scheduled) until the cancel below",
        'pm.collectionVariables.set("send_at", new Date(Date.now() + 3600 * 1000).toISOString());',
    ),
}
"""Pre-request scripts of folder requests."""

RAW_BODIES: Final[dict[str, tuple[str, str]]] = {
    "recipients.import_file": ("text/csv", "name,phone,tags\nBobur Aliyev,+998907654322,vip;tashkent\n"),
}
"""Bodies that are not JSON (and so have no example in the document): content type, text."""

FIRST_RUN: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    ("health.health", {}),
    ("messages.send_sms", {}),
    ("messages.message_status", {}),
    ("otp.send_otp", {"purpose": "signup"}),
    ("otp.verify_otp", {"code": "000000"}),
)
"""The "First run" folder: operation → body fields overriding the example. Its OTP has its own
purpose, as one (number, purpose) takes one code per 30 s and the otp folder sends one too."""

_DESCRIPTION = """\
relaygate's HTTP API, generated from docs/openapi.json by `python -m gateway.api.postman \
docs/postman`.

Set the environment's `base_url` (…/api) and `token` (an access token, `rgat_…`), `to` (a \
number you may text) and `webhook_url` (a public URL that resolves; the gateway checks it). \
Run "First run" for a quick check, or the whole collection: each folder creates what it \
then reads, changes and deletes, and every request tests its status and `ok`.

The OTP code is never in an answer: it arrives by SMS on `to`. The collection verifies a \
wrong code (`000000`) and expects `status: failed`; put the real code in the body to see \
`success`. One number and purpose take one code per 30 s, so wait that long between runs.
"""


def _id(*names: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(names)))


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _success(op: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status = min(int(s) for s in op["responses"] if s.startswith("2"))
    example = op["responses"][str(status)]["content"]["application/json"]["example"]
    return status, example


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId → (method, path, operation), checked against :data:`RUN_ORDER`."""
    ops = {
        op["operationId"]: (method.upper(), path, op)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }
    ordered = [op_id for ids in RUN_ORDER.values() for op_id in ids]
    if sorted(ordered) != sorted(ops) or len(set(ordered)) != len(ordered):
        missing = sorted(set(ops) - set(ordered))
        extra = sorted(set(ordered) - set(ops))
        raise ValueError(f"RUN_ORDER out of date: not placed {missing}, unknown {extra}")
    return ops


def _substitutions(ops: dict[str, tuple[str, str, dict[str, Any]]]) -> dict[str, str]:
    """Example value → the ``{{variable}}`` that stands for it in bodies."""
    subs = {example: "{{" + name + "}}" for name, (_, example) in ENVIRONMENT.items() if example}
    for op_id, captures in CAPTURES.items():
        _, answer = _success(ops[op_id][2])
        for name, path in captures.items():
            subs[str(_at(answer, path))] = "{{" + name + "}}"
    return subs


def _substituted(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substituted(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substituted(v, subs) for v in value]
    if isinstance(value, str):
        return subs.get(value, value)
    return value


def _script(op_id: str, status: int, expect: dict[str, str]) -> list[str]:
    """The test script of one request."""
    lines = [
        f'pm.test("status is {status}", function () {{',
        f"    pm.response.to.have.status({status});",
        "});",
        'pm.test("ok is true", function () {',
        "    pm.expect(pm.response.json().ok).to.eql(true);",
        "});",
    ]
    for field, value in expect.items():
        lines += [
            f'pm.test("{field} is {value}", function () {{',
            f"    pm.expect(pm.response.json().{field}).to.eql({json.dumps(value)});",
            "});",
        ]
    for name, path in CAPTURES.get(op_id, {}).items():
        lines += [
            f'pm.test("saves {name}", function () {{',
            f"    const value = pm.response.json().{'.'.join(path)};",
            '    pm.expect(value).to.be.a("string");',
            f'    pm.collectionVariables.set("{name}", value);',
            "});",
        ]
    return lines


def _request(
    folder: str,
    op_id: str,
    entry: tuple[str, str, dict[str, Any]],
    subs: dict[str, str],
    captured: set[str],
    overrides: dict[str, Any],
    *,
    expect: dict[str, str] | None = None,
    pre_request: tuple[str, ...] = (),
) -> dict[str, Any]:
    method, path, op = entry
    segments = []
    for part in path.strip("/").split("/"):
        if part.startswith("{"):
            name = part[1:-1]
            if name not in captured:
                raise ValueError(f"{op_id}: no earlier request sets {{{{{name}}}}}")
            part = "{{" + name + "}}"
        segments.append(part)
    query: list[dict[str, Any]] = []
    headers: list[dict[str, Any]] = []
    for param in op.get("parameters", []):
        if param["in"] == "query":
            name = param["name"]
            if param["required"]:
                if name not in captured:
                    raise ValueError(f"{op_id}: no earlier request sets {{{{{name}}}}}")
                query.append({"key": name, "value": "{{" + name + "}}"})
            else:
                default = param["schema"].get("default", "")
                query.append({"key": name, "value": str(default), "disabled": True})
        elif param["in"] == "header":
            headers.append(
                {
                    "key": param["name"],
                    "value": "{{$guid}}",
                    "description": param.get("description", ""),
                    "disabled": True,
                }
            )
    raw = "{{base_url}}/" + "/".join(segments)
    enabled = [q for q in query if not q.get("disabled")]
    if enabled:
        raw += "?" + "&".join(f"{q['key']}={q['value']}" for q in enabled)
    url: dict[str, Any] = {"raw": raw, "host": ["{{base_url}}"], "path": segments}
    if query:
        url["query"] = query
    request: dict[str, Any] = {"method": method, "header": headers, "url": url}
    if not op["security"]:
        request["auth"] = {"type": "noauth"}
    body = op.get("requestBody")
    if op_id in RAW_BODIES:
        media_type, text = RAW_BODIES[op_id]
        headers.insert(0, {"key": "Content-Type", "value": media_type})
        request["body"] = {"mode": "raw", "raw": text}
    elif body is not None:
        example = _substituted(body["content"]["application/json"]["example"], subs)
        example.update(overrides)
        headers.insert(0, {"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(example, indent=2, ensure_ascii=False),
            "options": {"raw": {"language": "json"}},
        }
    lines = [f"`{method} {path}`", ""]
    if op.get("description"):
        lines += [op["description"], ""]
    lines.append(f"Scope: `{op['x-required-scope']}`." if "x-required-scope" in op else "No token needed.")
    request["description"] = "\n".join(lines)
    status, _ = _success(op)
    captured.update(CAPTURES.get(op_id, {}))
    events: list[dict[str, Any]] = [
        {
            "listen": "test",
            "script": {
                "id": _id(folder, op_id, "test"),
                "type": "text/javascript",
                "exec": _script(op_id, status, EXPECT.get(op_id, {}) if expect is None else expect),
            },
        }
    ]
    if pre_request:
        events.append(
            {
                "listen": "prerequest",
                "script": {
                    "id": _id(folder, op_id, "prerequest"),
                    "type": "text/javascript",
                    "exec": list(pre_request),
                },
            }
        )
    return {
        "id": _id(folder, op_id),
        "name": op["summary"],
        "event": events,
        "request": request,
        "response": [],
    }


def build_collection(document: dict[str, Any]) -> dict[str, Any]:
    """The Postman Collection v2.1 for the OpenAPI ``document``."""
    ops = _operations(document)
    subs = _substitutions(ops)
    captured: set[str] = set()
    first_run = {
        "id": _id("First run"),
        "name": "First run",
        "description": "health → send SMS → message status → send OTP → verify OTP (a wrong code: "
        "the real one arrives by SMS, so this one answers `status: failed`).",
        "item": [_request("First run", op_id, ops[op_id], subs, captured, o) for op_id, o in FIRST_RUN],
    }
    captured.clear()
    descriptions = {t["name"]: t.get("description", "") for t in document.get("tags", [])}
    folders = [first_run]
    for tag, op_ids in RUN_ORDER.items():
        folder: dict[str, Any] = {"id": _id(tag), "name": tag}
        if descriptions.get(tag):
            folder["description"] = descriptions[tag]
        folder["item"] = [
            _request(
                tag,
                op_id,
                ops[op_id],
                subs,
                captured,
                FOLDER_BODIES.get(op_id, {}),
                expect={**EXPECT.get(op_id, {}), **FOLDER_EXPECT.get(op_id, {})},
                pre_request=PRE_REQUEST.get(op_id, ()),
            )
            for op_id in op_ids
        ]
        folders.append(folder)
    info = document["info"]
    return {
        "info": {
            "_postman_id": _id("collection"),
            "name": info["title"],
            "description": _DESCRIPTION,
            "version": info["version"],
            "schema": SCHEMA,
        },
        "item": folders,
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}]},
        "variable": [
            *({"key": name, "value": ""} for captures in CAPTURES.values() for name in captures),
            {"key": "send_at", "value": ""},
        ],
    }


def build_environment() -> dict[str, Any]:
    """The environment file: ``base_url``, ``token``, ``to`` and ``webhook_url``."""
    return {
        "id": _id("environment"),
        "name": "relaygate (local)",
        "values": [
            {
                "key": name,
                "value": default,
                "type": "secret" if name == "token" else "default",
                "enabled": True,
            }
            for name, (default, _) in ENVIRONMENT.items()
        ],
        "_postman_variable_scope": "environment",
    }


def render(value: dict[str, Any]) -> bytes:
    """The committed form: indented JSON, keys in the built order, a final newline."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.api.postman OUT_DIR [OPENAPI_FILE]``: write the collection and the
    environment into OUT_DIR, from OPENAPI_FILE or (without it) the document the gateway serves."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(main.__doc__, file=sys.stderr)
        return 2
    if len(args) > 1:
        document = json.loads(Path(args[1]).read_bytes())
    else:
        from gateway.api import ENDPOINTS
        from gateway.api.openapi import build_openapi
        from gateway.api.openapi import render as render_openapi

        document = json.loads(render_openapi(build_openapi(ENDPOINTS)))
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    (out / COLLECTION_FILE).write_bytes(render(build_collection(document)))
    (out / ENVIRONMENT_FILE).write_bytes(render(build_environment()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
