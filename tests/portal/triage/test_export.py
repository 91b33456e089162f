"""Export: an age file that Debian's `age` opens with the officer's key, holding the tip and its files."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import crypto
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks


@pytest.mark.interop
def test_export_opens_with_age(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], tmp_path: Path
) -> None:
    _code, case_number = send_tip(
        client,
        "sv",
        {**ANSWERS, "category": "other", "contact": "070-1234567"},
        [("karta.bin", b"E" * 150_000)],
    )
    staff_login(client, account(demo_accounts, desk=tip_desks(services, case_number)[0]))
    tip_url = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', client.get("/staff/").text)
    assert tip_url
    page = client.get(tip_url.group(1))
    officer_key = crypto.X25519Identity.generate()
    (tmp_path / "key.txt").write_text(officer_key.to_text() + "\n")
    token = form_token(page.text, f"{tip_url.group(1)}/export")
    refused = client.post(
        f"{tip_url.group(1)}/export", data={"csrf": token, "format": "age", "recipient": "nope"}
    )
    assert refused.status_code == 400
    exported = client.post(
        f"{tip_url.group(1)}/export",
        data={"csrf": token, "format": "age", "recipient": str(officer_key.recipient)},
    )
    assert exported.status_code == 200
    assert case_number in exported.headers["content-disposition"]
    assert ANSWERS["what"].encode() not in exported.content  # ciphertext on the wire to the browser too
    (tmp_path / "tip.tar.age").write_bytes(exported.content)
    opened = subprocess.run(
        ["age", "-d", "-i", str(tmp_path / "key.txt"), str(tmp_path / "tip.tar.age")],
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(opened.stdout)) as archive:
        names = archive.getnames()
        text = archive.extractfile("tip.txt").read().decode()  # type: ignore[union-attr]
        file_name = next(n for n in names if n.startswith("files/"))
        assert archive.extractfile(file_name).read() == b"E" * 150_000  # type: ignore[union-attr]
    assert ANSWERS["what"] in text and "070-1234567" in text and case_number in text
    printed = client.post(f"{tip_url.group(1)}/export", data={"csrf": token, "format": "print"})
    assert ANSWERS["what"] in printed.text
