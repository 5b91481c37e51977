"""Test helpers: run the access point (with a real SMP sandbox) in-process, sample BIS 3 XML."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from nordflow_sandboxes.kit.testing import (
    FaultSpec,
    PartnerSandboxAdmin,
    Runner,
    RunningPartnerSandbox,
    SandboxAccount,
    auth,
)
from nordflow_sandboxes.peppol_ap.app import create_app
from nordflow_sandboxes.peppol_ap.state import PeppolApState
from nordflow_sandboxes.peppol_ap.ubl import (
    BIS3_CREDIT_NOTE,
    BIS3_CUSTOMIZATION,
    BIS3_INVOICE,
    BIS3_PROCESS,
    BIS3_PROFILE,
    CAC,
    CBC,
    CREDIT_NOTE_NS,
    INVOICE_NS,
    PARTICIPANT_SCHEME,
)
from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.smp import SmpState
from nordflow_sandboxes.smp import create_app as create_smp_app

__all__ = [
    "BIS3_CREDIT_NOTE",
    "BIS3_INVOICE",
    "BIS3_PROCESS",
    "FaultSpec",
    "PeppolApSandboxAdmin",
    "PeppolNetwork",
    "RunningPeppolApSandbox",
    "SandboxAccount",
    "running_peppol_ap_sandbox",
    "running_peppol_network",
    "sample_invoice_xml",
]

RunningPeppolApSandbox = RunningPartnerSandbox[PeppolApState]


def sample_invoice_xml(
    *,
    invoice_id: str = "INV-1",
    sender: str = "0007:5567321707",
    receiver: str = "0007:5566778899",
    credit_note: bool = False,
    customization_id: str = BIS3_CUSTOMIZATION,
    profile_id: str = BIS3_PROFILE,
) -> bytes:
    """A small UBL 2.1 invoice (or credit note) with the ids the access point checks.

    Enough for the sandbox's checks, not a schematron-valid BIS 3.0 invoice.
    """
    kind, namespace = ("CreditNote", CREDIT_NOTE_NS) if credit_note else ("Invoice", INVOICE_NS)
    type_code = "CreditNoteTypeCode" if credit_note else "InvoiceTypeCode"
    code = "381" if credit_note else "380"

    def party(role: str, participant: str, name: str) -> str:
        scheme, _, value = participant.partition(":")
        return (
            f"<cac:{role}><cac:Party>"
            f'<cbc:EndpointID schemeID="{escape(scheme)}">{escape(value)}</cbc:EndpointID>'
            f"<cac:PartyLegalEntity><cbc:RegistrationName>{escape(name)}"
            f"</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:{role}>"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<{kind} xmlns="{namespace}" xmlns:cac="{CAC}" xmlns:cbc="{CBC}">'
        f"<cbc:CustomizationID>{escape(customization_id)}</cbc:CustomizationID>"
        f"<cbc:ProfileID>{escape(profile_id)}</cbc:ProfileID>"
        f"<cbc:ID>{escape(invoice_id)}</cbc:ID>"
        "<cbc:IssueDate>2025-03-10</cbc:IssueDate>"
        f"<cbc:{type_code}>{code}</cbc:{type_code}>"
        "<cbc:DocumentCurrencyCode>SEK</cbc:DocumentCurrencyCode>"
        "<cbc:BuyerReference>nordflow</cbc:BuyerReference>"
        f"{party('AccountingSupplierParty', sender, 'Säljare AB')}"
        f"{party('AccountingCustomerParty', receiver, 'Köpare AB')}"
        '<cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="SEK">125.00'
        "</cbc:PayableAmount></cac:LegalMonetaryTotal>"
        f"</{kind}>"
    ).encode()


class PeppolApSandboxAdmin(PartnerSandboxAdmin):
    """The shared admin client plus the access point's delivery failures."""

    def fail_deliveries(
        self,
        token: str,
        count: int = 1,
        receiver: str | None = None,
        reason: str = "the receiving access point did not acknowledge the message",
    ) -> None:
        """The account's next `count` accepted transmissions (to `receiver`) end `failed`."""
        body: dict[str, Any] = {"count": count, "receiver": receiver, "reason": reason}
        response = self.client.post("/sandbox/delivery-failures", json=body, headers=auth(token))
        response.raise_for_status()


def running_peppol_ap_sandbox(
    state: PeppolApState | None = None, *, smp_url: str | None = None, host: str = "127.0.0.1"
) -> AbstractContextManager[RunningPeppolApSandbox]:
    """`with running_peppol_ap_sandbox(smp_url=...) as ap:` serves an access point."""
    state = state or PeppolApState(smp_url=smp_url or "http://127.0.0.1:8182")
    return Runner(PeppolApState, create_app, RunningPeppolApSandbox).running(state, host=host)


@dataclass
class PeppolNetwork:
    """An SMP sandbox and an access point that asks it, both on loopback ports."""

    ap: RunningPeppolApSandbox
    smp_url: str
    smp_state: SmpState

    def admin(self) -> PeppolApSandboxAdmin:
        """An admin client of the access point (close it, or use it as a context manager)."""
        return PeppolApSandboxAdmin(self.ap.base_url)

    def register(
        self, participant: str, document_types: Sequence[str] = (BIS3_INVOICE, BIS3_CREDIT_NOTE)
    ) -> None:
        """Make `participant` (`0007:…`) reachable for `document_types` in the SMP."""
        self.smp_state.register(f"{PARTICIPANT_SCHEME}::{participant}", list(document_types))


@contextmanager
def running_peppol_network(host: str = "127.0.0.1") -> Iterator[PeppolNetwork]:
    """`with running_peppol_network() as net:` serves an SMP and an access point using it."""
    smp_state = SmpState()
    smp_server = BackgroundServer(create_smp_app(smp_state), host=host, port=0)
    smp_url = smp_server.start()
    try:
        with running_peppol_ap_sandbox(smp_url=smp_url, host=host) as ap:
            yield PeppolNetwork(ap=ap, smp_url=smp_url, smp_state=smp_state)
    finally:
        smp_server.stop()
