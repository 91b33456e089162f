"""A tip is written whole or not at all (issue 3, section 3; DESIGN 5), whenever the database fails.

A first, normal submission counts the statements that write to the database; then the database is made to
fail at each of them in turn (and at the commit, and in the middle of writing a file's chunks): each time
the resident gets an error page, not a traceback, nothing of the attempt is left in the database, and the
next submission goes through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal.audit.models import AuditEntry
from portal.settings import Settings
from portal.submission import services as tip_services
from portal.web import Services
from tests.portal.submission.browser import (
    ANSWERS,
    app_client,
    element_text,
    form_token,
    log_in,
    page_text,
    row_counts,
    send_reviewed,
    translated,
)

FILES = [("bild.bin", bytes(range(256)) * 800), ("anteckning.txt", b"hej " * 100)]  # 200 kB: four chunks
WRITES = ("INSERT", "UPDATE", "DELETE")
LEAKS = ("Traceback", 'File "', "sqlalchemy", "OperationalError", "INSERT", "disk I/O", "psycopg", "sqlite3")


class DatabaseFailure:
    """Makes the k-th writing statement of a request fail, or the commit of a transaction that wrote, as a
    full disk or a lost connection would; unarmed, it only counts the writing statements."""

    def __init__(self) -> None:
        self.fail_at: int | None = None
        self.fail_commit = False
        self.writes: list[str] = []
        self.uncommitted = 0
        self.failed = False

    def arm(self, *, at: int | None = None, commit: bool = False) -> None:
        self.fail_at, self.fail_commit, self.writes, self.failed = at, commit, [], False

    def before_cursor_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(WRITES):
            return
        self.writes.append(" ".join(statement.split("(")[0].split()))
        self.uncommitted += 1
        if self.fail_at is not None and len(self.writes) == self.fail_at and not self.failed:
            self.failed = True
            raise OperationalError(statement, None, Exception("disk I/O error"))

    def commit(self, _conn: Any) -> None:
        wrote, self.uncommitted = self.uncommitted, 0
        if self.fail_commit and wrote and not self.failed:
            self.failed = True
            raise OperationalError("COMMIT", None, Exception("disk I/O error"))

    def rollback(self, _conn: Any) -> None:
        self.uncommitted = 0


@pytest.fixture
def failing(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> Iterator[tuple[TestClient, Services, DatabaseFailure]]:
    with app_client(settings, fast_argon2, raise_server_exceptions=False) as (client, services):
        failure = DatabaseFailure()
        hooks: dict[str, Callable[..., None]] = {
            "before_cursor_execute": failure.before_cursor_execute,
            "commit": failure.commit,
            "rollback": failure.rollback,
        }
        for name, hook in hooks.items():
            event.listen(services.engine, name, hook)
        yield client, services, failure
        for name, hook in hooks.items():
            event.remove(services.engine, name, hook)


def assert_error_page(response: Any, lang: str) -> None:
    assert response.status_code >= 500, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert f'<html lang="{lang}"' in response.text
    assert translated(lang, "Something went wrong") in page_text(response)
    leaked = [word for word in LEAKS if word in response.text]
    assert leaked == [], response.text


def stored(services: Services) -> dict[str, int]:
    """Row counts of what a submission writes: the tip and its parts, and its audit entry."""
    with Session(services.engine) as db:
        audit = db.exec(select(func.count()).select_from(AuditEntry)).one()
    return {**row_counts(services.engine), "auditentry": audit}


def attempt(services: Services, send: Callable[[], Any], lang: str, description: str) -> None:
    """`send` fails: an error page, and the database as it was."""
    before = stored(services)
    response = send()
    assert_error_page(response, lang)
    assert stored(services) == before, f"{description}: part of the attempt was stored"


def test_a_tip_is_stored_whole_or_not_at_all(
    failing: tuple[TestClient, Services, DatabaseFailure], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, services, failure = failing
    lang = "sv"
    failure.arm()
    before = row_counts(services.engine)
    assert send_reviewed(client, lang, ANSWERS, FILES).status_code == 200
    chunks = row_counts(services.engine)["filechunk"] - before["filechunk"]
    writes = list(failure.writes)
    assert any(w.startswith("INSERT INTO tip") for w in writes) and any("filechunk" in w for w in writes)

    for k in range(1, len(writes) + 1):
        failure.arm(at=k)
        attempt(services, lambda: send_reviewed(client, lang, ANSWERS, FILES), lang, writes[k - 1])
        assert failure.failed, f"the failure at write {k} was not reached"
    failure.arm(commit=True)
    attempt(services, lambda: send_reviewed(client, lang, ANSWERS, FILES), lang, "commit")
    assert failure.failed

    # Failing between one chunk and the next: with one chunk per INSERT, every chunk boundary is a write.
    monkeypatch.setattr(tip_services, "CHUNK_ROWS_PER_INSERT", 1)
    failure.arm()
    assert send_reviewed(client, lang, ANSWERS, FILES).status_code == 200
    chunk_writes = [k for k, write in enumerate(failure.writes, 1) if "filechunk" in write]
    assert len(chunk_writes) == chunks
    for k in chunk_writes[:3]:
        failure.arm(at=k)
        attempt(services, lambda: send_reviewed(client, lang, ANSWERS, FILES), lang, f"chunk write {k}")
        assert failure.failed

    # And the service works on: the next tip is stored whole.
    failure.arm()
    before = row_counts(services.engine)
    sent = send_reviewed(client, lang, ANSWERS, FILES)
    assert sent.status_code == 200
    after = row_counts(services.engine)
    assert after["tip"] == before["tip"] + 1
    assert after["storedfile"] == before["storedfile"] + len(FILES)
    assert after["filechunk"] == before["filechunk"] + chunks
    assert log_in(client, lang, element_text(sent.text, "reply-code")).status_code == 200


def test_a_mailbox_reply_is_stored_whole_or_not_at_all(
    failing: tuple[TestClient, Services, DatabaseFailure],
) -> None:
    client, services, failure = failing
    lang = "ar"
    sent = send_reviewed(client, lang, ANSWERS, [])
    assert log_in(client, lang, element_text(sent.text, "reply-code")).status_code == 200

    def reply(*, at: int | None = None, commit: bool = False) -> Any:
        failure.arm()
        token = form_token(client.get(f"/{lang}/mailbox").text, f"/{lang}/mailbox/reply")
        failure.arm(at=at, commit=commit)  # the writes of the reply alone
        return client.post(
            f"/{lang}/mailbox/reply",
            data={"message": "Svart Volvo", "csrf": token},
            files=[("files", (name, body, "application/octet-stream")) for name, body in FILES],
            follow_redirects=False,  # the mailbox shown after it is another request, with writes of its own
        )

    assert reply().status_code == 303
    writes = list(failure.writes)
    assert any(w.startswith("INSERT INTO message") for w in writes)
    for k in range(1, len(writes) + 1):
        attempt(services, functools.partial(reply, at=k), lang, writes[k - 1])
        assert failure.failed
    attempt(services, lambda: reply(commit=True), lang, "commit")
    assert failure.failed
    before = row_counts(services.engine)
    assert reply().status_code == 303
    assert "Svart Volvo" in client.get(f"/{lang}/mailbox").text
    after = row_counts(services.engine)
    assert after["message"] == before["message"] + 1
    assert after["storedfile"] == before["storedfile"] + len(FILES)
