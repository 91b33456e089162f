"""A real SMTP server on loopback for the notification tests: aiosmtpd, STARTTLS with a trustme certificate.

`MailServer` records every conversation it has: the commands the client got as far as (MAIL, RCPT) and the
bytes of every message, so a test can search everything Lykta handed to the mail server.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())


class Recorder:
    """The aiosmtpd handler: records, and answers DATA with `data_reply` (250 unless a test says so)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.mail_commands: list[str] = []
        self.logins: list[tuple[str, bool, bool]] = []  # user, accepted, over TLS
        self.data_reply = "250 OK"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.mail_commands.append(address)
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply.startswith("250"):
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    tls=session.ssl is not None,
                )
            )
        return self.data_reply

    def everything(self) -> bytes:
        """Every byte the server was handed, addresses included, and every message decoded as well (a
        base64 or quoted-printable body would hide a canary from a search of the raw bytes)."""
        parts = [m.encode() for m in self.mail_commands]
        for item in self.received:
            parts += [item.mail_from.encode(), *(r.encode() for r in item.rcpt_tos), item.data]
            parts += [f"{name}: {value}".encode() for name, value in item.message.items()]
            parts += [item.text().encode()]
        return b"\n".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Certificates:
    ca_file: Path
    server_context: ssl.SSLContext


def certificates(directory: Path) -> Certificates:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = directory / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca_file=ca_file, server_context=context)


@contextmanager
def mail_server(
    tls_context: ssl.SSLContext | None, *, port: int = 0, users: dict[str, str] | None = None
) -> Iterator[tuple[Recorder, int]]:
    """An SMTP server on 127.0.0.1; with `tls_context` it offers STARTTLS and requires it before MAIL;
    with `users`, it also requires a login (offered only over TLS)."""
    recorder = Recorder()
    port = port or free_port()
    kwargs: dict[str, Any] = {}
    if tls_context is not None:
        kwargs = {"tls_context": tls_context, "require_starttls": True}
    if users is not None:

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and users.get(data.login.decode()) == data.password.decode()
            recorder.logins.append((data.login.decode(), ok, session.ssl is not None))
            return AuthResult(success=ok, handled=False)  # let the server answer 235 or 535

        kwargs |= {"authenticator": authenticator, "auth_required": True, "auth_require_tls": True}
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()
