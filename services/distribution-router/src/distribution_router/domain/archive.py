"""The archive's rules: what an entry is, and how long it is kept (pure).

Retention (Swedish Bokföringslagen 7 kap. 2 §, DOMAIN.md §7): accounting records are kept
until the end of the seventh calendar year after the calendar year in which the fiscal year
ended. The fiscal year is the calendar year unless the tenant set another start month; e.g.
with a fiscal year from 1 July, an invoice of 2024-09-01 belongs to the year ending
2025-06-30 and is kept through 2032-12-31. The fiscal year is found from the invoice's own
issue date (a calendar date, BT-2), so no time zone enters it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

RETENTION_YEARS = 7
CALENDAR_YEAR = 1


@dataclass(frozen=True)
class NewDocument:
    """A sent document to archive: an entry before the archive numbers and stores it."""

    invoice_id: str
    number: str
    source_document_number: str | None
    channel: str
    document_format: str
    content_type: str
    sha256: str
    sent_at: dt.datetime
    issue_date: dt.date
    retain_until: dt.date


@dataclass(frozen=True)
class ArchivedDocument(NewDocument):
    """An archive entry without its bytes: the document with its number, its size and when
    the archive stored it."""

    sequence: int
    size: int
    archived_at: dt.datetime


def check_start_month(month: int) -> int:
    """A fiscal year's start month, 1 to 12; ValueError otherwise."""
    if not 1 <= month <= 12:
        raise ValueError("fiscal_year_start_month must be 1 to 12")
    return month


def fiscal_year_end(issue_date: dt.date, start_month: int = CALENDAR_YEAR) -> dt.date:
    """The last day of the fiscal year (starting on the 1st of ``start_month``) of a date."""
    check_start_month(start_month)
    if start_month == CALENDAR_YEAR:
        return dt.date(issue_date.year, 12, 31)
    end_month = start_month - 1
    end_year = issue_date.year + 1 if issue_date.month >= start_month else issue_date.year
    return dt.date(end_year, end_month, calendar.monthrange(end_year, end_month)[1])


def retain_until(issue_date: dt.date, start_month: int = CALENDAR_YEAR) -> dt.date:
    """The last day a document must be kept: 31 December of the seventh year after the
    calendar year in which its fiscal year ends.
    """
    return dt.date(fiscal_year_end(issue_date, start_month).year + RETENTION_YEARS, 12, 31)
