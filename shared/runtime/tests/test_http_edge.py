"""The HTTP edge every service shares: body size, JSON depth, and the 422 shape."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import APIRouter
from hypothesis import given, settings
from hypothesis import strategies as st
from nordflow_runtime.http import build_http_app, json_depth, loads_bounded
from pydantic import BaseModel, SecretStr

router = APIRouter()


class Body(BaseModel):
    name: str
    secret: SecretStr | None = None
    data: dict[str, object] | None = None


@router.post("/api/v1/things")
async def things(body: Body) -> dict[str, str]:
    return {"name": body.name}


@router.post("/api/v1/ingest/big")
async def big(body: Body) -> dict[str, str]:
    return {"name": body.name}


def client() -> httpx.AsyncClient:
    app = build_http_app(
        "test", {}, [router], max_body_bytes=2048, body_limits={"/api/v1/ingest/": 8192}
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_body_over_the_limit_is_refused_with_413_naming_the_body() -> None:
    async with client() as http:
        answer = await http.post("/api/v1/things", json={"name": "x" * 3000})
        assert answer.status_code == 413
        assert answer.json()["detail"][0]["loc"] == ["body"]
        # A path with its own, larger limit takes it.
        assert (await http.post("/api/v1/ingest/big", json={"name": "x" * 3000})).status_code == 200
        assert (await http.post("/api/v1/ingest/big", json={"name": "x" * 9000})).status_code == 413


async def test_a_streamed_body_without_a_length_is_stopped_at_the_limit() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 1000

    async with client() as http:
        answer = await http.post("/api/v1/things", content=chunks())
        assert answer.status_code == 413


async def test_deep_json_is_refused_with_400_naming_the_body() -> None:
    deep = '{"name": "x", "data": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    async with client() as http:
        answer = await http.post(
            "/api/v1/things", content=deep, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400
        assert answer.json()["detail"][0] == {
            "loc": ["body"],
            "msg": "JSON nested deeper than 32 levels",
            "type": "json_depth",
        }
        shallow = {"name": "x", "data": {"a": {"b": [1, [2, {"c": "]]]]]]"}]]}}}
        assert (await http.post("/api/v1/things", json=shallow)).status_code == 200


async def test_a_validation_error_names_the_field_and_never_echoes_the_value() -> None:
    async with client() as http:
        answer = await http.post("/api/v1/things", json={"name": 1, "secret": {"x": "hunter2"}})
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert {tuple(e["loc"]) for e in errors} == {("body", "name"), ("body", "secret")}
    assert "hunter2" not in answer.text
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=30,
)


def nested_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((nested_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nested_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_depth_counts_nesting_whatever_the_strings_hold(value: object) -> None:
    text = json.dumps(value)
    assert json_depth(text.encode()) == nested_depth(value)
    assert loads_bounded(text, max_depth=64) == value


def test_loads_bounded_refuses_deep_json() -> None:
    with pytest.raises(ValueError, match="deeper than 3"):
        loads_bounded("[[[[1]]]]", max_depth=3)


@router.get("/api/v1/things/{thing_id}")
async def thing(thing_id: str, q: str | None = None) -> dict[str, str | None]:
    return {"thing_id": thing_id, "q": q}


async def test_control_characters_in_the_path_query_or_a_json_body_are_refused_by_name() -> None:
    async with client() as http:
        in_path = await http.get("/api/v1/things/a%00b")
        assert (in_path.status_code, in_path.json()["detail"][0]["loc"]) == (400, ["path"])
        in_query = await http.get("/api/v1/things/a", params={"q": "x\x1b[2J"})
        assert (in_query.status_code, in_query.json()["detail"][0]["loc"]) == (422, ["query", "q"])
        long_query = await http.get("/api/v1/things/a", params={"q": "x" * 3000})
        assert long_query.status_code == 422
        nul = await http.post("/api/v1/things", json={"name": "a\x00b"})
        assert (nul.status_code, nul.json()["detail"][0]["loc"]) == (422, ["body"])
        fine = await http.get("/api/v1/things/a", params={"q": "Kundvägen 2 ✓"})
        assert fine.json() == {"thing_id": "a", "q": "Kundvägen 2 ✓"}
