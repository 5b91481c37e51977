"""The factor's accounts (one per client agreement), the files it received, its refusals,
SFTP faults and settlement files, under the kit's one lock."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

from nordflow_sandboxes.factor.files import (
    FileInvoice,
    SettlementLine,
    UnreadableFileError,
    error_log_xml,
    invoices_of,
    receipt_xml,
    serial_of,
    settlement_csv,
)
from nordflow_sandboxes.kit.server import Account, PartnerState
from nordflow_sandboxes.kit.values import utc_now

Via = Literal["sftp", "https"]
FileStatus = Literal["accepted", "refused"]
DIRECTORIES = ("inbox", "outbox", "settlements")
RECEIPT_SUFFIX = ".receipt.xml"
ERROR_SUFFIX = ".errorlog.xml"


@dataclass(frozen=True)
class ReceivedFile:
    """One file that arrived under its final name (every arrival is listed, so a second
    upload of the same file would show twice)."""

    id: str
    name: str
    serial: int | None
    via: Via
    payload: bytes = field(repr=False)
    content_sha256: str
    received_at: datetime
    status: FileStatus
    reason: str | None
    invoices: tuple[FileInvoice, ...] = ()
    idempotency_key: str | None = None
    client_reference: str | None = None
    receipt: dict[str, Any] = field(default_factory=dict)

    def content(self) -> tuple[bytes, str]:
        """The bytes as received."""
        return self.payload, "application/octet-stream"

    def view(self, now: datetime) -> dict[str, Any]:
        """The file as the API and the admin routes show it."""
        return {
            "id": self.id,
            "name": self.name,
            "serial": self.serial,
            "bytes": len(self.payload),
            "sha256": self.content_sha256,
            "via": self.via,
            "status": self.status,
            "reason": self.reason,
            "received_at": self.received_at.isoformat(),
            "invoices": len(self.invoices),
            "receipt": self.receipt,
        }


@dataclass
class Refusal:
    """The next ``remaining`` files are refused with ``reason`` (error code ``code``)."""

    reason: str
    code: str
    remaining: int

    def as_json(self) -> dict[str, Any]:
        """The admin view."""
        return {"reason": self.reason, "code": self.code, "remaining": self.remaining}


@dataclass
class SftpFault:
    """An SFTP misbehaviour for the next ``remaining`` matching operations.

    ``drop_connection`` at ``upload``: the connection is closed once ``after_bytes`` of a
    file were written. ``delay`` at ``rename``: the rename is carried out, the answer waits
    ``delay_seconds``; at ``receipt``: the receipt or error log appears that much later.
    """

    action: Literal["drop_connection", "delay"]
    stage: Literal["upload", "rename", "receipt"]
    remaining: int
    after_bytes: int = 0
    delay_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The admin view."""
        return {
            "action": self.action,
            "stage": self.stage,
            "remaining": self.remaining,
            "after_bytes": self.after_bytes,
            "delay_seconds": self.delay_seconds,
        }


@dataclass
class FactorAccount:
    """What the factor keeps for one client beyond the kit's account."""

    account_id: str
    client_number: str
    sftp_username: str
    sftp_password: str
    root: Path
    last_serial: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    sftp_faults: list[SftpFault] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)  # invoice numbers already settled
    settlement_count: int = 0

    def directory(self, name: str) -> Path:
        """One of the account's SFTP directories."""
        return self.root / name


