"""MemoryDenyWriteExecute=yes in the units is safe: Lykta works in a process that may never map memory both
writable and executable.

systemd cannot be started here (no systemd as PID 1 on CI), so the test asks the kernel for the same rule
directly: `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)` (Linux 6.3 and later), which refuses writable and
executable mappings and refuses adding execute permission to a mapping, as systemd's seccomp filter for
MemoryDenyWriteExecute does. Then `lykta serve` runs in that process and the whole path a tip takes is
walked through it: a resident sends a tip with a photo (Pillow cleans it) and a file (age encryption,
PyNaCl), an officer logs in (Argon2id, key unwrapping), reads the tip, downloads the file and answers
(decryption, encryption), and the resident reads the answer with the reply code (Argon2id with the
production parameters). On PostgreSQL too (psycopg, libpq, OpenSSL) when LYKTA_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from PIL import Image
from sqlmodel import select

from portal import db
from portal.network.models import Desk
from portal.settings import Settings
from portal.submission.models import Tip, TipRecipient
from tests.portal.submission.browser import ANSWERS, form_token, log_in, send_tip

# Runs a `lykta` command in a process that first switches the rule on and proves that it holds.
UNDER_MDWE = """
import ctypes, mmap, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_MDWE) failed with errno {ctypes.get_errno()}: Linux 6.3 or later is needed")
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except PermissionError:
    print("memory-deny-write-execute is on", flush=True)
else:
    sys.exit("a writable and executable mapping was still allowed")
from portal.cli import main
main(sys.argv[1:])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment_of(settings: Settings) -> dict[str, str]:
    """What the unit's EnvironmentFile gives the process: the test's database, data directory and secrets."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LYKTA_")}
    return env | {
        "LYKTA_DATA_DIR": str(settings.data_dir),
        "LYKTA_DATABASE_URL": settings.database_url,
        "LYKTA_SIGNING_KEY": base64.b64encode(settings.signing_key).decode(),
        "LYKTA_INSTANCE_SALT": base64.b64encode(settings.secrets.instance_salt).decode(),
        "LYKTA_PEPPER": base64.b64encode(settings.pepper).decode(),
        "LYKTA_REPLY_CODE_CONCURRENCY": "1",
    }


@pytest.fixture
def server_under_mdwe(settings: Settings, demo_accounts: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """`lykta serve` on the test's database, in a process with memory-deny-write-execute; its base URL."""
    port = free_port()
    log_path = tmp_path / "server.log"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", UNDER_MDWE, *serve],
            env=environment_of(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"the server under MDWE exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server under MDWE did not answer:\n{log_path.read_text()}")
            time.sleep(0.2)
        assert "memory-deny-write-execute is on" in log_path.read_text()
        yield base_url
        assert process.poll() is None, f"the server died:\n{log_path.read_text()}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def a_photo() -> bytes:
    picture = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "CanaryCameraMaker"  # Make: metadata the cleaner must remove
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif)
    return out.getvalue()


def first_desk_of(settings: Settings, case_number: str) -> str:
    engine = db.make_nullpool_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            tip = session.exec(select(Tip).where(Tip.case_number == case_number)).one()
            desks = session.exec(select(Desk).join(TipRecipient).where(TipRecipient.tip_id == tip.id))
            return next(iter(desks)).code
    finally:
        engine.dispose()


def test_a_tip_goes_all_the_way_under_memory_deny_write_execute(
    server_under_mdwe: str, settings: Settings, demo_accounts: dict[str, Any]
) -> None:
    with httpx.Client(base_url=server_under_mdwe, follow_redirects=True, timeout=60) as resident:
        code, case_number = send_tip(
            resident,  # type: ignore[arg-type]  # httpx.Client is what TestClient extends
            "sv",
            {**ANSWERS, "category": "other"},
            [("foto.jpg", a_photo()), ("lista.bin", b"C" * 70_000)],
        )

    desk = first_desk_of(settings, case_number)
    officer = next(person for person in demo_accounts["accounts"] if desk in person["desks"])
    with httpx.Client(base_url=server_under_mdwe, follow_redirects=True, timeout=60) as staff:
        page = staff.get("/staff/login")
        inbox = staff.post(
            "/staff/login",
            data={
                "username": officer["username"],
                "passphrase": officer["password"],
                "code": pyotp.TOTP(officer["totp_secret"]).now(),
                "csrf": form_token(page.text, "/staff/login"),
            },
        )
        assert inbox.status_code == 200 and case_number in inbox.text
        link = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox.text)
        assert link
        tip = staff.get(link.group(1))
        assert ANSWERS["what"] in tip.text
        downloads = re.findall(r'href="(/staff/tips/[0-9a-f]{32}/files/[0-9a-f]{32})"', tip.text)
        files = [staff.get(href).content for href in downloads]
        assert b"C" * 70_000 in files
        (photo,) = [body for body in files if body.startswith(b"\xff\xd8")]
        assert Image.open(io.BytesIO(photo)).size == (64, 48)
        assert b"CanaryCameraMaker" not in photo
        answered = staff.post(
            f"{link.group(1)}/reply",
            data={"text": "Tack! Vilken tid?", "csrf": form_token(tip.text, f"{link.group(1)}/reply")},
        )
        assert "Tack! Vilken tid?" in answered.text

    with httpx.Client(base_url=server_under_mdwe, follow_redirects=True, timeout=60) as resident:
        mailbox = log_in(resident, "sv", code)  # type: ignore[arg-type]
        assert "Tack! Vilken tid?" in mailbox.text


def test_the_daily_purge_runs_under_memory_deny_write_execute(
    settings: Settings, demo_accounts: dict[str, Any]
) -> None:
    """lykta-purge.service has the same sandbox; `lykta purge` deletes, overwrites SQLite pages and writes
    the audit entry in such a process."""
    purged = subprocess.run(
        [sys.executable, "-c", UNDER_MDWE, "purge"],
        env=environment_of(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert "memory-deny-write-execute is on" in purged.stdout
    audit = subprocess.run(
        [sys.executable, "-c", UNDER_MDWE, "audit", "verify"],
        env=environment_of(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert audit.returncode == 0 and "intact" in audit.stdout, audit.stdout + audit.stderr
