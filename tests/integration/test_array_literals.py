"""The hot set-based statements pass their arrays as one literal string each (issue 16: a
list parameter cost psycopg about 450 µs of CPU per 64 ids). The literal must carry any
text exactly, and integers over the whole BIGINT range, or a wallet id or a delta would be
silently changed on its way into ``unnest``."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from modelfaucet.adapters.db.bulk import int_array, text_array
from modelfaucet.services.context import ServiceContext

AWKWARD = ["plain", 'a "quoted" one', "back\\slash\\", "com,ma", "{brace}", " spaced ", "NULL", "", "ünïcode", "a'b"]
BIGINTS = [0, -1, 1, 9_223_372_036_854_775_807, -9_223_372_036_854_775_808]


def test_text_and_int_arrays_arrive_exactly(ctx: ServiceContext) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("array literals are PostgreSQL's")
    with ctx.db.engine.connect() as conn:
        texts = conn.execute(
            text("SELECT v FROM unnest(CAST(:values AS VARCHAR[])) WITH ORDINALITY AS t(v, n) ORDER BY n"),
            {"values": text_array(AWKWARD)},
        ).scalars()
        numbers = conn.execute(
            text("SELECT v FROM unnest(CAST(:values AS BIGINT[])) WITH ORDINALITY AS t(v, n) ORDER BY n"),
            {"values": int_array(BIGINTS)},
        ).scalars()
        empty = conn.execute(text("SELECT cardinality(CAST(:values AS VARCHAR[]))"), {"values": text_array([])})
        assert list(texts) == AWKWARD
        assert list(numbers) == BIGINTS
        assert empty.scalar_one() == 0


def test_the_literals_are_plain_strings() -> None:
    assert text_array(["a", 'b"c', "d\\e"]) == '{"a","b\\"c","d\\\\e"}'
    assert int_array([3, -4]) == "{3,-4}"
    assert text_array([]) == "{}"
