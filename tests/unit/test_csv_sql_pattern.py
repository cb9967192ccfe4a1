"""The SQL reports' formula pattern is remembered per Unicode version, not recomputed.

:func:`csv_sql.compute_formula_pattern` walks every code point (about half a second): a
process used to pay that at its first CSV report. The remembered pattern must be exactly
what the computation answers for the running Python, and a Python whose Unicode version is
not remembered must still get a computed one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import pytest

from modelfaucet.adapters.db import csv_sql


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    csv_sql.formula_pattern.cache_clear()
    yield
    csv_sql.formula_pattern.cache_clear()


def test_the_remembered_pattern_is_what_this_python_computes() -> None:
    version = unicodedata.unidata_version
    if version not in csv_sql.KNOWN_FORMULA_PATTERNS:
        pytest.skip(f"no pattern remembered for Unicode {version}: it is computed (next test)")
    assert csv_sql.KNOWN_FORMULA_PATTERNS[version] == csv_sql.compute_formula_pattern()


def test_a_remembered_version_does_not_walk_unicode(monkeypatch: pytest.MonkeyPatch) -> None:
    def walk() -> str:
        raise AssertionError("computed although remembered")

    monkeypatch.setattr(csv_sql, "compute_formula_pattern", walk)
    monkeypatch.setitem(csv_sql.KNOWN_FORMULA_PATTERNS, unicodedata.unidata_version, "^remembered$")
    assert csv_sql.formula_pattern() == "^remembered$"


def test_an_unknown_version_is_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_sql.unicodedata, "unidata_version", "0.0.0-test")
    monkeypatch.setattr(csv_sql, "compute_formula_pattern", lambda: "^computed$")
    assert csv_sql.formula_pattern() == "^computed$"


def test_every_remembered_pattern_is_a_well_formed_bracket_regex() -> None:
    for version, pattern in csv_sql.KNOWN_FORMULA_PATTERNS.items():
        assert pattern.isascii(), version
        assert pattern.startswith(r"^([\t\r]|[") and pattern.endswith("])"), version
        re.compile(pattern)  # the same escapes as PostgreSQL's: \uXXXX and \UXXXXXXXX
