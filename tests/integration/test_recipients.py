"""The recipients directory, its CSV import and recipient lists through the real API: CRUD,
search (accents, Cyrillic, number formats), import with bad rows and all-or-nothing, lists and
members, opt-out, cross-account isolation on every route, and bad input on every new route.

One gateway serves the module; each test works in accounts of its own, so tests do not see
each other's recipients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.errors import ApiError
from gateway.recipients import is_opted_out
from store import recipients as store_recipients
from tests.harness import ApiClient, DatabaseFactory, RunningGateway, make_account, start_gateway

NUL = "\x00"
TABLES = ("recipients", "recipient_lists", "recipient_list_members")


@dataclass
class Env:
    """The module's gateway and a way to make fresh accounts on it."""

    running: RunningGateway
    session: aiohttp.ClientSession
    database_url: str

    async def client(self, region: str | None = "UZ") -> ApiClient:
        """A client acting as a new account (default region UZ)."""
        _, token = await make_account(self.database_url, "shop", region=region)
        return ApiClient(self.session, self.running.base_url, token)

    async def counts(self) -> dict[str, int]:
        """Rows per recipients table, to prove a refused request changed nothing."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def env(databases: DatabaseFactory) -> AsyncIterator[Env]:
    """One gateway for the module."""
    database_url = await databases.create()
    running = await start_gateway(database_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Env(running, session, database_url)
    await running.stop()


async def add(api: ApiClient, name: str, phone: str, **extra: Any) -> dict[str, Any]:
    """Create a recipient, asserting 201; the recipient as answered."""
    status, body, _ = await api.post("/v1/recipients", json={"name": name, "phone": phone, **extra})
    assert status == 201, body
    recipient: dict[str, Any] = body["recipient"]
    return recipient


async def names(api: ApiClient, **params: str) -> list[str]:
    """Names found by ``GET /v1/recipients`` with these parameters (one page)."""
    status, body, _ = await api.get("/v1/recipients", params={"limit": "200", **params})
    assert status == 200, body
    return sorted(r["name"] for r in body["recipients"])


def refused(status: int, body: Any, code: str = "validation_error") -> None:
    """A 4xx in the one error shape with this code."""
    assert 400 <= status < 500 and body["ok"] is False, (status, body)
    assert body["error"]["code"] == code, body


async def import_csv(api: ApiClient, text: str | bytes, **params: str) -> tuple[int, Any]:
    """POST a CSV body to the import route."""
    data = text.encode() if isinstance(text, str) else text
    status, body, _ = await api.post(
        "/v1/recipients/import", data=data, headers={"Content-Type": "text/csv"}, params=params or None
    )
    return status, body


# --- the directory -----------------------------------------------------------------------------


async def test_create_read_update_delete(env: Env) -> None:
    """A recipient is stored in E.164 (national numbers in the account's region), read back,
    changed field by field, and deleted; the same number twice is a 409 naming the first id."""
    api = await env.client()
    created = await add(api, "  Alisher Navoiy ", "90 123 45 67", tags=["vip", "tashkent"], locale="uz",
                        metadata={"city": "Tashkent", "orders": 3})  # fmt: skip
    assert created["id"].startswith("rcp_") and created["phone"] == "+998901234567"
    assert created["name"] == "Alisher Navoiy" and created["opted_out"] is False
    assert created["tags"] == ["vip", "tashkent"] and created["metadata"] == {"city": "Tashkent", "orders": 3}
    status, body, _ = await api.get(f"/v1/recipients/{created['id']}")
    assert status == 200 and body["recipient"] == created

    status, body, _ = await api.post("/v1/recipients", json={"name": "Again", "phone": "+998 90 123-45-67"})
    refused(status, body, "conflict")
    assert status == 409 and body["error"]["details"]["recipient_id"] == created["id"]

    status, body, _ = await api.request(
        "PATCH", f"/v1/recipients/{created['id']}", json={"locale": None, "tags": [], "name": "Alisher"}
    )
    assert status == 200, body
    changed = body["recipient"]
    assert (changed["name"], changed["locale"], changed["tags"]) == ("Alisher", None, [])
    assert changed["metadata"] == created["metadata"] and changed["updated_at"] >= created["updated_at"]

    other = await add(api, "Bobur", "+998901112233")
    status, body, _ = await api.request("PATCH", f"/v1/recipients/{other['id']}", json={"phone": "901234567"})
    assert status == 409 and body["error"]["details"]["recipient_id"] == created["id"]
    status, body, _ = await api.request(
        "PATCH", f"/v1/recipients/{other['id']}", json={"phone": "+998907654321"}
    )
    assert status == 200 and body["recipient"]["phone"] == "+998907654321"
    assert await names(api, q="7654") == ["Bobur"]

    status, body, _ = await api.request("DELETE", f"/v1/recipients/{created['id']}")
    assert status == 200 and body == {"ok": True, "recipient_id": created["id"], "deleted": True}
    for method in ("GET", "DELETE"):
        status, body, _ = await api.request(method, f"/v1/recipients/{created['id']}")
        refused(status, body, "not_found")
    await add(api, "Alisher", "+998901234567")  # the number is free again


async def test_search_by_name_ignores_case_and_accents(env: Env) -> None:
    """``q`` is a substring of the folded name: accents and case ignored, Cyrillic included,
    short queries too, LIKE wildcards taken literally."""
    api = await env.client()
    for i, name in enumerate(["Alisher", "Álvaro", "Руслан", "ZOË O'Neil", "Dilnoza", "100%_sure", "Straße"]):
        await add(api, name, f"+99890{1000000 + i:07d}")
    assert await names(api, q="al") == ["Alisher", "Álvaro"]
    assert await names(api, q="ALI") == ["Alisher"]  # "Álvaro" does not contain "ali"
    assert await names(api, q="álv") == ["Álvaro"]
    assert await names(api, q="рус") == ["Руслан"]  # noqa: RUF001 (Cyrillic on purpose)
    assert await names(api, q="РУСЛАН") == ["Руслан"]
    assert await names(api, q="zoe o'") == ["ZOË O'Neil"]
    assert await names(api, q="z") == ["Dilnoza", "ZOË O'Neil"]
    assert await names(api, q="oz") == ["Dilnoza"]
    assert await names(api, q="strasse") == ["Straße"]
    assert await names(api, q="%") == ["100%_sure"]
    assert await names(api, q="0%_") == ["100%_sure"]
    assert await names(api, q="_") == ["100%_sure"]
    assert await names(api, q="xyz") == []
    assert len(await names(api, q="")) == 7


async def test_search_by_number_in_any_format(env: Env) -> None:
    """Digits of ``q`` match the number's digits wherever they are, whatever the separators."""
    api = await env.client()
    await add(api, "Anvar", "+998901234567")
    await add(api, "Botir", "+998935551234")
    await add(api, "Carol", "+14155552671")
    assert await names(api, q="90 123") == ["Anvar"]
    assert await names(api, q="+99890123") == ["Anvar"]
    assert await names(api, q="(90) 123-45-67") == ["Anvar"]
    assert await names(api, q="1234") == ["Anvar", "Botir"]
    assert await names(api, q="+1 415") == ["Carol"]
    assert await names(api, q="55") == ["Botir", "Carol"]
    assert await names(api, q="9") == ["Anvar", "Botir"]
    assert await names(api, q="000") == []


async def test_search_answers_the_same_whether_the_walk_or_the_indexes_find_the_rows(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search first checks the next rows in id order, then asks the indexes: with a window
    of 3 rows (so the indexes answer nearly every query) every query, short, long, by number,
    by tag, and every page of it, finds what checking every row finds."""
    api = await env.client()
    people = ["Alisher", "Álvaro", "Руслан", "Zoë", "Dilnoza", "Qodir", "Sardor", "Al", "Ömer Qul", "Lola"]
    for i, name in enumerate(people):
        await add(api, name, f"+99893{3000000 + i * 37:07d}", tags=["vip"] if i % 3 == 0 else [])
    queries = [{"q": q} for q in ("q", "QO", "al", "ö", "l", "ali", "ол", "omer q", "zo", "xyz")]
    queries += [{"q": "3000"}, {"q": "33"}, {"tag": "vip"}, {"q": "l", "tag": "vip"}, {"tag": "none"}]

    async def pages(params: dict[str, str]) -> list[list[str]]:
        found, cursor = [], ""
        while True:
            status, body, _ = await api.get(
                "/v1/recipients", params={"limit": "2", "cursor": cursor, **params}
            )
            assert status == 200, body
            found.append([r["name"] for r in body["recipients"]])
            if body["next_cursor"] is None:
                return found
            cursor = body["next_cursor"]

    monkeypatch.setattr(store_recipients, "SEARCH_WALK_ROWS", 1_000_000)
    everything = [await pages(p) for p in queries]
    monkeypatch.setattr(store_recipients, "SEARCH_WALK_ROWS", 3)
    assert [await pages(p) for p in queries] == everything
    assert everything[0] == [["Qodir", "Ömer Qul"]]
    assert [n for page in everything[2] for n in page] == ["Alisher", "Álvaro", "Al"]


async def test_filters_and_pages(env: Env) -> None:
    """``tag`` and ``opted_out`` filter, combine with ``q``, and pages follow the cursor."""
    api = await env.client()
    for i in range(7):
        tags = ["vip"] if i % 2 == 0 else ["new"]
        await add(api, f"Client {i}", f"+99891{2000000 + i:07d}", tags=tags, opted_out=i == 4)
    assert await names(api, tag="vip") == ["Client 0", "Client 2", "Client 4", "Client 6"]
    assert await names(api, tag="vip", opted_out="false") == ["Client 0", "Client 2", "Client 6"]
    assert await names(api, opted_out="true") == ["Client 4"]
    assert await names(api, q="client 6", tag="vip") == ["Client 6"]
    assert await names(api, tag="none") == []
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        status, body, _ = await api.get("/v1/recipients", params={"limit": "3", "cursor": cursor})
        assert status == 200 and len(body["recipients"]) <= 3
        seen += [r["name"] for r in body["recipients"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert seen == [f"Client {i}" for i in range(7)]


# --- import ------------------------------------------------------------------------------------


async def test_import_reports_bad_rows_and_imports_the_rest(env: Env) -> None:
    """Good rows are imported (BOM, any column order, tags, locale, metadata columns), bad rows
    are listed by line and reason; importing again changes nothing, a changed row is updated."""
    api = await env.client()
    await add(api, "Old Name", "+998901111111", tags=["keep"], metadata={"city": "Bukhara", "level": 2})
    text = (
        "\ufeffPhone,Name,tags,locale,city\r\n"
        "+998901111111,New Name,,uz,Samarkand\r\n"
        "90 222 22 22,Dilnoza,vip; gold ;vip,ru,\r\n"
        "not a number,Bad Phone,,,\r\n"
        "+998903333333,,,,\r\n"
        "+998904444444,Too,many,fields,here,x\r\n"
        "\r\n"
        '+998905555555,"Quoted, name",,,Tashkent\r\n'
        "+998 90 222-22-22,Duplicate,,,\r\n"
        "+998906666666,Bad Locale,,!!,\r\n"
        "+998907777777,Bad\ttab,,,\r\n"
    )
    status, body = await import_csv(api, text)
    assert status == 200, body
    assert (body["imported"], body["updated"], body["unchanged"]) == (2, 1, 0)
    reasons = {e["line"]: e["reason"] for e in body["errors"]}
    assert sorted(reasons) == [4, 5, 6, 9, 10, 11] and body["errors_total"] == 6
    assert reasons[4].startswith("phone:") and "empty" in reasons[5] and "fields" in reasons[6]
    assert "line 3" in reasons[9] and "locale" in reasons[10] and "name" in reasons[11]
    status, found, _ = await api.get("/v1/recipients", params={"q": "901111111"})
    updated = found["recipients"][0]
    assert updated["name"] == "New Name" and updated["locale"] == "uz" and updated["tags"] == []
    assert updated["metadata"] == {"city": "Samarkand", "level": 2}
    status, found, _ = await api.get("/v1/recipients", params={"q": "dilnoza"})
    assert (
        found["recipients"][0]["tags"] == ["vip", "gold"]
        and found["recipients"][0]["phone"] == "+998902222222"
    )
    assert await names(api, q="quoted") == ["Quoted, name"]

    status, body = await import_csv(api, text)
    assert status == 200 and (body["imported"], body["updated"], body["unchanged"]) == (0, 0, 3)
    status, body = await import_csv(api, "name,phone\nDilnoza R,+998902222222\n")
    assert status == 200 and (body["imported"], body["updated"], body["unchanged"]) == (0, 1, 0)
    status, found, _ = await api.get("/v1/recipients", params={"q": "dilnoza"})
    assert found["recipients"][0]["tags"] == ["vip", "gold"]  # no tags column: tags kept


async def test_import_all_or_nothing_refuses_the_whole_file(env: Env) -> None:
    """With ``mode=all_or_nothing`` one bad row refuses the file and nothing is stored; a clean
    file is imported."""
    api = await env.client()
    bad = "name,phone\nGood,+998901234567\nBad,12\n"
    before = await env.counts()
    status, body = await import_csv(api, bad, mode="all_or_nothing")
    refused(status, body)
    details = body["error"]["details"]
    assert details["reason"] == "rows_refused" and details["errors"][0]["line"] == 3
    assert await env.counts() == before
    status, body = await import_csv(api, "name,phone\nGood,+998901234567\n", mode="all_or_nothing")
    assert status == 200 and body["imported"] == 1
    status, body = await import_csv(api, bad, mode="sometimes")
    refused(status, body)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfename,phone\n",
        b"name,phone\nAli,+998901234567\n\xc3\x28,+998901234568\n",
        b"name\nAli\n",
        b"name,phone,name\nA,+998901234567,B\n",
        b"name,phone,1city\nA,+998901234567,x\n",
        b"name,phone,phone\nA,+998901234567,+998901234567\n",
        b'{"name": "Ali", "phone": "+998901234567"}',
        b'name,phone\n"unterminated,+998901234567\n' + b"x" * 200_000,
    ],
    ids=["empty", "utf16", "bad-utf8", "no-phone", "name-twice", "bad-metadata-key", "phone-twice", "json",
         "huge-field"],
)  # fmt: skip
async def test_import_refuses_unusable_files(env: Env, data: bytes) -> None:
    """A file that is not UTF-8 CSV with a usable header is a validation_error; nothing stored."""
    api = await env.client()
    before = await env.counts()
    status, body = await import_csv(api, data)
    refused(status, body)
    assert await env.counts() == before


async def test_import_size_limit(databases: DatabaseFactory, session: aiohttp.ClientSession) -> None:
    """The import has its own body limit (RELAYGATE_MAX_IMPORT_BYTES), over the JSON one."""
    database_url = await databases.create()
    running = await start_gateway(database_url, max_import_bytes=4096, max_body_bytes=1024)
    try:
        _, token = await make_account(database_url, region="UZ")
        api = ApiClient(session, running.base_url, token)
        rows = "".join(f"Name {i},+99890{i:07d}\n" for i in range(100))
        status, body = await import_csv(api, "name,phone\n" + rows)  # ~2.3 KiB: over 1 KiB, fine
        assert status == 200 and body["imported"] == 100, body
        rows = "".join(f"Name {i},+99891{i:07d}\n" for i in range(300))
        status, body = await import_csv(api, "name,phone\n" + rows)
        refused(status, body, "payload_too_large")
        assert body["error"]["details"]["limit_bytes"] == 4096
    finally:
        await running.stop()


# --- lists -------------------------------------------------------------------------------------


async def test_lists_and_members(env: Env) -> None:
    """Lists hold directory entries: created with ids, grown by id or number (new numbers join
    the directory), paged, shrunk, renamed, deleted without touching the directory."""
    api = await env.client()
    a = await add(api, "Aziza", "+998901000001")
    b = await add(api, "Bekzod", "+998901000002")
    status, body, _ = await api.post(
        "/v1/recipient-lists", json={"name": "VIP", "recipient_ids": [a["id"], a["id"]]}
    )
    assert status == 201, body
    lst = body["list"]
    assert lst["id"].startswith("lst_") and lst["name"] == "VIP" and lst["size"] == 1
    members = f"/v1/recipient-lists/{lst['id']}/members"
    status, body, _ = await api.post(
        members, json={"recipient_ids": [a["id"], b["id"]], "phones": ["90 100 00 03", "+998901000002"]}
    )
    assert status == 200 and body["added"] == 2 and body["list"]["size"] == 3, body
    assert "" in await names(api, q="901000003")  # the new number joined the directory, unnamed

    pages: list[str] = []
    cursor = ""
    while True:
        status, body, _ = await api.get(members, params={"limit": "2", "cursor": cursor})
        assert status == 200
        pages += [m["phone"] for m in body["members"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert sorted(pages) == ["+998901000001", "+998901000002", "+998901000003"]

    status, body, _ = await api.request(
        "DELETE", members, json={"phones": ["+998901000003"], "recipient_ids": [a["id"]]}
    )
    assert status == 200 and body["removed"] == 2 and body["list"]["size"] == 1
    status, body, _ = await api.request("PATCH", f"/v1/recipient-lists/{lst['id']}", json={"name": "Gold"})
    assert status == 200 and body["list"]["name"] == "Gold" and body["list"]["size"] == 1
    await api.request("DELETE", f"/v1/recipients/{b['id']}")
    status, body, _ = await api.get(f"/v1/recipient-lists/{lst['id']}")
    assert status == 200 and body["list"]["size"] == 0  # a deleted recipient leaves its lists
    status, body, _ = await api.get("/v1/recipient-lists")
    assert status == 200 and [x["id"] for x in body["lists"]] == [lst["id"]]
    status, body, _ = await api.request("DELETE", f"/v1/recipient-lists/{lst['id']}")
    assert status == 200 and body == {"ok": True, "list_id": lst["id"], "deleted": True}
    status, body, _ = await api.get(f"/v1/recipient-lists/{lst['id']}")
    refused(status, body, "not_found")
    assert await names(api, q="aziza") == ["Aziza"]  # the directory keeps its entries


async def test_list_refuses_unknown_recipient_ids(env: Env) -> None:
    """A list cannot name ids that are not the account's; nothing is stored."""
    api = await env.client()
    before = await env.counts()
    status, body, _ = await api.post(
        "/v1/recipient-lists", json={"name": "x", "recipient_ids": ["rcp_01HV4Z8K2M3N4P5Q6R7S8T9V0W"]}
    )
    refused(status, body)
    assert body["error"]["details"]["reason"] == "unknown_recipients"
    assert await env.counts() == before


# --- opt-out -----------------------------------------------------------------------------------


async def test_opt_out_and_the_send_path_check(env: Env) -> None:
    """``opted_out`` is set by PATCH and read by is_opted_out; the send path's admission refuses
    with reason opted_out unless the message is transactional, also when many sends check at
    once (their lookups share one query, each gets its own answer)."""
    api = await env.client()
    r = await add(api, "Shahlo", "+998901230000")
    account_id = (await api.get("/v1/account"))[1]["account"]["id"]
    services = env.running.gateway.services
    assert services is not None
    caps = services.caps
    account = (await services.authenticator.authenticate(f"Bearer {api.token}")).account
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    assert pool is not None

    async def admit(number: str, *, opt_out: bool = True) -> None:
        async with caps.admit(account, number, opt_out=opt_out) as hold:
            hold.release()  # nothing is stored here

    try:
        assert not await is_opted_out(pool, account_id, "+998901230000")
        status, body, _ = await api.request("PATCH", f"/v1/recipients/{r['id']}", json={"opted_out": True})
        assert status == 200 and body["recipient"]["opted_out"] is True
        assert await is_opted_out(pool, account_id, "+998901230000")
        assert not await is_opted_out(pool, account_id, "+998901230001")
        assert not await is_opted_out(pool, "acc_other", "+998901230000")
        with pytest.raises(ApiError) as caught:
            await admit("+998901230000")
        assert caught.value.code == "validation_error" and caught.value.details["reason"] == "opted_out"
        await admit("+998901230000", opt_out=False)
        await admit("+998901230001")
        status, body, _ = await api.post("/v1/sms/send", json={"to": "+998901230000", "message": "hi"})
        assert status == 422 and body["error"]["details"]["reason"] == "opted_out", body
        sent = {"to": "+998901230000", "message": "code 1234", "transactional": True}
        status, body, _ = await api.post("/v1/sms/send", json=sent)
        assert status == 200, body
        numbers = [f"+99890123{i:04d}" for i in range(50)]  # +998901230000 among them
        queries = caps.reads.queries
        results = await asyncio.gather(*(admit(n) for n in numbers), return_exceptions=True)
        refused = [n for n, r in zip(numbers, results, strict=True) if isinstance(r, ApiError)]
        assert refused == ["+998901230000"], results
        assert caps.reads.queries - queries <= 2  # the first alone, then all the others together
        status, body, _ = await api.request("PATCH", f"/v1/recipients/{r['id']}", json={"opted_out": False})
        assert status == 200 and not await is_opted_out(pool, account_id, "+998901230000")
        await admit("+998901230000")
    finally:
        await pool.close()


# --- isolation and hostile input ---------------------------------------------------------------


async def test_another_accounts_ids_are_not_found_on_every_route(env: Env) -> None:
    """Account B can neither see nor change A's recipients and lists, by id or by search."""
    a, b = await env.client(), await env.client()
    r = await add(a, "Private Person", "+998909990000")
    status, body, _ = await a.post("/v1/recipient-lists", json={"name": "A's", "recipient_ids": [r["id"]]})
    lst = body["list"]
    before = await env.counts()
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/v1/recipients/{r['id']}", None),
        ("PATCH", f"/v1/recipients/{r['id']}", {"opted_out": True}),
        ("DELETE", f"/v1/recipients/{r['id']}", None),
        ("GET", f"/v1/recipient-lists/{lst['id']}", None),
        ("PATCH", f"/v1/recipient-lists/{lst['id']}", {"name": "mine"}),
        ("DELETE", f"/v1/recipient-lists/{lst['id']}", None),
        ("GET", f"/v1/recipient-lists/{lst['id']}/members", None),
        ("POST", f"/v1/recipient-lists/{lst['id']}/members", {"phones": ["+998909990001"]}),
        ("DELETE", f"/v1/recipient-lists/{lst['id']}/members", {"recipient_ids": [r["id"]]}),
    ]
    for method, path, payload in calls:
        status, body, _ = await b.request(method, path, json=payload)
        refused(status, body, "not_found")
    status, body, _ = await b.post("/v1/recipient-lists", json={"name": "B's", "recipient_ids": [r["id"]]})
    refused(status, body)
    assert await env.counts() == before
    assert await names(b, q="private") == [] and await names(b, q="90999") == [] and await names(b) == []
    status, body, _ = await b.get("/v1/recipient-lists")
    assert body["lists"] == []
    assert (await add(b, "Same Number", "+998909990000"))[
        "phone"
    ] == "+998909990000"  # no conflict across accounts
    assert await names(a, q="90999") == ["Private Person"]


BAD_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/recipients", {"name": f"A{NUL}", "phone": "+998901234567"}, "name"),
    ("POST", "/v1/recipients", {"name": "A\nB", "phone": "+998901234567"}, "name"),
    ("POST", "/v1/recipients", {"name": "   ", "phone": "+998901234567"}, "name"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+99890123456\u0000"}, "phone"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "12"}, "phone"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "tags": ["a;b"]}, "tags"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "tags": [" a"]}, "tags"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "tags": ["x" * 33]}, "tags"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "locale": "en\n"}, "locale"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "metadata": {"name": "x"}}, "metadata"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "metadata": {"a": {"b": 1}}}, "metadata"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "metadata": {"a": 1e300}}, "metadata"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "metadata": {"a": "x" * 200, "b": "x" * 200,
                                "c": "x" * 200, "d": "x" * 200, "e": "x" * 200}}, "metadata"),
    ("POST", "/v1/recipients", {"name": "A", "phone": "+998901234567", "extra": 1}, "extra"),
    ("PATCH", "/v1/recipients/{recipient_id}", {"phone": "nope"}, "phone"),
    ("PATCH", "/v1/recipients/{recipient_id}", {"opted_out": "yes"}, "opted_out"),
    ("PATCH", "/v1/recipients/{recipient_id}", {"metadata": {"k": f"v{NUL}"}}, "metadata"),
    ("POST", "/v1/recipient-lists", {"name": ""}, "name"),
    ("POST", "/v1/recipient-lists", {"name": "x", "recipient_ids": ["r"] * 1001}, "recipient_ids"),
    ("PATCH", "/v1/recipient-lists/{list_id}", {"name": f"x{NUL}"}, "name"),
    ("POST", "/v1/recipient-lists/{list_id}/members", {"phones": ["+998901234567", "bad"]}, "phones[1]"),
    ("DELETE", "/v1/recipient-lists/{list_id}/members", {"phones": [NUL]}, "phones"),
]  # fmt: skip


