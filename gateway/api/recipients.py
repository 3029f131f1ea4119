"""``/v1/recipients`` (the directory and its CSV import) and ``/v1/recipient-lists``. Scopes
``recipients.read`` and ``recipients.write``. The rules live in :mod:`gateway.recipients`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from gateway.api.common import PageQuery, page
from gateway.api.fields import Locale
from gateway.api.routing import Call
from gateway.bodies import read_body
from gateway.errors import ApiError
from gateway.ids import has_prefix
from gateway.recipients import directory, lists
from gateway.recipients.importer import ImportMode, ImportReport, RowError, import_csv
from gateway.recipients.lists import RecipientList
from gateway.recipients.model import Metadata, Name, Recipient, Tags, metadata_problem
from gateway.recipients.numbers import InvalidNumber, e164

__all__ = [
    "ImportQuery",
    "ImportReport",
    "ListCreate",
    "ListUpdate",
    "MembersChange",
    "RecipientCreate",
    "RecipientSearch",
    "RecipientUpdate",
    "add_members",
    "create",
    "create_list",
    "delete",
    "delete_list",
    "examples",
    "get",
    "get_list",
    "import_file",
    "list_lists",
    "list_members",
    "remove_members",
    "search",
    "update",
    "update_list",
]

RecipientIds = Annotated[list[Annotated[str, msgspec.Meta(max_length=80)]], msgspec.Meta(max_length=1000)]
Phones = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]], msgspec.Meta(max_length=1000)
]
ListName = Name


class RecipientCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/recipients``."""

    name: Name
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    """Any format; national numbers are read in the account's default region."""
    tags: Tags = msgspec.field(default_factory=list)
    locale: Locale | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    opted_out: bool = False


class RecipientUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/recipients/{id}``; absent fields stay as they are (``locale: null``
    clears it; ``tags`` and ``metadata`` replace the old ones)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    locale: Locale | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET
    opted_out: bool | msgspec.UnsetType = msgspec.UNSET


class RecipientResponse(msgspec.Struct, kw_only=True):
    """One recipient."""

    ok: bool = True
    recipient: Recipient


class RecipientPage(msgspec.Struct, kw_only=True):
    """A page of recipients in id order."""

    ok: bool = True
    recipients: list[Recipient]
    next_cursor: str | None


class RecipientDeleted(msgspec.Struct, kw_only=True):
    """The recipient is gone from the directory and from every list."""

    ok: bool = True
    recipient_id: str
    deleted: bool = True


class RecipientSearch(PageQuery, kw_only=True):
    """Filters of ``GET /v1/recipients``."""

    q: Annotated[str, msgspec.Meta(max_length=100)] = ""
    """Substring of the name (case and accents ignored) or, when only digits and ``+-(). ``,
    of the number's digits."""
    tag: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    opted_out: bool | None = None


class ImportQuery(msgspec.Struct, kw_only=True):
    """``?mode=``: ``partial`` imports the good rows and lists the bad ones; ``all_or_nothing``
    refuses the whole file if any row is bad."""

    mode: ImportMode = "partial"


class ListCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/recipient-lists``."""

    name: ListName
    recipient_ids: RecipientIds = msgspec.field(default_factory=list)


class ListUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/recipient-lists/{id}``."""

    name: ListName


class MembersChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST`` and ``DELETE /v1/recipient-lists/{id}/members``: directory ids and/or
    numbers (added to the directory when new, on POST)."""

    recipient_ids: RecipientIds = msgspec.field(default_factory=list)
    phones: Phones = msgspec.field(default_factory=list)


class ListResponse(msgspec.Struct, kw_only=True):
    """One list."""

    ok: bool = True
    list: RecipientList


class ListPage(msgspec.Struct, kw_only=True):
    """A page of the account's lists in id order."""

    ok: bool = True
    lists: list[RecipientList]
    next_cursor: str | None


class ListDeleted(msgspec.Struct, kw_only=True):
    """The list is gone; its recipients stay in the directory."""

    ok: bool = True
    list_id: str
    deleted: bool = True


class MembersChanged(msgspec.Struct, kw_only=True):
    """The list after the change and how many members it gained (``added``) or lost
    (``removed``)."""

    ok: bool = True
    list: RecipientList
    added: int = 0
    removed: int = 0


class MemberPage(msgspec.Struct, kw_only=True):
    """A page of a list's members in recipient id order."""

    ok: bool = True
    members: list[Recipient]
    next_cursor: str | None


