"""Outgoing e-mail over SMTP (invitations). Settings come from the environment:
LOADBAY_SMTP_HOST, LOADBAY_SMTP_PORT (587), LOADBAY_SMTP_USER, LOADBAY_SMTP_PASSWORD,
LOADBAY_SMTP_FROM, LOADBAY_SMTP_STARTTLS (1 to upgrade the connection first, the server's
certificate checked against the system's CAs and LOADBAY_SMTP_CA_FILE when set)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from server.errors import Unavailable

TIMEOUT = 15.0


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    sender: str = "loadbay@localhost"
    starttls: bool = False
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        host = env.get("LOADBAY_SMTP_HOST", "").strip()
        if not host:
            return None
        return cls(
            host=host,
            port=int(env.get("LOADBAY_SMTP_PORT", "587")),
            user=env.get("LOADBAY_SMTP_USER") or None,
            password=env.get("LOADBAY_SMTP_PASSWORD") or None,
            sender=env.get("LOADBAY_SMTP_FROM", "loadbay@localhost"),
            starttls=env.get("LOADBAY_SMTP_STARTTLS", "") in ("1", "true", "yes"),
            ca_file=env.get("LOADBAY_SMTP_CA_FILE") or None,
        )


def send(smtp: SmtpSettings | None, to: str, subject: str, text: str) -> None:
    """Hand one plain-text message to the SMTP server; Unavailable if it cannot be."""
    if smtp is None:
        raise Unavailable(
            "E-mail is not set up: set LOADBAY_SMTP_HOST (and LOADBAY_SMTP_FROM) to send "
            "invitations."
        )
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT) as client:
            if smtp.starttls:
                context = ssl.create_default_context()
                if smtp.ca_file:
                    context.load_verify_locations(smtp.ca_file)
                client.starttls(context=context)
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise Unavailable(
            f"The e-mail to {to} could not be sent ({type(exc).__name__}); try again."
        ) from exc
