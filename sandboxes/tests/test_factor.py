"""The factor sandbox over real SFTP (asyncssh) and HTTPS (its own CA): files received once
under their final names, receipts and error logs, serial rules, faults, settlements."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import httpx
import pytest
from nordflow_sandboxes.factor.files import SERIAL, serial_of
from nordflow_sandboxes.factor.testing import (
    FactorClient,
    RunningFactorSandbox,
    running_factor_sandbox,
)

CUSIN = (
    b'<?xml version="1.0" encoding="UTF-8"?><CUSIN Version="2.0" CreatedDateTime='
    b'"2025-03-10T15:30:00" CompanyNo="1234" CompanyName="A"><DistributionDate>'
    b"<AsSoonAsPossible/></DistributionDate><CUSINInfo><CustomerNo>1</CustomerNo>"
    b"<Invoices><Invoice><BillNo>5067</BillNo><InvoiceType>Debit</InvoiceType>"
    b"<Currency>NOK</Currency><Amount>1187500</Amount><OCR>50674</OCR></Invoice>"
    b"</Invoices></CUSINInfo></CUSIN>"
)


def cusin_name(serial: int) -> str:
    return f"CUSIN_1234_20250310153000_{serial}.xml"


@pytest.fixture
def factor(tmp_path: Path) -> Iterator[RunningFactorSandbox]:
    with running_factor_sandbox(trust_dir=tmp_path / "trust") as running:
        yield running


@pytest.fixture
def client(factor: RunningFactorSandbox) -> FactorClient:
    return factor.create_client(client_number="1234")


@contextlib.asynccontextmanager
async def sftp(
    factor: RunningFactorSandbox, client: FactorClient, password: str | None = None
) -> AsyncIterator[asyncssh.SFTPClient]:
    key = asyncssh.import_public_key(factor.host_key)
    async with (
        asyncssh.connect(
            "127.0.0.1",
            factor.sftp_port,
            username=client.sftp_username,
            password=password or client.sftp_password,
            known_hosts=([key], [], []),
        ) as connection,
        connection.start_sftp_client() as session,
    ):
        yield session


async def put(session: asyncssh.SFTPClient, name: str, content: bytes) -> None:
    async with session.open(f"inbox/.{name}.part", "wb") as handle:
        await handle.write(content)
    await session.rename(f"inbox/.{name}.part", f"inbox/{name}")


async def read_when(session: asyncssh.SFTPClient, path: str, timeout: float = 5.0) -> bytes:
    for _ in range(int(timeout / 0.05)):
        if await session.exists(path):
            async with session.open(path, "rb") as handle:
                data: bytes = await handle.read()
                return data
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def test_serials_are_read_from_the_file_names() -> None:
    assert serial_of("CUSIN_1234_20250310153000_17.xml") == 17
    assert serial_of("F1234_00007.SGF") == 7
    assert serial_of("PEPPOL_1234_000003.zip") == 3
    assert serial_of("notes.txt") is None
    assert SERIAL.pattern


async def test_a_file_renamed_into_the_inbox_gets_a_receipt(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    async with sftp(factor, client) as session:
        await put(session, cusin_name(1), CUSIN)
        receipt = await read_when(session, f"outbox/{cusin_name(1)}.receipt.xml")
    assert b"<Status>Accepted</Status>" in receipt
    assert b"<TotalInvoiceAmount>1187500</TotalInvoiceAmount>" in receipt
    with factor.admin() as admin:
        [listed] = admin.files(client.token)
    assert (listed["name"], listed["serial"], listed["bytes"], listed["via"]) == (
        cusin_name(1),
        1,
        len(CUSIN),
        "sftp",
    )


async def test_the_partial_name_is_never_processed_and_a_final_name_never_replaced(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    async with sftp(factor, client) as session:
        async with session.open("inbox/.partial.part", "wb") as handle:
            await handle.write(CUSIN)
        await put(session, cusin_name(1), CUSIN)
        async with session.open("inbox/.again.part", "wb") as handle:
            await handle.write(b"other")
        with pytest.raises(asyncssh.SFTPFailure):
            await session.rename("inbox/.again.part", f"inbox/{cusin_name(1)}")
    with factor.admin() as admin:
        assert [f["name"] for f in admin.files(client.token)] == [cusin_name(1)]


async def test_serial_rules_and_refusals_write_error_logs(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    with factor.admin() as admin:
        admin.refuse(client.token, "unknown debtor 77", code="E042")
    async with sftp(factor, client) as session:
        await put(session, cusin_name(1), CUSIN)
        error = await read_when(session, f"outbox/{cusin_name(1)}.errorlog.xml")
        await put(session, cusin_name(3), CUSIN)  # skips 2
        gap = await read_when(session, f"outbox/{cusin_name(3)}.errorlog.xml")
        await put(session, "CUSIN_1234_20250311090000_1.xml", CUSIN)  # 1 again
        reused = await read_when(session, "outbox/CUSIN_1234_20250311090000_1.xml.errorlog.xml")
        await put(session, cusin_name(2), CUSIN)  # the corrected file takes the next serial
        await read_when(session, f"outbox/{cusin_name(2)}.receipt.xml")
    assert b'code="E042">unknown debtor 77' in error
    assert b"E004" in gap
    assert b"E003" in reused
    with factor.admin() as admin:
        statuses = [(f["serial"], f["status"]) for f in admin.files(client.token)]
    assert statuses == [(1, "refused"), (3, "refused"), (1, "refused"), (2, "accepted")]


async def test_sibling_files_of_one_batch_share_their_serial(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    invoice = "1" + "1234" + "000100017" + "00005067" + "250310" + "250409" + "00001187500"
    record = invoice.ljust(111) + "NOK" + "00001187500" + "   "
    async with sftp(factor, client) as session:
        await put(session, "K1234_00001.SGF", b"K" + b" " * 253 + b"\r\n")
        await put(session, "F1234_00001.SGF", record.encode() + b"\r\n")
        await read_when(session, "outbox/F1234_00001.SGF.receipt.xml")
    with factor.admin() as admin:
        files = admin.files(client.token)
    assert [(f["name"], f["status"], f["invoices"]) for f in files] == [
        ("K1234_00001.SGF", "accepted", 0),
        ("F1234_00001.SGF", "accepted", 1),
    ]


async def test_a_wrong_password_is_refused(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with sftp(factor, client, password="wrong-password"):
            pass


async def test_the_connection_drops_mid_upload_and_leaves_only_a_partial_file(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    with factor.admin() as admin:
        admin.sftp_fault(client.token, action="drop_connection", stage="upload", after_bytes=50)
    with pytest.raises((asyncssh.Error, OSError)):
        async with sftp(factor, client) as session:
            await put(session, cusin_name(1), CUSIN)
    with factor.admin() as admin:
        assert admin.files(client.token) == []
    async with sftp(factor, client) as session:
        await session.remove(f"inbox/.{cusin_name(1)}.part")
        await put(session, cusin_name(1), CUSIN)
        await read_when(session, f"outbox/{cusin_name(1)}.receipt.xml")


async def test_https_upload_with_the_sandbox_ca_and_an_idempotency_key(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    async with httpx.AsyncClient(
        base_url=factor.api_url + "/",
        verify=factor.tls_context(),
        headers={"Authorization": f"Bearer {client.token}"},
    ) as http:
        params = {"name": cusin_name(1)}
        headers = {"Idempotency-Key": "bat_1:1"}
        first = await http.post("files", params=params, content=CUSIN, headers=headers)
        replay = await http.post("files", params=params, content=CUSIN, headers=headers)
        assert first.status_code == 201
        assert replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert first.json()["receipt"]["TotalInvoiceAmount"] == 1187500
        found = (await http.get("files", params=params)).json()["files"]
        assert [f["status"] for f in found] == ["accepted"]
        refused = await http.post("files", params={"name": cusin_name(1)}, content=CUSIN)
        assert refused.status_code == 422
        assert refused.json()["code"] == "file_refused"
    plain = factor.api_url.replace("https://", "http://").replace(
        f":{factor.listeners.https_port}", f":{factor.base_url.rsplit(':', 1)[1]}"
    )
    async with httpx.AsyncClient() as untrusting:
        auth = {"Authorization": f"Bearer {client.token}"}
        insecure = await untrusting.get(plain + "/files", headers=auth)
        assert insecure.status_code == 403
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
            await untrusting.get(factor.api_url + "/files")


async def test_settlements_of_every_received_invoice(
    factor: RunningFactorSandbox, client: FactorClient
) -> None:
    async with sftp(factor, client) as session:
        await put(session, cusin_name(1), CUSIN)
        await read_when(session, f"outbox/{cusin_name(1)}.receipt.xml")
    with factor.admin() as admin:
        settled = admin.settle(client.token, fee_percent=1.5, paid_on="2025-04-09")
        assert settled["lines"] == 1
        again = admin.settle(client.token)
        assert again["lines"] == 0  # settled once
    async with sftp(factor, client) as session:
        names = await session.listdir("settlements")
        content = await read_when(session, f"settlements/{settled['name']}")
    assert settled["name"] in names
    assert content.decode().splitlines()[2] == "50674;5067;2025-04-09;NOK;1187500;17813;Debtor"


def test_the_command_line_prints_its_listeners_and_writes_the_trust_files(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nordflow_sandboxes",
            "factor",
            "--port",
            "0",
            "--sftp-port",
            "0",
            "--https-port",
            "0",
            "--token",
            "factor-token-1",
            "--trust-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("nordflow-sandbox factor ready url=http://127.0.0.1:")
        facts = dict(part.split("=", 1) for part in line.split()[3:])
        assert facts["sftp_username"] == "nordflow"
        assert facts["token"] == "factor-token-1"
        assert Path(facts["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert Path(facts["host_key_file"]).read_text().startswith("ssh-ed25519 ")
        info = httpx.get(facts["url"] + "/sandbox/info").json()
        assert info["sftp"]["port"] == int(facts["sftp_port"])
    finally:
        process.terminate()
        process.wait(10)
