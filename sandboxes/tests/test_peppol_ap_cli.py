"""The `cli.SANDBOXES` entries of the three delivery-channel sandboxes, parsed and built."""

from __future__ import annotations

import argparse

import httpx
import pytest
from nordflow_sandboxes import cli
from nordflow_sandboxes.b2c_bank import command as b2c_bank_command
from nordflow_sandboxes.b2c_bank.testing import random_swedish_personal_number
from nordflow_sandboxes.peppol_ap import command as peppol_ap_command
from nordflow_sandboxes.print_post import command as print_post_command

# What the integrator adds to cli.SANDBOXES (the README documents the same three entries).
ENTRIES = (
    cli.Sandbox(
        name="peppol-ap",
        help=peppol_ap_command.HELP,
        default_port=peppol_ap_command.DEFAULT_PORT,
        add_arguments=peppol_ap_command.add_arguments,
        build=peppol_ap_command.build,
    ),
    cli.Sandbox(
        name="print-post",
        help=print_post_command.HELP,
        default_port=print_post_command.DEFAULT_PORT,
        add_arguments=print_post_command.add_arguments,
        build=print_post_command.build,
    ),
    cli.Sandbox(
        name="b2c-bank",
        help=b2c_bank_command.HELP,
        default_port=b2c_bank_command.DEFAULT_PORT,
        add_arguments=b2c_bank_command.add_arguments,
        build=b2c_bank_command.build,
    ),
)


@pytest.fixture
def parser(monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    others = tuple(s for s in cli.SANDBOXES if s.name not in {e.name for e in ENTRIES})
    monkeypatch.setattr(cli, "SANDBOXES", others + ENTRIES)
    return cli.build_parser()


def build(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[httpx.AsyncClient, dict[str, str]]:
    args = parser.parse_args(argv)
    sandbox = next(s for s in cli.SANDBOXES if s.name == args.sandbox)
    app, facts = sandbox.build(args)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://cli.test"), facts


async def test_peppol_ap_flags(parser: argparse.ArgumentParser) -> None:
    args = parser.parse_args(["peppol-ap"])
    assert (args.port, args.smp_url, args.delivery_delay) == (8191, "http://127.0.0.1:8182", 0.0)
    http, facts = build(
        parser, ["peppol-ap", "--token", "ap-token-1", "--smp-url", "http://smp.test:9"]
    )
    assert facts["token"] == "ap-token-1"
    assert facts["smp"] == "http://smp.test:9"
    async with http:
        response = await http.get(
            "/api/v1/documents", headers={"Authorization": "Bearer ap-token-1"}
        )
    assert response.json() == {"documents": []}


async def test_print_post_flags(parser: argparse.ArgumentParser) -> None:
    http, facts = build(
        parser, ["print-post", "--account", "Demo AB", "--cancellation-window", "0"]
    )
    assert set(facts) == {"account_id", "token"}
    async with http:
        quote = await http.get(
            "/api/v1/prices",
            params={"pages": 1},
            headers={"Authorization": f"Bearer {facts['token']}"},
        )
    assert quote.json()["total"] == "15.70"
    with pytest.raises(SystemExit):
        parser.parse_args(["print-post", "--posting-delay", "-1"])


async def test_b2c_bank_flags_register_start_consumers(parser: argparse.ArgumentParser) -> None:
    number = random_swedish_personal_number()
    http, facts = build(
        parser, ["b2c-bank", "--token", "bank-token-1", "--consumer", f"{number},a@b.se"]
    )
    reference = facts[f"consumer_{number.replace('-', '')}"]
    async with http:
        found = await http.get(
            "/api/v1/recipients",
            params={"email": "a@b.se"},
            headers={"Authorization": "Bearer bank-token-1"},
        )
    assert found.json()["efaktura_reference"] == reference
    with pytest.raises(SystemExit):
        parser.parse_args(["b2c-bank", "--consumer", "19800101-0000"])


@pytest.mark.parametrize("name", [e.name for e in ENTRIES])
async def test_openapi_document_of_each_sandbox(parser: argparse.ArgumentParser, name: str) -> None:
    http, _facts = build(parser, [name])
    async with http:
        paths = (await http.get("/sandbox/openapi.json")).json()["paths"]
    assert "/sandbox/deliveries" in paths
    assert any(path.startswith("/api/v1/") for path in paths)
