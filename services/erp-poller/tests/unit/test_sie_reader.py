"""The SIE 4i reader: quoting, object lists, CP437, line-numbered errors, never a crash."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from erp_poller.domain import sie
from hypothesis import given, settings
from hypothesis import strategies as st

HEAD = '#FLAGGA 0\n#FORMAT PC8\n#SIETYP 4\n#ORGNR 556036-0793\n#FNAMN "Åkerö Kök AB"\n'
VOUCHER = """#KONTO 1510 "Kundfordringar"
#KONTO 3001 "Försäljning 25 %"
#KONTO 2611 "Utgående moms 25 %"
#OBJEKT 8 "K 1" "Kund \\"Ett\\" AB"
#VER A 12 20250310 "Faktura \\"12\\"" 20250311 kalle
{
\t#TRANS 1510 {8 "K 1" 10 "12"} 1250.50 20250310 "" 1
#TRANS 3001 {} -1000.40
#RTRANS 2611 {} -250.10
#TRANS 2611 {} -250.10
}
"""


def test_reads_identity_accounts_objects_and_vouchers_from_cp437() -> None:
    parsed = sie.parse((HEAD + VOUCHER).encode("cp437"))
    assert parsed.organisation_number == "556036-0793"
    assert parsed.company_name == "Åkerö Kök AB"
    assert parsed.accounts["3001"] == "Försäljning 25 %"
    assert parsed.objects[("8", "K 1")] == 'Kund "Ett" AB'
    [voucher] = parsed.vouchers
    assert (voucher.series, voucher.number, voucher.voucher_id) == ("A", "12", "A-12")
    assert voucher.date == dt.date(2025, 3, 10)
    assert voucher.registered_on == dt.date(2025, 3, 11)
    assert voucher.text == 'Faktura "12"'
    assert voucher.signature == "kalle"
    first = voucher.transactions[0]
    assert first.objects == (("8", "K 1"), ("10", "12"))
    assert first.amount == Decimal("1250.50")
    assert first.quantity == Decimal(1)
    assert first.text is None
    assert [t.account for t in voucher.transactions] == ["1510", "3001", "2611"]  # no RTRANS
    assert sie.invoice_kind(voucher) == ("invoice", "")
    as_json = parsed.voucher_json(voucher)
    assert as_json["transactions"][0]["objects"][0] == {
        "dimension": "8",
        "object": "K 1",
        "name": 'Kund "Ett" AB',
    }
    assert as_json["company"]["name"] == "Åkerö Kök AB"


def test_cp437_bytes_are_decoded_as_pc8() -> None:
    parsed = sie.parse(b'#SIETYP 4\n#FNAMN "\x8f\x84\x94"\n')  # Å ä ö in CP437
    assert parsed.company_name == "Åäö"


def test_credit_notes_payments_and_other_vouchers_are_told_apart() -> None:
    text = HEAD + (
        "#VER A 1 20250101\n{\n#TRANS 1510 {} -125\n#TRANS 3001 {} 100\n#TRANS 2611 {} 25\n}\n"
        "#VER B 2 20250102\n{\n#TRANS 1930 {} 125\n#TRANS 1510 {} -125\n}\n"
        "#VER C 3 20250103\n{\n#TRANS 5010 {} 100\n#TRANS 1930 {} -100\n}\n"
    )
    credit, payment, rent = sie.parse(text).vouchers
    assert sie.invoice_kind(credit) == ("credit_note", "")
    assert sie.invoice_kind(payment)[0] is None
    assert "payment" in sie.invoice_kind(payment)[1]
    assert sie.invoice_kind(rent)[0] is None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("#FORMAT PC8\n", 1, "no #SIETYP"),
        ("#SIETYP 3\n", 1, "must be 4"),
        ("#SIETYP 4\n#FORMAT UTF8\n", 2, "PC8"),
        ('#SIETYP 4\n#FNAMN "open\n', 2, "not closed"),
        ("#SIETYP 4\n#TRANS 1510 {} 1\n", 2, "outside"),
        ("#SIETYP 4\n#VER A 1 20250101\n#TRANS 1510 {} 1\n", 2, "followed by"),
        (
            "#SIETYP 4\n#VER A 1 20250101\n{\n#TRANS 1510 {} 1\n#TRANS 3001 {} -1\n",
            2,
            "ends inside",
        ),
        ("#SIETYP 4\n#VER A 1 20250101\n{\n#TRANS 1510 {} 1\n}\n", 2, "does not balance"),
        ("#SIETYP 4\n#VER A 1 20250132\n{\n}\n", 2, "calendar date"),
        ("#SIETYP 4\n#VER A 1 20250101\n{\n#TRANS 1510 {} 1,00\n}\n", 4, "amount"),
        ("#SIETYP 4\n#VER A 1 20250101\n{\n#TRANS 1510 {8} 1\n}\n", 4, "pairs"),
        ("#SIETYP 4\n#VER A 1 20250101\n{\n#TRANS konto {} 1\n}\n", 4, "account"),
        ("#SIETYP 4\nhello\n", 2, "#label"),
        ("#SIETYP 4\n}\n", 2, "without an open"),
        (
            "#SIETYP 4\n" + "#VER A 1 20250101\n{\n#TRANS 1510 {} 1\n#TRANS 3001 {} -1\n}\n" * 2,
            11,
            "appears twice",
        ),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(sie.SieError) as caught:
        sie.parse(text)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"line {line}:")


SIE_BITS = st.sampled_from(
    [
        "#SIETYP 4",
        "#FORMAT PC8",
        '#FNAMN "A B"',
        "#VER A 1 20250101",
        '#VER "" "" 20251301 "x"',
        "{",
        "}",
        "#TRANS 1510 {} 100",
        '#TRANS 3001 {1 "2"} -100 "" "t" 2',
        "#TRANS 2611 {1} -1.5",
        "#RTRANS 1510 {} 1",
        '#OBJEKT 8 "K" "Kund"',
        "#KONTO 1510 Kund",
        '"',
        "{ {",
        "#VALUTA EUR",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_yield_a_file_or_a_sie_error(data: bytes) -> None:
    try:
        parsed = sie.parse(data)
    except sie.SieError as exc:
        line = exc.line
    else:
        line = 1
        assert parsed.sie_type == "4"
    assert line >= 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(SIE_BITS, st.text(max_size=20)), max_size=30))
def test_any_near_sie_text_yields_vouchers_or_a_sie_error(lines: list[str]) -> None:
    try:
        parsed = sie.parse("\n".join(lines))
    except sie.SieError as exc:
        assert str(exc).startswith(f"line {exc.line}:")  # noqa: PT017 - a property test
    else:
        for voucher in parsed.vouchers:
            assert sum(t.amount for t in voucher.transactions) == 0
            parsed.voucher_json(voucher)
            sie.invoice_kind(voucher)


def test_a_voucher_id_names_its_fiscal_year_because_numbers_start_again() -> None:
    def file(rar: str, date: str) -> sie.SieFile:
        return sie.parse(
            "#FLAGGA 0\n#SIETYP 4\n"
            + rar
            + f'#VER "F" "1" {date} "Faktura"\n{{\n#TRANS 1510 {{}} 125.00\n'
            + "#TRANS 3001 {} -100.00\n#TRANS 2611 {} -25.00\n}\n"
        )

    last_year = file("#RAR 0 20240501 20250430\n", "20240510")
    this_year = file("#RAR 0 20250501 20260430\n", "20250510")
    ids = {f.document_id(f.vouchers[0]) for f in (last_year, this_year)}
    assert ids == {"20240501-F-1", "20250501-F-1"}
    undated = file("", "20250510")  # no #RAR: the voucher date's calendar year
    assert undated.document_id(undated.vouchers[0]) == "20250101-F-1"
    with pytest.raises(sie.SieError, match="line 3"):
        file("#RAR 0 20250501 20240430\n", "20250510")


def test_the_customer_is_the_first_dimension_8_object_in_row_order() -> None:
    [voucher] = sie.parse((HEAD + VOUCHER).encode("cp437")).vouchers
    assert sie.customer_object(voucher) == "K 1"
    later = VOUCHER.replace('{8 "K 1" 10 "12"}', '{10 "12"}').replace(
        "#TRANS 3001 {}", '#TRANS 3001 {6 "P1" 8 "K2"}'
    )
    [voucher] = sie.parse((HEAD + later).encode("cp437")).vouchers
    assert sie.customer_object(voucher) == "K2"
    none = VOUCHER.replace('{8 "K 1" 10 "12"}', '{8 ""}')
    [voucher] = sie.parse((HEAD + none).encode("cp437")).vouchers
    assert sie.customer_object(voucher) is None
