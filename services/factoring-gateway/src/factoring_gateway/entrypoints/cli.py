"""factoring-gateway's command tree: the shared service commands (run, migrate, dlq, jobs,
tokens) plus ``agreements``, ``transfers``, ``invoices`` and ``settlements``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from nordflow_runtime.cli import new_group, run_async, run_cli, service_cli, service_pool
from nordflow_schemas.topics import FACTORING_GATEWAY
from pydantic import SecretStr, ValidationError

from ..adapters.repositories import PgScheduler
from ..app import create_app
from ..config import Settings
from ..deps import Deps, deps_for
from ..domain.agreements import InvalidAgreementError, check_agreement
from ..domain.batches import InvoiceState
from ..domain.formats import default_formats
from ..service import agreements as agreement_service
from ..service import transfers as transfer_service
from ..service.ports import RUN_JOB, SETTLEMENT_JOB, Batch
from .agreement_schema import AgreementIn, AgreementOut

T = TypeVar("T")

cli = service_cli(FACTORING_GATEWAY, create_app, tenant_api=True)
agreements = new_group("The tenants' agreements with their providers.")
transfers = new_group("Transfers to the providers: runs, batches, resubmissions.")
invoices = new_group("The invoices offered to factoring and their decisions.")
settlements = new_group("Settlement files read back from the providers.")
cli.add_typer(agreements, name="agreements")
cli.add_typer(transfers, name="transfers")
cli.add_typer(invoices, name="invoices")
cli.add_typer(settlements, name="settlements")

TenantOpt = Annotated[str, typer.Option("--tenant", help="the tenant")]
AgreementOpt = Annotated[str | None, typer.Option("--agreement", help="one agreement only")]


def _with_deps(work: Callable[[asyncpg.Pool, Deps], Awaitable[T]]) -> T:
    app = create_app()

    async def running() -> T:
        async with service_pool(app, size=2) as pool:
            assert isinstance(app.settings, Settings)
            return await work(pool, deps_for(app.settings, pool))

    return run_async(running())


def _secret(variable: str | None, what: str) -> SecretStr | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        print(f"{what}: the environment variable {variable} is not set", file=sys.stderr)
        raise typer.Exit(2)
    return SecretStr(value)


@agreements.command("set")
def agreements_set(
    tenant: TenantOpt,
    agreement: Annotated[str, typer.Option("--agreement", help="the agreement's id")],
    file: Annotated[
        str, typer.Option("--file", help="the agreement as JSON (as PUT /api/v1/agreements)")
    ],
    password_env: Annotated[
        str | None, typer.Option(help="env variable holding the SFTP password")
    ] = None,
    private_key_env: Annotated[
        str | None, typer.Option(help="env variable holding the SFTP private key")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="env variable holding the HTTPS API token")
    ] = None,
) -> None:
    """Create or replace an agreement from a JSON file ('-' reads stdin); secrets come from
    environment variables, never from the command line or the file's history."""
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        body = AgreementIn.model_validate_json(text)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            print(f"agreement {where}: {error['msg']}", file=sys.stderr)
        raise typer.Exit(2) from None
    given = {
        "password": _secret(password_env, "--password-env"),
        "private_key": _secret(private_key_env, "--private-key-env"),
        "token": _secret(token_env, "--token-env"),
    }
    body.transfer = body.transfer.model_copy(update={k: v for k, v in given.items() if v})
    try:
        new, secret = body.to_domain(tenant, agreement)
        # Every field but the stored secret is checked before anything connects.
        check_agreement(new, default_formats().ids, has_secret=True)
    except InvalidAgreementError as exc:
        for problem in exc.problems:
            print(f"agreement {problem.field}: {problem.message}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def saving(pool: asyncpg.Pool, deps: Deps) -> AgreementOut:
        async with pool.acquire() as conn, conn.transaction():
            stored = await agreement_service.set_agreement(
                deps.repositories(conn),
                deps.formats,
                deps.sealer,
                new,
                secret,
                deps.clock(),
            )
        return AgreementOut.of(stored)

    try:
        saved = _with_deps(saving)
    except InvalidAgreementError as exc:
        for problem in exc.problems:
            print(f"agreement {problem.field}: {problem.message}", file=sys.stderr)
        raise typer.Exit(2) from None
    except agreement_service.AgreementOfAnotherTenantError as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from None
    print(
        f"agreement {saved.agreement_id} for {tenant}: {saved.kind.value} with {saved.provider}, "
        f"{saved.file_format} by {saved.transfer['method']}, window "
        f"{saved.window_start:%H:%M}-{saved.window_end:%H:%M}"
    )


@agreements.command("list")
def agreements_list(tenant: TenantOpt) -> None:
    """The tenant's agreements (secrets are never shown)."""

    async def listing(pool: asyncpg.Pool, deps: Deps) -> list[AgreementOut]:
        stored = await deps.repositories(pool).agreements.of_tenant(tenant)
        return [AgreementOut.of(s) for s in stored]

    for a in _with_deps(listing):
        state = "enabled" if a.enabled else "disabled"
        print(
            f"{a.agreement_id}  {a.kind.value}  {a.provider}  {a.file_format}  "
            f"{a.transfer['method']}  {a.window_start:%H:%M}-{a.window_end:%H:%M}  {state}"
        )


def _print_batch(batch: Batch) -> None:
    print(
        f"batch {batch.batch_id}  serial {batch.serial}  {batch.kind.value}  "
        f"{batch.state.value}  invoices {len(batch.invoices)}"
        + (f"  ({batch.reason})" if batch.reason else "")
    )
    for f in batch.files:
        print(f"    {f.name}  {len(f.content) or ''} {f.state}  sha256 {f.sha256[:16]}")
        if f.receipt:
            shown = {k: v for k, v in f.receipt.items() if k != "errors"}
            print(f"        receipt: {json.dumps(shown, ensure_ascii=False)}")


@transfers.command("run")
def transfers_run(
    tenant: TenantOpt,
    agreement: AgreementOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="wait until the factor has answered")
    ] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 120.0,
) -> None:
    """Run the transfer now: the running service makes the batches and hands them over."""

    async def running(pool: asyncpg.Pool, deps: Deps) -> list[Batch]:
        async with pool.acquire() as conn, conn.transaction():
            keys = await transfer_service.request_runs(
                deps.repositories(conn), tenant, agreement, deps.clock()
            )
        for agreement_id, key in keys:
            print(f"run {key} scheduled for agreement {agreement_id}")
        if not wait:
            return []
        return await _wait_for_runs(pool, deps, [k for _, k in keys], timeout)

    try:
        batches = _with_deps(running)
    except transfer_service.NoAgreementError as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from None
    except TimeoutError as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from None
    if wait and not batches:
        print("nothing to transfer: no pending invoice or due-date change")
    for batch in batches:
        _print_batch(batch)
    if any(b.state.value == "refused" for b in batches):
        raise typer.Exit(1)