async def test_bad_bodies_are_refused_and_change_nothing(env: Env) -> None:
    """Every new body route refuses hostile or malformed fields with a validation_error naming
    the field; nothing is stored."""
    api = await env.client()
    r = await add(api, "Target", "+998901239999")
    status, body, _ = await api.post("/v1/recipient-lists", json={"name": "L", "recipient_ids": [r["id"]]})
    ids = {"recipient_id": r["id"], "list_id": body["list"]["id"]}
    before = await env.counts()
    for method, path, payload, field in BAD_BODIES:
        status, body, _ = await api.request(method, path.format(**ids), json=payload)
        refused(status, body)
        assert field in body["error"]["details"].get("fields", {}), (payload, body)
    assert await env.counts() == before
    status, body, _ = await api.get(f"/v1/recipients/{r['id']}")
    assert body["recipient"] == r


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/recipients", {"q": "x" * 101}),
        ("/v1/recipients", {"opted_out": "maybe"}),
        ("/v1/recipients", {"limit": "0"}),
        ("/v1/recipients", {"tag": ""}),
        ("/v1/recipients", {"q": f"a{NUL}"}),
        ("/v1/recipient-lists", {"limit": "201"}),
    ],
)
async def test_bad_queries_are_refused(env: Env, path: str, params: dict[str, str]) -> None:
    """Out-of-range or control-character query values are a 422."""
    api = await env.client()
    status, body, _ = await api.get(path, params=params)
    refused(status, body)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/recipients/nope",
        "/v1/recipients/rcp_%00",
        "/v1/recipient-lists/lst_x",
        "/v1/recipient-lists/x/members",
    ],
)
async def test_malformed_ids_are_not_found(env: Env, path: str) -> None:
    """An id of the wrong shape is not_found (or a 422 for control characters), never a 500."""
    api = await env.client()
    status, body, _ = await api.get(path)
    assert status in (404, 422) and body["ok"] is False


