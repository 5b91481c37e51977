"""Delivery status notifications (RFC 3464 bounces) for recipients in the bounce registry."""

from __future__ import annotations

import secrets
from datetime import datetime
from email import policy, utils
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from nordflow_sandboxes.smtp.state import BounceRule, StoredMessage

# The original headers a bounce quotes: enough for the sender to match its message.
_QUOTED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID")


def _fields(**values: str) -> Message:
    block = Message()
    for name, value in values.items():
        block[name.replace("_", "-")] = value
    return block


def _quoted_headers(raw: bytes) -> list[str]:
    """The original's header fields a bounce quotes, as sent (still encoded, so ASCII)."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    fields: list[str] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += f"\n{line}"
        elif line:
            fields.append(line)
    wanted = {name.lower() for name in _QUOTED_HEADERS}
    return [f"{field}\n" for field in fields if field.split(":", 1)[0].strip().lower() in wanted]


def build_dsn(
    original: StoredMessage, rule: BounceRule, recipient: str, *, mta: str, now: datetime
) -> bytes:
    """A `multipart/report; report-type=delivery-status` bounce of `original` for `recipient`."""
    report = MIMEMultipart("report", report_type="delivery-status", policy=policy.SMTP)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{mta}>"
    report["To"] = original.mail_from or "postmaster"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = utils.format_datetime(now)
    report["Message-ID"] = f"<dsn.{secrets.token_hex(8)}@{mta}>"
    report["Auto-Submitted"] = "auto-replied"
    human = (
        f"This is the mail system at host {mta}.\n\n"
        f"Your message could not be delivered to <{recipient}>.\n\n"
        f"{rule.diagnostic}\n"
    )
    report.attach(MIMEText(human, "plain", None))
    status = MIMEBase("message", "delivery-status")
    status.set_payload(
        [
            _fields(
                Reporting_MTA=f"dns; {mta}",
                Arrival_Date=utils.format_datetime(original.received_at),
            ),
            _fields(
                Final_Recipient=f"rfc822; {recipient}",
                Action="failed",
                Status=rule.status,
                Diagnostic_Code=f"smtp; {rule.diagnostic}",
            ),
        ]
    )
    report.attach(status)
    quoted = "".join(_quoted_headers(original.raw))
    report.attach(MIMEText(quoted, "rfc822-headers", None))
    return report.as_bytes()
