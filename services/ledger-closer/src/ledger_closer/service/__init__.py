"""ledger-closer's use cases: payments and closings (`entries`), booking documents into a
target (`booking`), the write connections (`connections`); their ports (`ports`)."""

from .booking import book_document, invoice_order, record_created, record_delivery
from .connections import add_connection
from .entries import post_entry, schedule_closing, schedule_payment
from .ports import (
    Booker,
    BookingRepository,
    ConnectionRepository,
    DocumentRepository,
    DocumentState,
    EntryRepository,
    IntentLog,
    JobScheduler,
    LedgerWriter,
    LedgerWriters,
    Repositories,
    TransferRecord,
    TransferRepository,
)

__all__ = [
    "Booker",
    "BookingRepository",
    "ConnectionRepository",
    "DocumentRepository",
    "DocumentState",
    "EntryRepository",
    "IntentLog",
    "JobScheduler",
    "LedgerWriter",
    "LedgerWriters",
    "Repositories",
    "TransferRecord",
    "TransferRepository",
    "add_connection",
    "book_document",
    "invoice_order",
    "post_entry",
    "record_created",
    "record_delivery",
    "schedule_closing",
    "schedule_payment",
]
