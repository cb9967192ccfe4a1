"""The CSV writer of :mod:`modelfaucet.adapters.csvout`, spelled in PostgreSQL.

A report with a SQL path is formatted by the database and leaves it through
``COPY (SELECT line …) TO STDOUT (FORMAT binary)``: one text column per row that is the
whole CSV line, CRLF included, exactly as :func:`~modelfaucet.adapters.csvout.stream_csv`
would write it. Binary COPY hands each value over untouched (the text and CSV formats would
escape or quote it again), and :func:`copy_lines` strips the few framing bytes.

Each helper returns a SQL expression that is never NULL, the text of one cell:

- :func:`text_cell` — formula neutralising (:func:`~modelfaucet.adapters.csvout.neutralise`)
  then the quoting of ``csv.writer`` (``QUOTE_MINIMAL``: a cell holding ``,``, ``"``, CR or
  LF is quoted, inner quotes doubled). The characters a spreadsheet skips and the formula
  signs are taken from Python's own :mod:`unicodedata` at first use, so the SQL and the
  Python writer agree on every code point.
- :func:`int_cell`, :func:`usd_cell`, :func:`iso_cell` — ``str(int)``,
  :func:`~modelfaucet.domain.money.format_usd` and :func:`~modelfaucet.domain.timestamps.iso`.
  Their output is digits, ``-``, ``.``, ``:``, ``T`` and ``Z``: never quoted, and never a
  formula (a signed number is left as it is by the Python writer too).

Only for PostgreSQL with a UTF-8 database; SQLite keeps the Python writer.
"""

from __future__ import annotations

import struct
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from functools import cache

from ..csvout import DEFAULT_CHUNK_BYTES, FORMULA_SIGNS, SKIPPED_CATEGORIES

# Printable ASCII except the formula signs (= + - @): csvout's _SAFE_FIRST, by code point.
_SIGN_CODES = ", ".join(str(ord(sign)) for sign in sorted(FORMULA_SIGNS))
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BINARY_HEADER_BYTES = len(_BINARY_SIGNATURE) + 8  # flags, header-extension length (0)
_TUPLE_HEAD = struct.Struct("!hi")  # field count, value length
_TRAILER = b"\xff\xff"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ranges(codes: Iterable[int]) -> str:
    """A regex bracket body of the code points, as \\u/\\U escapes and ranges."""
    spans: list[list[int]] = []
    for code in sorted(codes):
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])

    def escape(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in spans)


# :func:`compute_formula_pattern` as it answers for the Unicode version of the key. Computing
# it walks every code point: about 0.5 s of CPU, which a process paid at its first report
# (B6 measured it in every export of 100k rows: about half of the in-process time).
# Each entry was computed by a Python of that Unicode version; tests/unit/test_csv_sql_pattern.py
# recomputes the running Python's entry.
_UNICODE_15 = (
    r"^([\t\r]|[\u0001-\u0020\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891"
    r"\u08e2\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff"
    r"\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-"
    r"\U0001d17a\U000e0001\U000e0020-\U000e007f]*[\u002b\u002d\u003d\u0040\u207a\u207c\u208a"
    r"\u208c\ufb29\ufe62-\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20])"
)
KNOWN_FORMULA_PATTERNS = {
    "14.0.0": (
        r"^([\t\r]|[\u0001-\u0020\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891"
        r"\u08e2\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff"
        r"\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-"
        r"\U0001d17a\U000e0001\U000e0020-\U000e007f]*[\u002b\u002d\u003d\u0040\u207a\u207c\u208a"
        r"\u208c\ufb29\ufe62-\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20])"
    ),
    # Unicode 15.0 adds format characters U+13439..U+1343F (Python 3.12.1 and 3.13.0 computed these).
    "15.0.0": _UNICODE_15,
    "15.1.0": _UNICODE_15,
}


@cache
def formula_pattern() -> str:
    """:func:`compute_formula_pattern`, from :data:`KNOWN_FORMULA_PATTERNS` when it has this
    Python's Unicode version (computed otherwise)."""
    known = KNOWN_FORMULA_PATTERNS.get(unicodedata.unidata_version)
    return known if known is not None else compute_formula_pattern()


def compute_formula_pattern() -> str:
    """The regex of a cell that :func:`csvout.neutralise` prefixes (the plain-number exception aside).

    ``^[\\t\\r]`` or: any run of skipped characters, then a character NFKC folds to a sign.
    The two sets are disjoint (a skipped character is skipped first), so the regex accepts
    exactly the cells whose first non-skipped character is a sign.
    """
    skipped: list[int] = []
    signs: list[int] = []
    for code in range(1, sys.maxunicode + 1):  # NUL cannot be stored in PostgreSQL text
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates cannot be stored either
        char = chr(code)
        if char.isspace() or unicodedata.category(char) in SKIPPED_CATEGORIES:
            skipped.append(code)
        elif unicodedata.normalize("NFKC", char) in FORMULA_SIGNS:
            signs.append(code)
    return f"^([\\t\\r]|[{_ranges(skipped)}]*[{_ranges(signs)}])"


