"""partner_http: client references, Retry-After, problem bodies, which answers are transient."""

from __future__ import annotations

import re

import httpx
import pytest
from distribution_router.adapters.channels.partner_http import (
    PartnerHttp,
    client_reference,
    read_problem,
    retry_after_seconds,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

# What the partners accept as an Idempotency-Key (1-255) and a client reference (1-200).
PARTNER_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
TOKEN = "tok-" + "s3cret" * 4


@given(st.text(min_size=1, max_size=400))
def test_every_key_gives_a_reference_the_partners_accept_and_always_the_same(key: str) -> None:
    reference = client_reference(key)
    assert PARTNER_KEY.match(reference)
    assert client_reference(key) == reference


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200
    )
)
def test_a_key_a_header_can_hold_is_its_own_reference(key: str) -> None:
    assert client_reference(key) == key


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_distinct_keys_give_distinct_references(a: str, b: str) -> None:
    if a != b:
        assert client_reference(a) != client_reference(b)


def test_an_empty_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        client_reference("")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("999999", 3600.0),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        (None, None),
    ],
)
def test_retry_after_is_read_in_seconds_and_bounded(
    header: str | None, seconds: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    assert retry_after_seconds(httpx.Response(429, headers=headers)) == seconds


def test_a_problem_body_is_read_field_by_field() -> None:
    response = httpx.Response(
        422,
        json={
            "title": "The letter was refused: see errors",
            "status": 422,
            "code": "validation_failed",
            "errors": [
                {
                    "field": "recipient.postal_code",
                    "code": "invalid_postal_code",
                    "message": "'01234' is not a postal code of SE",
                },
            ],
        },
    )
    problem = read_problem(response)
    assert problem.codes() == {"validation_failed", "invalid_postal_code"}
    assert problem.describe() == (
        "The letter was refused: see errors (validation_failed): "
        "recipient.postal_code: '01234' is not a postal code of SE"
    )


def test_an_answer_that_is_no_problem_body_still_reads() -> None:
    problem = read_problem(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert (problem.status, problem.code, problem.errors) == (502, "", ())
    assert problem.describe() == "Bad Gateway"


@pytest.mark.parametrize(
    ("status", "transient", "maybe_delivered"),
    [
        (401, True, False),
        (403, True, False),
        (408, True, False),
        (409, True, False),
        (429, True, False),
        (500, True, True),
        (503, True, True),
        (400, False, False),
        (404, False, False),
        (413, False, False),
        (422, False, False),
    ],
)
async def test_which_answers_are_worth_retrying(
    status: int, transient: bool, maybe_delivered: bool
) -> None:
    http = PartnerHttp("partner", "https://partner.example/api/v1", SecretStr(TOKEN))
    try:
        response = httpx.Response(status, json={"title": f"echo {TOKEN}", "code": "x"})
        error = http.transient_refusal(response, read_problem(response), creates=True)
    finally:
        await http.aclose()
    assert (error is not None) is transient
    if error is not None:
        assert error.maybe_delivered is maybe_delivered
        assert TOKEN not in str(error)  # a partner echoing the token does not leak it
        assert (status in (401, 403)) is ("credentials" in str(error))


async def test_the_client_never_shows_its_token() -> None:
    http = PartnerHttp("partner", "https://partner.example/api/v1/", SecretStr(TOKEN))
    try:
        assert TOKEN not in repr(http)
        assert http.base_url == "https://partner.example/api/v1"
    finally:
        await http.aclose()
    with pytest.raises(ValueError, match="token is empty"):
        PartnerHttp("partner", "https://partner.example", SecretStr(""))
