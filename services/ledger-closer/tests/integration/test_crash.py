"""Crash tests: for each kind of write, a ledger-closer worker process is killed with SIGKILL
after the ERP has applied the write and before ledger-closer committed anything of it (the
sandbox holds its answer back after storing the write), then the job runs again: it looks up
what the killed attempt wrote and adopts it. Never a second customer, invoice, credit,
project, product, order, invoice of an order, payment or voucher."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from ledger_closer.adapters.repository import PgConnectionRepository
from ledger_closer.deps import Deps
from ledger_closer.domain import BOOK_DOCUMENT, CLOSE_INVOICE, INVOICE_ORDER, POST_ENTRY
from ledger_closer.testing import (
    CRASH_WORKER,
    created,
    guest_invoice,
    payment_received,
    sandbox_invoice,
    source,
    transferred,
    winner_order,
    write_connection,
)
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import (
    FaultSpec,
    RunningFortnoxSandbox,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_sandboxes.kit.testing import FaultSpec as KitFault
from nordflow_sandboxes.tripletex.testing import (
    RunningTripletexSandbox,
    running_tripletex_sandbox,
)
from nordflow_sandboxes.visma_eaccounting.domain import BankAccount
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net import VismaNetState
from nordflow_sandboxes.visma_net.testing import (
    RunningVismaNetSandbox,
    running_visma_net_sandbox,
)
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import AgreementKind, DocumentKind, Flow
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()
HOLD = 120.0  # how long a sandbox holds the answer back: far longer than the test waits


@pytest.fixture(scope="module")
def fortnox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox(FortnoxState(rate_limit=10_000)) as running:
        yield running


@pytest.fixture(scope="module")
def tripletex() -> Iterator[RunningTripletexSandbox]:
    with running_tripletex_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def eaccounting() -> Iterator[RunningVismaEAccountingSandbox]:
    with running_visma_eaccounting_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def visma_net() -> Iterator[RunningVismaNetSandbox]:
    with running_visma_net_sandbox(VismaNetState(rate_limit=100_000)) as running:
        yield running


@dataclass
class Crash:
    """Kills a worker of one job kind once the ERP applied the write it is waiting on."""

    harness: ServiceHarness[Deps]
    database_url: str
    key: str
    logs: Path

    async def kill_mid_write(self, kind: str, applied: Callable[[], bool]) -> None:
        env = {
            **os.environ,
            "NF_DATABASE_URL": self.database_url,
            "NF_SCHEMA": self.harness.schema,
            "NF_ENCRYPTION_KEY": self.key,
            "NF_JOB_KIND": kind,
        }
        log = self.logs / f"worker-{uuid.uuid4().hex[:6]}.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(  # noqa: ASYNC220 - killed below, never awaited
                [sys.executable, "-c", CRASH_WORKER], env=env, stdout=out, stderr=out
            )
        try:
            deadline = time.monotonic() + 60
            while not applied():
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the ERP stored it and holds its answer back
            assert worker.poll() is None, log.read_text()
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        assert worker.returncode == -signal.SIGKILL

    async def retry(self) -> list[dict]:
        """Run every job in this process, retries due at once, until none is pending."""
        for _ in range(20):
            await self.harness.run_jobs(include_future=True)
            jobs = [dict(j) for j in await self.harness.jobs()]
            if all(j["state"] != "pending" for j in jobs):
                return jobs
        raise AssertionError(jobs)


@pytest.fixture
def crash(harness: ServiceHarness[Deps], database_url: str, key: str, tmp_path: Path) -> Crash:
    return Crash(harness, database_url, key, tmp_path)


def hold(path_prefix: str, method: str) -> FaultSpec:
    """Apply the write, then hold the answer back."""
    return FaultSpec(
        status=None,
        path_prefix=path_prefix,
        method=method,
        after_commit=True,
        delay_seconds=HOLD,
    )


async def fortnox_target(
    harness: ServiceHarness[Deps], box: SecretBox, fortnox: RunningFortnoxSandbox
) -> tuple[str, str, SandboxCompany]:
    company = fortnox.create_company()
    tenant = new_tenant()
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant, f"{tenant}-fx", base_url=fortnox.base_url, token_sealed=box.seal(company.token)
        )
    )
    return tenant, f"{tenant}-fx", company


# --------------------------------------------------------------------- Sirvoy → Fortnox


@pytest.mark.parametrize(
    ("path", "method"),
    [("/3/customers", "POST"), ("/3/invoices", "POST"), ("/3/invoices/", "PUT")],
    ids=["customer", "invoice", "bookkeeping"],
)
async def test_booking_an_invoice_in_fortnox_survives_a_kill(
    crash: Crash, box: SecretBox, fortnox: RunningFortnoxSandbox, path: str, method: str
) -> None:
    tenant, target, company = await fortnox_target(crash.harness, box, fortnox)
    state = fortnox.state.company(company.company_id)
    assert state is not None
    with fortnox.admin() as admin:
        admin.inject_fault(company.token, hold(path, method))
    flow = Flow(book_into=target, factor=False, distribute=False)
    invoice = guest_invoice(tenant, f"{tenant}-sv", "1001")
    await crash.harness.publish(created(invoice, flow=flow))
    applied = {
        "/3/customers": lambda: len(state.customers) == 1,
        "/3/invoices": lambda: len(state.invoices) == 1,
        "/3/invoices/": lambda: any(i.booked for i in state.invoices.values()),
    }[path]

    await crash.kill_mid_write(BOOK_DOCUMENT, applied)
    [job] = await crash.retry()

    assert job["state"] == "done", job["last_error"]
    assert (len(state.customers), len(state.invoices)) == (1, 1)
    [booked] = state.invoices.values()
    assert booked.booked
    assert booked.values["ExternalInvoiceReference1"] == invoice.invoice_id


async def test_booking_a_payment_and_a_credit_in_fortnox_survive_a_kill(
    crash: Crash, box: SecretBox, fortnox: RunningFortnoxSandbox
) -> None:
    tenant, target, company = await fortnox_target(crash.harness, box, fortnox)
    state = fortnox.state.company(company.company_id)
    assert state is not None
    flow = Flow(book_into=target, factor=False, distribute=False)
    sirvoy = f"{tenant}-sv"
    invoice = guest_invoice(tenant, sirvoy, "1001")
    second = guest_invoice(tenant, sirvoy, "1002")
    for one in (invoice, second):
        await crash.harness.publish(created(one, flow=flow))
    await crash.retry()

    with fortnox.admin() as admin:
        admin.inject_fault(company.token, hold("/3/invoicepayments", "POST"))
    paid = payment_received(
        tenant,
        invoice_id=invoice.invoice_id,
        source_ref=invoice.source,
        payment_id="sv-1",
        amount=Decimal("1250.00"),
        paid_on=TODAY,
        recorded_at_source=True,
        flow=flow,
    )
    await crash.harness.publish(paid)
    await crash.kill_mid_write(POST_ENTRY, lambda: len(state.payments) == 1)
    await crash.retry()
    [payment] = state.payments.values()
    assert payment.booked

    number = await crash.harness.pool.fetchval(
        "SELECT erp_reference FROM bookings WHERE booking_key = $1", f"book:{second.invoice_id}"
    )
    with fortnox.admin() as admin:
        admin.inject_fault(company.token, hold(f"/3/invoices/{number}/credit", "PUT"))
    credit = guest_invoice(tenant, sirvoy, "1003", credited=second)
    await crash.harness.publish(created(credit, flow=flow))
    await crash.kill_mid_write(BOOK_DOCUMENT, lambda: len(state.invoices) == 3)
    jobs = await crash.retry()

    assert all(j["state"] == "done" for j in jobs), jobs
    assert len(state.invoices) == 3  # two invoices and one credit invoice
    credit_invoice = state.invoices[state.invoices[int(number)].credit_invoice_reference]
    assert credit_invoice.booked
    assert credit_invoice.values["ExternalInvoiceReference1"] == credit.invoice_id


# --------------------------------------------------------------------- Winner → accounting


@pytest.mark.parametrize(
    ("path", "method", "kind"),
    [
        ("/3/customers", "POST", BOOK_DOCUMENT),
        ("/3/projects", "POST", BOOK_DOCUMENT),
        ("/3/articles", "POST", BOOK_DOCUMENT),
        ("/3/orders", "POST", BOOK_DOCUMENT),
        ("/3/orders/1/createinvoice", "PUT", INVOICE_ORDER),
    ],
    ids=["customer", "project", "article", "order", "invoice-of-order"],
)
async def test_booking_an_order_in_fortnox_survives_a_kill(
    crash: Crash,
    box: SecretBox,
    fortnox: RunningFortnoxSandbox,
    path: str,
    method: str,
    kind: str,
) -> None:
    tenant, target, company = await fortnox_target(crash.harness, box, fortnox)
    state = fortnox.state.company(company.company_id)
    assert state is not None
    registers = state.registers
    flow = Flow(book_into=target, factor=False, distribute=False)
    order = winner_order(tenant, f"{tenant}-wi", "Q1-1", country="SE", currency="SEK")
    await crash.harness.publish(created(order, flow=flow, kind=DocumentKind.ORDER))
    if kind == INVOICE_ORDER:
        await crash.harness.run_jobs([BOOK_DOCUMENT])
    with fortnox.admin() as admin:
        admin.inject_fault(company.token, hold(path, method))
    applied = {
        "/3/customers": lambda: len(state.customers) == 1,
        "/3/projects": lambda: len(registers.projects) == 1,
        "/3/articles": lambda: len(registers.articles) == 1,
        "/3/orders": lambda: len(registers.orders) == 1,
        "/3/orders/1/createinvoice": lambda: len(state.invoices) == 1,
    }[path]

    await crash.kill_mid_write(kind, applied)
    jobs = await crash.retry()

    assert all(j["state"] == "done" for j in jobs), jobs
    assert (len(state.customers), len(registers.projects), len(registers.articles)) == (1, 1, 1)
    assert (len(registers.orders), len(state.invoices)) == (1, 1)


@pytest.mark.parametrize(
    ("path", "method", "kind"),
    [
        ("/v2/customer", "POST", BOOK_DOCUMENT),
        ("/v2/project", "POST", BOOK_DOCUMENT),
        ("/v2/product", "POST", BOOK_DOCUMENT),
        ("/v2/order", "POST", BOOK_DOCUMENT),
        ("/v2/order/", "PUT", INVOICE_ORDER),
    ],
    ids=["customer", "project", "product", "order", "invoice-of-order"],
)
async def test_booking_an_order_in_tripletex_survives_a_kill(
    crash: Crash,
    box: SecretBox,
    tripletex: RunningTripletexSandbox,
    path: str,
    method: str,
    kind: str,
) -> None:
    company = tripletex.create_company()
    state = tripletex.state.company(company.company_id)
    assert state is not None
    tenant = new_tenant()
    await PgConnectionRepository(crash.harness.pool).save(
        write_connection(
            tenant,
            f"{tenant}-tx",
            system="tripletex",
            base_url=tripletex.base_url,
            token_sealed=box.seal(json.dumps(company.credentials())),
        )
    )
    flow = Flow(book_into=f"{tenant}-tx", factor=False, distribute=False)
    await crash.harness.publish(
        created(winner_order(tenant, f"{tenant}-wi", "Q1-1"), flow=flow, kind=DocumentKind.ORDER)
    )
    if kind == INVOICE_ORDER:
        await crash.harness.run_jobs([BOOK_DOCUMENT])
    with tripletex.admin() as admin:
        admin.inject_fault(
            company.employee_token,
            KitFault(
                status=None,
                path_prefix=path,
                method=method,
                after_commit=True,
                delay_seconds=HOLD,
            ),
        )
    applied = {
        "/v2/customer": lambda: len(state.customers) == 1,
        "/v2/project": lambda: len(state.projects) == 1,
        "/v2/product": lambda: len(state.products) == 1,
        "/v2/order": lambda: len(state.orders) == 1,
        "/v2/order/": lambda: len(state.invoices) == 1,
    }[path]

    await crash.kill_mid_write(kind, applied)
    jobs = await crash.retry()

    assert all(j["state"] == "done" for j in jobs), jobs
    counts = (len(state.customers), len(state.projects), len(state.products), len(state.orders))
    assert counts == (1, 1, 1, 1)
    assert len(state.invoices) == 1


# ------------------------------------------------------------------- closings everywhere


async def test_a_closing_and_an_advance_in_fortnox_survive_a_kill(
    crash: Crash, box: SecretBox, fortnox: RunningFortnoxSandbox
) -> None:
    tenant, connection, company = await fortnox_target(crash.harness, box, fortnox)
    state = fortnox.state.company(company.company_id)
    assert state is not None
    factored, total = sandbox_invoice(fortnox.base_url, company.headers)
    financed, _ = sandbox_invoice(fortnox.base_url, company.headers)
    with fortnox.admin() as admin:
        admin.inject_fault(company.token, hold("/3/invoicepayments", "POST"))
    await crash.harness.publish(
        transferred(tenant, source_ref=source(connection, factored), amount=total)
    )
    await crash.kill_mid_write(CLOSE_INVOICE, lambda: len(state.payments) == 1)
    await crash.retry()
    assert len(state.payments) == 1

    with fortnox.admin() as admin:
        admin.inject_fault(company.token, hold("/3/vouchers", "POST"))
    await crash.harness.publish(
        transferred(
            tenant,
            source_ref=source(connection, financed),
            amount=total,
            agreement_kind=AgreementKind.FINANCING,
            advance_amount=Decimal("1000.00"),
        )
    )
    await crash.kill_mid_write(POST_ENTRY, lambda: len(state.registers.vouchers) == 1)
    jobs = await crash.retry()
    assert all(j["state"] == "done" for j in jobs), jobs
    assert len(state.registers.vouchers) == 1


async def test_a_closing_in_eaccounting_survives_a_kill(
    crash: Crash, box: SecretBox, eaccounting: RunningVismaEAccountingSandbox
) -> None:
    company = eaccounting.create_company()
    state = eaccounting.state.company(company.company_id)
    assert state is not None
    account = BankAccount(str(uuid.uuid4()), "Factoring", "", 1512, "SEK")
    with eaccounting.state.lock:
        state.bank_accounts[account.id] = account
    invoice = eaccounting.seed_invoice(
        company.company_id, eaccounting.seed_customer(company.company_id)["Id"]
    )
    tenant = new_tenant()
    grant = {
        "client_id": company.client_id,
        "client_secret": company.client_secret,
        "refresh_token": company.refresh_token,
        "token_url": eaccounting.token_url,
    }
    await PgConnectionRepository(crash.harness.pool).save(
        write_connection(
            tenant,
            f"{tenant}-ea",
            system="visma-eaccounting",
            base_url=eaccounting.base_url,
            token_sealed=box.seal(json.dumps(grant)),
        )
    )
    with eaccounting.admin() as admin:
        admin.inject_fault(
            company.company_id,
            KitFault(
                status=None,
                path_prefix="/v2/customerinvoices",
                method="POST",
                after_commit=True,
                delay_seconds=HOLD,
            ),
        )
    ref = source(
        f"{tenant}-ea",
        str(invoice["InvoiceNumber"]),
        SourceSystem.VISMA_EACCOUNTING,
        document_id=invoice["Id"],
    )
    await crash.harness.publish(transferred(tenant, source_ref=ref, amount=Decimal("125.00")))

    await crash.kill_mid_write(CLOSE_INVOICE, lambda: len(state.payments) == 1)
    [job] = await crash.retry()

    assert job["state"] == "done", job["last_error"]
    assert len(state.payments) == 1


async def test_a_closing_in_visma_net_survives_a_kill(
    crash: Crash, box: SecretBox, visma_net: RunningVismaNetSandbox
) -> None:
    company = visma_net.create_company()
    state = visma_net.state.company(company.company_id)
    assert state is not None
    with visma_net.admin() as admin:
        invoice = admin.seed_invoice(company, admin.seed_customer(company))
        admin.inject_fault(
            company,
            KitFault(
                status=None,
                path_prefix="/v1/customerPayment",
                method="POST",
                after_commit=True,
                delay_seconds=HOLD,
            ),
        )
    tenant = new_tenant()
    credentials = {"token": company.token, "company_id": company.company_id}
    await PgConnectionRepository(crash.harness.pool).save(
        write_connection(
            tenant,
            f"{tenant}-vn",
            system="visma-net",
            base_url=visma_net.base_url,
            token_sealed=box.seal(json.dumps(credentials)),
        )
    )
    await crash.harness.publish(
        transferred(
            tenant,
            source_ref=source(f"{tenant}-vn", invoice, SourceSystem.VISMA_NET),
            amount=Decimal(125),
            currency="NOK",
        )
    )

    await crash.kill_mid_write(CLOSE_INVOICE, lambda: len(state.payments) == 1)
    [job] = await crash.retry()

    assert job["state"] == "done", job["last_error"]
    [payment] = state.payments.values()
    assert payment.released