class FactorState(PartnerState[ReceivedFile]):
    """The factor's accounts by token and SFTP login, and what each received.

    ``data_dir`` holds each account's SFTP tree (``<account id>/inbox|outbox|settlements``);
    a temporary directory when not given. ``receipt_delay`` is how long processing a file
    takes before its receipt appears.
    """

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        receipt_delay: timedelta = timedelta(seconds=0.1),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(clock=clock)
        self._owned_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="nordflow-factor-"))
        self.receipt_delay = receipt_delay
        self.factor_accounts: dict[str, FactorAccount] = {}
        self._sftp_logins: dict[str, str] = {}

    def close(self) -> None:
        """Remove the data directory when this state made it."""
        if self._owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---------------------------------------------------------------------- accounts

    def create_factor_account(
        self,
        name: str,
        token: str | None = None,
        *,
        client_number: str | None = None,
        sftp_username: str | None = None,
        sftp_password: str | None = None,
    ) -> tuple[Account[ReceivedFile], str, FactorAccount]:
        """A client of the factor: API token, SFTP login (the token as password unless
        given) and its own directories."""
        with self.lock:
            username = sftp_username or f"client-{secrets.token_hex(4)}"
            if username in self._sftp_logins:
                raise ValueError(f"the SFTP login {username!r} is taken")
            account, issued = self.create_account(name, token)
            root = self.data_dir / account.account_id
            for directory in DIRECTORIES:
                (root / directory).mkdir(parents=True, exist_ok=True)
            extra = FactorAccount(
                account_id=account.account_id,
                client_number=client_number or f"{secrets.randbelow(9000) + 1000}",
                sftp_username=username,
                sftp_password=sftp_password or issued,
                root=root,
            )
            self.factor_accounts[account.account_id] = extra
            self._sftp_logins[username] = account.account_id
            return account, issued, extra

    def factor_account(self, account: Account[ReceivedFile]) -> FactorAccount:
        """The factor's extras of a kit account."""
        return self.factor_accounts[account.account_id]

    def sftp_login(self, username: str, password: str) -> FactorAccount | None:
        """The account an SFTP login opens, if the password is right."""
        with self.lock:
            account_id = self._sftp_logins.get(username)
            extra = self.factor_accounts.get(account_id) if account_id else None
        if extra is None or not secrets.compare_digest(extra.sftp_password, password):
            return None
        return extra

    def account_of_login(self, username: str) -> str:
        """The account id of an SFTP login (after it authenticated)."""
        with self.lock:
            return self._sftp_logins[username]

    def account_by_id(self, account_id: str) -> Account[ReceivedFile] | None:
        """The kit account of an id."""
        return next((a for a in self.accounts() if a.account_id == account_id), None)

    def stats(self, account: Account[ReceivedFile]) -> dict[str, Any]:
        """Counts of the account's files."""
        base = super().stats(account)
        with self.lock:
            extra = self.factor_account(account)
            received = list(account.records.values())
        return base | {
            "client_number": extra.client_number,
            "files": len(received),
            "accepted": sum(1 for f in received if f.status == "accepted"),
            "refused": sum(1 for f in received if f.status == "refused"),
            "last_serial": extra.last_serial,
        }

    # ------------------------------------------------------------------------ faults

    def add_refusal(self, account: Account[ReceivedFile], refusal: Refusal) -> None:
        """Refuse the account's next files."""
        with self.lock:
            self.factor_account(account).refusals.append(refusal)

    def add_sftp_fault(self, account: Account[ReceivedFile], fault: SftpFault) -> None:
        """Misbehave on the account's next SFTP operations."""
        with self.lock:
            self.factor_account(account).sftp_faults.append(fault)

    def take_sftp_fault(self, extra: FactorAccount, stage: str) -> SftpFault | None:
        """The first fault of a stage, with one use consumed."""
        with self.lock:
            for fault in extra.sftp_faults:
                if fault.stage == stage and fault.remaining > 0:
                    fault.remaining -= 1
                    extra.sftp_faults = [f for f in extra.sftp_faults if f.remaining > 0]
                    return fault
            return None

    def peek_sftp_fault(self, extra: FactorAccount, stage: str) -> SftpFault | None:
        """The first fault of a stage, not consumed."""
        with self.lock:
            return next((f for f in extra.sftp_faults if f.stage == stage), None)

    # ------------------------------------------------------------------ receiving files

    def receive(
        self,
        account: Account[ReceivedFile],
        name: str,
        content: bytes,
        *,
        via: Via,
        idempotency_key: str | None = None,
    ) -> ReceivedFile:
        """Process a file that arrived under its final name: accept it or refuse it.

        Refused: a queued refusal; a name received before; no serial in the name; a serial
        used before (except the sibling files of one batch, whose names differ only in
        their first letter, e.g. K… and F…); a serial that skips one; a file the factor
        cannot read. A queued refusal uses up the serial, as a refused file's serial is
        never used again.
        """
        with self.lock:
            extra = self.factor_account(account)
            earlier = list(account.records.values())
            serial = serial_of(name)
            refusal = next((r for r in extra.refusals if r.remaining > 0), None)
            problem: tuple[str, str] | None = None
            invoices: list[FileInvoice] = []
            if refusal is not None:
                refusal.remaining -= 1
                extra.refusals = [r for r in extra.refusals if r.remaining > 0]
                problem = (refusal.code, refusal.reason)
            elif any(f.name == name for f in earlier):
                problem = ("E001", f"file {name} was received before")
            elif serial is None:
                problem = ("E002", f"file name {name} carries no serial number")
            elif serial <= extra.last_serial and not any(
                f.serial == serial and f.name[1:] == name[1:] and f.status == "accepted"
                for f in earlier
            ):
                problem = ("E003", f"serial {serial} was used before (last {extra.last_serial})")
            elif serial > extra.last_serial + 1:
                problem = ("E004", f"serial {serial} skips {extra.last_serial + 1}")
            else:
                try:
                    invoices = invoices_of(name, content)
                except UnreadableFileError as exc:
                    problem = ("E005", str(exc))
            if serial is not None and (problem is None or refusal is not None):
                extra.last_serial = max(extra.last_serial, serial)
            status: FileStatus = "refused" if problem else "accepted"
            receipt = (
                {"code": problem[0], "message": problem[1]}
                if problem
                else {
                    "NoOfInvoices": len(invoices),
                    "TotalInvoiceAmount": sum(
                        -i.amount_minor if i.credit else i.amount_minor for i in invoices
                    ),
                }
            )
            received = ReceivedFile(
                id=self.new_id("file"),
                name=name,
                serial=serial,
                via=via,
                payload=content,
                content_sha256=hashlib.sha256(content).hexdigest(),
                received_at=self.now(),
                status=status,
                reason=f"{problem[0]}: {problem[1]}" if problem else None,
                invoices=tuple(invoices),
                idempotency_key=idempotency_key,
                client_reference=name,
                receipt=receipt,
            )
            self.add_record(account, received)
            return received

    def answer_file(self, received: ReceivedFile) -> tuple[str, bytes]:
        """The receipt's or the error log's name and bytes."""
        if received.status == "accepted":
            assert received.serial is not None
            return received.name + RECEIPT_SUFFIX, receipt_xml(
                received.name, received.serial, list(received.invoices)
            )
        code, _, message = (received.reason or "E000: refused").partition(": ")
        return received.name + ERROR_SUFFIX, error_log_xml(
            received.name, received.serial, code, message
        )

    async def write_answer(
        self, account: Account[ReceivedFile], received: ReceivedFile, delay: float
    ) -> None:
        """Write the receipt or error log into the account's outbox after ``delay``
        (atomically: a reader never sees half a receipt)."""
        if delay:
            await asyncio.sleep(delay)
        name, content = self.answer_file(received)
        outbox = self.factor_account(account).directory("outbox")
        partial = outbox / f".{name}.part"
        partial.write_bytes(content)
        partial.replace(outbox / name)

    def files(self, account: Account[ReceivedFile] | None = None) -> list[tuple[str, ReceivedFile]]:
        """Every received file (of one account), oldest first, with its account id."""
        with self.lock:
            chosen = [account] if account is not None else self.accounts()
            return [(a.account_id, f) for a in chosen for f in a.records.values()]

    def by_name(self, account: Account[ReceivedFile], name: str) -> list[ReceivedFile]:
        """The account's arrivals of a file name."""
        with self.lock:
            return [f for f in account.records.values() if f.name == name]

    # ------------------------------------------------------------------- settlements

    def settle(
        self,
        account: Account[ReceivedFile],
        *,
        lines: list[SettlementLine] | None = None,
        paid_on: date | None = None,
        fee_percent: float = 0.0,
        payer: str = "Debtor",
    ) -> tuple[str, int]:
        """Write a settlement file: the given lines, or a payment of every accepted invoice
        not settled yet (its full amount, ``fee_percent`` withheld). Its name and lines."""
        with self.lock:
            extra = self.factor_account(account)
            day = paid_on or self.now().date()
            if lines is None:
                lines = []
                for received in account.records.values():
                    if received.status != "accepted":
                        continue
                    for invoice in received.invoices:
                        if invoice.credit or invoice.number in extra.settled:
                            continue
                        extra.settled.add(invoice.number)
                        lines.append(
                            SettlementLine(
                                reference=invoice.reference,
                                invoice_number=invoice.number,
                                paid_on=day,
                                currency=invoice.currency,
                                amount_minor=invoice.amount_minor,
                                fee_minor=_percent_of(invoice.amount_minor, fee_percent),
                                payer=payer,
                            )
                        )
            extra.settlement_count += 1
            name = f"SETTLEMENT_{extra.client_number}_{day:%Y%m%d}_{extra.settlement_count}.csv"
            target = extra.directory("settlements")
            partial = target / f".{name}.part"
            partial.write_bytes(settlement_csv(extra.client_number, day, lines))
            partial.replace(target / name)
            return name, len(lines)

    def settlement_names(self, account: Account[ReceivedFile]) -> list[str]:
        """The account's settlement files."""
        target = self.factor_account(account).directory("settlements")
        return sorted(p.name for p in target.iterdir() if not p.name.startswith("."))

    def settlement(self, account: Account[ReceivedFile], name: str) -> bytes | None:
        """One settlement file's bytes."""
        if "/" in name or name.startswith("."):
            return None
        path = self.factor_account(account).directory("settlements") / name
        return path.read_bytes() if path.is_file() else None


def _percent_of(minor: int, percent: float) -> int:
    """``percent`` of an amount in minor units, rounded half away from zero."""
    share = Decimal(minor) * Decimal(str(percent)) / 100
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