async def _wait_for_runs(
    pool: asyncpg.Pool, deps: Deps, keys: list[str], timeout: float
) -> list[Batch]:
    deadline = time.monotonic() + timeout
    scheduler = PgScheduler(pool)
    batch_ids: list[str] = []
    for key in keys:
        while True:
            outcome = await scheduler.outcome(RUN_JOB, key)
            if outcome is not None and outcome[0] == "done":
                batch_ids += [b["batch_id"] for b in outcome[1].get("batches", [])]
                break
            if outcome is not None and outcome[0] == "failed":
                raise TimeoutError(f"run {key} failed: {outcome[2]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {key} is still pending: is factoring-gateway running?")
            await asyncio.sleep(0.2)
    repos = deps.repositories(pool)
    batches: list[Batch] = []
    for batch_id in batch_ids:
        while True:
            batch = await repos.batches.get(batch_id)
            assert batch is not None
            if batch.state.value != "recorded":
                batches.append(batch)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} (serial {batch.serial}) is still waiting")
            await asyncio.sleep(0.2)
    return batches


@transfers.command("list")
def transfers_list(tenant: TenantOpt, agreement: AgreementOpt = None) -> None:
    """The tenant's batches, newest first, with their files and receipts."""

    async def listing(pool: asyncpg.Pool, deps: Deps) -> list[Batch]:
        return await deps.repositories(pool).batches.listing(
            tenant, agreement_id=agreement, limit=50
        )

    for batch in _with_deps(listing):
        _print_batch(batch)


@transfers.command("resubmit")
def transfers_resubmit(
    tenant: TenantOpt,
    batch: Annotated[str, typer.Option("--batch", help="the refused batch")],
) -> None:
    """A refused batch's invoices again, under the next serial (the service sends them)."""

    async def resubmitting(pool: asyncpg.Pool, deps: Deps) -> str:
        async with pool.acquire() as conn, conn.transaction():
            return await transfer_service.request_resubmit(
                deps.repositories(conn), tenant, batch, deps.clock()
            )

    try:
        key = _with_deps(resubmitting)
    except (transfer_service.NoSuchBatchError, transfer_service.NotResubmittableError) as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"resubmission {key} scheduled")


@invoices.command("list")
def invoices_list(
    tenant: TenantOpt,
    state: Annotated[InvoiceState | None, typer.Option(help="only invoices in this state")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """The tenant's offered invoices with their decisions and reasons, newest first."""

    async def listing(pool: asyncpg.Pool, deps: Deps) -> list[Any]:
        return await deps.repositories(pool).invoices.listing(
            tenant, state=state, limit=limit, offset=0
        )

    for o in _with_deps(listing):
        invoice = o.invoice
        print(
            f"{invoice.number}  {invoice.document_type.value}  {invoice.totals.payable} "
            f"{invoice.currency}  {o.state.value}  {o.agreement_id or '-'}  {o.reason}"
        )


@settlements.command("fetch")
def settlements_fetch(tenant: TenantOpt, agreement: AgreementOpt = None) -> None:
    """Read the providers' settlement files now (the running service does it)."""

    async def fetching(pool: asyncpg.Pool, deps: Deps) -> list[tuple[str, str]]:
        async with pool.acquire() as conn, conn.transaction():
            return await transfer_service.request_settlements(
                deps.repositories(conn), tenant, agreement, deps.clock()
            )

    try:
        keys = _with_deps(fetching)
    except transfer_service.NoAgreementError as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from None
    for agreement_id, key in keys:
        print(f"settlement read {key} scheduled for agreement {agreement_id} ({SETTLEMENT_JOB})")


@settlements.command("list")
def settlements_list(
    tenant: TenantOpt,
    unmatched: Annotated[bool, typer.Option("--unmatched", help="only unmatched lines")] = False,
) -> None:
    """Settlement lines, newest first; unmatched ones wait for an operator."""

    async def listing(pool: asyncpg.Pool, deps: Deps) -> list[Any]:
        return await deps.repositories(pool).settlements.listing(
            tenant, state="unmatched" if unmatched else None, limit=200
        )

    for r in _with_deps(listing):
        line = r.line
        print(
            f"{r.state}  {r.file_name}:{line.line_no}  {line.reference or '-'}  "
            f"{line.invoice_number or '-'}  {line.amount} {line.currency}  fee {line.fee}  "
            f"{line.paid_on}  {r.invoice_id or ''}"
        )


def main(argv: list[str] | None = None) -> int:
    """``factoring-gateway``'s command line."""
    return run_cli(cli, FACTORING_GATEWAY, argv)