def examples(when: datetime) -> dict[type[Any], Any]:
    """Example instances of this module's request and answer types, for the OpenAPI document."""
    recipient = Recipient(
        id="rcp_01HV4Z8K2M3N4P5Q6R7S8T9V0W",
        name="Alisher Navoiy",
        phone="+998901234567",
        tags=["vip"],
        locale="uz",
        metadata={"city": "Tashkent"},
        opted_out=False,
        created_at=when,
        updated_at=when,
    )
    lst = RecipientList(
        id="lst_01HV4Z8K2M3N4P5Q6R7S8T9V0X", name="VIP", size=120, created_at=when, updated_at=when
    )
    return {
        RecipientCreate: RecipientCreate(
            name="Alisher Navoiy",
            phone="+998901234567",
            tags=["vip"],
            locale="uz",
            metadata={"city": "Tashkent"},
        ),
        RecipientUpdate: RecipientUpdate(opted_out=True),
        RecipientResponse: RecipientResponse(recipient=recipient),
        RecipientPage: RecipientPage(recipients=[recipient], next_cursor=None),
        RecipientDeleted: RecipientDeleted(recipient_id=recipient.id),
        ImportReport: ImportReport(
            imported=98,
            updated=1,
            unchanged=0,
            errors=[RowError(line=4, reason="phone: not a valid phone number")],
            errors_total=1,
        ),
        ListCreate: ListCreate(name="VIP", recipient_ids=[recipient.id]),
        ListUpdate: ListUpdate(name="VIP customers"),
        ListResponse: ListResponse(list=lst),
        ListPage: ListPage(lists=[lst], next_cursor=None),
        ListDeleted: ListDeleted(list_id=lst.id),
        MembersChange: MembersChange(recipient_ids=[recipient.id], phones=["+998907654321"]),
        MembersChanged: MembersChanged(list=lst, added=2),
        MemberPage: MemberPage(members=[recipient], next_cursor=None),
    }


def _invalid(field: str, reason: str) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {field: reason}})


def _phone(call: Call[Any, Any], raw: str, field: str = "phone") -> str:
    assert call.principal is not None
    try:
        return e164(raw, call.principal.account.default_region)
    except InvalidNumber as exc:
        raise _invalid(field, str(exc)) from None


def _check_metadata(metadata: dict[str, Any]) -> None:
    problem = metadata_problem(metadata)
    if problem is not None:
        raise _invalid("metadata", problem)


def _blank_name(name: str) -> None:
    if not name.strip():
        raise _invalid("name", "must not be blank")


def _recipient_id(call: Call[Any, Any]) -> str:
    value = call.path["recipient_id"]
    if not has_prefix(value, "rcp"):
        raise ApiError("not_found", "no such recipient", {"recipient_id": value[:64]})
    return value


def _list_id(call: Call[Any, Any]) -> str:
    value = call.path["list_id"]
    if not has_prefix(value, "lst"):
        raise ApiError("not_found", "no such list", {"list_id": value[:64]})
    return value


# --- the directory ---------------------------------------------------------------------------


async def create(call: Call[RecipientCreate, None]) -> RecipientResponse:
    """Add a recipient; 409 ``conflict`` with ``details.recipient_id`` when the number is
    already in the directory."""
    spec = call.body
    _blank_name(spec.name)
    _check_metadata(spec.metadata)
    recipient = await directory.create_recipient(
        call.services.pool,
        call.account_id,
        name=spec.name.strip(),
        phone=_phone(call, spec.phone),
        tags=spec.tags,
        locale=spec.locale,
        metadata=spec.metadata,
        opted_out=spec.opted_out,
    )
    return RecipientResponse(recipient=recipient)


async def search(call: Call[None, RecipientSearch]) -> RecipientPage:
    """Search the directory by name or number, tag and opt-out, in id order."""
    query = call.query
    found = await directory.search_recipients(
        call.services.pool,
        call.account_id,
        query=query.q,
        tag=query.tag,
        opted_out=query.opted_out,
        cursor=query.cursor,
        limit=query.limit + 1,
    )
    items, next_cursor = page(found, query.limit, lambda r: r, lambda r: r.id)
    return RecipientPage(recipients=items, next_cursor=next_cursor)


async def get(call: Call[None, None]) -> RecipientResponse:
    """One recipient."""
    recipient = await directory.get_recipient(call.services.pool, call.account_id, _recipient_id(call))
    if recipient is None:
        raise ApiError("not_found", "no such recipient")
    return RecipientResponse(recipient=recipient)


async def update(call: Call[RecipientUpdate, None]) -> RecipientResponse:
    """Change a recipient (``opted_out`` included); 409 when the new number is taken."""
    recipient_id = _recipient_id(call)
    spec = call.body
    changes: dict[str, Any] = {
        f: getattr(spec, f) for f in spec.__struct_fields__ if getattr(spec, f) is not msgspec.UNSET
    }
    if "name" in changes:
        _blank_name(changes["name"])
        changes["name"] = changes["name"].strip()
    if "phone" in changes:
        changes["phone"] = _phone(call, changes["phone"])
    if "metadata" in changes:
        _check_metadata(changes["metadata"])
    async with call.services.pool.acquire() as conn:
        recipient = await directory.update_recipient(conn, call.account_id, recipient_id, changes)
    if recipient is None:
        raise ApiError("not_found", "no such recipient")
    return RecipientResponse(recipient=recipient)


