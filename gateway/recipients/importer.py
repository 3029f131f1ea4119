"""CSV import into the directory: parse and check every row (pure, run off the event loop),
then write the good rows with one COPY into a temporary table and one upsert.

The file: UTF-8 with or without a BOM, a header row naming ``name`` and ``phone`` (any order,
any case), optionally ``tags`` (``;``-separated) and ``locale``; any other column is a metadata
key (``city`` → ``{city}`` in list messages) whose non-empty cells merge into the recipient's
metadata. A number already in the directory is updated (``updated``) unless nothing would
change (``unchanged``); a row that cannot be used is reported by line and reason, and in
``all_or_nothing`` mode stops the whole file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.recipients.directory import too_many_recipients
from gateway.recipients.model import (
    MAX_METADATA_BYTES,
    MAX_RECIPIENTS,
    metadata_key_problem,
    tag_problem,
)
from gateway.recipients.numbers import InvalidNumber, e164
from gateway.recipients.search import name_key, search_grams
from store import recipients as store
from store.database import Conn

__all__ = [
    "MAX_IMPORT_ROWS",
    "MAX_REPORTED_ERRORS",
    "CsvReader",
    "ImportMode",
    "ImportReport",
    "ParsedFile",
    "RowError",
    "import_csv",
    "import_file",
    "parse_csv",
    "refused_file",
    "write_rows",
]

MAX_IMPORT_ROWS = 200_000
"""Data rows in one file sent to the API (the CLI has no such limit)."""
MAX_REPORTED_ERRORS = 1_000
"""Bad rows listed in an answer (``errors_total`` counts them all)."""
MAX_METADATA_COLUMNS = 20
_LOCALE = re.compile(r"\A[A-Za-z0-9_-]{2,35}\Z")  # gateway.api.fields.Locale
_LABEL_FORBIDDEN = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}

_encode = msgspec.json.Encoder().encode

ImportMode = Literal["partial", "all_or_nothing"]


class RowError(msgspec.Struct, kw_only=True):
    """A row that was not imported: its line in the file (the header is line 1) and why."""

    line: int
    reason: str


ImportRow = tuple[str, str, str, list[str], str | None, str, str, str]
"""One row as COPY writes it: id, name, phone, tags, locale, metadata (JSON), name_key, and the
grams joined by GRAM_SEPARATOR."""
GRAM_SEPARATOR = "\x1f"
"""A control character: no name (a label) can hold it, so no gram either."""


@dataclass(slots=True)
class ParsedFile:
    """The rows of a file ready to write, and the rows that were refused."""

    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    has_tags: bool = False
    has_locale: bool = False

    def refuse(self, line: int, reason: str) -> None:
        """Record a bad row (the first MAX_REPORTED_ERRORS are listed)."""
        self.errors_total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line=line, reason=reason))


class ImportReport(msgspec.Struct, kw_only=True):
    """What an import did."""

    ok: bool = True
    imported: int
    """New recipients."""
    updated: int
    """Recipients already in the directory that changed."""
    unchanged: int
    """Rows that matched a recipient exactly."""
    errors: list[RowError]
    """Rows not imported (at most 1,000 listed)."""
    errors_total: int


def _file_error(message: str, **details: Any) -> ApiError:
    return ApiError("validation_error", message, {"reason": "invalid_csv", **details})


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _file_error("the file is not UTF-8", line=line) from None


def _header(names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Column index of each known column, and of each metadata column."""
    known: dict[str, int] = {}
    extra: dict[str, int] = {}
    for index, raw in enumerate(names):
        name = raw.strip()
        folded = name.lower()
        if folded in {"name", "phone", "tags", "locale"}:
            if folded in known:
                raise _file_error(f"the header names {folded!r} twice", line=1)
            known[folded] = index
            continue
        problem = metadata_key_problem(name)
        if problem is not None:
            raise _file_error(f"header column {name[:40]!r}: {problem}", line=1)
        if name in extra:
            raise _file_error(f"the header names {name!r} twice", line=1)
        extra[name] = index
    missing = [c for c in ("name", "phone") if c not in known]
    if missing:
        raise _file_error("the header row must name the columns name and phone", line=1, missing=missing)
    if len(extra) > MAX_METADATA_COLUMNS:
        raise _file_error(f"at most {MAX_METADATA_COLUMNS} metadata columns", line=1)
    return known, extra


