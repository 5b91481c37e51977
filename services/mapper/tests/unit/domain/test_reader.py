"""The shared reader: each field read gives a value or an issue naming it, never an exception."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mapper.domain.reader import Reader, country_code, optional_text


def rules(r: Reader) -> list[tuple[str, str]]:
    return [(i.field, i.rule) for i in r.issues]


def test_decimals_are_exact_and_sane() -> None:
    r = Reader()
    doc = {"a": "0.10", "b": 0.1, "c": "x", "d": "1e12", "e": None}
    assert r.decimal(doc, "a", "A") == Decimal("0.10")
    assert r.decimal(doc, "b", "B") == Decimal("0.1")  # str(float), never the binary value
    assert r.decimal(doc, "c", "C") == 0
    assert r.decimal(doc, "d", "D") == 0
    assert r.decimal(doc, "e", "E", default=Decimal(7)) == 7
    assert r.decimal(doc, "e", "E") == 0
    assert rules(r) == [("C", "NF-NUMBER"), ("D", "NF-NUMBER"), ("E", "NF-REQUIRED")]


def test_dates_and_date_times() -> None:
    r = Reader()
    doc = {"d": "2025-03-01", "t": "2025-03-01T00:00:00", "z": "2025-03-01T23:00:00Z", "x": "1/3"}
    assert r.date(doc, "d", "D") == dt.date(2025, 3, 1)
    assert r.date(doc, "t", "T", with_time=True) == dt.date(2025, 3, 1)
    assert r.date(doc, "z", "Z", with_time=True) == dt.date(2025, 3, 1)
    assert r.date(doc, "d", "D2", with_time=True) == dt.date(2025, 3, 1)
    assert r.date(doc, "t", "T2") is None  # a date-time where a date is expected
    assert r.date(doc, "x", "X", with_time=True) is None
    assert r.date(doc, "missing", "M", required=True) is None
    assert rules(r) == [("T2", "NF-DATE"), ("X", "NF-DATE"), ("M", "NF-REQUIRED")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("false", False), (" TRUE ", True), (1, True), ("0", False), (None, None)],
)
def test_flags(value: Any, expected: bool | None) -> None:
    r = Reader()
    assert r.flag({"f": value}, "f", "F") is expected
    assert r.issues == []


def test_a_flag_that_is_no_boolean_is_named() -> None:
    r = Reader()
    assert r.flag({"f": "yes"}, "f", "F") is None
    assert rules(r) == [("F", "NF-BOOLEAN")]


def test_lists_of_objects_and_nested_objects() -> None:
    r = Reader()
    doc = {"rows": [{"a": 1}, "x", {"b": 2}], "bad": 5, "obj": [1]}
    assert r.objects(doc, "rows", "Rows") == [(0, {"a": 1}), (2, {"b": 2})]
    assert r.objects(doc, "bad", "Bad") == []
    assert r.objects(doc, "none", "None") == []
    assert r.mapping(doc, "obj", "Obj") == {}
    assert r.mapping(doc, "none", "None") == {}
    assert rules(r) == [("Rows[1]", "NF-TYPE"), ("Bad", "NF-TYPE"), ("Obj", "NF-TYPE")]
    assert r.has_issue("Bad")
    assert not r.has_issue("Rows")


def test_texts_and_countries() -> None:
    assert [optional_text(v) for v in (" a ", "", None, 7, True, {}, [])] == [
        "a",
        None,
        None,
        "7",
        None,
        None,
        None,
    ]
    assert [country_code(v, "SE") for v in ("no", "Norge", "XYZ", None, "Ö1")] == [
        "NO",
        "NO",
        "SE",
        "SE",
        "SE",
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


@given(json_values)
def test_no_json_value_makes_the_reader_raise(value: Any) -> None:
    r, doc = Reader(), {"k": value}
    r.text(doc, "k", "K")
    r.decimal(doc, "k", "K")
    r.date(doc, "k", "K")
    r.date(doc, "k", "K", with_time=True)
    r.flag(doc, "k", "K")
    r.objects(doc, "k", "K")
    r.mapping(doc, "k", "K")
