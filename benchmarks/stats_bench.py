"""How long the statistics take to count, with many tips in one quarter (issue 5, item 5).

    python benchmarks/stats_bench.py                 # from the repository root; SQLite; ~1 min
    python benchmarks/stats_bench.py --postgresql    # also PostgreSQL on --pg-admin-url

Makes a fresh database with the demo network, plants facts (as retention leaves them: no tip behind
them) spread over one quarter, categories, municipalities, desks and outcomes, and prints the median time
of the back-office report and of the public report at each size. Prints; asserts nothing (STYLE 11).
"""

from __future__ import annotations

import argparse
import datetime
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlmodel import Session, select

from crypto._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, Argon2Params
from portal import db
from portal.demo import seed
from portal.network.catalogue import CATEGORIES
from portal.network.models import Desk, Municipality
from portal.stats import figures
from portal.stats.models import TipFact
from portal.triage.services import OUTCOMES

SIZES = (1_000, 10_000, 100_000)
QUARTER = figures.Quarter(2026, 1)


def plant(url: str, count: int) -> None:
    engine = db.make_nullpool_engine(url)
    rng = random.Random(count)
    codes = [c.code for c in CATEGORIES if not c.emergency]
    with Session(engine) as session:
        desks = list(session.exec(select(Desk.id)))
        municipalities = list(session.exec(select(Municipality.id)))
        rows = []
        for _ in range(count):
            received = QUARTER.first_day + datetime.timedelta(days=rng.randrange(90))
            closed = rng.random() < 0.7
            rows.append(
                {
                    "tip_id": None, "desk_id": rng.choice(desks), "reason": "routing", "counts_tip": True,
                    "received_on": received, "category": rng.choice(codes),
                    "municipality_id": rng.choice(municipalities), "taken_by_phone": rng.random() < 0.1,
                    "acknowledged_on": received + datetime.timedelta(days=rng.randrange(8)),
                    "closed_on": received + datetime.timedelta(days=rng.randrange(90)) if closed else None,
                    "outcome": rng.choice(OUTCOMES) if closed else None,
                }
            )  # fmt: skip
            if len(rows) == 5000:
                session.execute(insert(TipFact), rows)
                rows = []
        if rows:
            session.execute(insert(TipFact), rows)
        session.commit()
    engine.dispose()


def timed(url: str) -> tuple[float, float]:
    engine = db.make_engine(url)
    staff, public = [], []
    for _ in range(5):
        with db.read_session(engine) as session:
            started = time.perf_counter()
            figures.staff_report(session, QUARTER)
            staff.append(time.perf_counter() - started)
            started = time.perf_counter()
            figures.public_report(session, QUARTER, quarters=[QUARTER, QUARTER.previous()])
            public.append(time.perf_counter() - started)
    engine.dispose()
    return statistics.median(staff), statistics.median(public)


def run(name: str, url: str) -> None:
    db.upgrade(url)
    engine = db.make_nullpool_engine(url)
    argon2 = Argon2Params("bench-fast", opslimit=ARGON2_OPSLIMIT_MIN, memlimit=ARGON2_MEMLIMIT_MIN)
    with db.session_scope(engine) as session:
        seed(session, signing_key=secrets.token_bytes(32), keywrap_params=argon2)
    engine.dispose()
    planted = 0
    for size in SIZES:
        plant(url, size - planted)
        planted = size
        staff, public = timed(url)
        print(
            f"{name:<11} {size:>8} facts   staff report {staff * 1000:8.1f} ms"
            f"   public report {public * 1000:8.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    db.import_models()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
    if args.postgresql:
        name = f"lykta_bench_{secrets.token_hex(4)}"
        admin = create_engine(db.normalise_url(args.pg_admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run("postgresql", args.pg_admin_url.rsplit("/", 1)[0] + "/" + name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