class _RowChecker:
    """Checks rows of one file and shapes the good ones for COPY. Verdicts on tags and locales
    are remembered (a file repeats a few of them on every row); the NUL check runs once per file
    unless the file holds a NUL at all."""

    def __init__(self, known: dict[str, int], extra: dict[str, int], region: str | None, nul: bool) -> None:
        self._name = known["name"]
        self._phone = known["phone"]
        self._tags = known.get("tags")
        self._locale = known.get("locale")
        self._extra = list(extra.items())
        self._region = region
        self._nul = nul
        self._tag_problems: dict[str, str | None] = {}
        self._locale_ok: dict[str, bool] = {}

    def _tag_problem(self, tag: str) -> str | None:
        try:
            return self._tag_problems[tag]
        except KeyError:
            problem = tag_problem(tag)
            if len(self._tag_problems) < 10_000:
                self._tag_problems[tag] = problem
            return problem

    def _locale_good(self, locale: str) -> bool:
        good = self._locale_ok.get(locale)
        if good is None:
            good = _LOCALE.match(locale) is not None
            if len(self._locale_ok) < 10_000:
                self._locale_ok[locale] = good
        return good

    def row(self, cells: list[str], row_id: str) -> ImportRow | str:
        """The row to write (with id ``row_id``), or why it is refused."""
        if self._nul and any("\x00" in cell for cell in cells):
            return "contains the NUL character"
        name = cells[self._name].strip()
        if not name:
            return "name is empty"
        # every forbidden character is non-printable, so a printable name needs no closer look
        if len(name) > 100 or (not name.isprintable() and _LABEL_FORBIDDEN.intersection(name)):
            return "name must be one line of at most 100 characters"
        try:
            phone = e164(cells[self._phone], self._region)
        except InvalidNumber as exc:
            return f"phone: {exc}"
        tags: list[str] = []
        if self._tags is not None:
            raw_tags = cells[self._tags]
            if raw_tags:
                tags = list(dict.fromkeys(t.strip() for t in raw_tags.split(";") if t.strip()))
                if len(tags) > 20:
                    return "at most 20 tags"
                for tag in tags:
                    problem = self._tag_problem(tag)
                    if problem is not None:
                        return problem
        locale = cells[self._locale].strip() if self._locale is not None else ""
        if locale and not self._locale_good(locale):
            return "locale must be a language tag such as uz, pt-BR or en_US"
        encoded = b"{}"
        if self._extra:
            metadata = {}
            for column, index in self._extra:
                value = cells[index].strip()
                if value:
                    if len(value) > 200:
                        return "metadata values are at most 200 characters"
                    metadata[column] = value
            if metadata:
                encoded = _encode(metadata)
                if len(encoded) > MAX_METADATA_BYTES:
                    return f"metadata is at most {MAX_METADATA_BYTES} bytes of JSON"
        key = name_key(name)
        grams = GRAM_SEPARATOR.join(search_grams(key, phone))
        return (row_id, name, phone, tags, locale or None, encoded.decode(), key, grams)


def _chunk_ids() -> Callable[[int], str]:
    """Ids for one chunk of rows: ``rcp_`` and the first 19 characters of one new ULID (its
    time and 45 random bits), then a 7-digit sequence — the shape of any other id, without a
    ULID per row (list items get their ids the same way)."""
    base = new_id("rcp")[:23]
    return lambda n: f"{base}{n:07d}"


class CsvReader:
    """Reads a file chunk by chunk (each a CPU-only step, meant for a worker thread), checking
    every row and remembering the bad ones. The header is read at once: a problem with the file
    as a whole (not UTF-8, no usable header, malformed CSV, too many rows) is a validation_error,
    from the constructor or from :meth:`next_chunk`."""

    def __init__(self, data: bytes, region: str | None, *, max_rows: int | None = MAX_IMPORT_ROWS) -> None:
        self.total_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        self._reader = csv.reader(io.StringIO(_decode(data), newline=""))
        self._region = region
        self._max_rows = max_rows
        self.report = ParsedFile()
        """Errors so far and the columns the file has (``rows`` stays empty)."""
        self._seen: dict[str, int] = {}
        self._count = 0
        header = self._next_cells()
        if header is None:
            raise _file_error("the file is empty: it needs a header row naming name and phone")
        self._known, self._extra = _header(header)
        self._width = len(header)
        self._rows = _RowChecker(self._known, self._extra, region, nul=b"\x00" in data)
        self.report.has_tags, self.report.has_locale = "tags" in self._known, "locale" in self._known

    @property
    def line(self) -> int:
        """The last line read (the header is line 1)."""
        return self._reader.line_num

    def _next_cells(self) -> list[str] | None:
        try:
            return next(self._reader, None)
        except csv.Error as exc:
            raise _file_error(f"malformed CSV: {exc}", line=self._reader.line_num) from None

    def next_chunk(self, size: int) -> list[ImportRow]:
        """Up to ``size`` good rows; an empty list at the end of the file."""
        rows: list[ImportRow] = []
        ids = _chunk_ids()
        while len(rows) < size:
            cells = self._next_cells()
            if cells is None:
                break
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            self._count += 1
            line = self._reader.line_num
            if self._max_rows is not None and self._count > self._max_rows:
                raise _file_error(f"at most {self._max_rows} rows per import", line=line)
            if len(cells) != self._width:
                self.report.refuse(line, f"expected {self._width} fields, found {len(cells)}")
                continue
            row = self._rows.row(cells, ids(len(rows)))
            if isinstance(row, str):
                self.report.refuse(line, row)
                continue
            first = self._seen.setdefault(row[2], line)
            if first != line:
                self.report.refuse(line, f"the same number as line {first}")
                continue
            rows.append(row)
        return rows

    def next_chunk_at(self, size: int) -> tuple[list[ImportRow], int]:
        """:meth:`next_chunk` and the line it stopped at."""
        rows = self.next_chunk(size)
        return rows, self.line