def text_cell(expr: str) -> str:
    """A nullable text column as a neutralised, quoted CSV cell (NULL is an empty cell)."""
    first = f"ascii({expr})"
    neutralised = (
        f"CASE WHEN {first} BETWEEN 33 AND 126 AND {first} NOT IN ({_SIGN_CODES}) THEN {expr} "
        f"WHEN {expr} ~ {_literal(formula_pattern())} AND {expr} !~ '^-?[0-9]+(\\.[0-9]+)?$' "
        f"THEN '''' || {expr} ELSE {expr} END"
    )
    return (
        f"COALESCE(CASE WHEN {expr} ~ '[,\"\\r\\n]' "
        f"THEN '\"' || replace({neutralised}, '\"', '\"\"') || '\"' ELSE {neutralised} END, '')"
    )


def safe_texts(exprs: Sequence[str]) -> str:
    """A condition true when none of the text expressions needs neutralising or quoting.

    Every one starts with printable ASCII other than a formula sign (csvout's fast path)
    and none holds a comma, a quote, CR or LF: the row can be written as it is.
    """
    firsts = " AND ".join(
        f"ascii({expr}) BETWEEN 33 AND 126 AND ascii({expr}) NOT IN ({_SIGN_CODES})" for expr in exprs
    )
    return f"({firsts} AND concat({', '.join(exprs)}) !~ '[,\"\\r\\n]')"


def usd_cell(expr: str) -> str:
    """Integer 1e-8 USD units (BIGINT, or NUMERIC such as a SUM) as ``format_usd`` writes them.

    A product's scale is the sum of its factors' scales, so ``units * 0.00000001`` is exact
    with exactly 8 decimals, and the sign is ``-`` only below zero, as in Python.
    """
    return f"(({expr}) * 0.00000001)"


def iso_cell(expr: str) -> str:
    """A timestamptz as ``iso()``: UTC, microseconds (six digits) only when not zero, a Z.

    Relies on ``DateStyle`` ISO (:data:`SESSION_SETTINGS`): a timestamp's text is then
    ``YYYY-MM-DD HH:MM:SS`` with the fraction's trailing zeros dropped.
    """
    text = f"(({expr}) AT TIME ZONE 'UTC')::text"
    return f"(replace(CASE WHEN length({text}) = 19 THEN {text} ELSE rpad({text}, 26, '0') END, ' ', 'T') || 'Z')"


# Run in the report's transaction before its COPY (local: undone when the transaction ends).
# JIT off: a report's query costs more than ``jit_above_cost``, so PostgreSQL compiled its
# expressions, in the leader and in each parallel worker (EXPLAIN ANALYZE on 400k usage rows:
# 170 ms of JIT), and the row formatting did not win that back. usage.csv through
# stream_report, with and without JIT interleaved in one process (medians): 100k rows at
# 170k rows/s with JIT and 172k without; 400k rows at 146k and 156k.
SESSION_SETTINGS = "SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('jit', 'off', true)"


def line(cells: Sequence[str]) -> str:
    """The CSV line of the cells: comma-separated, CRLF-terminated; a NULL cell is empty."""
    return "concat(" + ", ',', ".join(cells) + ", E'\\r\\n')"


def fast_or_slow_line(cells: Sequence[str], texts: Sequence[str]) -> str:
    """The line of ``cells``, where each of ``texts`` is a text column written through
    :func:`text_cell` — unless the whole row passes :func:`safe_texts`, when they are
    written as they are (the common case, and much cheaper)."""
    slow = [text_cell(cell) if cell in texts else cell for cell in cells]
    return f"CASE WHEN {safe_texts(texts)} THEN {line(cells)} ELSE {line(slow)} END"


def copy_lines(messages: Iterable[bytes | memoryview], *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
    """Chunks of the CSV lines carried by a one-column binary COPY, one message per row.

    PostgreSQL sends the file header with the first row and the trailer on its own; every
    row is one message (field count 1, value length, value).
    """
    pending: list[bytes | memoryview] = []
    size = 0
    first = True
    unpack = _TUPLE_HEAD.unpack_from
    for message in messages:
        # psycopg hands out a memoryview per row that stays valid: kept as is, no copy until
        # the join of a whole chunk.
        data = memoryview(message)
        if first:
            # The file header comes with the first row (or with the trailer of an empty result).
            if data[: len(_BINARY_SIGNATURE)] != _BINARY_SIGNATURE:
                raise ValueError("not a binary COPY stream")
            data = data[_BINARY_HEADER_BYTES:]
            first = False
        if len(data) <= 2:
            if data in (_TRAILER, b""):
                continue  # the stream ends after the trailer; the caller's COPY is drained to its end
            raise ValueError("a binary COPY row is not one non-null text value")
        fields, length = unpack(data)
        if fields != 1 or length < 0 or 6 + length != len(data):
            raise ValueError("a binary COPY row is not one non-null text value")
        pending.append(data[6:])
        size += length
        if size >= chunk_bytes:
            yield b"".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield b"".join(pending)