async def test_scopes_are_enforced(env: Env) -> None:
    """recipients.read can search but not write; other scopes can do neither."""
    _, token = await make_account(env.database_url, scopes=["recipients.read"])
    reader = ApiClient(env.session, env.running.base_url, token)
    assert (await reader.get("/v1/recipients"))[0] == 200
    status, body, _ = await reader.post("/v1/recipients", json={"name": "A", "phone": "+998901234567"})
    refused(status, body, "forbidden")
    status, body = await import_csv(reader, "name,phone\nA,+998901234567\n")
    refused(status, body, "forbidden")
    _, token = await make_account(env.database_url, scopes=["messages.send"])
    status, body, _ = await ApiClient(env.session, env.running.base_url, token).get("/v1/recipient-lists")
    refused(status, body, "forbidden")


async def test_single_send_to_an_opted_out_number(api: ApiClient) -> None:
    """An opted-out number refuses a plain send (reason opted_out, nothing queued) and takes a
    transactional one; OTP still goes."""
    status, created, _ = await api.post(
        "/v1/recipients", json={"name": "Optout Person", "phone": "+998901112233"}
    )
    assert status == 201, created
    rid = created["recipient"]["id"]
    assert (await api.request("PATCH", f"/v1/recipients/{rid}", json={"opted_out": True}))[0] == 200
    status, body, _ = await api.post("/v1/sms/send", json={"to": "+998 90 111 22 33", "message": "sale!"})
    assert status == 422 and body["error"]["details"]["reason"] == "opted_out", body
    status, listing, _ = await api.get("/v1/messages", params={"to": "+998901112233"})
    assert listing["messages"] == []
    status, body, _ = await api.post(
        "/v1/sms/send", json={"to": "+998901112233", "message": "your receipt", "transactional": True}
    )
    assert status == 200, body
    assert (await api.post("/v1/otp/send", json={"to": "+998901112233", "purpose": "login"}))[0] == 200
