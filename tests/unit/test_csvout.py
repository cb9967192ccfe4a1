"""The one CSV writer: header first, streaming, formula-looking cells neutralised."""

from __future__ import annotations

import csv
import io

import pytest

from modelfaucet.adapters.csvout import neutralise, stream_csv, write_csv


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("mock-small", "mock-small"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-2.50000000", "-2.50000000"),
        ("-3", "-3"),
        ("-2.5e3", "'-2.5e3"),
        ("2.50000000", "2.50000000"),
        ("", ""),
        (None, ""),
        (1200, "1200"),
        ("a=b", "a=b"),
    ],
)
def test_neutralise_prefixes_formula_looking_cells_with_a_quote(cell: str | int | None, expected: str) -> None:
    assert neutralise(cell) == expected


# A formula sign hidden behind what a spreadsheet skips, or written in a compatibility form.
HIDDEN_FORMULAS = [
    (" =1+1", "space"),
    ("  @SUM(A1)", "two spaces"),
    ("\n=cmd", "line feed"),
    ("\x0b+1", "vertical tab"),
    ("\x0c-1+2", "form feed"),
    ("\u200b=HYPERLINK(1)", "zero-width space"),
    ("\ufeff=1", "byte-order mark"),
    ("\u200c+1", "zero-width non-joiner"),
    ("\u200d-1+2", "zero-width joiner"),
    ("\u2060@x", "word joiner"),
    ("\u00a0=1", "no-break space"),
    ("\u3000=1", "ideographic space"),
    ("\u202e=1", "right-to-left override"),
    ("\x00=1", "NUL"),
    (" \u200b\n=1", "several skipped characters"),
    ("＝1+1", "full-width equals"),
    ("＋1", "full-width plus"),
    ("－1+2", "full-width hyphen-minus"),
    ("＠SUM(A1)", "full-width commercial at"),
    ("﹦1", "small equals"),
    ("\u200b＝1", "zero-width space then full-width equals"),
    (" -2.5", "a number after a space is not exactly a number"),
]


@pytest.mark.parametrize(("cell", "why"), HIDDEN_FORMULAS, ids=[row[1] for row in HIDDEN_FORMULAS])
def test_a_formula_behind_skipped_characters_or_in_full_width_is_neutralised(cell: str, why: str) -> None:
    assert neutralise(cell) == "'" + cell
    [[written]] = list(csv.reader(io.StringIO(b"".join(stream_csv(["c"], [[cell]])).decode())))[1:]
    assert written == "'" + cell


@pytest.mark.parametrize(
    "cell",
    [" plain", "\u200bplain", "  ", "\u200b", "計費", "é=1", "a-b", "x@y", "−1", "½", "１２"],
)
def test_text_that_cannot_start_a_formula_is_left_alone(cell: str) -> None:
    assert neutralise(cell) == cell


def test_booleans_are_not_cells() -> None:
    with pytest.raises(TypeError):
        neutralise(True)  # type: ignore[arg-type]


def test_stream_csv_writes_the_header_first_and_round_trips() -> None:
    rows = [["a,b", 1, None], ['quote"d', 2, "=cmd()"]]
    text = b"".join(stream_csv(["x", "y", "z"], rows)).decode("utf-8")
    assert text.startswith("x,y,z\r\n")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [["x", "y", "z"], ["a,b", "1", ""], ['quote"d', "2", "'=cmd()"]]


def test_stream_csv_of_no_rows_is_just_the_header() -> None:
    assert b"".join(stream_csv(["a", "b"], [])) == b"a,b\r\n"


def test_stream_csv_yields_bounded_chunks_lazily() -> None:
    pulled = 0

    def rows() -> object:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield [str(i), "x" * 50]

    chunks = stream_csv(["i", "pad"], rows(), chunk_bytes=4096)  # type: ignore[arg-type]
    first = next(chunks)
    assert len(first) < 4096 + 200
    assert pulled < 200  # only what the first chunk needed was pulled
    rest = b"".join(chunks)
    assert (first + rest).count(b"\r\n") == 10_001


def test_stream_csv_refuses_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="cells"):
        b"".join(stream_csv(["a", "b"], [["only-one"]]))


def test_write_csv_counts_data_rows() -> None:
    out = io.BytesIO()
    assert write_csv(out, ["a"], [["1"], ["2"]]) == 2
    assert out.getvalue() == b"a\r\n1\r\n2\r\n"


def test_non_ascii_text_is_utf8() -> None:
    assert b"".join(stream_csv(["name"], [["计费"]])) == "name\r\n计费\r\n".encode()
