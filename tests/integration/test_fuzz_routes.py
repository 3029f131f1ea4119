"""Fuzzing every route of the table: random JSON bodies, raw bytes, query strings, path ids and
headers never produce a 5xx, every refusal is the one error shape, and a refused request
changes no stored row. Bounded (a few hundred examples) so the suite stays quick.

The gateway runs in a thread with its own event loop so that hypothesis can drive it from a
plain synchronous test through real sockets (``http.client``).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from gateway.api import routes
from tests.harness import ThreadedGateway
from tests.integration.test_hostile_http import COUNTED

FIELDS = [
    "to", "message", "device_id", "priority", "ttl_seconds", "sim_slot", "metadata", "purpose", "code",
    "otp_id", "locale", "scopes", "name", "url", "events", "description", "enabled", "expires_in_seconds",
    "model", "app_version", "qr_payload", "max_in_flight", "per_minute_limit", "per_day_limit",
    "template", "app_name", "code_length",
]  # fmt: skip
QUERY_KEYS = ["cursor", "limit", "status", "since", "to", "request_id", "webhook_id", "event_type"]

texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
) | st.sampled_from(["\x00", "req_\x00", "+998901234567", "", " ", "\u200b", "²", "1e999", "login\n"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
bodies = (
    st.dictionaries(st.sampled_from(FIELDS) | texts, values, max_size=6).map(lambda d: json.dumps(d).encode())
    | values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.sampled_from([b"", b"[" * 3000, b"{" * 3000, b'{"to": 1e999}', b"\xff\xfe"])
)
queries = st.dictionaries(st.sampled_from(QUERY_KEYS) | texts, texts, max_size=4)
path_ids = texts | st.sampled_from(["req_01M8SR7DXAY08QJ77MHNTW5J0B", "dlv_x", "%00", "..", "whk_\x00"])


TABLE = [
    (route.path, sorted((route.methods or set()) - {"HEAD"})) for route in routes if isinstance(route, Route)
]


def _fill(path: str, draw: Callable[[st.SearchStrategy[str]], str]) -> str:
    while "{" in path:
        head, _, rest = path.partition("{")
        _, _, tail = rest.partition("}")
        path = head + quote(draw(path_ids), safe="") + tail
    return path


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_route_answers_5xx_or_changes_state_when_refusing(
    threaded: ThreadedGateway, data: st.DataObject
) -> None:
    """Any method, path id, query, body and auth header on any route: < 500, one error shape,
    and nothing stored when refused."""
    path, methods = data.draw(st.sampled_from(TABLE))
    method = data.draw(st.sampled_from([*methods, "PUT"]))
    url = "/api" + _fill(path, data.draw) if path.startswith("/v1") else _fill(path, data.draw)
    query = data.draw(queries)
    if query:
        url += "?" + urlencode(query)
    auth = data.draw(
        st.sampled_from(
            [f"Bearer {threaded.token}"] * 4 + ["", "Bearer x", "Basic abc", f"bearer {threaded.token}\xe9"]
        )
    )
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    if data.draw(st.booleans()):
        # Control characters in a header are refused by the HTTP parser before the app runs.
        key = st.text(alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=300)
        headers["Idempotency-Key"] = data.draw(key)
    body = data.draw(bodies)
    before = threaded.counts(COUNTED)
    try:
        status, raw = threaded.request(method, url, body, headers)
    except (ValueError, http.client.InvalidURL):
        return  # the client itself refuses to send this (e.g. a header with a newline)
    assert status < 500, (method, url, body, status, raw)
    if status >= 400 and url != "/metrics":
        answer = json.loads(raw)
        assert answer["ok"] is False and set(answer["error"]) == {"code", "message", "details"}, answer
        assert threaded.counts(COUNTED) == before, (method, url, body, status, raw)
