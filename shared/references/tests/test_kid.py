"""Norwegian KID: MOD10 / MOD11 generation and checks, including the MOD11 "-" case."""

from __future__ import annotations

import pytest
from nordflow_references import KidAlgorithm, Mod11DashError, check_kid, make_kid

MOD10 = KidAlgorithm.MOD10
MOD11 = KidAlgorithm.MOD11


def test_domain_examples() -> None:
    assert make_kid("1234", MOD10) == "12344"
    assert make_kid("1234", MOD11) == "12343"


@pytest.mark.parametrize(
    ("kid", "algorithm"),
    [
        ("602243", MOD10),  # Monitor ERP KID help: invoice 60224 -> 602243
        ("000506701000172", MOD10),  # Unimicro "Kid typer factoring": standard KID
        ("01000171234000506714", MOD10),  # same page: Kfinans
        ("1231000170050677", MOD10),  # same page: FactorNor
        ("51234000506701000176", MOD11),  # same page: DnB
    ],
)
def test_published_kids(kid: str, algorithm: KidAlgorithm) -> None:
    assert check_kid(kid, algorithm) == []
    assert make_kid(kid[:-1], algorithm) == kid


class TestMod11Dash:
    def test_refused_by_default(self) -> None:
        with pytest.raises(Mod11DashError, match="cannot carry a MOD11 KID"):
            make_kid("6", MOD11)

    def test_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="'-'"):
            make_kid("23", MOD11)

    def test_allowed(self) -> None:
        assert make_kid("23", MOD11, allow_dash=True) == "23-"
        assert check_kid("23-", MOD11, allow_dash=True) == []

    def test_dash_reported_when_not_allowed(self) -> None:
        [problem] = check_kid("23-", MOD11)
        assert "'-'" in problem
        [problem] = check_kid("230", MOD11)
        assert "does not accept '-'" in problem

    def test_dash_never_valid_for_mod10(self) -> None:
        assert check_kid("23-", MOD10, allow_dash=True) != []

    def test_dash_must_be_the_right_check(self) -> None:
        assert check_kid("24-", MOD11, allow_dash=True) != []
        assert check_kid("2-3", MOD11, allow_dash=True) != []


def test_wrong_check_digit() -> None:
    [problem] = check_kid("12345", MOD10)
    assert "MOD10" in problem
    assert "'4'" in problem


def test_lengths() -> None:
    assert make_kid("1", MOD10) == "18"
    assert len(make_kid("1" * 24, MOD10)) == 25
    with pytest.raises(ValueError, match="2 to 25"):
        make_kid("1" * 25, MOD10)
    assert check_kid("1" * 26, MOD10) != []
    assert check_kid("8", MOD10) != []
    [problem] = check_kid("12344", MOD10, length=15)
    assert "agreed length is 15" in problem


@pytest.mark.parametrize("bad", ["", "12 34", "KID1234"])
def test_make_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="digits 0-9"):
        make_kid(bad, MOD10)


def test_check_reports_non_digits() -> None:
    assert check_kid("", MOD10) == ["the KID is empty"]
    [problem] = check_kid("1234 4", MOD10)
    assert "' '" in problem
