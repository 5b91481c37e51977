"""The tenant API (/api/v1) on the real PostgreSQL: tokens, agreements (refused naming the
field, secrets never shown), decisions per invoice, on-demand runs, batches and files."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factoring_gateway.deps import Deps
from factoring_gateway.testing import sample_invoice
from nordflow_runtime import tenants
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.factor.testing import RunningFactorSandbox
from nordflow_schemas.events import InvoiceCreated
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


def body(factor: RunningFactorSandbox, client_number: str, **changes: Any) -> dict[str, Any]:
    agreement = {
        "provider": "Nordic Factor AB",
        "kind": "factoring",
        "recourse": False,
        "client_number": client_number,
        "file_format": "cusin-xml",
        "transfer": {"method": "https", "base_url": factor.api_url, "token": "factor-api-token"},
        "payee": {"name": "Nordic Factor AB", "scheme": "IBAN", "account_id": "NO9386011117947"},
        "assignment_text": {"nb": "Fordringen er overdratt til Nordic Factor AB."},
        "reference": {"kind": "se_ocr"},
        "fees": {"per_invoice": "5.00", "percent": "1.25"},
        "window_start": "14:00",
        "window_end": "15:00",
    }
    return agreement | changes


async def test_agreements_decisions_runs_and_batches_through_the_api(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant = new_tenant()
    token = await tenants.create_token(harness.pool, tenant, "test")
    client = factor.create_client(client_number="4321", token="factor-api-token")
    async with harness.http(token=token) as http:
        assert (await http.get("/api/v1/agreements")).json() == []
        bad = await http.put(
            "/api/v1/agreements/nordic", json=body(factor, "12x", payee=None, recourse=None)
        )
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"client_number", "payee", "recourse"}
        unknown = await http.put(
            "/api/v1/agreements/nordic", json=body(factor, "4321", colour="red")
        )
        assert unknown.status_code == 422  # unknown fields are refused too

        saved = await http.put("/api/v1/agreements/nordic", json=body(factor, "4321"))
        assert saved.status_code == 200, saved.text
        shown = saved.json()
        assert shown["has_secret"] is True
        assert "token" not in shown["transfer"]
        assert "factor-api-token" not in saved.text
        assert shown["window_start"] == "14:00:00"
        formats = (await http.get("/api/v1/formats")).json()["formats"]
        assert {f["format_id"] for f in formats} >= {"cusin-xml", "peppol-bis3-zip"}

        invoice = sample_invoice(tenant, "77", issue_date=dt.date.today())
        await harness.publish(
            InvoiceCreated(
                tenant_id=tenant, invoice_id=invoice.invoice_id, version="v1", invoice=invoice
            )
        )
        old = sample_invoice(tenant, "78", issue_date=dt.date.today() - dt.timedelta(days=90))
        await harness.publish(
            InvoiceCreated(tenant_id=tenant, invoice_id=old.invoice_id, version="v1", invoice=old)
        )
        ineligible = (await http.get("/api/v1/invoices", params={"state": "ineligible"})).json()
        assert [(i["number"], i["reason"]) for i in ineligible] == [
            ("78", "invoice date is more than 30 days back")
        ]
        one = (await http.get(f"/api/v1/invoices/{invoice.invoice_id}")).json()
        assert (one["state"], one["eligible"], one["agreement_id"]) == ("pending", True, "nordic")

        runs = await http.post("/api/v1/transfers/runs", json={"agreement_id": "nordic"})
        assert runs.status_code == 202
        await harness.run_jobs(["factoring-run", "factoring-upload"])
        [batch] = (await http.get("/api/v1/batches")).json()
        assert (batch["serial"], batch["state"], batch["files"][0]["state"]) == (
            1,
            "transferred",
            "received",
        )
        assert batch["invoices"][0]["fee"] == "153.44"  # 5.00 + 1.25 % of 11 875.00
        file = await http.get(f"/api/v1/batches/{batch['batch_id']}/files/1")
        assert file.content.startswith(b"<?xml")
        assert "CUSIN_4321_" in file.headers["content-disposition"]
        assert (await http.post(f"/api/v1/batches/{batch['batch_id']}/resubmit")).status_code == 409
        assert (await http.get("/api/v1/settlements")).json() == []

    other = await tenants.create_token(harness.pool, new_tenant(), "other")
    async with harness.http(token=other) as http:
        assert (await http.get("/api/v1/agreements/nordic")).status_code == 404
        assert (await http.get(f"/api/v1/batches/{batch['batch_id']}")).status_code == 404
        taken = await http.put("/api/v1/agreements/nordic", json=body(factor, "4321"))
        assert taken.status_code == 409
    async with harness.http() as http:
        assert (await http.get("/api/v1/agreements")).status_code == 401
    with factor.admin() as admin:
        assert [f["status"] for f in admin.files(client.token)] == ["accepted"]
