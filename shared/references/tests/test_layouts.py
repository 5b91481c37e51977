"""Factor KID layouts: the published DnB and Nordea Finans examples, round trips, errors."""

from __future__ import annotations

import pytest
from nordflow_references import (
    LAYOUTS,
    Field,
    KidAlgorithm,
    KidLayout,
    Mod11DashError,
    check_layout_kid,
    parse_kid,
    render_kid,
)
from nordflow_references.layouts import DNB, NORDEA_FINANS

# Unimicro "Kid typer factoring": factoring no. 1234, customer 100017, invoice 5067.
EXAMPLE = {"factoring_number": "1234", "invoice_number": "5067", "customer_number": "100017"}


def test_registry() -> None:
    assert LAYOUTS["dnb"] is DNB
    assert LAYOUTS["nordea_finans"] is NORDEA_FINANS


def test_dnb_published_example() -> None:
    assert render_kid(DNB, EXAMPLE) == "51234000506701000176"
    assert parse_kid(DNB, "51234000506701000176") == EXAMPLE


def test_nordea_finans_published_example() -> None:
    values = {"factoring_number": 1234, "invoice_number": 5067}
    assert render_kid(NORDEA_FINANS, values) == "9123400005067009"
    assert parse_kid(NORDEA_FINANS, "9123400005067009") == {
        "factoring_number": "1234",
        "invoice_number": "5067",
    }


def test_round_trip_keeps_all_zero_fields() -> None:
    values = {"factoring_number": "0", "invoice_number": "0"}
    kid = render_kid(NORDEA_FINANS, values)
    assert parse_kid(NORDEA_FINANS, kid) == values
    assert render_kid(NORDEA_FINANS, parse_kid(NORDEA_FINANS, kid)) == kid


def test_overflow_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"invoice_number '12345678' has 8 digits.*holds 7"):
        render_kid(DNB, {**EXAMPLE, "invoice_number": "12345678"})
    with pytest.raises(ValueError, match="factoring_number"):
        render_kid(NORDEA_FINANS, {"factoring_number": 12345, "invoice_number": 1})


@pytest.mark.parametrize("value", ["50-67", "", " 5067", -5, "\uff15\uff10"])
def test_bad_value_names_the_field(value: str | int) -> None:
    with pytest.raises(ValueError, match="invoice_number"):
        render_kid(DNB, {**EXAMPLE, "invoice_number": value})


def test_missing_and_unknown_fields() -> None:
    with pytest.raises(ValueError, match="needs a value for 'customer_number'"):
        render_kid(DNB, {"factoring_number": "1234", "invoice_number": "5067"})
    with pytest.raises(ValueError, match="no field"):
        render_kid(NORDEA_FINANS, {**EXAMPLE})


def test_dnb_refuses_dash() -> None:
    # Customer 100015 instead of 100017 makes the MOD11 result 10.
    with pytest.raises(Mod11DashError, match="customer_number=100015"):
        render_kid(DNB, {**EXAMPLE, "customer_number": "100015"})


def test_check_reports_problems() -> None:
    assert check_layout_kid(DNB, "51234000506701000176") == []
    problems = check_layout_kid(DNB, "61234000506701000176")
    assert any("position 1;" in problem and "always has 5" in problem for problem in problems)
    [problem] = check_layout_kid(DNB, "51234000506701000175")
    assert "MOD11" in problem
    [problem] = check_layout_kid(NORDEA_FINANS, "912340000506700")
    assert "16" in problem
    fixed_digit, check_digit = check_layout_kid(NORDEA_FINANS, "9123400005067109")
    assert "position 14" in fixed_digit
    assert "MOD10" in check_digit
    with pytest.raises(ValueError, match="position 1"):
        parse_kid(DNB, "61234000506701000176")


def test_layout_must_cover_every_position() -> None:
    with pytest.raises(ValueError, match="uncovered"):
        KidLayout(name="gap", length=6, fields=(Field("invoice_number", 1, 3),))
    with pytest.raises(ValueError, match="both"):
        KidLayout(
            name="overlap",
            length=5,
            fields=(Field("invoice_number", 1, 4),),
            fixed={1: "9"},
        )
    with pytest.raises(ValueError, match="out of range"):
        KidLayout(name="long", length=4, fields=(Field("invoice_number", 1, 4),))


def test_layout_fixed_digits_are_read_only() -> None:
    fixed = {1: "9"}
    layout = KidLayout(
        name="x",
        length=4,
        fields=(Field("invoice_number", 2, 3),),
        fixed=fixed,
        algorithm=KidAlgorithm.MOD11,
    )
    fixed[1] = "8"
    assert layout.fixed[1] == "9"
