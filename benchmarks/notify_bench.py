"""Benchmark of the notification sender: e-mails per second through a real STARTTLS server, 1 and 2 senders.

    python benchmarks/notify_bench.py                       # 400 notifications, SQLite and PostgreSQL
    python benchmarks/notify_bench.py --notifications 100 --backend sqlite

For each backend the script migrates a fresh database, seeds the demo network, gives two members of one
desk an address (one e-mail per event), inserts one tip and N notifications for them, and starts an aiosmtpd
server with STARTTLS (a trustme certificate) on 127.0.0.1. It times `send_due` rounds until the queue is
empty, first with one sender, then (after putting the rows back) with two senders in threads, and prints
e-mails per second and how many the server received (which must equal N: no double sending).

Needs the dev extras (aiosmtpd, trustme). It prints, it does not assert (STYLE rule 11).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text, update
from sqlmodel import col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers' mail server

from crypto._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, Argon2Params
from portal import db
from portal.accounts.models import DeskMembership
from portal.demo import seed
from portal.network.models import Desk, Municipality
from portal.notify import preferences, sender
from portal.notify.models import EACH, PENDING, Notification
from portal.notify.transport import Mailer
from portal.submission.models import Tip
from tests.portal.notify.smtp import certificates, mail_server


def fill(url: str, *, notifications: int) -> None:
    engine = db.make_nullpool_engine(url)
    with db.session_scope(engine) as session:
        seed(session, signing_key=secrets.token_bytes(32), keywrap_params=Argon2Params(
            "bench-fast", opslimit=ARGON2_OPSLIMIT_MIN, memlimit=ARGON2_MEMLIMIT_MIN))  # fmt: skip
    with db.session_scope(engine) as session:
        desk = session.exec(select(Desk).where(Desk.code == "pax-ragnhild-bedomning")).one()
        members = list(session.exec(select(DeskMembership.staff_id).where(DeskMembership.desk_id == desk.id)))
        for staff_id in members:
            preferences.save(session, staff_id=staff_id, email=f"staff{staff_id}@bench.example", mode=EACH)
        municipality = session.exec(select(Municipality).order_by(col(Municipality.id)).limit(1)).one()
        now = db.utcnow()
        tip = Tip(
            id=secrets.token_hex(16), case_number="BNCH-0001", municipality_id=municipality.id,
            category="other", language="sv", mailbox_id=secrets.token_bytes(32), reply_code_kdf="bench",
            tipster_public_key="age1bench", answers=secrets.token_bytes(600), acknowledge_by=now,
            feedback_by=now,
        )  # fmt: skip
        session.add(tip)
        session.flush()
        for n in range(notifications):
            session.add(
                Notification(
                    kind="new-tip", staff_id=members[n % len(members)], desk_id=desk.id, tip_id=tip.id
                )
            )
    engine.dispose()


def drain(url: str, mailer: Mailer, senders: int) -> float:
    engine = db.make_engine(url)
    start = threading.Barrier(senders)

    def run() -> None:
        start.wait()
        while sender.send_due(engine, mailer, sender="Lykta <lykta@bench.example>", batch=20).sent:
            pass

    threads = [threading.Thread(target=run) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    engine.dispose()
    return took


def measure(name: str, url: str, *, notifications: int, ca_dir: Path) -> None:
    db.upgrade(url)
    fill(url, notifications=notifications)
    certs = certificates(ca_dir)
    with mail_server(certs.server_context) as (recorder, port):
        mailer = Mailer("127.0.0.1", port=port, ca_file=str(certs.ca_file))
        for senders in (1, 2):
            recorder.received.clear()
            took = drain(url, mailer, senders)
            print(
                f"{name}: {senders} sender(s): {notifications} e-mails in {took:.2f} s "
                f"({notifications / took:.0f}/s); the server received {len(recorder.received)}"
            )
            engine = db.make_nullpool_engine(url)
            with db.session_scope(engine) as session:  # put them back for the next run
                session.execute(
                    update(Notification).values(status=PENDING, attempts=0, next_attempt_at=db.utcnow())
                )
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notifications", type=int, default=400)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
            measure("sqlite", url, notifications=args.notifications, ca_dir=Path(tmp))
        if args.backend in ("postgresql", "both"):
            name = f"lykta_notifybench_{secrets.token_hex(4)}"
            admin = create_engine(db.normalise_url(args.pg_admin_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
                measure("postgresql", url, notifications=args.notifications, ca_dir=Path(tmp))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
