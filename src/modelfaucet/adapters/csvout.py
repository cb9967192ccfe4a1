"""The one CSV writer: every report goes through :func:`stream_csv`.

It streams: rows come in as an iterator of already-formatted cells and leave as an
iterator of UTF-8 chunks of about ``chunk_bytes``, so a report of millions of rows is
written in constant memory. The header row is always first. Lines end with CRLF
(RFC 4180) and cells are quoted only when they need it.

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return as a formula — also after leading whitespace or invisible
characters it skips (space, LF, VT, FF, U+200B zero-width space, U+FEFF, U+200C/D, U+2060
and every other control or format character), and also with a compatibility form of those
signs (full-width ``＝＋－＠``, small ``﹦﹢﹣``: whatever NFKC folds to one of them). Such
a cell is neutralised by prefixing a single quote (``'=HYPERLINK(...)``), which spreadsheets
display as text. One exception, on purpose: a cell that is *exactly* a signed decimal
number (``-2.50000000``, ``-3``) is left as it is, because a spreadsheet reads it as a
number, never as a formula, and mangling it would corrupt a money column (report amounts
are non-negative today, but a delta column may not be). ``-1+2`` or ``-2.5e3`` are not
plain numbers and are neutralised.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

Cell = str | int | None

FORMULA_SIGNS = frozenset("=+-@")
# A cell starting with one of these is a formula whatever follows.
ALWAYS_FORMULA_FIRST = frozenset("\t\r")
# Printable ASCII that cannot start a formula: the fast path of every cell.
_SAFE_FIRST = frozenset(chr(code) for code in range(0x21, 0x7F)) - FORMULA_SIGNS
# Characters a spreadsheet may skip before it looks for a formula sign.
SKIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
DEFAULT_CHUNK_BYTES = 64 * 1024


def neutralise(value: Cell) -> str:
    """The text of one cell, safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("a CSV cell is text or an integer, not a boolean")
    if isinstance(value, int):
        return str(value)
    if not value or value[0] in _SAFE_FIRST or _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value if _starts_a_formula(value) else value


def _starts_a_formula(text: str) -> bool:
    if text[0] in ALWAYS_FORMULA_FIRST:
        return True
    for char in text:
        if char.isspace() or unicodedata.category(char) in SKIPPED_CATEGORIES:
            continue
        return unicodedata.normalize("NFKC", char) in FORMULA_SIGNS
    return False


def stream_csv(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[bytes]:
    """Yield UTF-8 chunks of a CSV document: the header row, then every row of ``rows``.

    Rows are pulled lazily; at most about ``chunk_bytes`` of text is buffered.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(name) for name in header])
    width = len(header)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a CSV row has {len(row)} cells, the header has {width}")
        # Fast path of neutralise(): ints and text starting with safe printable ASCII pass as is.
        writer.writerow(
            [
                cell
                if (type(cell) is str and (not cell or cell[0] in _SAFE_FIRST)) or type(cell) is int
                else neutralise(cell)
                for cell in row
            ]
        )
        if buffer.tell() >= chunk_bytes:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate(0)
    tail = buffer.getvalue()
    if tail:
        yield tail.encode("utf-8")


def header_bytes(header: Sequence[str]) -> bytes:
    """The header line alone, exactly as :func:`stream_csv` starts a document."""
    return b"".join(stream_csv(header, ()))


def write_csv(out: BinaryIO, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> int:
    """Write a CSV document to a binary file object; return the number of data rows."""
    counted = _Counter(rows)
    for chunk in stream_csv(header, counted):
        out.write(chunk)
    return counted.count


class _Counter:
    """Counts the rows an iterator hands out."""

    def __init__(self, rows: Iterable[Sequence[Cell]]) -> None:
        self._rows = iter(rows)
        self.count = 0

    def __iter__(self) -> Iterator[Sequence[Cell]]:
        for row in self._rows:
            self.count += 1
            yield row
