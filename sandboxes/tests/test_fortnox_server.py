"""The sandbox over real HTTP: the testing helpers, a timeout after commit, and the CLI."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading

import httpx
import pytest
from nordflow_sandboxes.cli import build_parser
from nordflow_sandboxes.fortnox.testing import (
    AsyncFortnoxSandboxAdmin,
    FaultSpec,
    running_fortnox_sandbox,
)


def test_timeout_after_commit_leaves_the_invoice_created() -> None:
    with running_fortnox_sandbox() as sandbox, sandbox.admin() as admin:
        assert admin.healthy()
        company = admin.create_company()
        with httpx.Client(base_url=sandbox.api_url, headers=company.headers, timeout=5) as fortnox:
            assert (
                fortnox.post("/customers", json={"Customer": {"Name": "Kund"}}).status_code == 201
            )
            admin.inject_fault(
                company.token,
                FaultSpec(
                    status=None,
                    path_prefix="/3/invoices",
                    method="POST",
                    delay_seconds=1.5,
                    after_commit=True,
                ),
            )
            body = {"Invoice": {"CustomerNumber": "1", "ExternalInvoiceReference1": "nf:inv-42"}}
            with pytest.raises(httpx.ReadTimeout):
                fortnox.post("/invoices", json=body, timeout=0.3)
            # The connector's recovery: look the invoice up by our reference before retrying.
            found = fortnox.get(
                "/invoices", params={"externalinvoicereference1": "nf:inv-42"}
            ).json()
            assert [i["ExternalInvoiceReference1"] for i in found["Invoices"]] == ["nf:inv-42"]
            assert found["Invoices"][0]["@url"] == f"{sandbox.api_url}/invoices/1"
        assert admin.stats(company.token)["invoices"] == 1
        assert [r["status"] for r in admin.requests(company.token)][-2:] == [201, 200]


async def test_async_admin_client_against_a_running_sandbox() -> None:
    with running_fortnox_sandbox() as sandbox:
        async with AsyncFortnoxSandboxAdmin(sandbox.base_url) as admin:
            company = await admin.create_company(name="Async AB", token="async-token-123")
            assert company.token == "async-token-123"
            await admin.inject_fault(
                company.token, FaultSpec(status=502, path_prefix="/3/companyinformation")
            )
            async with httpx.AsyncClient(
                base_url=sandbox.api_url, headers=company.headers
            ) as fortnox:
                assert (await fortnox.get("/companyinformation")).status_code == 502
                info = (await fortnox.get("/companyinformation")).json()["CompanyInformation"]
            assert info["CompanyName"] == "Async AB"
            assert (await admin.stats(company.token))["requests"] == 2
            await admin.clear_faults(company.token)


def test_direct_company_creation_in_state() -> None:
    with running_fortnox_sandbox() as sandbox:
        company = sandbox.create_company("Direct AB")
        with httpx.Client(base_url=sandbox.api_url, headers=company.headers) as fortnox:
            assert (
                fortnox.get("/companyinformation").json()["CompanyInformation"]["CompanyName"]
                == "Direct AB"
            )


def test_cli_has_a_subcommand_per_sandbox() -> None:
    args = build_parser().parse_args(["fortnox", "--port", "0", "--token", "t-123456789"])
    assert (args.sandbox, args.port, args.token, args.rate_limit) == (
        "fortnox",
        0,
        "t-123456789",
        25,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


def test_cli_starts_and_prints_one_ready_line() -> None:
    command = [
        sys.executable,
        "-m",
        "nordflow_sandboxes",
        "fortnox",
        "--port",
        "0",
        "--company",
        "CLI AB",
        "--token",
        "cli-token-123456",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(
        target=lambda: lines.put(process.stdout.readline() if process.stdout else ""), daemon=True
    ).start()
    try:
        line = lines.get(timeout=30)
        assert line.startswith("nordflow-sandbox fortnox ready url=http://127.0.0.1:"), line
        facts = dict(part.split("=", 1) for part in line.split()[3:])
        assert facts["token"] == "cli-token-123456"
        response = httpx.get(
            f"{facts['url']}/3/companyinformation",
            headers={"Authorization": "Bearer cli-token-123456"},
            timeout=10,
        )
        body = response.json()
        assert body["CompanyInformation"]["CompanyName"] == "CLI AB"
    finally:
        process.terminate()
        process.wait(timeout=10)
