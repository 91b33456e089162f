"""The sender against a real SMTP server on loopback (aiosmtpd, STARTTLS with a trustme certificate).

An event gives exactly one e-mail to each desk member who wants one, and no byte of the tip reaches the
mail server; digests group a day's events; a refusing or absent server is retried and then shown as failed;
a server without STARTTLS or with an untrusted certificate gets nothing at all.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select
from starlette.testclient import TestClient

from portal.db import session_scope, utcnow
from portal.network.models import Desk
from portal.notify import sender
from portal.notify.models import DIGEST, EACH, FAILED, OFF, PENDING, SENT, Notification
from portal.notify.transport import Mailer, StartTLSUnavailableError
from portal.submission.models import Tip
from portal.web import Services
from tests.portal.notify.conftest import SENDER, choose, mailer_for
from tests.portal.notify.smtp import Certificates, Recorder, certificates, free_port, mail_server
from tests.portal.submission.browser import ANSWERS, element_text, form_token, log_in, send_reviewed

CANARIES = [
    "KANARIE-VAD-5c1e",
    "KANARIE-VEM-93ab",
    "kanarie-kontakt-77d0@example.se",
    "kanarie-filnamn-2f8c",
    "KANARIE-FILINNEHALL-b41d",
    "KANARIE-SVAR-e6a2",
]
SARA, KARIN = "sara.officer.pax-ragnhild", "karin.lead.pax-ragnhild"  # the joint desk, "not sure" tips
ERIK = "erik.officer.polisen-sodertalje"  # another desk


def send_canary_tip(client: TestClient) -> tuple[str, str]:
    """A "not sure" tip with a canary in every answer, the contact details, a file name and its bytes."""
    answers = {
        **ANSWERS,
        "category": "other",
        "what": f"Det handlar om {CANARIES[0]}",
        "who": CANARIES[1],
        "contact": CANARIES[2],
    }
    client.cookies.clear()
    sent = send_reviewed(client, "sv", answers, [(f"{CANARIES[3]}.bin", CANARIES[4].encode() * 100)])
    assert sent.status_code == 200, sent.text
    return element_text(sent.text, "reply-code"), element_text(sent.text, "case-number")


def tipster_writes(client: TestClient, reply_code: str, text: str) -> None:
    client.cookies.clear()
    mailbox = log_in(client, "sv", reply_code)
    assert mailbox.status_code == 200
    answer = client.post(
        "/sv/mailbox/reply",
        data={"message": text, "csrf": form_token(mailbox.text, "/sv/mailbox/reply")},
        files=[("files", ("", b"", "application/octet-stream"))],
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def send_due(services: Services, port: int, ca_file: Path, **options: Any) -> sender.Report:
    return sender.send_due(
        services.engine,
        mailer_for(port, ca_file),
        sender=SENDER,
        staff_url="https://lykta.example/staff/",
        **options,
    )


@dataclasses.dataclass(frozen=True)
class MailServer:
    """The test mail server (STARTTLS, a certificate from the test CA) and the sender pointed at it."""

    services: Services
    recorder: Recorder
    port: int
    ca_file: Path

    def send_due(self, **options: Any) -> sender.Report:
        return send_due(self.services, self.port, self.ca_file, **options)


@pytest.fixture
def mail(
    services: Services, smtp_server: tuple[Recorder, int], smtp_certificates: Certificates
) -> MailServer:
    recorder, port = smtp_server
    return MailServer(services, recorder, port, smtp_certificates.ca_file)


def rows(engine: Engine) -> list[Notification]:
    with session_scope(engine) as db:
        return list(db.exec(select(Notification).order_by(Notification.id)))  # type: ignore[arg-type]


def test_each_event_mails_each_wanting_member_once_and_no_content(
    client: TestClient, services: Services, mail: MailServer
) -> None:
    choose(services, SARA, mode=EACH, email="sara@pax.example")
    choose(services, KARIN, mode=EACH, email="karin@pax.example")
    choose(services, ERIK, mode=EACH, email="erik@polisen.example")  # not a member of the tip's desk
    reply_code, case_number = send_canary_tip(client)

    report = mail.send_due()
    assert (report.sent, report.retrying, report.failed) == (2, 0, 0)
    assert sorted(r for item in mail.recorder.received for r in item.rcpt_tos) == [
        "karin@pax.example",
        "sara@pax.example",
    ]
    for item in mail.recorder.received:
        assert item.tls  # the whole conversation after EHLO went over TLS
        message = item.message
        assert message["From"] == SENDER
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["To"] == item.rcpt_tos[0]  # one recipient per e-mail: no colleague's address shown
        assert case_number in item.text()
        assert "https://lykta.example/staff/" in item.text()
    # Nothing more to send: each event is mailed once.
    assert mail.send_due().sent == 0
    assert len(mail.recorder.received) == 2

    tipster_writes(client, reply_code, f"Mer information: {CANARIES[5]}")
    assert mail.send_due().sent == 2
    assert len(mail.recorder.received) == 4
    assert all(case_number in item.message["Subject"] for item in mail.recorder.received[2:])

    everything = mail.recorder.everything()
    for canary in CANARIES:
        assert canary.encode() not in everything
        assert canary.lower().encode() not in everything.lower()
    assert "Busshållplatsen".encode() not in everything  # the demo answers' own words, as sent
    assert all(row.status == SENT and row.attempts == 1 for row in rows(services.engine))


def test_the_mail_is_in_the_staff_members_language(
    client: TestClient, services: Services, mail: MailServer
) -> None:
    from portal.accounts.models import StaffAccount
    from portal.i18n import STAFF_DOMAIN, load_all
    from portal.notify.letters import SUBJECTS

    staff_id = choose(services, SARA, mode=EACH)
    with session_scope(services.engine) as db:
        account = db.get(StaffAccount, staff_id)
        assert account is not None
        account.language = "fi"
        db.add(account)
    send_canary_tip(client)
    mail.send_due()
    [item] = mail.recorder.received
    assert item.message["Content-Language"] == "fi"
    with session_scope(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == "pax-ragnhild-bedomning")).one()
    # The Finnish catalog's subject (the English msgid until the strings are translated).
    expected = load_all(domain=STAFF_DOMAIN)["fi"].gettext(SUBJECTS["new-tip"]) % {"desk": desk.name}
    assert item.message["Subject"] == expected


def test_people_who_switch_off_get_nothing(client: TestClient, services: Services, mail: MailServer) -> None:
    choose(services, SARA, mode=EACH)
    choose(services, KARIN, mode=OFF)
    send_canary_tip(client)
    assert [row.staff_id for row in rows(services.engine)] == [choose(services, SARA, mode=EACH)]
    choose(services, SARA, mode=OFF)  # changed her mind before the sender ran
    report = mail.send_due()
    assert (report.sent, report.dropped) == (0, 1)
    assert mail.recorder.received == [] and mail.recorder.mail_commands == []


def test_someone_who_left_the_desk_is_not_told_its_new_cases(
    client: TestClient, services: Services, mail: MailServer
) -> None:
    from portal.accounts.models import DeskMembership

    sara = choose(services, SARA, mode=EACH, email="sara@pax.example")
    choose(services, KARIN, mode=EACH, email="karin@pax.example")
    send_canary_tip(client)
    with session_scope(services.engine) as db:
        [row] = db.exec(select(Notification).where(Notification.staff_id == sara)).all()
        membership = db.get(DeskMembership, (row.desk_id, sara))
        assert membership is not None
        db.delete(membership)  # removed from the desk before the sender ran
    report = mail.send_due()
    assert (report.sent, report.dropped) == (1, 1)
    assert [item.rcpt_tos for item in mail.recorder.received] == [["karin@pax.example"]]
    assert b"sara@pax.example" not in mail.recorder.everything()


def test_a_daily_digest_groups_the_days_events(
    client: TestClient, services: Services, mail: MailServer
) -> None:
    choose(services, SARA, mode=DIGEST, email="sara@pax.example")
    choose(services, KARIN, mode=EACH, email="karin@pax.example")
    first_code, first_case = send_canary_tip(client)
    _, second_case = send_canary_tip(client)
    tipster_writes(client, first_code, CANARIES[5])

    # Before the next digest morning: Karin has her three e-mails, Sara nothing yet.
    report = mail.send_due()
    assert report.sent == 3
    assert {r for item in mail.recorder.received for r in item.rcpt_tos} == {"karin@pax.example"}

    morning = sender.last_digest_time(utcnow()) + datetime.timedelta(days=1, minutes=5)
    assert mail.send_due(now=morning).sent == 1
    digest = mail.recorder.received[-1]
    assert digest.rcpt_tos == ["sara@pax.example"]
    text = digest.text()
    assert first_case in text and second_case in text
    assert text.count("\n- ") + text.startswith("- ") == 3  # two new tips and one answer, a line each
    assert "3" in digest.message["Subject"]
    # One digest a day: the same morning again sends nothing, even with a new event.
    send_canary_tip(client)
    later = morning + datetime.timedelta(hours=2)
    report = mail.send_due(now=later)
    assert {r for item in mail.recorder.received[4:] for r in item.rcpt_tos} == {"karin@pax.example"}
    assert report.sent == 1
    everything = mail.recorder.everything()
    assert not any(canary.encode() in everything for canary in CANARIES)


def test_a_refusing_server_is_retried_then_the_failure_is_recorded(
    client: TestClient, services: Services, mail: MailServer
) -> None:
    mail.recorder.data_reply = "554 5.7.1 Message refused"
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    now = utcnow()
    seen_pauses = []
    for attempt in range(1, 4):
        report = mail.send_due(now=now, max_attempts=3)
        [row] = rows(services.engine)
        assert row.attempts == attempt
        assert row.last_error == "SMTPDataError"
        if attempt < 3:
            assert (row.status, report.retrying) == (PENDING, 1)
            seen_pauses.append(row.next_attempt_at - now)
            # Not due again before its pause is over.
            assert mail.send_due(now=now, max_attempts=3).retrying == 0
            now = row.next_attempt_at
        else:
            assert (row.status, report.failed) == (FAILED, 1)
    assert seen_pauses == [sender.pause_after(1), sender.pause_after(2)]
    assert seen_pauses[1] > seen_pauses[0]
    assert mail.recorder.received == []
    # Failed for good: later rounds leave it alone.
    much_later = now + datetime.timedelta(days=3)
    assert mail.send_due(now=much_later).failed == 0


def test_a_server_that_is_down_is_retried_until_it_is_back(
    client: TestClient, services: Services, smtp_certificates: Certificates
) -> None:
    port = free_port()  # nothing listens here yet
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    send_due(services, port, smtp_certificates.ca_file)
    [row] = rows(services.engine)
    assert (row.status, row.attempts, row.last_error) == (PENDING, 1, "ConnectionRefusedError")
    with mail_server(smtp_certificates.server_context, port=port) as (recorder, _):
        assert send_due(services, port, smtp_certificates.ca_file, now=row.next_attempt_at).sent == 1
    [row] = rows(services.engine)
    assert (row.status, row.attempts, row.last_error) == (SENT, 2, None)
    assert len(recorder.received) == 1


def test_a_server_without_starttls_gets_nothing(
    client: TestClient, services: Services, smtp_certificates: Certificates
) -> None:
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    with mail_server(None) as (recorder, port):
        report = send_due(services, port, smtp_certificates.ca_file)
    assert report.retrying == 1
    [row] = rows(services.engine)
    assert row.last_error == StartTLSUnavailableError.__name__
    # No plain-text fallback: not even the sender's address was said.
    assert recorder.mail_commands == [] and recorder.received == []


def test_a_certificate_from_another_ca_is_refused(
    client: TestClient, services: Services, smtp_server: tuple[Recorder, int], tmp_path: Path
) -> None:
    recorder, port = smtp_server
    stranger = certificates(tmp_path)  # a CA that did not sign the server's certificate
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    send_due(services, port, stranger.ca_file)
    [row] = rows(services.engine)
    assert (row.status, row.last_error) == (PENDING, "SSLCertVerificationError")
    assert recorder.mail_commands == [] and recorder.received == []


def test_two_senders_at_once_send_each_notification_once(
    client: TestClient, services: Services, mail: MailServer
) -> None:
    sara = choose(services, SARA, mode=EACH)
    choose(services, KARIN, mode=EACH)
    send_canary_tip(client)
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip)).one()
        [first] = db.exec(select(Notification).where(Notification.staff_id == sara)).all()
        for _ in range(38):
            db.add(Notification(kind="tipster-answered", staff_id=sara, desk_id=first.desk_id, tip_id=tip.id))
    total = 40
    start = threading.Barrier(2)
    reports: list[sender.Report] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            while True:
                report = mail.send_due(batch=3)
                reports.append(report)
                if report.sent == 0:
                    return
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(mail.recorder.received) == total
    assert sum(report.sent for report in reports) == total
    assert [row.status for row in rows(services.engine)] == [SENT] * total
    assert all(row.attempts == 1 for row in rows(services.engine))
    message_ids = {item.message["Message-ID"] for item in mail.recorder.received}
    assert len(message_ids) == total


def test_the_outbox_keeps_nothing_but_ids_and_kinds(client: TestClient, services: Services) -> None:
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    with session_scope(services.engine) as db:
        count = db.exec(select(func.count()).select_from(Notification)).one()
        dumped = repr([row.model_dump() for row in db.exec(select(Notification))])
    assert count == 1
    assert not any(canary in dumped for canary in CANARIES)


def test_the_login_happens_inside_tls(
    client: TestClient, services: Services, smtp_certificates: Certificates
) -> None:
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    users = {"lykta": "s3cret-smtp-pass"}
    with mail_server(smtp_certificates.server_context, users=users) as (recorder, port):
        wrong = Mailer(
            "127.0.0.1", port=port, username="lykta", password="wrong", ca_file=str(smtp_certificates.ca_file)
        )
        assert sender.send_due(services.engine, wrong, sender=SENDER).retrying == 1
        assert rows(services.engine)[0].last_error == "SMTPAuthenticationError"
        right = Mailer(
            "127.0.0.1",
            port=port,
            username="lykta",
            password=users["lykta"],
            ca_file=str(smtp_certificates.ca_file),
        )
        due = rows(services.engine)[0].next_attempt_at
        assert sender.send_due(services.engine, right, sender=SENDER, now=due).sent == 1
    # smtplib tries each mechanism the server offers before giving up; every try went over TLS.
    assert all(over_tls for _, _, over_tls in recorder.logins)
    assert [accepted for _, accepted, _ in recorder.logins][-2:] == [False, True]
    assert recorder.logins[-1] == ("lykta", True, True)
    assert len(recorder.received) == 1