def parse_csv(data: bytes, region: str | None, *, max_rows: int | None = MAX_IMPORT_ROWS) -> ParsedFile:
    """The whole file at once: every good row and every bad one."""
    reader = CsvReader(data, region, max_rows=max_rows)
    while chunk := reader.next_chunk(10_000):
        reader.report.rows.extend(chunk)
    return reader.report


async def write_rows(
    conn: Conn, account_id: str, parsed: ParsedFile, rows: list[ImportRow]
) -> tuple[int, int]:
    """Upsert ``rows`` (a slice of ``parsed.rows``) inside the caller's transaction;
    ``(imported, updated)``."""
    counts = await store.import_rows(
        conn, account_id=account_id, rows=rows, has_tags=parsed.has_tags, has_locale=parsed.has_locale
    )
    return counts.imported, counts.updated


async def check_ceiling(conn: Conn, account_id: str) -> None:
    """Refuse (and so roll back the caller's transaction) past the directory's ceiling."""
    if await store.count(conn, account_id=account_id) > MAX_RECIPIENTS:
        raise too_many_recipients()


def refused_file(parsed: ParsedFile) -> ApiError:
    """The all-or-nothing refusal: nothing was written."""
    return ApiError(
        "validation_error",
        f"{parsed.errors_total} rows cannot be imported; nothing was imported",
        {
            "reason": "rows_refused",
            "errors": msgspec.to_builtins(parsed.errors[:100]),
            "errors_total": parsed.errors_total,
        },
    )


IMPORT_CHUNK_ROWS = 10_000
ANALYZE_AFTER_ROWS = 10_000
"""An import that adds this many rows refreshes the planner's statistics right away, so that
searches plan well without waiting for autovacuum."""


async def import_file(
    conn: Conn,
    account_id: str,
    reader: CsvReader,
    *,
    all_or_nothing: bool,
    chunk_rows: int = IMPORT_CHUNK_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import what ``reader`` reads in one transaction, ``chunk_rows`` at a time: the next chunk
    is parsed in a worker thread while PostgreSQL upserts the current one. With
    ``all_or_nothing`` a bad row refuses the whole file (nothing is written); the account's
    ceiling is checked before commit. ``progress(line, total_lines)`` follows each chunk."""
    imported = updated = written = 0
    report = reader.report
    pending: asyncio.Future[tuple[list[ImportRow], int]] | None = None
    try:
        async with conn.transaction():
            pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk_at, chunk_rows))
            while True:
                rows, line = await pending
                if not rows:
                    break
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk_at, chunk_rows))
                if not (all_or_nothing and report.errors_total):
                    new, changed = await write_rows(conn, account_id, report, rows)
                    imported, updated, written = imported + new, updated + changed, written + len(rows)
                if progress is not None:
                    progress(line, reader.total_lines)
            pending = None
            if all_or_nothing and report.errors_total:
                raise refused_file(report)
            if imported:
                await check_ceiling(conn, account_id)
    finally:
        if pending is not None:  # a write failed while the next chunk was being parsed
            await asyncio.gather(pending, return_exceptions=True)
    if imported >= ANALYZE_AFTER_ROWS:
        await store.analyze_after_import(conn)
    return ImportReport(
        imported=imported,
        updated=updated,
        unchanged=written - imported - updated,
        errors=report.errors,
        errors_total=report.errors_total,
    )


async def import_csv(
    conn: Conn, account_id: str, region: str | None, data: bytes, mode: ImportMode
) -> ImportReport:
    """Import a file sent to the API (at most MAX_IMPORT_ROWS rows)."""
    reader = await asyncio.to_thread(CsvReader, data, region)
    return await import_file(conn, account_id, reader, all_or_nothing=mode == "all_or_nothing")
