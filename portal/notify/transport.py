"""SMTP with STARTTLS required: the one way Lykta sends e-mail.

The connection is upgraded with STARTTLS before anything else is said (no login, no address, no message
in plain text), and the server's certificate and name are verified against the system's CA store, or the
file in `LYKTA_SMTP_CA_FILE`. A server that does not offer STARTTLS is refused, never used without it.

Exceptions (all reach the sender, which records only their class name):

    OSError                       cannot connect, timed out, reset (ssl.SSLError: certificate refused)
    smtplib.SMTPException         the server refused something
      StartTLSUnavailableError    the server does not offer STARTTLS
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from portal.settings import Settings

TIMEOUT_SECONDS = 30


class StartTLSUnavailableError(smtplib.SMTPException):
    """The server does not offer STARTTLS; Lykta does not send in plain text."""


class Mailer:
    """Opens verified, encrypted SMTP sessions to the configured server."""

    def __init__(
        self,
        host: str,
        *,
        port: int = 587,
        username: str = "",
        password: str = "",
        ca_file: str = "",
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file or None)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2

    def __repr__(self) -> str:
        return f"Mailer({self.host!r}, port={self.port})"

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        return cls(
            settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=str(settings.smtp_password),
            ca_file=settings.smtp_ca_file,
        )

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        """A connection that has said EHLO, STARTTLS, EHLO again and (if configured) logged in."""
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise StartTLSUnavailableError()
            smtp.starttls(context=self.context)
            smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password)
            yield MailSession(smtp)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


class MailSession:
    def __init__(self, smtp: smtplib.SMTP) -> None:
        self._smtp = smtp

    def send(self, message: EmailMessage) -> None:
        """Send one message; raise if the server refused it for any recipient."""
        refused = self._smtp.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
