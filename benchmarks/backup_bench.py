"""Benchmark of `lykta backup` and `lykta restore`: how long a snapshot and a restore take for a database of
a given size, and how much one tip writing meanwhile is held up.

    python benchmarks/backup_bench.py            # 200 tips with a 256 KiB file each, both backends
    python benchmarks/backup_bench.py --tips 1000 --file-kib 1024 --backend sqlite

For each backend (SQLite in a temporary data directory; PostgreSQL in fresh databases
`lykta_backupbench_<hex>` on --pg-admin-url, dropped at the end) the script migrates the database, seeds
the demo network, and sends N tips with one file each through the resident app in this process (the
cheapest Argon2id parameters for the reply codes, so filling is quick). Then it times
`portal.backup.take_backup` (median of 3), once more while a thread keeps sending tips (how many got
through during the snapshot, and the slowest send), and `restore_backup` into an empty database (median
of 3). It prints; it asserts nothing (STYLE rule 11).
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, Argon2Params
from portal import backup, db
from portal.app import build_services, create_app
from portal.demo import seed
from portal.settings import generate_secrets, load_settings
from portal.submission.replycodes import MailboxDeriver

FAST = Argon2Params("bench-fast", opslimit=ARGON2_OPSLIMIT_MIN, memlimit=ARGON2_MEMLIMIT_MIN)
ANSWERS = {
    "municipality": "sodertalje",
    "category": "drugs",
    "what": "Försäljning vid busshållplatsen varje kväll.",
    "when": "Varje kväll efter 22",
    "where": "Busshållplatsen vid torget",
    "how_known": "saw",
    "who": "",
    "contact": "",
}


def _token(page: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', page, re.S)
    token = re.search(r'name="csrf" value="([^"]+)"', form.group(0)) if form else None
    if token is None:
        raise RuntimeError(f"no form posting to {action}")
    return token.group(1)


def send_tip(client: TestClient, body: bytes) -> None:
    form = client.get("/sv/tip")
    reviewed = client.post("/sv/tip", data={**ANSWERS, "csrf": _token(form.text, "/sv/tip")})
    fields = {**ANSWERS, "csrf": _token(reviewed.text, "/sv/tip/send"), "confirm": "yes"}
    sent = client.post("/sv/tip/send", data=fields, files=[("files", ("photo.bin", body, "image/x-bench"))])
    if sent.status_code != 200:
        raise RuntimeError(f"sending a tip failed: {sent.status_code}")


def sqlite_instance(root: Path) -> tuple[str, Callable[[], str], Callable[[], None]]:
    counter = iter(range(1000))
    return (
        f"sqlite:///{root / 'data' / 'lykta.sqlite3'}",
        lambda: f"sqlite:///{root / f'restored-{next(counter)}' / 'lykta.sqlite3'}",
        lambda: None,
    )


def postgresql_instance(admin_url: str) -> tuple[str, Callable[[], str], Callable[[], None]]:
    admin = create_engine(db.normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new_database() -> str:
        name = f"lykta_backupbench_{secrets.token_hex(6)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return admin_url.rsplit("/", 1)[0] + "/" + name

    def drop_all() -> None:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return new_database(), new_database, drop_all


def run(backend: str, tips: int, file_kib: int, admin_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        url, new_target, cleanup = (
            sqlite_instance(root) if backend == "sqlite" else postgresql_instance(admin_url)
        )
        try:
            db.upgrade(url)
            environ = {f"LYKTA_{k.upper()}": v for k, v in generate_secrets().items()}
            settings = load_settings(
                environ | {"LYKTA_DATA_DIR": str(root / "data"), "LYKTA_DATABASE_URL": url}
            )
            engine = db.make_nullpool_engine(url)
            with db.session_scope(engine) as session:
                seed(session, signing_key=settings.signing_key, keywrap_params=FAST)
            engine.dispose()
            services = build_services(settings)
            services.extras["deriver"] = MailboxDeriver(settings, params=FAST)
            body = secrets.token_bytes(file_kib * 1024)
            started = time.perf_counter()
            with TestClient(create_app(settings, services=services)) as client:
                for _ in range(tips):
                    send_tip(client, body)
                fill = time.perf_counter() - started

                takes, size = [], 0
                for i in range(3):
                    began = time.perf_counter()
                    manifest = backup.take_backup(url, root / f"quiet-{i}.backup")
                    takes.append(time.perf_counter() - began)
                    size = manifest.size

                # Once more with a resident sending tips all the while.
                stop, sends = threading.Event(), []

                def writer() -> None:
                    with TestClient(create_app(settings, services=services)) as other:
                        while not stop.is_set():
                            began = time.perf_counter()
                            send_tip(other, body)
                            sends.append(time.perf_counter() - began)

                thread = threading.Thread(target=writer)
                thread.start()
                time.sleep(1.0)
                before = len(sends)
                began = time.perf_counter()
                backup.take_backup(url, root / "busy.backup")
                busy = time.perf_counter() - began
                during = len(sends) - before
                stop.set()
                thread.join()
            services.engine.dispose()

            restores = []
            for _ in range(3):
                target = new_target()
                began = time.perf_counter()
                backup.restore_backup(root / "quiet-0.backup", target)
                restores.append(time.perf_counter() - began)
        finally:
            cleanup()
    mib = size / 2**20
    print(
        f"{backend:10} {tips:6} tips x {file_kib} KiB (filled in {fill:5.1f} s)  payload {mib:7.1f} MiB  "
        f"backup {statistics.median(takes):6.2f} s ({mib / statistics.median(takes):6.1f} MiB/s)  "
        f"under writes {busy:6.2f} s, {during} tips sent meanwhile, slowest send {max(sends):5.2f} s  "
        f"restore {statistics.median(restores):6.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tips", type=int, default=200)
    parser.add_argument("--file-kib", type=int, default=256)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        run(backend, args.tips, args.file_kib, args.pg_admin_url)


if __name__ == "__main__":
    main()