async def delete(call: Call[None, None]) -> RecipientDeleted:
    """Remove a recipient from the directory and from every list."""
    recipient_id = _recipient_id(call)
    if not await directory.delete_recipient(call.services.pool, call.account_id, recipient_id):
        raise ApiError("not_found", "no such recipient")
    return RecipientDeleted(recipient_id=recipient_id)


async def import_file(call: Call[None, ImportQuery]) -> ImportReport:
    """Import a CSV file (``Content-Type: text/csv``; header row ``name,phone[,tags][,locale]``
    plus metadata columns; at most ``RELAYGATE_MAX_IMPORT_BYTES``, 20 MiB by default, and
    200,000 rows). Numbers already in the directory are updated."""
    assert call.principal is not None
    data = await read_body(call.request, call.services.settings.max_import_bytes)
    async with call.services.pool.acquire() as conn:
        return await import_csv(
            conn, call.account_id, call.principal.account.default_region, data, call.query.mode
        )


# --- lists -----------------------------------------------------------------------------------


async def create_list(call: Call[ListCreate, None]) -> ListResponse:
    """Create a list, optionally with members from the directory."""
    _blank_name(call.body.name)
    async with call.services.pool.acquire() as conn:
        created = await lists.create_list(
            conn, call.account_id, call.body.name.strip(), call.body.recipient_ids
        )
    return ListResponse(list=created)


async def list_lists(call: Call[None, PageQuery]) -> ListPage:
    """The account's lists with their sizes."""
    query = call.query
    rows = await lists.list_lists(call.services.pool, call.account_id, query.cursor, query.limit + 1)
    items, next_cursor = page(rows, query.limit, lambda r: r, lambda r: r.id)
    return ListPage(lists=items, next_cursor=next_cursor)


async def get_list(call: Call[None, None]) -> ListResponse:
    """One list."""
    found = await lists.get_list(call.services.pool, call.account_id, _list_id(call))
    if found is None:
        raise ApiError("not_found", "no such list")
    return ListResponse(list=found)


async def update_list(call: Call[ListUpdate, None]) -> ListResponse:
    """Rename a list."""
    list_id = _list_id(call)
    _blank_name(call.body.name)
    renamed = await lists.rename_list(call.services.pool, call.account_id, list_id, call.body.name.strip())
    if renamed is None:
        raise ApiError("not_found", "no such list")
    return ListResponse(list=renamed)


async def delete_list(call: Call[None, None]) -> ListDeleted:
    """Delete a list; its recipients stay in the directory."""
    list_id = _list_id(call)
    if not await lists.delete_list(call.services.pool, call.account_id, list_id):
        raise ApiError("not_found", "no such list")
    return ListDeleted(list_id=list_id)


def _phones(call: Call[MembersChange, None]) -> list[str]:
    return [_phone(call, p, f"phones[{i}]") for i, p in enumerate(call.body.phones)]


async def add_members(call: Call[MembersChange, None]) -> MembersChanged:
    """Add recipients by id and/or by number (numbers not in the directory join it)."""
    list_id = _list_id(call)
    phones = _phones(call)
    async with call.services.pool.acquire() as conn:
        result = await lists.add_members(conn, call.account_id, list_id, call.body.recipient_ids, phones)
    if result is None:
        raise ApiError("not_found", "no such list")
    return MembersChanged(list=result[0], added=result[1])


async def remove_members(call: Call[MembersChange, None]) -> MembersChanged:
    """Take recipients out of the list by id and/or number (they stay in the directory)."""
    list_id = _list_id(call)
    phones = _phones(call)
    async with call.services.pool.acquire() as conn:
        result = await lists.remove_members(conn, call.account_id, list_id, call.body.recipient_ids, phones)
    if result is None:
        raise ApiError("not_found", "no such list")
    return MembersChanged(list=result[0], removed=result[1])


async def list_members(call: Call[None, PageQuery]) -> MemberPage:
    """A list's members, in recipient id order."""
    list_id = _list_id(call)
    pool = call.services.pool
    if await lists.get_list(pool, call.account_id, list_id) is None:
        raise ApiError("not_found", "no such list")
    query = call.query
    rows = await lists.list_members(pool, list_id, query.cursor, query.limit + 1)
    items, next_cursor = page(rows, query.limit, lambda r: r, lambda r: r.id)
    return MemberPage(members=items, next_cursor=next_cursor)
